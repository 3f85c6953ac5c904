//! `livefire compare`: two runs side by side, faults matched by activity name.

use livefire_report::compare::compare;

use crate::support::*;

fn cell<'a>(
    c: &'a livefire_report::compare::Comparison,
    section: &str,
    first: &str,
    col: usize,
) -> &'a str {
    let s = c
        .sections
        .iter()
        .find(|s| s.title.starts_with(section))
        .unwrap_or_else(|| panic!("no section {section}"));
    let row = s
        .rows
        .iter()
        .find(|r| r[0] == first)
        .unwrap_or_else(|| panic!("no row {first} in {section}"));
    &row[col]
}

#[test]
fn the_same_drill_twice_shows_recovery_and_condition_changes() {
    let a = Run::fixture("held-load").report();
    // The second drill: recovery took longer, p99 improved, the health probe deviated.
    let mut b = a.clone();
    b.run_id = "second".into();
    b.faults[0].time_to_recover_ms = a.faults[0].time_to_recover_ms.map(|t| t + 1500);
    b.loads[0].latency_ms.as_mut().unwrap().p99 /= 2.0;
    let health = b
        .conditions
        .iter_mut()
        .find(|c| c.name == "health answers")
        .unwrap();
    health.held = false;
    b.verdict = Some(livefire_core::events::Verdict::Deviated);
    let c = compare(&a, &b);
    assert_eq!(cell(&c, "runs", "verdict", 3), "changed");
    let faults = c
        .sections
        .iter()
        .find(|s| s.title.starts_with("faults"))
        .unwrap();
    let recover = faults
        .rows
        .iter()
        .find(|r| r[1] == "time to recover")
        .unwrap();
    assert!(
        recover[4].starts_with("+1.5") && recover[4].ends_with(" worse"),
        "{recover:?}"
    );
    assert_eq!(cell(&c, "hypothesis", "health answers", 3), "regressed");
    let loads = c.sections.iter().find(|s| s.title == "loads").unwrap();
    let p99 = loads.rows.iter().find(|r| r[1] == "p99").unwrap();
    assert!(
        p99[4].starts_with('-') && p99[4].ends_with(" better"),
        "{p99:?}"
    );
    let text = c.to_text();
    assert!(text.contains("worker paused"), "{text}");
    let html = c.to_html();
    assert!(html.contains("<td class=\"bad\">regressed</td>"), "{html}");
    assert!(!html.contains("<script"));
}

#[test]
fn compare_reads_two_run_folders_and_names_what_only_one_has() {
    let (a, b) = (
        Run::fixture("held-pause"),
        Run::fixture("aborted-guardrail"),
    );
    let c = livefire_report::compare::compare_dirs(a.path(), b.path()).unwrap();
    assert_eq!(cell(&c, "runs", "verdict", 1), "held (exit 0)");
    assert_eq!(cell(&c, "runs", "verdict", 2), "aborted (exit 2)");
    assert_eq!(cell(&c, "runs", "title", 3), "different drills?");
    assert_eq!(cell(&c, "faults", "worker paused", 3), "not in this run");
    assert_eq!(cell(&c, "faults", "worker frozen", 2), "not in this run");
    assert!(cell(&c, "hypothesis", "errors below half", 1).starts_with("not judged"));

    let mut out = Vec::new();
    let mut err = Vec::new();
    let html = b.file("compare.html");
    let args = livefire_report::cli::CompareArgs {
        run_a: a.path().to_path_buf(),
        run_b: b.path().to_path_buf(),
        html: Some(html.clone()),
    };
    assert_eq!(livefire_report::cli::compare(&args, &mut out, &mut err), 0);
    assert!(std::fs::read_to_string(html).unwrap().contains("</html>"));
    let missing = livefire_report::cli::CompareArgs {
        run_a: a.path().join("nope"),
        ..args
    };
    assert_eq!(
        livefire_report::cli::compare(&missing, &mut out, &mut err),
        3
    );
    assert!(String::from_utf8_lossy(&err).contains("no journal.jsonl here"));
}

#[test]
fn findings_are_new_fixed_or_still_there() {
    let a = Run::fixture("fuzz-finding").report();
    let mut b = a.clone();
    // The defect under the fault was fixed; a new one appeared.
    b.findings.retain(|f| f.operation != "GET /account");
    let mut new = b.findings[0].clone();
    new.operation = "POST /orders".into();
    b.findings.push(new);
    let c = compare(&a, &b);
    let s = c.sections.iter().find(|s| s.title == "findings").unwrap();
    let change = |op: &str| {
        s.rows
            .iter()
            .filter(|r| r[0].contains(op))
            .map(|r| r[3].as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(change("GET /account"), ["fixed"]);
    assert_eq!(change("POST /orders"), ["new"]);
    assert_eq!(change("GET /admin/users"), ["still there", "still there"]);
}
