//! The ledger as `recover` reads it, and the journal event of a forget.

use livefire_core::events::Event;
use livefire_engine::ledger::{self, Line, Pending};

const ADD_0: &str = r#"{"op":"add","v":1,"id":0,"run_id":"r","activity":"victim paused","activity_id":"timeline[0]","display":"victim paused","kind":"process.pause","since":"2026-12-03T07:00:00.000Z","record":{"kind":"signal","process":{"pid":4242,"start_time":7},"signal":18},"resources":[]}"#;
/// As livefire wrote it before the ledger named the activity's id, kind and time.
const ADD_1_OLD: &str = r#"{"op":"add","v":1,"id":1,"run_id":"r","activity":"timeline[1]","record":{"kind":"command","run":"true","user":null,"cwd":null,"timeout_ms":1000},"resources":[]}"#;

fn pending(lines: &[&str]) -> Vec<Pending> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    ledger::pending_in(&file)
}

#[test]
fn pending_entries_and_why_their_undo_failed() {
    let failed_0 =
        r#"{"op":"failed","id":0,"at":"2026-12-03T07:00:05.000Z","by":"engine","reason":"first"}"#;
    let failed_0_again =
        r#"{"op":"failed","id":0,"at":"2026-12-03T08:00:00.000Z","by":"recover","reason":"still"}"#;
    let done_0 = r#"{"op":"done","id":0}"#;
    let forgot_1 = r#"{"op":"forgotten","id":1,"at":"x","user":"alice","reason":"fixed"}"#;
    // (lines, expected: (key, label, last failure by whom and why) per pending entry)
    type Expected<'a> = Vec<(&'a str, &'a str, Option<(&'a str, &'a str)>)>;
    let cases: Vec<(Vec<&str>, Expected)> = vec![
        (
            vec![ADD_0, ADD_1_OLD],
            vec![
                ("r:0", "victim paused (timeline[0])", None),
                ("r:1", "timeline[1]", None),
            ],
        ),
        (
            vec![ADD_0, failed_0, failed_0_again],
            vec![(
                "r:0",
                "victim paused (timeline[0])",
                Some(("recover", "still")),
            )],
        ),
        (vec![ADD_0, failed_0, done_0], vec![]),
        (
            vec![ADD_0, ADD_1_OLD, forgot_1],
            vec![("r:0", "victim paused (timeline[0])", None)],
        ),
        // A line cut by a crash, and one from a newer livefire, are skipped.
        (
            vec![
                ADD_0,
                r#"{"op":"add","v":1,"id":1,"ru"#,
                r#"{"op":"sealed","id":0}"#,
            ],
            vec![("r:0", "victim paused (timeline[0])", None)],
        ),
    ];
    for (lines, expected) in cases {
        let got: Vec<_> = pending(&lines)
            .iter()
            .map(|p| {
                (
                    p.key(),
                    p.label(),
                    p.failure.as_ref().map(|f| (f.by.clone(), f.reason.clone())),
                )
            })
            .collect();
        let expected: Vec<_> = expected
            .iter()
            .map(|(k, l, f)| {
                (
                    k.to_string(),
                    l.to_string(),
                    f.map(|(b, r)| (b.to_owned(), r.to_owned())),
                )
            })
            .collect();
        assert_eq!(got, expected, "{lines:#?}");
    }
}

#[test]
fn every_line_reads_back_as_written() {
    for text in [ADD_0, ADD_1_OLD] {
        let line: Line = serde_json::from_str(text).unwrap();
        let again: Line = serde_json::from_str(&serde_json::to_string(&line).unwrap()).unwrap();
        assert_eq!(line, again);
    }
}

fn forgotten() -> Event {
    Event::UndoForgotten {
        entry: "r:0".into(),
        activity: "victim paused".into(),
        kind: "process.pause".into(),
        undo: "send signal 18 to pid 4242".into(),
        user: "alice".into(),
        reason: "resumed by hand".into(),
        at: "2026-12-03T08:00:00.000Z".into(),
    }
}

#[test]
fn a_forget_appends_the_next_event_to_the_journal_of_an_ended_run() {
    let ended = concat!(
        r#"{"v":1,"seq":0,"t":0,"type":"run_started","run_id":"r","title":"t","wall_start":"2026-12-03T07:00:00.000Z","seed":1,"livefire":"0","planned_ms":1000}"#,
        "\n",
        r#"{"v":1,"seq":1,"t":1500,"type":"warning","message":"m"}"#,
        "\n"
    );
    // (journal text, expected seq and t of the appended event)
    let cases = [
        (ended.to_owned(), 2, 1500),
        // A run killed mid-line: the event still starts on a line of its own.
        (format!("{ended}{{\"v\":1,\"seq\":2,\"t\":16"), 2, 1500),
        // A long run: the last event is far from the start of the file.
        (
            ended.to_owned()
                + &(2..5000)
                    .map(|i| format!("{{\"v\":1,\"seq\":{i},\"t\":{},\"type\":\"warning\",\"message\":\"m\"}}\n", 1500 + i))
                    .collect::<String>(),
            5000,
            6499,
        ),
    ];
    for (text, seq, t) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, &text).unwrap();
        livefire_engine::recover::append_event(&path, forgotten()).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(after.starts_with(&text), "nothing before is changed");
        let last: serde_json::Value = serde_json::from_str(after.lines().last().unwrap()).unwrap();
        assert_eq!(
            (last["seq"].as_u64(), last["t"].as_u64()),
            (Some(seq), Some(t))
        );
        assert_eq!(last["type"], "undo_forgotten");
        assert_eq!(last["user"], "alice");
        if text.ends_with('\n') {
            let summary = livefire_report::summarize(&livefire_report::parse_journal(&after));
            assert_eq!(summary.forgotten.len(), 1, "{after}");
            assert_eq!(summary.forgotten[0].reason, "resumed by hand");
        }
    }
}
