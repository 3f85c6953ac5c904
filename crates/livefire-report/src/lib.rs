//! Reports are functions of the journal: [`read_journal`] reads `journal.jsonl` (saying
//! where a truncated one stops), and [`summarize`] turns its records into a [`Summary`]
//! without any other input, so every report can be rebuilt later from the journal alone.

use std::collections::BTreeMap;
use std::path::Path;

use livefire_core::events::{AbortCause, Event, JOURNAL_VERSION, Phase, Record, Role, Verdict};
use serde::{Deserialize, Serialize};

/// A journal as read from disk.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub records: Vec<Record>,
    /// Set when reading stopped early: which line, and why.
    pub stopped: Option<String>,
}

/// Reads a journal. A line that does not parse (a run that crashed mid-write) ends the
/// reading there, with `stopped` saying where; a journal from a newer version says so.
pub fn read_journal(path: &Path) -> std::io::Result<Journal> {
    let text = std::fs::read_to_string(path)?;
    let mut journal = Journal::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(line) {
            Ok(r) if r.v > JOURNAL_VERSION => {
                journal.stopped = Some(format!(
                    "line {}: journal version {} is newer than this livefire reads ({JOURNAL_VERSION}): upgrade livefire",
                    i + 1,
                    r.v
                ));
                break;
            }
            Ok(r) => journal.records.push(r),
            Err(e) => {
                journal.stopped = Some(format!("line {}: the journal stops here ({e})", i + 1));
                break;
            }
        }
    }
    Ok(journal)
}

