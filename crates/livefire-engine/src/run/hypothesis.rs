//! The hypothesis before and after the timeline, and the conditions on whole-run facts
//! (tracked writes) judged once after the read-back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use livefire_core::events::{Event, Phase, Role};
use livefire_core::metrics::MetricSource;

use crate::journal::Journal;
use crate::plan::{Check, Plan};
use crate::probe;

/// Judges the conditions on whole-run facts (`<load>.writes.*`, `failover.write_gap`)
/// once, after the read-back. Returns true when one does not hold.
pub(super) fn judge_facts(
    plan: &Plan,
    journal: &Journal,
    metrics: &[Arc<dyn MetricSource>],
) -> bool {
    let mut failed = false;
    for c in &plan.conditions {
        let Check::Metric {
            metric,
            comparison,
            bound,
            ..
        } = &c.check
        else {
            continue;
        };
        if !(metric.contains(".writes.") || metric == "failover.write_gap") {
            continue;
        }
        let name = &c.name;
        let Some(value) = metrics.iter().find_map(|m| m.value(metric, 0, u64::MAX)) else {
            journal.emit(Event::Warning {
                message: format!("`{name}`: {metric} has no value (no write was tracked)"),
            });
            continue;
        };
        let ok = comparison.holds(value, bound.value());
        journal.emit(Event::Metric {
            condition: name.clone(),
            role: c.role,
            phase: Phase::After,
            ok,
            value: Some(value),
            bound: bound.value(),
            metric: metric.clone(),
            comparison: comparison.name().into(),
        });
        if !ok {
            failed = true;
            let detail = format!("{metric} = {value}, expected {} {bound}", comparison.name());
            tracing::warn!("`{name}` does not hold: {detail}");
            journal.emit(Event::Deviation {
                condition: name.clone(),
                phase: Phase::After,
                detail,
                streak: None,
            });
        }
    }
    failed
}

/// One sample of every hypothesis probe, journaled; the failures by condition name.
async fn sample_hypothesis(plan: &Plan, journal: &Journal, phase: Phase) -> Vec<(String, String)> {
    let cwd = plan.dir.to_string_lossy();
    let mut failures = Vec::new();
    for c in plan
        .conditions
        .iter()
        .filter(|c| c.role == Role::Hypothesis)
    {
        let Check::Probe {
            probe,
            timeout,
            expect,
            ..
        } = &c.check
        else {
            continue;
        };
        let s = probe::sample(probe, *timeout, expect, Some(&cwd)).await;
        journal.emit(Event::Probe {
            condition: c.name.clone(),
            role: Role::Hypothesis,
            phase,
            ok: s.ok,
            detail: s.detail.clone(),
            latency_ms: s.latency.as_secs_f64() * 1e3,
        });
        if !s.ok {
            failures.push((c.name.clone(), s.detail));
        }
    }
    failures
}

/// One sample of every hypothesis probe; false if any fails.
pub(super) async fn check_before(plan: &Plan, journal: &Journal) -> bool {
    let failures = sample_hypothesis(plan, journal, Phase::Before).await;
    for (name, detail) in &failures {
        tracing::warn!("before: `{name}` does not hold: {detail}");
        journal.emit(Event::Deviation {
            condition: name.clone(),
            phase: Phase::Before,
            detail: detail.clone(),
            streak: None,
        });
    }
    failures.is_empty()
}

/// Polls the hypothesis probes until all hold in one round, or `settings.settle` runs
/// out, saying once a second what it is waiting for.
pub(super) async fn check_after(
    plan: &Plan,
    journal: &Journal,
    view: crate::view::View,
) -> (bool, Duration) {
    let settle = plan.settings.settle;
    let start = Instant::now();
    let mut said = None;
    loop {
        let failures = sample_hypothesis(plan, journal, Phase::After).await;
        let waited = start.elapsed();
        if said.is_some() && (failures.is_empty() || waited >= settle) {
            crate::view::end_line(view);
        }
        if failures.is_empty() {
            return (true, waited);
        }
        if said != Some(waited.as_secs()) && waited < settle {
            said = Some(waited.as_secs());
            crate::view::print(view, &settling_line(waited, settle, &failures));
        }
        if start.elapsed() >= settle {
            for (name, detail) in failures {
                tracing::warn!("after: `{name}` did not hold again within settle: {detail}");
                journal.emit(Event::Deviation {
                    condition: name,
                    phase: Phase::After,
                    detail,
                    streak: None,
                });
            }
            return (false, start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `settling 3s/30s: waiting for `health answers` to hold again (no answer within 1s)`.
fn settling_line(waited: Duration, settle: Duration, failures: &[(String, String)]) -> String {
    let what: Vec<String> = failures
        .iter()
        .map(|(name, detail)| format!("`{name}` ({detail})"))
        .collect();
    format!(
        "settling {}s/{}s: faults rolled back, waiting for {} to hold again",
        waited.as_secs(),
        settle.as_secs(),
        what.join(", ")
    )
}

/// Reads every tracked write of the finished loads back and journals the counts.
pub(super) async fn read_writes_back(
    finished: &[(livefire_load::LoadConfig, livefire_load::LoadReport)],
    store: &Arc<livefire_core::window::WindowStore>,
    journal: &Journal,
) {
    for (config, report) in finished {
        if !crate::workload::tracks_writes(config) {
            continue;
        }
        match livefire_load::verify_writes(config, report, store, 8).await {
            Ok(counts) => {
                if counts.lost > 0 {
                    tracing::warn!(
                        "load `{}`: {} acknowledged write(s) lost",
                        config.name,
                        counts.lost
                    );
                }
                journal.emit(Event::Writes {
                    load: config.name.clone(),
                    counts: serde_json::to_value(counts).unwrap_or_default(),
                });
            }
            Err(e) => journal.emit(Event::Warning {
                message: format!("load `{}`: cannot read writes back: {e}", config.name),
            }),
        }
    }
}
