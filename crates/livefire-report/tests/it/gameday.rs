//! Game days: time to detect (marks, and the hypothesis's deviation), to mitigate and to
//! recover per curveball, from journals written event by event as a game day writes
//! them; and the after-action review, which a team's edits are never lost from.

use livefire_core::events::{Event, MarkKind, Phase, PlannedActivity, Record, Role, Streak};
use livefire_report::gameday::{CurveballSummary, GameDaySummary};

/// A game day's journal, written event by event.
struct Day {
    lines: Vec<String>,
}

impl Day {
    /// `run_started` and a `plan` with a hidden scenario and `curveballs` as (name, at, for).
    fn new(curveballs: &[(&str, u64, u64)]) -> Day {
        Day::of(curveballs, 3, true)
    }
    /// The same, with the scenario's seed and `hidden`.
    fn of(curveballs: &[(&str, u64, u64)], seed: u64, hidden: bool) -> Day {
        let mut d = Day { lines: Vec::new() };
        d.at(
            0,
            Event::RunStarted {
                run_id: "r".into(),
                title: "game day".into(),
                wall_start: "2026-01-01T00:00:00Z".into(),
                seed,
                livefire: "0".into(),
                planned_ms: 10_000,
                open_files: None,
            },
        );
        d.at(
            0,
            Event::Plan {
                experiment: serde_json::json!({
                    "scenario": { "draw": curveballs.len(), "hidden": hidden, "pool": [] }
                }),
                conditions: vec![],
                activities: curveballs
                    .iter()
                    .enumerate()
                    .map(|(i, (name, at, len))| PlannedActivity {
                        id: format!("scenario.pool[{i}]"),
                        name: (*name).into(),
                        display: (*name).into(),
                        kind: "process.pause".into(),
                        target: "worker".into(),
                        at_ms: *at,
                        for_ms: *len,
                    })
                    .collect(),
                environment: None,
                production: false,
            },
        );
        d
    }
    fn at(&mut self, t: u64, event: Event) -> &mut Day {
        let seq = self.lines.len() as u64;
        self.lines.push(
            serde_json::to_string(&Record {
                v: 1,
                seq,
                t,
                event,
            })
            .unwrap(),
        );
        self
    }
    fn applied(&mut self, t: u64, name: &str, pool: usize) -> &mut Day {
        self.at(
            t,
            Event::ActivityStarted {
                activity: name.into(),
                kind: "process.pause".into(),
                id: format!("scenario.pool[{pool}]"),
            },
        )
        .at(
            t,
            Event::FaultApplied {
                activity: name.into(),
                kind: "process.pause".into(),
                target: "worker".into(),
                detail: String::new(),
                applying_ms: None,
            },
        )
    }
    fn ended(&mut self, t: u64, name: &str, by: &str) -> &mut Day {
        self.at(
            t,
            Event::FaultRolledBack {
                activity: name.into(),
                kind: "process.pause".into(),
                ok: true,
                detail: String::new(),
                by: by.into(),
            },
        )
    }
    /// A probe of `health` answered at `t` after 100 ms.
    fn probe(&mut self, t: u64, ok: bool) -> &mut Day {
        self.at(
            t,
            Event::Probe {
                condition: "health".into(),
                role: Role::Hypothesis,
                phase: Phase::During,
                ok,
                detail: if ok { "status 200" } else { "timeout" }.into(),
                latency_ms: 100.0,
            },
        )
    }
    /// Probes every 500 ms from `from` to `to`, failing in `[fail_from, fail_to)` (answer time).
    fn probes(&mut self, from: u64, to: u64, fail_from: u64, fail_to: u64) -> &mut Day {
        let mut t = from;
        while t <= to {
            self.probe(t, !(fail_from..fail_to).contains(&t));
            t += 500;
        }
        self
    }
    fn mark(&mut self, t: u64, mark: MarkKind, who: &str) -> &mut Day {
        self.at(
            t,
            Event::Mark {
                mark,
                responder: who.into(),
                note: Some(format!("{} by {who}", mark.label())),
                via: "cli".into(),
            },
        )
    }
    fn deviation(&mut self, t: u64, failing_ms: u64) -> &mut Day {
        self.at(
            t,
            Event::Deviation {
                condition: "health".into(),
                phase: Phase::During,
                detail: "timeout".into(),
                streak: Some(Streak {
                    samples: 3,
                    failing_ms,
                    tolerate_ms: 1000,
                }),
            },
        )
    }
    fn gameday(&self) -> GameDaySummary {
        let s = livefire_report::summarize(&livefire_report::parse_journal(&self.lines.join("\n")));
        s.gameday.expect("a game day")
    }
    fn write(&self, dir: &std::path::Path) {
        std::fs::write(dir.join("journal.jsonl"), self.lines.join("\n") + "\n").unwrap();
    }
}