/// What `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub run_id: String,
    pub title: String,
    pub wall_start: String,
    pub seed: u64,
    /// `None` when the journal ends before the run did.
    pub verdict: Option<Verdict>,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub aborted: Option<AbortCause>,
    pub conditions: Vec<ConditionSummary>,
    pub faults: Vec<FaultSummary>,
    /// Milliseconds from the end of rollback until the hypothesis held again.
    pub settled_after_ms: Option<u64>,
    pub ledger_left: usize,
    pub warnings: Vec<String>,
    /// Where the journal stopped early, if it did.
    pub journal_stopped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionSummary {
    pub name: String,
    pub role: Role,
    pub samples: u64,
    pub failures: u64,
    /// Whether it held: for the hypothesis no deviation, for a guardrail no trip.
    pub held: bool,
    pub deviations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSummary {
    pub activity: String,
    pub kind: String,
    pub target: String,
    pub applied_ms: u64,
    pub rolled_back_ms: Option<u64>,
    pub rollback_ok: Option<bool>,
    pub rolled_back_by: Option<String>,
    /// Fault rolled back -> hypothesis held again.
    pub time_to_recover_ms: Option<u64>,
}

/// Journal -> summary. Pure.
pub fn summarize(journal: &Journal) -> Summary {
    let mut s = Summary {
        run_id: String::new(),
        title: String::new(),
        wall_start: String::new(),
        seed: 0,
        verdict: None,
        exit_code: None,
        duration_ms: 0,
        aborted: None,
        conditions: Vec::new(),
        faults: Vec::new(),
        settled_after_ms: None,
        ledger_left: 0,
        warnings: Vec::new(),
        journal_stopped: journal.stopped.clone(),
    };
    let mut conditions: BTreeMap<String, ConditionSummary> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    fn cond<'a>(
        conditions: &'a mut BTreeMap<String, ConditionSummary>,
        order: &mut Vec<String>,
        name: &str,
        role: Role,
    ) -> &'a mut ConditionSummary {
        if !order.iter().any(|n| n == name) {
            order.push(name.to_owned());
        }
        conditions
            .entry(name.to_owned())
            .or_insert_with(|| ConditionSummary {
                name: name.to_owned(),
                role,
                samples: 0,
                failures: 0,
                held: true,
                deviations: Vec::new(),
            })
    }
    let mut settled_at: Option<u64> = None;
    for r in &journal.records {
        s.duration_ms = s.duration_ms.max(r.t);
        match &r.event {
            Event::RunStarted {
                run_id,
                title,
                wall_start,
                seed,
                ..
            } => {
                s.run_id = run_id.clone();
                s.title = title.clone();
                s.wall_start = wall_start.clone();
                s.seed = *seed;
            }
            Event::Probe {
                condition,
                role,
                ok,
                ..
            }
            | Event::Metric {
                condition,
                role,
                ok,
                ..
            } => {
                let c = cond(&mut conditions, &mut order, condition, *role);
                c.samples += 1;
                c.failures += u64::from(!ok);
            }
            Event::Deviation {
                condition,
                phase,
                detail,
            } => {
                let c = cond(&mut conditions, &mut order, condition, Role::Hypothesis);
                c.held = false;
                c.deviations
                    .push(format!("{}: {detail}", phase_name(*phase)));
            }
            Event::GuardrailTripped { condition, detail } => {
                let c = cond(&mut conditions, &mut order, condition, Role::Guardrail);
                c.held = false;
                c.deviations.push(detail.clone());
            }
            Event::FaultApplied {
                activity,
                kind,
                target,
                ..
            } => s.faults.push(FaultSummary {
                activity: activity.clone(),
                kind: kind.clone(),
                target: target.clone(),
                applied_ms: r.t,
                rolled_back_ms: None,
                rollback_ok: None,
                rolled_back_by: None,
                time_to_recover_ms: None,
            }),
            Event::FaultRolledBack {
                activity, ok, by, ..
            } => {
                if let Some(f) = s
                    .faults
                    .iter_mut()
                    .rev()
                    .find(|f| &f.activity == activity && f.rolled_back_ms.is_none())
                {
                    f.rolled_back_ms = Some(r.t);
                    f.rollback_ok = Some(*ok);
                    f.rolled_back_by = Some(by.clone());
                }
            }
            Event::Settled { ok: true, after_ms } => {
                s.settled_after_ms = Some(*after_ms);
                settled_at = Some(r.t);
            }
            Event::Aborted { cause } => s.aborted = Some(cause.clone()),
            Event::Warning { message } => s.warnings.push(message.clone()),
            Event::RunEnded {
                verdict,
                exit_code,
                ledger_left,
            } => {
                s.verdict = Some(*verdict);
                s.exit_code = Some(*exit_code);
                s.ledger_left = *ledger_left;
            }
            _ => {}
        }
    }
    if let Some(at) = settled_at {
        for f in &mut s.faults {
            if let (Some(back), Some(true)) = (f.rolled_back_ms, f.rollback_ok) {
                f.time_to_recover_ms = Some(at.saturating_sub(back));
            }
        }
    }
    s.conditions = order
        .into_iter()
        .filter_map(|n| conditions.remove(&n))
        .collect();
    s
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Setup => "setup",
        Phase::Before => "before",
        Phase::During => "during",
        Phase::Rollback => "rollback",
        Phase::After => "after",
        Phase::Teardown => "teardown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, t: u64, event: Event) -> String {
        serde_json::to_string(&Record {
            v: 1,
            seq,
            t,
            event,
        })
        .unwrap()
    }

    #[test]
    fn summary_counts_samples_faults_and_recovery() {
        let lines = [
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
                },
            ),
            rec(
                1,
                10,
                Event::Probe {
                    condition: "up".into(),
                    role: Role::Hypothesis,
                    phase: Phase::Before,
                    ok: true,
                    detail: String::new(),
                    latency_ms: 1.0,
                },
            ),
            rec(
                2,
                1000,
                Event::FaultApplied {
                    activity: "p".into(),
                    kind: "process.pause".into(),
                    target: "w".into(),
                    detail: String::new(),
                },
            ),
            rec(
                3,
                1500,
                Event::Probe {
                    condition: "up".into(),
                    role: Role::Hypothesis,
                    phase: Phase::During,
                    ok: false,
                    detail: "timeout".into(),
                    latency_ms: 500.0,
                },
            ),
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
            rec(
                5,
                3400,
                Event::Settled {
                    ok: true,
                    after_ms: 400,
                },
            ),
            rec(
                6,
                3500,
                Event::RunEnded {
                    verdict: Verdict::Held,
                    exit_code: 0,
                    ledger_left: 0,
                },
            ),
        ];
        let dir = std::env::temp_dir().join(format!("lf-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.jsonl");
        // A crash mid-write leaves half a line at the end.
        std::fs::write(&path, format!("{}\n{{\"v\":1,\"se", lines.join("\n"))).unwrap();
        let journal = read_journal(&path).unwrap();
        let s = summarize(&journal);
        assert_eq!(s.verdict, Some(Verdict::Held));
        assert_eq!(s.conditions[0].samples, 2);
        assert_eq!(s.conditions[0].failures, 1);
        assert!(s.conditions[0].held);
        assert_eq!(s.faults[0].time_to_recover_ms, Some(400));
        assert!(
            s.journal_stopped.as_deref().unwrap().starts_with("line 8:"),
            "{:?}",
            s.journal_stopped
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn newer_journal_version_says_so() {
        let dir = std::env::temp_dir().join(format!("lf-report-v-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("journal.jsonl");
        std::fs::write(
            &path,
            "{\"v\":9,\"seq\":0,\"t\":0,\"type\":\"warning\",\"message\":\"x\"}\n",
        )
        .unwrap();
        let j = read_journal(&path).unwrap();
        assert!(
            j.stopped
                .unwrap()
                .contains("newer than this livefire reads")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
