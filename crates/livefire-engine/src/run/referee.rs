//! The referee: one task per condition samples it during the timeline, marks
//! deviations and trips guardrails. It is the only part that decides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use livefire_core::events::{AbortCause, Event, Phase, Role, Streak};
use livefire_core::metrics::MetricSource;
use livefire_spec::Condition;
use tokio::sync::mpsc;

use crate::journal::Journal;
use crate::probe;

/// deviations, and trips guardrails.
/// Watches one condition during the timeline: samples it, journals each sample, marks
#[allow(clippy::too_many_arguments)]
pub(super) async fn watch_condition(
    c: Condition,
    name: String,
    role: Role,
    default_every: Duration,
    during_start: Instant,
    journal: Journal,
    abort: mpsc::UnboundedSender<AbortCause>,
    deviated: Arc<AtomicBool>,
    metrics: Arc<Vec<Arc<dyn MetricSource>>>,
    cwd: String,
    board: crate::view::Board,
) {
    let every = c.every.map(|d| d.0).unwrap_or(default_every);
    // How long a failing streak may last: the hypothesis's `tolerate`; a probe
    // guardrail's `for` (a metric guardrail's `for` is its window, judged over it).
    let allowed = match role {
        Role::Hypothesis => c.tolerate.map(|d| d.0).unwrap_or_default(),
        Role::Guardrail if c.probe.is_some() => c.for_.map(|d| d.0).unwrap_or_default(),
        Role::Guardrail => Duration::ZERO,
    };
    board.watch(&name, role, allowed);
    // The failing streak: when its first sample was sent, and how many samples failed.
    let mut failing_since: Option<Instant> = None;
    let mut failed_samples = 0u64;
    let mut reported = false;
    // A fixed cadence from the start, whatever each sample takes.
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sent = Instant::now();
        let (ok, detail) = if let (Some(p), Some(e)) = (&c.probe, &c.expect) {
            let s = probe::sample(p, e, Some(&cwd)).await;
            journal.emit(Event::Probe {
                condition: name.clone(),
                role,
                phase: Phase::During,
                ok: s.ok,
                detail: s.detail.clone(),
                latency_ms: s.latency.as_secs_f64() * 1e3,
            });
            (Some(s.ok), s.detail)
        } else if let (Some(metric), Some((cmp, bound))) =
            (&c.metric, c.comparisons().first().copied())
        {
            let now = Instant::now();
            let window = match (role, c.for_) {
                (_, Some(d)) => d.0,
                (Role::Guardrail, None) => Duration::from_secs(1),
                (Role::Hypothesis, None) => now - during_start,
            };
            // Judge complete one-second windows only: the window ends at the last whole
            // second, so "the last second" is the one that just finished.
            let to = now.duration_since(journal.start()).as_millis() as u64 / 1000 * 1000;
            let from = to.saturating_sub(window.as_millis().max(1000) as u64);
            match metrics.iter().find_map(|m| m.value(metric, from, to)) {
                // No data yet: not judged.
                None => (None, String::new()),
                Some(v) => {
                    let ok = cmp.holds(v, bound.value());
                    journal.emit(Event::Metric {
                        condition: name.clone(),
                        role,
                        phase: Phase::During,
                        ok,
                        value: Some(v),
                        bound: bound.value(),
                        metric: metric.clone(),
                        comparison: cmp.name().into(),
                    });
                    (
                        Some(ok),
                        format!("{metric} = {v}, expected {} {bound}", cmp.name()),
                    )
                }
            }
        } else {
            (None, String::new())
        };
        match ok {
            Some(true) => {
                failing_since = None;
                failed_samples = 0;
                reported = false;
                board.holds(&name);
            }
            Some(false) => {
                let since = *failing_since.get_or_insert(sent);
                failed_samples += 1;
                board.failing(&name, since);
                let failing = since.elapsed();
                match role {
                    Role::Hypothesis => {
                        if failing >= allowed && !reported {
                            reported = true;
                            deviated.store(true, Ordering::SeqCst);
                            board.deviated(&name);
                            journal.emit(Event::Deviation {
                                condition: name.clone(),
                                phase: Phase::During,
                                detail: detail.clone(),
                                streak: Some(Streak {
                                    samples: failed_samples,
                                    failing_ms: failing.as_millis() as u64,
                                    tolerate_ms: allowed.as_millis() as u64,
                                }),
                            });
                        }
                    }
                    Role::Guardrail => {
                        if failing >= allowed {
                            let _ = abort.send(AbortCause::Guardrail {
                                condition: name.clone(),
                                detail,
                            });
                            return;
                        }
                    }
                }
            }
            None => {}
        }
    }
}