/// What a row of the test table expects of one curveball: (detect, by, deviation,
/// mitigate, recover, impacted).
type Want<'a> = (
    Option<u64>,
    Option<&'a str>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    bool,
);

fn got(c: &CurveballSummary) -> Want<'_> {
    (
        c.time_to_detect_ms,
        c.detected_by.as_deref(),
        c.time_to_deviation_ms,
        c.time_to_mitigate_ms,
        c.time_to_recover_ms,
        c.impacted,
    )
}

const ONE: &str = "curveball 1: worker frozen";
const TWO: &str = "curveball 2: process.pause batch";

#[test]
fn each_curveball_gets_its_own_time_to_detect_mitigate_and_recover() {
    let cases: Vec<(&str, Day, Vec<Want>)> = vec![
        (
            "marks, a deviation, and the steady state back after the end",
            {
                let mut d = Day::new(&[(ONE, 1000, 3000)]);
                d.probes(500, 8000, 2000, 5000)
                    .applied(1000, ONE, 0)
                    // The streak began with the probe sent at 1.9 s.
                    .deviation(3000, 1100)
                    .mark(2200, MarkKind::Detected, "ana")
                    .mark(2500, MarkKind::Detected, "bo")
                    .mark(3400, MarkKind::Mitigated, "bo")
                    .ended(4000, ONE, "engine")
                    .mark(6000, MarkKind::Resolved, "ana");
                d
            },
            // The first ok answer after the failures is at 5 s: 4 s after 1 s.
            vec![(
                Some(1200),
                Some("ana"),
                Some(2000),
                Some(2400),
                Some(4000),
                true,
            )],
        ),
        (
            "fixed by the responders before its end: recovered then, not at the end",
            {
                let mut d = Day::new(&[(ONE, 1000, 5000)]);
                d.probes(500, 8000, 2000, 3000)
                    .applied(1000, ONE, 0)
                    .mark(1500, MarkKind::Detected, "ana")
                    .mark(2800, MarkKind::Mitigated, "ana")
                    .ended(6000, ONE, "engine");
                d
            },
            vec![(Some(500), Some("ana"), None, Some(1800), Some(2000), true)],
        ),
        (
            "no impact on the hypothesis: nothing to recover from, marks still count",
            {
                let mut d = Day::new(&[(ONE, 1000, 2000)]);
                d.probes(500, 5000, 0, 0)
                    .applied(1000, ONE, 0)
                    .mark(2700, MarkKind::Detected, "cy")
                    .ended(3000, ONE, "facilitator");
                d
            },
            vec![(Some(1700), Some("cy"), None, None, None, false)],
        ),
        (
            "a mark after the first curveball is over and the second began is the second's",
            {
                let mut d = Day::new(&[(ONE, 1000, 2000), (TWO, 5000, 2000)]);
                d.probes(500, 9000, 1500, 2600)
                    .applied(1000, ONE, 0)
                    .ended(3000, ONE, "engine")
                    .applied(5000, TWO, 1)
                    .mark(5600, MarkKind::Detected, "ana")
                    .ended(7000, TWO, "engine");
                d
            },
            vec![
                // Failing answers at 1.5, 2 and 2.5 s; ok again at 3 s.
                (None, None, None, None, Some(2000), true),
                (Some(600), Some("ana"), None, None, None, false),
            ],
        ),
        (
            "after a `resolved` mark, a new `detected` is for a later curveball only",
            {
                let mut d = Day::new(&[(ONE, 1000, 6000), (TWO, 3000, 2000)]);
                d.probes(500, 9000, 0, 0)
                    .applied(1000, ONE, 0)
                    .mark(1400, MarkKind::Detected, "ana")
                    .mark(2000, MarkKind::Resolved, "ana")
                    .applied(3000, TWO, 1)
                    .mark(3300, MarkKind::Detected, "bo")
                    .ended(5000, TWO, "engine")
                    .ended(7000, ONE, "engine");
                d
            },
            vec![
                (Some(400), Some("ana"), None, None, None, false),
                (Some(300), Some("bo"), None, None, None, false),
            ],
        ),
    ];
    for (what, day, want) in cases {
        let g = day.gameday();
        let have: Vec<_> = g.curveballs.iter().map(got).collect();
        assert_eq!(have, want, "{what}");
        assert_eq!(g.curveballs[0].number, 1, "{what}");
        assert!(g.hidden, "{what}");
        assert!(g.marks.iter().all(|m| m.note.is_some()), "{what}");
    }
}

