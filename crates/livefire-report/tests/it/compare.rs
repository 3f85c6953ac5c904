//! `livefire compare`: two runs side by side on the journals of real runs: faults by
//! activity name, conditions by role, name and kind, and a difference called better or
//! worse only beyond the runs' own noise.

use livefire_report::compare::{Comparison, Side, compare};

use crate::support::*;

fn section<'a>(c: &'a Comparison, title: &str) -> &'a livefire_report::compare::Section {
    c.sections
        .iter()
        .find(|s| s.title.starts_with(title))
        .unwrap_or_else(|| panic!("no section {title}"))
}

/// The row of `section` whose cells `at` equals `first`.
fn row<'a>(c: &'a Comparison, title: &str, at: usize, first: &str) -> &'a [String] {
    section(c, title)
        .rows
        .iter()
        .find(|r| r[at] == first)
        .unwrap_or_else(|| panic!("no row {first} in {title}"))
}

fn side(fixture: &str) -> Side {
    Side::from_journal(&Run::fixture(fixture).journal())
}

/// (delta, noise) from `-1247 ms better (noise ±697.5 ms)`, in the cell's unit.
fn delta_and_noise(cell: &str) -> (f64, f64) {
    let number = |s: &str| -> f64 {
        s.trim_start_matches(['+', '-', '±'])
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap_or_else(|_| panic!("a number in {cell}"))
    };
    let (d, rest) = cell.split_once(' ').unwrap();
    let noise = rest.split_once('±').unwrap().1.split(' ').next().unwrap();
    (number(d), number(noise.trim_end_matches(')')))
}

#[test]
fn the_same_drill_twice_matches_every_condition_and_calls_no_noise_a_change() {
    let c = compare(&side("planned-load-a"), &side("planned-load-b"));
    assert_eq!(row(&c, "runs", 0, "verdict")[3], "same");
    let conditions = section(&c, "hypothesis");
    assert_eq!(conditions.rows.len(), 4, "{:?}", conditions.rows);
    assert!(
        conditions.rows.iter().all(|r| r[3] == "same"),
        "{:?}",
        conditions.rows
    );
    // The two runs' p50 differ by under 2 ms while each run's per-second p50 spreads over
    // hundreds: that is noise, not "worse".
    for metric in ["p50", "p90", "p99"] {
        let cell = &row(&c, "loads", 1, metric)[4];
        assert!(cell.contains("within noise"), "{metric}: {cell}");
        let (d, noise) = delta_and_noise(cell);
        assert!(d <= noise, "{metric}: {cell}");
    }
    let recover = &row(&c, "faults", 1, "time to recover")[4];
    assert!(recover.contains("within noise"), "{recover}");
}

#[test]
fn a_real_change_beyond_the_noise_is_called_better() {
    // The same drill with the pause cut from 2 s to 300 ms: the tail latency fell.
    let c = compare(&side("planned-load-a"), &side("planned-load-short-pause"));
    for metric in ["p90", "p99"] {
        let cell = &row(&c, "loads", 1, metric)[4];
        assert!(cell.contains(" better (noise ±"), "{metric}: {cell}");
        let (d, noise) = delta_and_noise(cell);
        assert!(d > noise, "{metric}: {cell}");
    }
    // The median barely moved.
    assert!(row(&c, "loads", 1, "p50")[4].contains("within noise"));
    let html = c.to_html();
    assert!(
        html.contains(r#"<td class="good">-"#),
        "better is shown as good"
    );
}

// Regression: `guardrails[0]` of one drill (a TCP probe) was compared with
// `guardrails[0]` of another (an error-rate bound).
#[test]
fn conditions_of_another_kind_are_only_in_a_or_only_in_b() {
    let c = compare(&side("planned-pause"), &side("planned-load-a"));
    assert_eq!(
        row(&c, "hypothesis", 0, "guardrails[0] · tcp probe")[3],
        "only in A"
    );
    assert_eq!(
        row(
            &c,
            "hypothesis",
            0,
            "guardrails[0] · metric browse.error_rate"
        )[3],
        "only in B"
    );
    // What both sample is matched.
    assert_eq!(
        row(&c, "hypothesis", 0, "health answers · http probe")[3],
        "same"
    );
    // An older journal says less (no plan, no metric names): `probe` matches an
    // `http probe`, never a metric.
    let c = compare(&side("held-pause"), &side("planned-load-a"));
    assert_eq!(
        row(&c, "hypothesis", 0, "guardrails[0] · probe")[3],
        "only in A"
    );
    assert_eq!(
        row(&c, "hypothesis", 0, "health answers · probe")[3],
        "same"
    );
    let c = compare(&side("held-load"), &side("planned-load-a"));
    assert!(
        section(&c, "hypothesis")
            .rows
            .iter()
            .all(|r| r[3] == "same"),
        "{:?}",
        section(&c, "hypothesis").rows
    );
}

#[test]
fn different_drills_say_so_and_the_cli_writes_html() {
    let a = Run::fixture("held-pause");
    let b = Run::fixture("aborted-guardrail");
    let c = compare(&side("held-pause"), &side("aborted-guardrail"));
    assert_eq!(row(&c, "runs", 0, "title")[3], "different drills?");
    assert_eq!(row(&c, "faults", 0, "worker paused")[3], "not in this run");
    assert_eq!(row(&c, "faults", 0, "worker frozen")[2], "not in this run");
    assert_eq!(
        row(&c, "hypothesis", 0, "errors below half · metric")[3],
        "only in B"
    );

    let mut out = Vec::new();
    let mut err = Vec::new();
    let html = b.file("compare.html");
    let args = livefire_report::cli::CompareArgs {
        run_a: a.path().to_path_buf(),
        run_b: b.path().to_path_buf(),
        html: Some(html.clone()),
        home: a.path().join("home"),
    };
    assert_eq!(
        livefire_report::cli::compare(&args, &mut out, &mut err),
        livefire_core::exit::Exit::Ok
    );
    assert!(std::fs::read_to_string(html).unwrap().contains("</html>"));
    let missing = livefire_report::cli::CompareArgs {
        run_a: a.path().join("nope"),
        ..args
    };
    assert_eq!(
        livefire_report::cli::compare(&missing, &mut out, &mut err),
        livefire_core::exit::Exit::Invalid
    );
    assert!(String::from_utf8_lossy(&err).contains("no run folder or run id"));
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
    let c = compare(&Side::from_summary(a), &Side::from_summary(b));
    let s = section(&c, "findings");
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
