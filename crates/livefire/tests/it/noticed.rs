//! `noticed_within` in a real run: a fault a watch notices in time leaves the verdict
//! alone; one nobody notices, or noticed too late, fails the hypothesis (exit 1) with a
//! reason naming the fault as written.

use crate::support::*;

/// The team's alert: fires while `maintenance.flag` exists in the experiment's folder.
const WATCH: &str = r#"watch:
  - name: flag-alert
    command: "test ! -e maintenance.flag || { echo maintenance flag is up; exit 2; }"
    every: 200ms
    fires_when: { exit_nonzero: true }
"#;

/// Raises the flag for 3 s; detectors get 10 s, more than the fault lasts, so only a
/// missed alert can fail it.
const NOTICED: &str = r#"version: 1
title: the team's alert notices maintenance mode in time
timeline:
  - at: 1s
    for: 3s
    name: maintenance on
    fault: { command: { apply: "touch maintenance.flag", rollback: "rm -f maintenance.flag" } }
    noticed_within: 10s
"#;

/// `slow to show` changes nothing the alert checks; the flag goes up 2 s into it, so
/// the alert notices it then, after its 500ms. `quiet step` nobody notices at all.
const MISSED: &str = r#"version: 1
title: the team's alert misses two faults
timeline:
  - at: 1s
    for: 4s
    name: slow to show
    fault: { command: { apply: "true" } }
    noticed_within: 500ms
  - at: 3s
    for: 2s
    name: flag raised
    fault: { command: { apply: "touch maintenance.flag", rollback: "rm -f maintenance.flag" } }
  - at: 6s
    for: 1s
    name: quiet step
    fault: { command: { apply: "true" } }
    noticed_within: 1s
"#;

#[test]
fn a_fault_noticed_in_time_passes_and_one_missed_fails_the_hypothesis() {
    // Noticed in time: the run holds, and the plan says what is required.
    let home = Home::new();
    let file = home.file(&format!("{NOTICED}{WATCH}"));
    let (code, plan, err) = run(home.livefire().arg("run").arg(&file).arg("--dry-run"));
    assert_eq!(code, 0, "{plan}{err}");
    assert!(
        plan.lines()
            .any(|l| l.contains("maintenance on") && l.contains("(must be noticed within 10s)")),
        "{plan}"
    );
    let (code, out, err) = run(&mut home.run(&file));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verdict: held (exit 0)"), "{out}");

    // Missed: the verdict fails like a failed hypothesis, with one reason per fault.
    let home = Home::new();
    let file = home.file(&format!("{MISSED}{WATCH}"));
    let (code, out, err) = run(&mut home.run(&file));
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("verdict: deviated (exit 1)"), "{out}");
    let s = home.summary();
    let reasons: Vec<&str> = s["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("quiet step: nobody noticed within 1s")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("slow to show: noticed only after ")
                && r.contains(" by watch `flag-alert`, not within 500ms")),
        "{reasons:?}"
    );
    for r in &reasons {
        assert!(out.contains(&format!("  - {r}")), "printed: {out}");
    }
    assert!(!home.path().join("maintenance.flag").exists());
}
