//! A game day's journal, folded record by record: the responders' view never names a
//! hidden curveball before it ends, a person curveball is told only to its responder,
//! and marks are refused for the reasons the scenario gives.

use livefire_core::events::Record;
use livefire_gameday::live::{Live, Refusal};

/// A journal's first records: a run whose scenario names `responders`, is `hidden` or
/// not, and drew a pause of `secretsleeper` and a `person.away` of alice.
fn planned(hidden: bool, responders: &str) -> Vec<String> {
    vec![
        r#"{"v":1,"seq":0,"t":0,"type":"run_started","run_id":"r1","title":"t","wall_start":"2026-01-01T00:00:00Z","seed":1,"livefire":"0.1.0","planned_ms":9000}"#.into(),
        format!(
            r#"{{"v":1,"seq":1,"t":1,"type":"plan","experiment":{{"scenario":{{"hidden":{hidden},"responders":{responders}}}}},"conditions":[{{"name":"up","role":"hypothesis","kind":"http probe","subject":"http://x/"}}],"activities":[{{"id":"scenario.pool[0]","name":"curveball 1: process.pause secretsleeper","display":"curveball 1: process.pause secretsleeper","kind":"process.pause","target":"secretsleeper","at_ms":1000,"for_ms":2000}},{{"id":"scenario.pool[1]","name":"curveball 2: person.away alice","display":"curveball 2: person.away alice","kind":"person.away","target":"alice","at_ms":1000,"for_ms":2000}},{{"id":"scenario.pool[2]","name":"curveball 3: person.no_access bob","display":"curveball 3: person.no_access bob","kind":"person.no_access","target":"bob","at_ms":5000,"for_ms":1000}}]}}"#
        ),
        r#"{"v":1,"seq":2,"t":5,"type":"phase_started","phase":"during"}"#.into(),
    ]
}

fn started(seq: u64, t: u64, n: usize, what: &str) -> String {
    format!(
        r#"{{"v":1,"seq":{seq},"t":{t},"type":"activity_started","activity":"curveball {n}: {what}","kind":"k","id":"scenario.pool[{}]"}}"#,
        n - 1
    )
}

fn ended(seq: u64, t: u64, n: usize, what: &str) -> String {
    started(seq, t, n, what).replace("activity_started", "activity_ended")
}

fn fold(lines: &[String]) -> Live {
    let mut live = Live::default();
    for l in lines {
        let r: Record = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        live.apply(&r);
    }
    live
}

fn shown(live: &Live, who: Option<&str>) -> String {
    serde_json::to_string(&live.view(who)).unwrap()
}

#[test]
fn a_hidden_curveball_is_named_only_once_it_ended() {
    let mut journal = planned(true, r#"["alice","bob"]"#);
    // (records so far, what the view may say, what it must not)
    let before = fold(&journal);
    assert!(
        before.view(None).curveballs.is_empty(),
        "not started: not shown"
    );
    journal.push(started(3, 1000, 1, "process.pause secretsleeper"));
    journal.push(started(4, 1001, 2, "person.away alice"));
    let during = fold(&journal);
    let names: Vec<String> = during
        .view(None)
        .curveballs
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["curveball 1", "curveball 2"]);
    for who in [None, Some("bob"), Some("alice")] {
        let text = shown(&during, who);
        for secret in ["secretsleeper", "process.pause", "person.away"] {
            assert!(!text.contains(secret), "{who:?} sees `{secret}`: {text}");
        }
    }
    journal.push(ended(5, 3000, 1, "process.pause secretsleeper"));
    let after = fold(&journal);
    let names: Vec<String> = after
        .view(None)
        .curveballs
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        names,
        ["curveball 1: process.pause secretsleeper", "curveball 2"]
    );
}

#[test]
fn without_hidden_active_curveballs_are_named() {
    let mut journal = planned(false, "[]");
    journal.push(started(3, 1000, 1, "process.pause secretsleeper"));
    let live = fold(&journal);
    assert_eq!(
        live.view(None).curveballs[0].name,
        "curveball 1: process.pause secretsleeper"
    );
}

#[test]
fn only_the_away_responder_is_told_to_step_out() {
    let mut journal = planned(true, r#"["alice","bob"]"#);
    journal.push(started(3, 1000, 2, "person.away alice"));
    let live = fold(&journal);
    let away = live.view(Some("alice")).away.expect("alice is told");
    assert_eq!(away.curveball, "curveball 2");
    assert_eq!(away.until_ms, 3000);
    assert_eq!(live.view(Some("bob")).away, None);
    assert_eq!(live.view(None).away, None);
}

#[test]
fn marks_are_refused_for_the_reasons_the_game_day_gives() {
    let base = planned(true, r#"["alice","bob"]"#);
    let with = |extra: &[String]| {
        let mut j = base.clone();
        j.extend_from_slice(extra);
        fold(&j)
    };
    let away = [started(3, 1000, 2, "person.away alice")];
    let back = [away[0].clone(), ended(4, 3000, 2, "person.away alice")];
    let locked = [started(3, 5000, 3, "person.no_access bob")];
    let over = [r#"{"v":1,"seq":3,"t":9000,"type":"run_ended","verdict":"held","exit_code":0,"ledger_left":0}"#.to_owned()];
    // (journal after the plan, responder, what the mark gets)
    let cases: Vec<(&[String], &str, Result<(), &str>)> = vec![
        (&[], "alice", Ok(())),
        (
            &[],
            "carol",
            Err("unknown responder `carol`: the scenario's responders are alice, bob"),
        ),
        (&[], "", Err("say who marks")),
        (
            &away,
            "alice",
            Err("alice is away (curveball 2: a key person is gone)"),
        ),
        (&away, "bob", Ok(())),
        (&back, "alice", Ok(())),
        (
            &locked,
            "bob",
            Err("bob has no access right now (curveball 3)"),
        ),
        (&over, "alice", Err("the game day is over")),
    ];
    for (extra, who, want) in cases {
        let got = with(extra)
            .check_mark(who)
            .map_err(|e: Refusal| e.to_string());
        match (want, &got) {
            (Ok(()), Ok(())) => {}
            (Err(fragment), Err(msg)) if msg.contains(fragment) => {}
            _ => panic!("{who} after {extra:?}: wanted {want:?}, got {got:?}"),
        }
    }
    // Without `responders:`, anyone may mark.
    assert_eq!(fold(&planned(false, "[]")).check_mark("carol"), Ok(()));
}
