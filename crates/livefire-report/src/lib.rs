//! Reports are functions of the journal: [`read_journal`] reads `journal.jsonl` (saying
//! where a truncated one stops), [`summarize`] turns its records into a [`Summary`]
//! without any other input, and the renderers turn both into `summary.json`,
//! `report.html` and `junit.xml`; [`write_outputs`] writes all three into a run folder,
//! so every report can be rebuilt later from the journal alone. A game day also gets
//! its after-action review, `review.md` (never overwritten once the team edited it).

pub mod cli;
pub mod compare;
pub mod detectors;
pub mod failover;
pub mod gameday;

pub mod html;
mod impact;
pub mod index;
mod journal;
pub mod junit;

pub mod runs;
mod schema;
pub mod segments;
mod series;
mod summary;

use std::path::{Path, PathBuf};

pub use journal::{Journal, Plan, WINDOW_EVENT, parse_journal, read_journal};
pub use schema::summary_schema;
pub use summary::{
    ConditionSummary, FaultSummary, FindingSummary, ForgottenSummary, LoadSummary, Percentiles,
    RequestSummary, StepSummary, Summary, WritesSummary, summarize, verdict_word,
};

/// Errors of the report functions; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run folder has no journal.
    #[error(
        "{}: no journal.jsonl here: pass a run folder (livefire prints its path at the end of a run; `livefire runs` lists them)",
        .0.display()
    )]
    NoJournal(PathBuf),
    /// No folder of that name, and no run of that id in the index.
    #[error("no run folder or run id `{0}`: `livefire runs` lists the runs livefire knows")]
    NotFound(String),
    /// A run id that names a fuzz run, which has findings but no journal.
    #[error(
        "{}: a `livefire fuzz` run: its results are findings.json, findings.sarif and fuzz-summary.json there; `livefire report` rebuilds the reports of `livefire run`",
        .0.display()
    )]
    FuzzRun(PathBuf),
    /// `livefire compare` of two runs that are not game days of one scenario.
    #[error(
        "these are not two game days of the same scenario: {0}: compare game days of one `scenario:` (the same seed replays the same draw), or two runs without one"
    )]
    NotSameScenario(String),
    /// The journal exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An output cannot be written.
    #[error("cannot write {}: {source}: check the folder is writable", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What [`write_outputs`] wrote.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub summary: Summary,
    pub files: Vec<PathBuf>,
    /// What a person should know about the files: a `review.md` the team edited was
    /// kept, and the fresh review went beside it.
    pub notes: Vec<String>,
}

/// Reads `RUN_DIR/journal.jsonl`, and nothing else, and writes `summary.json`,
/// `report.html` and `junit.xml` beside it. The engine calls this at the end of every
/// run; `livefire report RUN_DIR` calls it to rebuild them.
pub fn write_outputs(run_dir: &Path) -> Result<Outputs, ReportError> {
    let path = run_dir.join("journal.jsonl");
    let journal = match read_journal(&path) {
        Ok(j) => j,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReportError::NoJournal(run_dir.to_path_buf()));
        }
        Err(source) => return Err(ReportError::Read { path, source }),
    };
    let summary = summarize(&journal);
    let plan = journal.plan();
    let mut files = Vec::new();
    let mut write = |name: &str, text: String| -> Result<(), ReportError> {
        let path = run_dir.join(name);
        std::fs::write(&path, text).map_err(|source| ReportError::Write {
            path: path.clone(),
            source,
        })?;
        files.push(path);
        Ok(())
    };
    write("summary.json", summary_json(&summary))?;
    write("report.html", html::render(&journal, &summary))?;
    write("junit.xml", junit::render(&summary, plan.as_ref()))?;
    let mut notes = Vec::new();
    if let Some(g) = &summary.gameday {
        // The after-action review is the team's once they edit it: never overwritten.
        let existing = std::fs::read_to_string(run_dir.join("review.md")).ok();
        let text = gameday::review_markdown(&journal, &summary, g);
        match gameday::review_target(existing.as_deref()) {
            gameday::ReviewWrite::Review => write("review.md", text)?,
            gameday::ReviewWrite::New => {
                write("review.new.md", text)?;
                notes.push(format!(
                    "{} was edited, so it was kept: the review rebuilt from the journal is review.new.md beside it",
                    run_dir.join("review.md").display()
                ));
            }
        }
    }
    Ok(Outputs {
        summary,
        files,
        notes,
    })
}

