//! `noticed_within` on a timeline entry: a duration with a unit, on a fault only,
//! refused where it is written; a good one reads as written.

use livefire_spec::load_str;

use crate::errors::{HEAD, check};

/// What is wrong, the timeline entry (from line 4), the errors as (line:col, fragment).
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

#[test]
fn mistakes_in_noticed_within_are_located() {
    let cases: &[Case] = &[
        (
            "a duration without a unit",
            "  - at: 0s\n    for: 5s\n    fault: { command: { apply: \"true\" } }\n    noticed_within: 30\n",
            &[("7:21", "a duration needs a unit")],
        ),
        (
            "a duration of zero",
            "  - at: 0s\n    for: 5s\n    fault: { command: { apply: \"true\" } }\n    noticed_within: 0s\n",
            &[("7:21", "`noticed_within` must be longer than 0s")],
        ),
        (
            "on a load, which nobody is meant to notice",
            "  - at: 0s\n    for: 5s\n    load: { rate: 1/s, requests: [ { url: \"http://127.0.0.1:1/\" } ] }\n    noticed_within: 30s\n",
            &[("7:21", "`noticed_within` applies only to a fault entry")],
        ),
        (
            "misspelt",
            "  - at: 0s\n    for: 5s\n    fault: { command: { apply: \"true\" } }\n    noticed_witin: 30s\n",
            &[("7:5", "unknown field `noticed_witin`")],
        ),
    ];
    for (what, entry, expected) in cases {
        eprintln!("case: {what}");
        check(&format!("{HEAD}timeline:\n{entry}"), expected);
    }
}

#[test]
fn noticed_within_reads_as_written() {
    let text = format!(
        "{HEAD}timeline:\n  - at: 0s\n    for: 5s\n    name: orders page damaged\n    fault: {{ command: {{ apply: \"true\" }} }}\n    noticed_within: 1m\n"
    );
    let loaded = load_str("exp.yaml", &text, &[]).expect("a fault with noticed_within loads");
    let a = &loaded.experiment.timeline[0];
    assert_eq!(a.noticed_within.map(|d| d.0.as_secs()), Some(60));
}