#[test]
fn a_run_without_a_scenario_has_no_game_day() {
    let run = crate::support::Run::fixture("held-pause");
    assert_eq!(run.report().gameday, None);
    assert!(!run.file("review.md").exists());
    assert!(!run.read("report.html").contains("id=\"gameday\""));
}

fn sample_day() -> Day {
    let mut d = Day::new(&[(ONE, 1000, 3000)]);
    d.probes(500, 8000, 2000, 5000)
        .applied(1000, ONE, 0)
        .mark(2200, MarkKind::Detected, "ana")
        .mark(3400, MarkKind::Mitigated, "bo")
        .deviation(3000, 1100)
        .ended(4000, ONE, "engine");
    d
}

#[test]
fn the_review_has_the_timeline_the_measures_and_blank_sections_for_the_team() {
    let dir = tempfile::tempdir().unwrap();
    sample_day().write(dir.path());
    let out = livefire_report::write_outputs(dir.path()).unwrap();
    assert!(out.files.contains(&dir.path().join("review.md")));
    let review = std::fs::read_to_string(dir.path().join("review.md")).unwrap();
    // The timeline, in time order, in words.
    let order = [
        "| 1.00s | curveball 1: worker frozen applied |",
        "| 2.20s | ana marked detected: \"detected by ana\" |",
        "| 3.00s | hypothesis `health` deviated: timeout |",
        "| 3.40s | bo marked mitigated",
        "| 4.00s | curveball 1: worker frozen ended |",
    ];
    let mut from = 0;
    for line in order {
        let at = review[from..]
            .find(line)
            .unwrap_or_else(|| panic!("`{line}` missing or out of order:\n{review}"));
        from += at + line.len();
    }
    assert!(
        review.contains("| curveball 1: worker frozen | 1.20s (ana) | 2.00s (`health`) | 2.40s (bo) | 4.00s | 1.00s → 4.00s |"),
        "{review}"
    );
    for section in [
        "## What we learned",
        "## What went well",
        "## What to change",
    ] {
        assert!(review.contains(section), "{section}\n{review}");
    }
    // The report page has the game day's chart and the same measures.
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        html.contains(r#"data-chart="gameday""#),
        "no game-day chart"
    );
    assert!(html.contains("<td>1.20s (ana)</td>"), "no measures table");
    assert!(
        html.contains(r#"class="mark detected""#),
        "no mark on the chart"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["gameday"]["curveballs"][0]["time_to_recover_ms"],
        4000
    );
    assert_eq!(summary["gameday"]["marks"][1]["responder"], "bo");
}

#[test]
fn a_review_the_team_edited_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    sample_day().write(dir.path());
    livefire_report::write_outputs(dir.path()).unwrap();
    let review = dir.path().join("review.md");
    let fresh = std::fs::read_to_string(&review).unwrap();
    // Untouched, it is livefire's own: rebuilt in place, no copy beside it.
    let again = livefire_report::write_outputs(dir.path()).unwrap();
    assert!(again.notes.is_empty(), "{:?}", again.notes);
    assert!(!dir.path().join("review.new.md").exists());
    assert_eq!(std::fs::read_to_string(&review).unwrap(), fresh);
    // Edited (even the smallest change, or a file of the team's own): kept, and the
    // fresh review goes beside it with a note saying so.
    for edited in [
        fresh.replacen("_to fill in_", "the pager went to the wrong rotation", 1),
        fresh.replacen("| 1.00s |", "| 1.0s |", 1),
        "# our own notes\n".to_owned(),
    ] {
        std::fs::write(&review, &edited).unwrap();
        let out = livefire_report::write_outputs(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&review).unwrap(), edited);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("review.new.md")).unwrap(),
            fresh
        );
        assert!(out.notes[0].contains("review.new.md"), "{:?}", out.notes);
    }
}

