//! `livefire run` as a user runs it: the example, the plan, verdicts and exit codes.

use std::path::PathBuf;
use std::process::Stdio;

use crate::support::*;

#[test]
fn the_example_runs_holds_and_leaves_a_run_folder() {
    let home = Home::new();
    let port = free_port().to_string();
    let (code, out, err) = run(home
        .run(&repo().join("examples/pause-a-worker.yaml"))
        .args(["--var", &format!("port={port}")]));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("verdict: held"), "{out}");
    assert!(
        out.contains(&format!("run folder: {}", home.run_dir().display())),
        "{out}"
    );
    let s = home.summary();
    assert_eq!(s["verdict"], "held");
    assert_eq!(s["faults"][0]["kind"], "process.pause");
    assert_eq!(s["faults"][0]["rollback_ok"], true);
    // The hypothesis probe saw the pause (the worker did not answer) and was tolerated.
    let health = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "health answers")
        .unwrap();
    assert!(health["failures"].as_u64().unwrap() >= 1, "{health}");
    let journal = home.journal();
    assert!(
        journal
            .lines()
            .next()
            .unwrap()
            .contains("\"type\":\"run_started\"")
    );
    assert!(journal.contains("\"type\":\"setup_stopped\""));
    for f in [
        "experiment.yaml",
        "journal.jsonl",
        "summary.json",
        "ledger.jsonl",
    ] {
        assert!(home.run_dir().join(f).exists(), "{f} missing");
    }
    // The worker the experiment started is gone: nothing listens on its port.
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
}

#[test]
fn dry_run_prints_the_plan_and_applies_nothing() {
    let home = Home::new();
    let victim = Victim::start();
    let file = home.file(&pause_experiment(victim.pid(), 5, ""));
    let mut cmd = home.livefire();
    cmd.arg("run").arg(&file).arg("--dry-run");
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("victim paused")
            && out.contains("process.pause")
            && out.contains("0s")
            && out.contains("5s"),
        "{out}"
    );
    assert!(victim.running());
    assert!(
        !home.path().join("runs").exists(),
        "a dry run writes no run folder"
    );
    // The plan is the same text every time (no times or paths that change).
    let (_, again, _) = run(&mut cmd);
    assert_eq!(out, again);
}

#[test]
fn hypothesis_failing_before_applies_nothing_and_exits_1() {
    let home = Home::new();
    let victim = Victim::start();
    let port = free_port();
    let extra = format!(
        "hypothesis:\n  - name: port open\n    probe: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }}\n    expect: {{ ok: true }}\n"
    );
    let file = home.file(&pause_experiment(victim.pid(), 5, &extra));
    let (code, out, err) = run(&mut home.run(&file));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not hold before"), "{err}");
    assert!(!home.journal().contains("fault_applied"));
    assert!(victim.running(), "the victim was never paused");
    assert_eq!(home.summary()["verdict"], "deviated");
    // The verdict says which condition, and that nothing was applied.
    assert!(out.contains("verdict: deviated (exit 1)"), "{out}");
    assert!(
        out.contains(
            "  - `port open` did not hold before the experiment, so nothing was applied: "
        ),
        "{out}"
    );
    assert_eq!(home.summary()["reasons"].as_array().unwrap().len(), 1);
}

#[test]
fn hypothesis_deviating_during_the_fault_exits_1_after_full_rollback() {
    let home = Home::new();
    let victim = Victim::start();
    // The probe fails while the victim is stopped (its state is T), with no tolerance.
    let extra = format!(
        "hypothesis:\n  - name: victim running\n    probe: {{ command: {{ run: \"! grep -q ') T' /proc/{}/stat\" }} }}\n    expect: {{ exit_code: 0 }}\n    every: 200ms\n",
        victim.pid()
    );
    let file = home.file(&pause_experiment(victim.pid(), 2, &extra));
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(code, 1, "{err}");
    assert!(victim.running());
    let s = home.summary();
    assert_eq!(s["verdict"], "deviated");
    assert_eq!(s["conditions"][0]["held"], false);
    assert_eq!(s["faults"][0]["rollback_ok"], true);
}

