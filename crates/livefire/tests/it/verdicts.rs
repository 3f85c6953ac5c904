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
fn a_hypothesis_failing_before_says_which_condition_and_that_nothing_was_applied() {
    let home = Home::new();
    let victim = Victim::start();
    let port = free_port();
    let extra = format!(
        "hypothesis:\n  - name: port open\n    probe: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }}\n    expect: {{ ok: true }}\n"
    );
    let file = home.file(&pause_experiment(victim.pid(), 5, &extra));
    let (code, out, err) = run(&mut home.run(&file));
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("verdict: deviated (exit 1)"), "{out}");
    assert!(
        out.contains(
            "  - `port open` did not hold before the experiment, so nothing was applied: "
        ),
        "{out}"
    );
    assert_eq!(home.summary()["reasons"].as_array().unwrap().len(), 1);
}