/// One game day of `ONE` then `TWO`: the responders detect and mitigate `ONE` after
/// `detect` and `mitigate` ms, and the hypothesis fails from 2 s until `recovered`.
fn replay(seed: u64, detect: u64, mitigate: u64, recovered: u64) -> Day {
    let mut d = Day::of(&[(ONE, 1000, 3000), (TWO, 6000, 1000)], seed, true);
    d.probes(500, 9000, 2000, recovered)
        .applied(1000, ONE, 0)
        .mark(1000 + detect, MarkKind::Detected, "ana")
        .mark(1000 + mitigate, MarkKind::Mitigated, "ana")
        .ended(4000, ONE, "engine")
        .applied(6000, TWO, 1)
        .ended(7000, TWO, "engine");
    d
}

fn compare_days(a: &Day, b: &Day) -> Result<livefire_report::compare::Comparison, String> {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    a.write(da.path());
    b.write(db.path());
    livefire_report::compare::compare_dirs(da.path(), db.path()).map_err(|e| e.to_string())
}

#[test]
fn two_game_days_of_one_scenario_compare_per_curveball_with_better_and_worse() {
    // The second time the team detects sooner, mitigates later, recovers sooner.
    let c = compare_days(&replay(3, 1500, 2000, 5000), &replay(3, 400, 2600, 3000)).unwrap();
    let section = c
        .sections
        .iter()
        .find(|s| s.title.starts_with("game day (seed 3)"))
        .unwrap_or_else(|| panic!("no game-day section: {:?}", c.sections));
    let row = |curveball: &str, measure: &str| -> Vec<String> {
        let at = section
            .rows
            .iter()
            .position(|r| r[0] == curveball)
            .unwrap_or_else(|| panic!("no {curveball}: {:?}", section.rows));
        section.rows[at..]
            .iter()
            .find(|r| r[1] == measure)
            .unwrap()
            .clone()
    };
    assert_eq!(
        row(ONE, "time to detect (mark)")[2..],
        ["1.50s", "400 ms", "-1.10s better (exact)"]
    );
    assert_eq!(
        row(ONE, "time to mitigate")[2..],
        ["2.00s", "2.60s", "+600 ms worse (exact)"]
    );
    // Recovered at the first ok answer: 5 s and 3 s after a start at 1 s; probes every
    // 500 ms are the noise.
    assert_eq!(
        row(ONE, "time to recover")[2..],
        ["4.00s", "2.00s", "-2.00s better (noise ±500 ms)"]
    );
    assert_eq!(row(TWO, "time to recover")[2..], ["-", "-", ""]);
    let text = c.to_text();
    assert!(
        text.contains("curveballs matched by number and kind"),
        "{text}"
    );
    assert!(
        c.to_html()
            .contains("<td class=\"good\">-1.10s better (exact)</td>")
    );
}

#[test]
fn game_days_of_different_scenarios_are_refused_with_a_reason() {
    let cases = [
        (
            replay(3, 1, 2, 3000),
            Day::of(&[(ONE, 1000, 3000)], 3, false),
            "scenario:` sections differ",
        ),
        (
            replay(3, 1, 2, 3000),
            {
                let mut d = Day { lines: Vec::new() };
                d.at(
                    0,
                    Event::RunStarted {
                        run_id: "plain".into(),
                        title: "no game day".into(),
                        wall_start: String::new(),
                        seed: 3,
                        livefire: "0".into(),
                        planned_ms: 0,
                        open_files: None,
                    },
                );
                d
            },
            "is a game day and B (plain) is not",
        ),
    ];
    for (a, b, why) in cases {
        let err = compare_days(&a, &b).expect_err("refused");
        assert!(
            err.contains("not two game days of the same scenario"),
            "{err}"
        );
        assert!(err.contains(why), "{err}");
    }
    // Another seed of the same scenario is the same game day drawn again: compared.
    let c = compare_days(&replay(3, 1, 2, 3000), &replay(4, 1, 2, 3000)).unwrap();
    assert!(
        c.sections
            .iter()
            .any(|s| s.title.contains("seeds 3 and 4: different draws")),
        "{:?}",
        c.sections
    );
}