#[test]
fn kinds_not_built_yet_are_refused_with_exit_3() {
    // Every fault and probe kind is built; https:// probes are not yet.
    let home = Home::new();
    let file = home.file(
        "version: 1\ntitle: t\nhypothesis:\n  - { name: up, probe: { http: { url: \"https://127.0.0.1:1/\" } }, expect: { status: 200 } }\ntimeline:\n  - { at: 0s, for: 1s, fault: { command: { apply: \"true\", rollback: \"true\" } } }\n",
    );
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(code, 3, "{err}");
    assert!(
        // Refused where it is written, as `validate` refuses it.
        err.contains(&format!(
            "{}:4:39: error: https:// probes are not built",
            file.display()
        )),
        "{err}"
    );
    assert!(!home.path().join("runs").exists());
}

#[test]
fn setup_errors_exit_3_and_apply_nothing() {
    let home = Home::new();
    // A missing pidfile.
    let file = home.file("version: 1\ntitle: t\ntargets:\n  w: { process: { pidfile: /no/such.pid } }\ntimeline:\n  - { at: 0s, for: 1s, fault: { process.pause: { target: w } } }\n");
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(code, 3);
    assert!(
        err.contains("pidfile /no/such.pid") && err.contains("nothing was applied"),
        "{err}"
    );
    // An unknown process name.
    let file = home.file("version: 1\ntitle: t\ntargets:\n  w: { process: { name: no-such-process-xyz } }\ntimeline:\n  - { at: 0s, for: 1s, fault: { process.pause: { target: w } } }\n");
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(code, 3);
    assert!(
        err.contains("no running process named `no-such-process-xyz`"),
        "{err}"
    );
    // A setup process that never gets ready.
    let port = free_port();
    let file = home.file(&format!(
        "version: 1\ntitle: t\nsetup:\n  - {{ name: w, command: \"sleep 30\", ready: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }}, timeout: 1s }}\ntimeline:\n  - {{ at: 0s, for: 1s, fault: {{ process.pause: {{ target: w }} }} }}\n"
    ));
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("setup `w` was not ready within 1s"), "{err}");
    // A setup whose port something else already holds (its readiness would be a lie).
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let file = home.file(&format!(
        "version: 1\ntitle: t\nsetup:\n  - {{ name: w, command: \"sleep 30\", ready: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }} }}\ntimeline:\n  - {{ at: 0s, for: 1s, fault: {{ process.pause: {{ target: w }} }} }}\n"
    ));
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("already answers before the process started"),
        "{err}"
    );
    // A run folder that cannot be written.
    let victim = Victim::start();
    let file = home.file(&pause_experiment(victim.pid(), 1, ""));
    let blocker = home.path().join("blocker");
    std::fs::write(&blocker, "a file, not a folder").unwrap();
    let mut cmd = home.livefire();
    cmd.arg("run")
        .arg(&file)
        .arg("--out")
        .arg(blocker.join("runs"));
    let (code, _, err) = run(&mut cmd);
    assert_eq!(code, 3);
    assert!(
        err.contains("cannot create a run folder") && err.contains("--out"),
        "{err}"
    );
    assert!(victim.running());
}

#[test]
fn progress_is_a_plain_line_per_second_off_a_terminal_and_nothing_with_quiet() {
    let home = Home::new();
    let port = free_port();
    let file = home.file(&format!(
        "version: 1\ntitle: t\nsetup:\n  - {{ name: w, command: \"livefire sandbox http --listen 127.0.0.1:{port}\", ready: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }} }}\ntimeline:\n  - {{ at: 0s, for: 3s, load: {{ name: browse, rate: 20/s, requests: [ {{ url: \"http://127.0.0.1:{port}/health\" }} ] }} }}\n  - {{ at: 0s, for: 3s, name: nap, fault: {{ command: {{ apply: \"true\", rollback: \"true\" }} }} }}\n"
    ));
    let child = home
        .run(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (code, out, err) = finish(child);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains('\r'), "no redrawn line on a pipe: {err:?}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(" / 00:03")).collect();
    assert!(lines.len() >= 2, "a line per second: {err}");
    assert!(lines.iter().any(|l| l.contains("active: nap")), "{err}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("browse: ") && l.contains(" rps")),
        "{err}"
    );
    // stdout is the end-of-run summary (who noticed each fault, the verdict, the run
    // folder), never the progress line.
    assert!(!out.contains(" / 00:03"), "no progress on stdout: {out}");
    let last: Vec<&str> = out.lines().rev().take(2).collect();
    assert!(
        last.len() == 2 && last[1].starts_with("verdict: ") && last[0].starts_with("run folder: "),
        "stdout ends with the verdict and the run folder: {out}"
    );
    assert!(out.contains("who noticed `nap`: nobody"), "{out}");
    let quiet = Home::new();
    let (code, _, err) = run(quiet.run(&file).arg("--quiet"));
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains(" / 00:03"),
        "--quiet prints no progress: {err}"
    );
}

