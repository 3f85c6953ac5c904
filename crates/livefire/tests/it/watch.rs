//! `watch:` commands in a real run: a team's alert check that fires only while a fault
//! is active shows in the detectors table with its time; one that never fires shows as
//! not noticing; one that cannot answer in time is a warning, not a quiet alert.

use crate::support::*;

/// A `command` fault puts a maintenance flag in the experiment's folder for 3 s; the
/// team's alert fires while the flag is there. A second fault later changes nothing the
/// alert checks.
const EXPERIMENT: &str = r#"version: 1
title: the team's alert notices maintenance mode
timeline:
  - at: 1s
    for: 3s
    name: maintenance on
    fault: { command: { apply: "touch maintenance.flag", rollback: "rm -f maintenance.flag" } }
  - at: 5s
    for: 2s
    name: quiet step
    fault: { command: { apply: "true" } }
watch:
  - name: flag-alert
    command: "test ! -e maintenance.flag || { echo maintenance flag is up; exit 2; }"
    every: 200ms
    fires_when: { exit_nonzero: true }
  - name: never-alert
    command: "echo all good"
    every: 200ms
    fires_when: { stdout_contains: CRITICAL }
  - name: slow-alert
    command: "sleep 5"
    every: 1s
    timeout: 200ms
    fires_when: { exit_nonzero: true }
"#;

/// The detectors of the fault named `fault`, as (name, kind, noticed_after_ms, how).
fn detectors(
    summary: &serde_json::Value,
    fault: &str,
) -> Vec<(String, String, Option<u64>, String)> {
    let f = summary["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fault"] == fault)
        .unwrap_or_else(|| panic!("no detectors for `{fault}`: {summary}"));
    f["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_owned(),
                d["kind"].as_str().unwrap().to_owned(),
                d["noticed_after_ms"].as_u64(),
                d["how"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_watch_notices_the_fault_it_checks_and_no_other() {
    let home = Home::new();
    let file = home.file(EXPERIMENT);

    // The plan shows each watch, what it runs and when it fires.
    let (code, plan, err) = run(home.livefire().arg("run").arg(&file).arg("--dry-run"));
    assert_eq!(code, 0, "{plan}{err}");
    assert!(
        plan.contains("watch   flag-alert: `test ! -e maintenance.flag")
            && plan.contains("every 200ms, fires when it exits non-zero"),
        "{plan}"
    );
    assert!(
        plan.contains(r#"watch   never-alert: `echo all good` every 200ms, fires when its output contains "CRITICAL""#),
        "{plan}"
    );

    let (code, out, err) = run(&mut home.run(&file));
    assert_eq!(code, 0, "{out}{err}");
    let s = home.summary();

    let on = detectors(&s, "maintenance on");
    let flag = on
        .iter()
        .find(|d| d.0 == "flag-alert")
        .expect("flag-alert is a detector");
    assert_eq!(flag.1, "watch");
    assert!(
        flag.2.is_some(),
        "the alert fired while the flag was up: {on:?}"
    );
    assert!(
        flag.3.starts_with("exited 2: maintenance flag is up"),
        "what the alert said: {on:?}"
    );
    let never = on.iter().find(|d| d.0 == "never-alert").unwrap();
    assert_eq!(
        never.2, None,
        "an alert that never fires did not notice: {on:?}"
    );
    let slow = on.iter().find(|d| d.0 == "slow-alert").unwrap();
    assert_eq!(
        slow.2, None,
        "a check that overruns its timeout does not fire: {on:?}"
    );

    // The second fault leaves the flag alone: no watch noticed it, and that is a finding.
    let quiet = detectors(&s, "quiet step");
    assert!(quiet.iter().all(|d| d.2.is_none()), "{quiet:?}");
    let unnoticed: Vec<&serde_json::Value> = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "nobody_noticed")
        .collect();
    assert_eq!(unnoticed.len(), 1, "{unnoticed:?}");
    assert!(
        unnoticed[0]["title"]
            .as_str()
            .unwrap()
            .contains("nobody noticed `quiet step`"),
        "{unnoticed:?}"
    );

    // The journal: the alert started firing once, inside the fault's window, and the
    // flag is gone after the rollback.
    let journal = home.journal();
    let events: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fired: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "noticed" && e["detector"] == "flag-alert")
        .map(|e| e["t"].as_u64().unwrap())
        .collect();
    assert_eq!(fired.len(), 1, "it fired once and stayed firing: {fired:?}");
    let fault = s["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["activity"] == "maintenance on")
        .unwrap();
    let (applied, back) = (
        fault["applied_ms"].as_u64().unwrap(),
        fault["rolled_back_ms"].as_u64().unwrap(),
    );
    assert!(
        applied <= fired[0] && fired[0] <= back,
        "noticed at {} ms, while the flag was up ({applied}..{back} ms)",
        fired[0]
    );
    assert!(!home.path().join("maintenance.flag").exists());
    for name in ["flag-alert", "never-alert", "slow-alert"] {
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "watching" && e["detector"] == name && e["kind"] == "watch"),
            "`{name}` is journaled as a detector"
        );
    }
    assert!(
        events.iter().any(|e| e["type"] == "warning"
            && e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("watch `slow-alert` did not finish within 200ms")),
        "a check that cannot answer is said plainly: {journal}"
    );

    // What a person reads: the end of the run and the report's table.
    assert!(
        out.lines()
            .any(|l| l.starts_with("who noticed `maintenance on`: flag-alert after ")),
        "{out}"
    );
    let html = std::fs::read_to_string(home.run_dir().join("report.html")).unwrap();
    assert!(html.contains(r#"<table id="detectors">"#));
    assert!(html.contains("flag-alert") && html.contains("never-alert"));
}

/// Regression: a check still running when the run stopped watching was left to run
/// until its `timeout`, with whatever it had started. It is killed when watching stops.
#[test]
fn a_check_still_running_when_the_run_ends_is_killed_with_its_children() {
    let home = Home::new();
    // The check starts a child that outlives nothing on its own, and says its pid.
    let file = home.file(
        r#"version: 1
title: a slow check at the end of a run
timeline:
  - at: 0s
    for: 1s
    name: short step
    fault: { command: { apply: "true" } }
watch:
  - name: slow-check
    command: "sleep 300 & echo $! > check.pid; wait"
    every: 10m
    timeout: 10m
    fires_when: { exit_nonzero: true }
"#,
    );
    let mut child = home.run(&file).spawn().unwrap();
    // The run itself must end soon: it does not wait for the check.
    let ended = (0..600).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        child.try_wait().unwrap()
    });
    if ended.is_none() {
        let _ = child.kill();
    }
    let pid: u32 = std::fs::read_to_string(home.path().join("check.pid"))
        .expect("the check started")
        .trim()
        .parse()
        .unwrap();
    // What `ps` would show: the check's child is gone (or a zombie nobody reaped yet).
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rfind(')').and_then(|i| s[i + 1..].trim().chars().next()))
            .is_some_and(|state| state != 'Z')
    };
    let gone = (0..100).any(|_| {
        if alive() {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        } else {
            true
        }
    });
    if !gone {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    assert!(
        ended.is_some(),
        "the run ended without waiting for the check"
    );
    assert!(
        gone,
        "the check's `sleep 300` (pid {pid}) was killed when the run ended"
    );
}
