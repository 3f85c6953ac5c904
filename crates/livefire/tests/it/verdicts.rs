//! What a run says at its end: the verdict in words, and one line per cause in the
//! experiment's own words, the same in the terminal, `summary.json` and `livefire runs`.

use crate::support::*;

#[test]
fn a_setup_failure_is_invalid_everywhere_and_keeps_its_run_folder() {
    let home = Home::new();
    // Something else holds the port the setup process would be ready on.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let file = home.file(&format!(
        "version: 1\ntitle: t\nsetup:\n  - {{ name: w, command: \"sleep 30\", ready: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }} }}\ntimeline:\n  - {{ at: 0s, for: 1s, fault: {{ process.pause: {{ target: w }} }} }}\n"
    ));
    let (code, out, err) = run(&mut home.run(&file));
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("verdict: invalid (exit 3)"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("  - setup failed: setup `w`")
                && l.contains("already answers before the process started")
                && l.ends_with("(nothing was applied)")),
        "{out}"
    );
    // The run got as far as setup: its folder stays, with the journal of what happened.
    assert_eq!(home.summary()["verdict"], "invalid");
    assert_eq!(home.summary()["exit_code"], 3);
    assert!(!home.journal().contains("fault_applied"));
    let (code, runs, err) = run(home
        .livefire()
        .arg("runs")
        .arg("--out")
        .arg(home.path().join("runs")));
    assert_eq!(code, 0, "{err}");
    assert!(runs.contains("invalid"), "{runs}");
    assert!(!runs.contains("held"), "{runs}");
}

#[test]
fn progress_says_failing_within_tolerance_then_deviated_and_what_settle_awaits() {
    let home = Home::new();
    // The flag is there from the fault's apply until 2 s after its rollback, so the
    // probe fails during the fault (beyond its tolerance) and for a while after it.
    let file = home.file(
        "version: 1\ntitle: t\nsettings: { settle: 20s }\nhypothesis:\n  - name: flag gone\n    probe: { command: { run: \"test ! -e down.flag\" } }\n    expect: { exit_code: 0 }\n    every: 250ms\n    tolerate: 1500ms\ntimeline:\n  - at: 1s\n    for: 3s\n    name: flag up\n    fault: { command: { apply: \"touch down.flag\", rollback: \"setsid sh -c 'sleep 2; rm -f down.flag' >/dev/null 2>&1 &\" } }\n",
    );
    let (code, out, err) = run(&mut home.run(&file));
    assert_eq!(code, 1, "{out}{err}");
    let progress: Vec<&str> = err.lines().filter(|l| l.contains(" / 00:04")).collect();
    let failing = progress.iter().position(|l| {
        l.contains("hypothesis: failing ") && l.contains("/1500ms tolerated (flag gone)")
    });
    let deviated = progress
        .iter()
        .position(|l| l.contains("hypothesis: DEVIATED (flag gone)"));
    assert!(
        matches!((failing, deviated), (Some(f), Some(d)) if f < d),
        "failing within tolerance first, then deviated:\n{err}"
    );
    assert!(
        err.lines().any(|l| l.starts_with("settling ")
            && l.contains("/20s: faults rolled back, waiting for `flag gone`")),
        "the settle phase says what it awaits:\n{err}"
    );
    let reason = out
        .lines()
        .find(|l| l.starts_with("  - `flag gone` deviated at "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        reason.contains("samples failed over") && reason.ends_with("tolerated 1.50s)"),
        "{reason}"
    );
}