#[test]
fn load_and_fault_together_the_stall_shows_in_the_corrected_latency() {
    let home = Home::new();
    let port = free_port().to_string();
    let (code, out, err) = run(home
        .run(&repo().join("examples/load-while-paused.yaml"))
        .args(["--var", &format!("port={port}")]));
    assert_eq!(code, 0, "{out}{err}");
    let journal = home.journal();
    let windows = journal
        .lines()
        .filter(|l| l.contains("\"type\":\"window\",\"series\":\"browse\""))
        .count();
    assert!(
        windows >= 7,
        "a window per second of the 8 s load, got {windows}"
    );
    // The 2 s pause is in the latency measured from the intended send time.
    let p99 = journal
        .lines()
        .filter(|l| l.contains("\"condition\":\"p99 latency stays under 5 s\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["value"].as_f64())
        .next_back()
        .expect("the referee judged the p99 condition");
    assert!(p99 >= 1.0, "p99 {p99} s does not show a 2 s pause");
    let ended: serde_json::Value = journal
        .lines()
        .find(|l| l.contains("\"type\":\"load_ended\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap();
    assert_eq!(
        ended["report"]["intended"], 800,
        "a constant 100/s for 8 s sends exactly 800"
    );
}

#[test]
fn an_error_rate_guardrail_aborts_a_load_against_a_paused_worker() {
    let home = Home::new();
    let port = free_port();
    let file = home.file(&format!(
        "version: 1\ntitle: guardrail on errors\nsetup:\n  - {{ name: worker, command: \"livefire sandbox http --listen 127.0.0.1:{port}\", ready: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }} }}\nguardrails:\n  - {{ name: errors, metric: browse.error_rate, below: 50%, for: 1s }}\ntimeline:\n  - {{ at: 0s, for: 30s, load: {{ name: browse, rate: 50/s, timeout: 200ms, requests: [ {{ url: \"http://127.0.0.1:{port}/health\" }} ] }} }}\n  - {{ at: 1s, for: 25s, name: freeze, fault: {{ process.pause: {{ target: worker }} }} }}\n"
    ));
    let started = std::time::Instant::now();
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("guardrail `errors` tripped"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the guardrail stopped the run early"
    );
    let s = home.summary();
    assert_eq!(s["faults"][0]["rollback_ok"], true);
}

#[test]
fn acknowledged_writes_are_read_back_and_losses_fail_the_hypothesis() {
    // (every Nth write forgotten by the target, expected exit, expected share lost)
    for (lose_every, exit) in [(0u64, 0), (10, 1)] {
        let home = Home::new();
        let port = free_port();
        let file = home.file(&format!(
            "version: 1\ntitle: writes\nsetup:\n  - {{ name: store, command: \"livefire sandbox http --listen 127.0.0.1:{port} --lose-every {lose_every}\", ready: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }} }}\nhypothesis:\n  - {{ name: no acknowledged write lost, metric: orders.writes.lost, equals: 0 }}\n  - {{ name: write gap, metric: failover.write_gap, below: 30s }}\ntimeline:\n  - at: 0s\n    for: 3s\n    load:\n      name: orders\n      rate: 20/s\n      requests:\n        - {{ name: create, method: POST, url: \"http://127.0.0.1:{port}/items\", json: {{ qty: 1 }}, track_write: {{ key: \"$.id\", read: \"http://127.0.0.1:{port}/items/{{key}}\" }} }}\n  - {{ at: 1s, for: 1s, fault: {{ process.pause: {{ target: store }} }} }}\n"
        ));
        let (code, _, err) = run(&mut home.run(&file));
        assert_eq!(code, exit, "lose_every {lose_every}: {err}");
        let journal = home.journal();
        let writes: serde_json::Value = journal
            .lines()
            .find(|l| l.contains("\"type\":\"writes\""))
            .map(|l| serde_json::from_str(l).unwrap())
            .expect("a writes event");
        let acked = writes["counts"]["acked"].as_u64().unwrap();
        let lost = writes["counts"]["lost"].as_u64().unwrap();
        assert!(acked >= 50, "20/s for 3 s, got {acked} acknowledged");
        let expected = acked.checked_div(lose_every).unwrap_or(0);
        assert!(
            lost.abs_diff(expected) <= 1,
            "lose_every {lose_every}: {lost} lost of {acked}"
        );
        if lose_every > 0 {
            assert!(err.contains("acknowledged write(s) lost"), "{err}");
        }
        // The 1 s pause of the store is the longest time without an acknowledged write.
        let gap = journal
            .lines()
            .filter(|l| l.contains("\"condition\":\"write gap\""))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["value"].as_f64())
            .next_back()
            .expect("the write gap was judged");
        assert!(gap >= 0.9, "a 1 s pause, gap {gap} s");
    }
}

#[test]
fn secrets_from_the_environment_never_reach_the_run_folder() {
    let home = Home::new();
    let secret = "s3cr3t-token-value-42";
    let file = home.file(
        "version: 1\ntitle: secrets\nhypothesis:\n  - name: token works\n    probe: { command: { run: \"test ${env:LF_TEST_TOKEN} = s3cr3t-token-value-42 && echo ${env:LF_TEST_TOKEN}\" } }\n    expect: { exit_code: 0 }\ntimeline:\n  - { at: 0s, for: 1s, fault: { command: { apply: \"echo ${env:LF_TEST_TOKEN} > /dev/null\" } } }\n",
    );
    // Unset: a clear error before anything runs.
    let (code, _, err) = run(home.run(&file).env_remove("LF_TEST_TOKEN"));
    assert_eq!(code, 3);
    assert!(
        err.contains("LF_TEST_TOKEN") && err.contains("not set"),
        "{err}"
    );
    let (code, _, err) = run(home.run(&file).env("LF_TEST_TOKEN", secret));
    assert_eq!(code, 0, "the probe saw the real value: {err}");
    for entry in std::fs::read_dir(home.run_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            !text.contains(secret),
            "{} holds the secret",
            path.display()
        );
    }
    assert!(
        std::fs::read_to_string(home.run_dir().join("experiment.yaml"))
            .unwrap()
            .contains("${env:LF_TEST_TOKEN}")
    );
}

/// Regression: `--dry-run` printed `setup:` commands with the environment's values in
/// them; every line of the plan shows `${env:NAME}` instead, as the run folder does.
#[test]
fn secrets_from_the_environment_are_masked_in_the_dry_run_plan() {
    let home = Home::new();
    let secret = "s3cr3t-dry-run-value-7";
    let file = home.file(
        "version: 1\ntitle: secrets in the plan\nsetup:\n  - { name: worker, command: \"sleep 600 --token=${env:LF_TEST_DRY_TOKEN}\" }\ntimeline:\n  - { at: 0s, for: 1s, fault: { command: { apply: \"true\" } } }\nwatch:\n  - { name: token-alert, command: \"test ${env:LF_TEST_DRY_TOKEN} = x\", fires_when: { exit_nonzero: true } }\n",
    );
    let (code, out, err) = run(home
        .run(&file)
        .arg("--dry-run")
        .env("LF_TEST_DRY_TOKEN", secret));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(secret) && !err.contains(secret), "{out}{err}");
    assert!(
        out.lines().any(|l| l.starts_with("setup")
            && l.contains("worker")
            && l.ends_with("sleep 600 --token=${env:LF_TEST_DRY_TOKEN}")),
        "{out}"
    );
    assert!(
        out.contains("watch   token-alert: `test ${env:LF_TEST_DRY_TOKEN} = x`"),
        "{out}"
    );
    // `validate` never reads the environment: the file's text is all it shows.
    let (code, out, err) = run(home
        .livefire()
        .arg("validate")
        .arg(&file)
        .env("LF_TEST_DRY_TOKEN", secret));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains(secret) && !err.contains(secret), "{out}{err}");
}

