//! Metric windows are decoded once and merged per series while the journal is read:
//! what the report says of them does not depend on the order they come in.

use crate::support::*;

const WINDOW: &str = "\"type\":\"window\"";

/// The journal with its window lines in reverse order, each line keeping its place
/// among the other events, so every series' seconds come backwards.
fn windows_reversed(journal: &str) -> String {
    let mut windows: Vec<&str> = journal.lines().filter(|l| l.contains(WINDOW)).collect();
    let lines: Vec<&str> = journal
        .lines()
        .map(|l| {
            if l.contains(WINDOW) {
                windows.pop().unwrap()
            } else {
                l
            }
        })
        .collect();
    lines.join("\n") + "\n"
}

#[test]
fn windows_out_of_order_give_the_same_summary_and_page() {
    for name in [
        "held-load",
        "planned-load-a",
        "planned-load-short-pause",
        "aborted-guardrail",
    ] {
        let text = Run::fixture(name).read("journal.jsonl");
        let reversed = windows_reversed(&text);
        assert_ne!(reversed, text, "{name}: the fixture has windows to reorder");
        let (a, b) = (
            livefire_report::parse_journal(&text),
            livefire_report::parse_journal(&reversed),
        );
        let (sa, sb) = (
            livefire_report::summarize(&a),
            livefire_report::summarize(&b),
        );
        assert!(sa.loads.iter().any(|l| l.completed > 0), "{name}");
        assert_eq!(
            livefire_report::summary_json(&sa),
            livefire_report::summary_json(&sb),
            "{name}: the summary changed with the windows' order"
        );
        assert_eq!(
            livefire_report::html::render(&a, &sa),
            livefire_report::html::render(&b, &sb),
            "{name}: the page changed with the windows' order"
        );
        let lines = text.lines().filter(|l| l.contains(WINDOW)).count() as u64;
        assert_eq!(
            (a.window_count(), b.window_count()),
            (lines, lines),
            "{name}"
        );
    }
}