/// `summary.json`'s text.
pub fn summary_json(summary: &Summary) -> String {
    serde_json::to_string_pretty(summary).unwrap_or_default() + "\n"
}

/// Escapes text for HTML and XML (element content and attribute values).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use livefire_core::events::{Event, Phase, Record, Role, Verdict};

    fn rec(seq: u64, t: u64, event: Event) -> String {
        serde_json::to_string(&Record {
            v: 1,
            seq,
            t,
            event,
        })
        .unwrap()
    }

    fn probe(t: u64, seq: u64, ok: bool, phase: Phase) -> String {
        rec(
            seq,
            t,
            Event::Probe {
                condition: "up".into(),
                role: Role::Hypothesis,
                phase,
                ok,
                detail: if ok { "status 200" } else { "timeout" }.into(),
                latency_ms: if ok { 1.0 } else { 500.0 },
            },
        )
    }

    fn sample_journal() -> Vec<String> {
        vec![
            rec(
                0,
                0,
                Event::RunStarted {
                    run_id: "r".into(),
                    title: "t".into(),
                    wall_start: "w".into(),
                    seed: 7,
                    livefire: "0".into(),
                    planned_ms: 5000,
                    open_files: None,
                },
            ),
            probe(10, 1, true, Phase::Before),
            rec(
                2,
                1000,
                Event::FaultApplied {
                    activity: "p".into(),
                    kind: "process.pause".into(),
                    target: "w".into(),
                    detail: String::new(),
                    applying_ms: None,
                },
            ),
            probe(1800, 3, false, Phase::During),
            rec(
                4,
                3000,
                Event::FaultRolledBack {
                    activity: "p".into(),
                    kind: "process.pause".into(),
                    ok: true,
                    detail: String::new(),
                    by: "engine".into(),
                },
            ),
            probe(3100, 5, false, Phase::During),
            probe(3400, 6, true, Phase::After),
            rec(
                7,
                3400,
                Event::Settled {
                    ok: true,
                    after_ms: 100,
                },
            ),
            rec(
                8,
                3500,
                Event::RunEnded {
                    verdict: Verdict::Held,
                    exit_code: Verdict::Held.exit_code(),
                    ledger_left: 0,
                },
            ),
        ]
    }

    #[test]
    fn summary_counts_samples_faults_impact_and_recovery() {
        // A crash mid-write leaves half a line at the end.
        let text = format!("{}\n{{\"v\":1,\"se", sample_journal().join("\n"));
        let s = summarize(&parse_journal(&text));
        assert_eq!(s.verdict, Some(Verdict::Held));
        assert_eq!(s.conditions[0].samples, 4);
        assert_eq!(s.conditions[0].failures, 2);
        assert!(s.conditions[0].held);
        // Failures are placed at their send time, as the charts place them: the probe
        // that answered at 1.8 s after 500 ms was sent at 1.3 s.
        assert_eq!(s.conditions[0].first_failure_ms, Some(1300));
        assert_eq!(s.conditions[0].failure_details[0], "at 1.30s: timeout");
        // The failing probe answered at 1.8 s after 500 ms: it was sent at 1.3 s, 300 ms
        // after the fault was applied.
        assert_eq!(s.faults[0].time_to_impact_ms, Some(300));
        // The sample at 3.1 s still failed; the first ok one after rollback is at 3.4 s.
        assert_eq!(s.faults[0].time_to_recover_ms, Some(400));
        assert!(
            s.journal_stopped
                .as_deref()
                .unwrap()
                .starts_with("line 10:"),
            "{:?}",
            s.journal_stopped
        );
    }

    #[test]
    fn newer_journal_version_says_so_and_keeps_what_came_before() {
        let mut lines = sample_journal();
        lines.insert(
            3,
            "{\"v\":9,\"seq\":3,\"t\":1200,\"type\":\"hologram\"}".into(),
        );
        let j = parse_journal(&lines.join("\n"));
        let stopped = j.stopped.unwrap();
        assert!(stopped.starts_with("line 4:"), "{stopped}");
        assert!(
            stopped.contains("newer than this livefire reads"),
            "{stopped}"
        );
        assert!(stopped.contains("upgrade livefire"), "{stopped}");
        assert_eq!(j.records.len(), 3);
    }

    #[test]
    fn unknown_event_types_are_skipped_and_counted() {
        let mut lines = sample_journal();
        lines.insert(
            3,
            "{\"v\":1,\"seq\":3,\"t\":1200,\"type\":\"hologram\"}".into(),
        );
        let j = parse_journal(&lines.join("\n"));
        assert_eq!(j.stopped, None);
        assert_eq!(j.unknown.get("hologram"), Some(&1));
        assert_eq!(summarize(&j).verdict, Some(Verdict::Held));
    }

    #[test]
    fn a_known_event_with_missing_fields_stops_the_reading_there() {
        let mut lines = sample_journal();
        lines.insert(
            3,
            "{\"v\":1,\"seq\":3,\"t\":1200,\"type\":\"probe\"}".into(),
        );
        let j = parse_journal(&lines.join("\n"));
        let stopped = j.stopped.unwrap();
        assert!(stopped.starts_with("line 4:"), "{stopped}");
        assert!(stopped.contains("corrupted"), "{stopped}");
    }

    fn ended(seq: u64, t: u64, verdict: Verdict) -> String {
        rec(
            seq,
            t,
            Event::RunEnded {
                verdict,
                exit_code: verdict.exit_code(),
                ledger_left: 0,
            },
        )
    }

    #[test]
    fn every_verdict_but_held_says_why_in_the_experiments_words() {
        let deviation = rec(
            1,
            4510,
            Event::Deviation {
                condition: "health answers".into(),
                phase: Phase::During,
                detail: "no answer within 1s".into(),
                streak: Some(livefire_core::events::Streak {
                    samples: 5,
                    failing_ms: 3200,
                    tolerate_ms: 3000,
                }),
            },
        );
        let finding = |seq: u64, rule: &str, op: &str, fails: bool| {
            rec(
                seq,
                5000,
                Event::Finding {
                    campaign: "api-fuzz".into(),
                    severity: "critical".into(),
                    fails,
                    finding: serde_json::json!({
                        "rule": rule, "operation": op,
                        "active_faults": ["proxy.down auth-link"],
                    }),
                },
            )
        };
        let cases: Vec<(Vec<String>, Verdict, Vec<&str>)> = vec![
            (
                vec![deviation.clone(), ended(2, 6000, Verdict::Deviated)],
                Verdict::Deviated,
                vec![
                    "`health answers` deviated at 4.51s: no answer within 1s (5 samples failed over 3.20s, tolerated 3.00s)",
                ],
            ),
            (
                vec![
                    finding(1, "auth_enforced", "GET /admin/stats", true),
                    finding(2, "server_error", "POST /orders", true),
                    finding(3, "slow", "GET /orders", false),
                    ended(4, 6000, Verdict::Failed),
                ],
                Verdict::Failed,
                vec![
                    "2 critical findings at or above fail_on: auth_enforced on GET /admin/stats during proxy.down auth-link; server_error on POST /orders during proxy.down auth-link",
                ],
            ),
            (
                vec![
                    rec(
                        1,
                        10,
                        Event::SetupFailed {
                            message: "proxy target `auth-link`: 127.0.0.1:19101 is in use".into(),
                        },
                    ),
                    ended(2, 20, Verdict::Invalid),
                ],
                Verdict::Invalid,
                vec![
                    "setup failed: proxy target `auth-link`: 127.0.0.1:19101 is in use (nothing was applied)",
                ],
            ),
            (
                vec![
                    rec(
                        1,
                        2000,
                        Event::Aborted {
                            cause: livefire_core::events::AbortCause::Halt { from: None },
                        },
                    ),
                    ended(2, 2100, Verdict::Aborted),
                ],
                Verdict::Aborted,
                vec!["aborted: halted by `livefire halt`"],
            ),
            (
                vec![
                    finding(1, "slow", "GET /orders", false),
                    ended(2, 6000, Verdict::Held),
                ],
                Verdict::Held,
                vec![],
            ),
        ];
        for (lines, verdict, want) in cases {
            let s = summarize(&parse_journal(&lines.join("\n")));
            assert_eq!(s.verdict, Some(verdict));
            assert_eq!(s.reasons, want, "verdict {}", verdict.label());
        }
        assert_eq!(verdict_word(Some(Verdict::Failed)), "failed: findings");
        assert_eq!(Verdict::Failed.exit_code(), 1);
        assert_eq!(Verdict::Invalid.exit_code(), 3);
    }

    /// A fault that takes seconds to apply (a disk being filled) and shows before its
    /// apply returns: impact after 0 ms, not at the first failure after the apply.
    #[test]
    fn a_failure_while_the_fault_is_being_applied_is_an_impact_after_0_ms() {
        let lines = [
            probe(500, 1, true, Phase::During),
            // Sent at 1.5 s, failed at 2 s: the apply began at 1 s, returned at 4 s.
            probe(2000, 2, false, Phase::During),
            rec(
                3,
                4000,
                Event::FaultApplied {
                    activity: "disk full".into(),
                    kind: "disk.fill".into(),
                    target: "data".into(),
                    detail: String::new(),
                    applying_ms: Some(1000),
                },
            ),
            probe(4600, 4, false, Phase::During),
            rec(
                5,
                6000,
                Event::FaultRolledBack {
                    activity: "disk full".into(),
                    kind: "disk.fill".into(),
                    ok: true,
                    detail: String::new(),
                    by: "engine".into(),
                },
            ),
        ];
        let s = summarize(&parse_journal(&lines.join("\n")));
        let f = &s.faults[0];
        assert_eq!(f.time_to_impact_ms, Some(0), "{f:?}");
        assert_eq!(
            f.impact_signal.as_deref(),
            Some("hypothesis `up` failed"),
            "{f:?}"
        );
    }

    #[test]
    fn a_latency_fault_impacts_the_load_even_when_no_probe_fails() {
        // As the engine journals it (when the apply began, then when it returned),
        // and as older journals did (no `applying_ms`).
        for applying_ms in [Some(5250), None] {
            latency_fault_impacts_the_load(applying_ms);
        }
    }

    fn latency_fault_impacts_the_load(applying_ms: Option<u64>) {
        use livefire_core::window::{Outcome, Window};
        let second = |seq: u64, s: u64, latency_ms: u64| {
            let mut w = Window::default();
            for _ in 0..50 {
                w.record(Outcome::Ok, latency_ms * 1000);
            }
            rec(
                seq,
                s * 1000 + 1000,
                Event::Window {
                    series: "browse".into(),
                    second: s,
                    window: w,
                },
            )
        };
        let mut lines = vec![];
        let mut seq = 0;
        for s in 0..10 {
            seq += 1;
            // 2 ms before the fault (applied at 5.3 s), 220 ms while it is active.
            lines.push(second(seq, s, if (6..9).contains(&s) { 220 } else { 2 }));
        }
        lines.push(rec(
            100,
            5300,
            Event::FaultApplied {
                activity: "slow auth".into(),
                kind: "proxy.latency".into(),
                target: "auth-link".into(),
                detail: String::new(),
                applying_ms,
            },
        ));
        lines.push(rec(
            101,
            9000,
            Event::FaultRolledBack {
                activity: "slow auth".into(),
                kind: "proxy.latency".into(),
                ok: true,
                detail: String::new(),
                by: "engine".into(),
            },
        ));
        let s = summarize(&parse_journal(&lines.join("\n")));
        let f = &s.faults[0];
        assert_eq!(f.time_to_impact_ms, Some(700), "{applying_ms:?}: {f:?}");
        let signal = f.impact_signal.as_deref().unwrap();
        assert!(signal.starts_with("load `browse`: p99 2"), "{signal}");
        assert!(signal.contains("-> 220"), "{signal}");
    }

    #[test]
    fn escape_makes_text_safe_for_html_and_xml() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;\u{fffd}"
        );
    }
}