/// Regression: a setup process's `restart:` ran in the experiment file's folder, not in
/// the `cwd:` the process was started in, so a relative path in it meant another file.
#[test]
fn a_setup_process_restarts_in_its_own_cwd() {
    for kind in ["process.kill", "process.restart"] {
        let home = Home::new();
        let app = home.path().join("app");
        std::fs::create_dir(&app).unwrap();
        let file = home.file(&format!(
            "version: 1\ntitle: restart in cwd\nsetup:\n  - {{ name: worker, command: \"sleep 300\", cwd: {app:?}, restart: \"pwd > restarted.txt\" }}\ntimeline:\n  - {{ at: 0s, for: 1s, fault: {{ {kind}: {{ target: worker }} }} }}\n",
            app = app.display().to_string()
        ));
        let (code, out, err) = run(&mut home.run(&file));
        let written = std::fs::read_to_string(app.join("restarted.txt")).ok();
        assert!(
            written.as_deref().map(str::trim) == app.to_str(),
            "{kind}: the restart ran in `cwd:` ({written:?}, exit {code}): {out}{err}"
        );
        assert!(
            !home.path().join("restarted.txt").exists(),
            "{kind}: not in the file's folder"
        );
    }
}

/// Regression: a setup process started as `user:` was restarted (by `process.restart`,
/// and by the rollback of `process.kill`) as whoever ran livefire: root, in CI.
#[test]
fn a_setup_process_restarts_as_its_own_user() {
    if !nix::unistd::geteuid().is_root() {
        livefire_testkit::skip_missing(
            "root, to start a setup process as another user",
            "run the tests as root",
        );
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    for kind in ["process.kill", "process.restart"] {
        let home = Home::new();
        // `nobody` must reach and write the folder it restarts in.
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let app = home.path().join("app");
        std::fs::create_dir(&app).unwrap();
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o777)).unwrap();
        let file = home.file(&format!(
            "version: 1\ntitle: restart as user\nsetup:\n  - {{ name: worker, command: \"sleep 300\", user: nobody, cwd: {app:?}, restart: \"id -un > restarted.txt\" }}\ntimeline:\n  - {{ at: 0s, for: 1s, fault: {{ {kind}: {{ target: worker }} }} }}\n",
            app = app.display().to_string()
        ));
        let (code, out, err) = run(&mut home.run(&file));
        let written = std::fs::read_to_string(app.join("restarted.txt")).ok();
        assert_eq!(
            written.as_deref().map(str::trim),
            Some("nobody"),
            "{kind}: the restart ran as the setup's `user:` (exit {code}): {out}{err}"
        );
    }
}

#[test]
fn every_example_runs_with_the_exit_code_it_states() {
    let dir = repo().join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Examples that need a sandbox name the test that starts it and runs them:
        // quickstart.yaml (`livefire demo`, demo.rs), db-failover.yaml (drill.rs).
        if let Some(by) = text.lines().find_map(|l| l.strip_prefix("# run-by: ")) {
            let test = by.split_whitespace().next().unwrap_or_default();
            assert!(
                test == "livefire" || repo().join(test).is_file(),
                "{}: `# run-by: {by}` names no test file",
                file.display()
            );
            continue;
        }
        let expect: i32 = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect-exit: "))
            .unwrap_or_else(|| panic!("{} states no `# expect-exit: N`", file.display()))
            .trim()
            .parse()
            .unwrap();
        // Every example takes its ports as variables; move them all to free ports.
        let home = Home::new();
        let mut cmd = home.run(&file);
        for var in ["port", "link"] {
            if text.contains(&format!("\n  {var}: ")) {
                cmd.args(["--var", &format!("{var}={}", free_port())]);
            }
        }
        let (code, out, err) = run(&mut cmd);
        assert_eq!(code, expect, "{}:\n{out}{err}", file.display());
    }
}

#[test]
fn metrics_listen_serves_the_live_metrics_in_prometheus_text_format() {
    use std::io::{Read, Write};
    let home = Home::new();
    let (port, prom) = (free_port(), free_port());
    let file = home.file(&format!(
        "version: 1\ntitle: t\nsetup:\n  - {{ name: w, command: \"livefire sandbox http --listen 127.0.0.1:{port}\", ready: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }} }}\ntimeline:\n  - {{ at: 0s, for: 4s, load: {{ name: browse, rate: 20/s, requests: [ {{ url: \"http://127.0.0.1:{port}/health\" }} ] }} }}\n  - {{ at: 0s, for: 4s, name: nap, fault: {{ command: {{ apply: \"true\", rollback: \"true\" }} }} }}\n"
    ));
    let child = home
        .run(&file)
        .args(["--metrics-listen", &format!("127.0.0.1:{prom}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let scrape = || -> Option<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", prom)).ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        Some(text)
    };
    let start = std::time::Instant::now();
    let mut seen = String::new();
    while start.elapsed() < std::time::Duration::from_secs(20) {
        if let Some(t) = scrape()
            && t.contains("livefire_load_rps{load=\"browse\"}")
            && t.contains("livefire_fault_active{activity=\"nap\"} 1")
        {
            seen = t;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (code, _, err) = finish(child);
    assert_eq!(code, 0, "{err}");
    assert!(
        !seen.is_empty(),
        "never scraped the load and the active fault"
    );
    // Every line is a comment or `name{labels} value` with a number.
    let body = seen.split_once("\r\n\r\n").unwrap().1;
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
    }
    // A port already in use is refused before anything is applied.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().to_string();
    let (code, _, err) = run(Home::new().run(&file).args(["--metrics-listen", &busy]));
    assert_eq!(code, 3);
    assert!(
        err.contains("--metrics-listen") && err.contains("nothing was applied"),
        "{err}"
    );
}

#[test]
fn dry_run_names_faults_for_people_and_prints_the_same_text_every_time() {
    let home = Home::new();
    let victim = Victim::start();
    let file = home.file(&format!(
        "version: 1\ntitle: names\ntargets:\n  victim: {{ process: {{ pid: {} }} }}\n  link: {{ proxy: {{ listen: \"127.0.0.1:{}\", upstream: \"127.0.0.1:9\" }} }}\ntimeline:\n  - {{ at: 0s, for: 2s, fault: {{ process.pause: {{ target: victim }} }} }}\n  - {{ at: 3s, for: 2s, fault: {{ proxy.down: {{ target: link }} }} }}\n  - {{ at: 4s, for: 1s, name: victim paused again, fault: {{ process.pause: {{ target: victim }} }} }}\n",
        victim.pid(),
        free_port()
    ));
    let mut cmd = home.livefire();
    cmd.arg("run").arg(&file).arg("--dry-run");
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    for name in [
        "process.pause victim",
        "proxy.down link",
        "victim paused again",
    ] {
        assert!(out.contains(name), "`{name}` missing from the plan:\n{out}");
    }
    assert!(
        !out.contains("timeline["),
        "positions are for machines:\n{out}"
    );
    assert!(victim.running());
    let (_, again, _) = run(&mut cmd);
    assert_eq!(out, again, "the same file prints the same plan");
}

#[test]
fn a_fault_nobody_noticed_is_a_result_in_findings_sarif() {
    // No hypothesis, no guardrail, no load: nothing could notice the pause.
    let home = Home::new();
    let victim = Victim::start();
    let file = home.file(&pause_experiment(victim.pid(), 1, ""));
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(
        code, 0,
        "unnoticed does not fail the verdict on its own: {err}"
    );
    assert!(victim.running());
    let sarif: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.run_dir().join("findings.sarif"))
            .expect("findings.sarif holds the unnoticed fault"),
    )
    .unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let unnoticed: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| r["ruleId"] == "nobody_noticed")
        .collect();
    assert_eq!(unnoticed.len(), 1, "{results:?}");
    assert!(
        unnoticed[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("nobody noticed `victim paused`"),
        "{unnoticed:?}"
    );
    let rule = unnoticed[0]["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(
        sarif["runs"][0]["tool"]["driver"]["rules"][rule]["id"],
        "nobody_noticed"
    );
}

/// Regression: run ids were unique only within one `--out` folder, so runs of the same
/// title started in the same second in different folders shared an id, and so a control
/// socket in $LIVEFIRE_HOME/active and a ledger index. Four at once (at least two of
/// them start in the same second) must get four ids and all hold.
#[test]
fn runs_started_together_in_different_out_folders_get_different_ids() {
    let home = Home::new();
    let file = home.file(
        "version: 1\ntitle: same title\ntimeline:\n  - { at: 0s, for: 2s, name: nap, fault: { command: { apply: \"true\", rollback: \"true\" } } }\n",
    );
    let outs: Vec<PathBuf> = (0..4)
        .map(|i| home.path().join(format!("out-{i}")))
        .collect();
    let children: Vec<_> = outs
        .iter()
        .map(|out| {
            home.livefire()
                .arg("run")
                .arg(&file)
                .arg("--out")
                .arg(out)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let (code, out, err) = finish(child);
        assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    }
    let mut ids: Vec<String> = outs
        .iter()
        .map(|out| {
            let dirs: Vec<_> = std::fs::read_dir(out).unwrap().collect();
            assert_eq!(dirs.len(), 1, "{}: {dirs:?}", out.display());
            let dir = dirs.into_iter().next().unwrap().unwrap();
            dir.file_name().to_string_lossy().into_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "ids shared across folders: {ids:?}");
    assert_eq!(home.ledger_index(), "", "every run closed its own ledger");
}

/// `--vars-file`: NAME=VALUE lines read as `--var`s given first (a `--var` overrides
/// them, both override the file's `vars:`), from a file or `-` (stdin); a bad line is
/// refused by its number, without its text (it may be a secret), and nothing is applied.
#[test]
fn vars_file_lines_are_vars_that_a_var_flag_overrides_and_a_bad_line_is_located() {
    let home = Home::new();
    let file = home.file(
        "version: 1\ntitle: vars from a file\nvars: { region: file, tier: file, who: file }\nsetup:\n  - { name: worker, command: \"sleep 600 ${region}-${tier}-${who}\" }\ntimeline:\n  - { at: 0s, for: 1s, fault: { command: { apply: \"true\" } } }\n",
    );
    let vars = write(home.path(), "vars.txt", "region=eu\n\ntier=gold=1\n");
    // (vars file text, via stdin?, extra flags, exit code, words the output holds)
    let cases: &[(&str, bool, &[&str], i32, &str)] = &[
        (
            "region=eu\n\ntier=gold=1\n",
            false,
            &[],
            0,
            "sleep 600 eu-gold=1-file",
        ),
        (
            "region=eu\ntier=gold\n",
            true,
            &[],
            0,
            "sleep 600 eu-gold-file",
        ),
        (
            "region=eu\n",
            false,
            &["--var", "region=us"],
            0,
            "sleep 600 us-file-file",
        ),
        (
            "region=eu\nhunter2\n",
            false,
            &[],
            3,
            "vars.txt:2: this line is not NAME=VALUE",
        ),
        (
            "=eu\n",
            true,
            &[],
            3,
            "standard input:1: this line is not NAME=VALUE",
        ),
    ];
    for (text, stdin, flags, want_code, want) in cases {
        std::fs::write(&vars, text).unwrap();
        let mut cmd = home.run(&file);
        cmd.arg("--dry-run").args(*flags);
        if *stdin {
            cmd.args(["--vars-file", "-"])
                .stdin(std::fs::File::open(&vars).unwrap());
        } else {
            cmd.arg("--vars-file").arg(&vars);
        }
        let (code, out, err) = run(&mut cmd);
        assert_eq!(code, *want_code, "{text:?}: {out}{err}");
        assert!(
            out.contains(want) || err.contains(want),
            "{text:?}: {out}{err}"
        );
        assert!(!err.contains("hunter2"), "a bad line is not shown: {err}");
    }
    let (code, _, err) = run(home.run(&file).args(["--vars-file", "/nonexistent/vars"]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("--vars-file /nonexistent/vars: cannot read it"),
        "{err}"
    );
    assert!(!home.path().join("runs").exists(), "nothing was applied");
}
