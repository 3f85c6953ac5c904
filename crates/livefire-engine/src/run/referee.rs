//! The referee: one task per condition samples it during the timeline, marks
//! deviations and trips guardrails. It is the only part that decides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use livefire_core::events::{AbortCause, Event, Phase, Role, Streak};
use livefire_core::metrics::MetricSource;
use tokio::sync::mpsc;

use crate::journal::Journal;
use crate::plan::{Check, Condition, Window};
use crate::probe;

/// What every referee task shares.
#[derive(Clone)]
pub(super) struct Referee {
    pub(super) during_start: Instant,
    pub(super) journal: Journal,
    pub(super) abort: mpsc::UnboundedSender<AbortCause>,
    pub(super) deviated: Arc<AtomicBool>,
    pub(super) metrics: Arc<Vec<Arc<dyn MetricSource>>>,
    pub(super) cwd: String,
    /// How long after a second ends its windows are all in (a split run's segments
    /// stream them): metric conditions judge only seconds this old.
    pub(super) metric_lag: Duration,
}

/// Watches one condition during the timeline: samples it every `c.every`, journals each
/// sample, marks a deviation once the hypothesis failed longer than it tolerates, and
/// trips a guardrail (then stops). What it sees goes on `board` for the progress line.
pub(super) async fn watch_condition(c: Condition, r: Referee, board: crate::view::Board) {
    let allowed = allowed_streak(&c);
    board.watch(&c.name, c.role, allowed);
    // The failing streak: when its first sample was sent, and how many samples failed.
    let mut failing_since: Option<Instant> = None;
    let mut failed_samples = 0u64;
    let mut reported = false;
    // A fixed cadence from the start, whatever each sample takes.
    let mut ticks = tokio::time::interval(c.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let sent = Instant::now();
        let (ok, detail) = judge_once(&c, &r).await;
        match ok {
            Some(true) => {
                failing_since = None;
                failed_samples = 0;
                reported = false;
                board.holds(&c.name);
            }
            Some(false) => {
                let since = *failing_since.get_or_insert(sent);
                failed_samples += 1;
                board.failing(&c.name, since);
                let failing = since.elapsed();
                if failing < allowed {
                    continue;
                }
                match c.role {
                    Role::Hypothesis if !reported => {
                        reported = true;
                        r.deviated.store(true, Ordering::SeqCst);
                        board.deviated(&c.name);
                        r.journal.emit(Event::Deviation {
                            condition: c.name.clone(),
                            phase: Phase::During,
                            detail,
                            streak: Some(Streak {
                                samples: failed_samples,
                                failing_ms: failing.as_millis() as u64,
                                tolerate_ms: allowed.as_millis() as u64,
                            }),
                        });
                    }
                    Role::Hypothesis => {}
                    Role::Guardrail => {
                        let _ = r.abort.send(AbortCause::Guardrail {
                            condition: c.name.clone(),
                            detail,
                        });
                        return;
                    }
                }
            }
            None => {}
        }
    }
}

/// How long a failing streak may last: the hypothesis's `tolerate`; a probe guardrail's
/// `for` (a metric guardrail's `for` is its window, judged over it, so none).
fn allowed_streak(c: &Condition) -> Duration {
    match (c.role, &c.check) {
        (Role::Hypothesis, _) => c.tolerate,
        (Role::Guardrail, Check::Probe { fail_for, .. }) => *fail_for,
        (Role::Guardrail, Check::Metric { .. }) => Duration::ZERO,
    }
}

/// One sample of the condition, journaled: whether it holds (`None`: not judged, no data
/// yet) and what was seen.
async fn judge_once(c: &Condition, r: &Referee) -> (Option<bool>, String) {
    match &c.check {
        Check::Probe {
            probe,
            timeout,
            expect,
            ..
        } => {
            let s = probe::sample(probe, *timeout, expect, Some(&r.cwd)).await;
            r.journal.emit(Event::Probe {
                condition: c.name.clone(),
                role: c.role,
                phase: Phase::During,
                ok: s.ok,
                detail: s.detail.clone(),
                latency_ms: s.latency.as_secs_f64() * 1e3,
            });
            (Some(s.ok), s.detail)
        }
        Check::Metric {
            metric,
            comparison,
            bound,
            window,
        } => {
            let now = Instant::now();
            let window = match window {
                Window::Last(d) => *d,
                Window::SinceStart => now - r.during_start,
            };
            // Judge complete one-second windows only: the window ends at the last whole
            // second, so "the last second" is the one that just finished.
            let to = now
                .saturating_duration_since(r.journal.start() + r.metric_lag)
                .as_millis() as u64
                / 1000
                * 1000;
            let from = to.saturating_sub(window.as_millis().max(1000) as u64);
            let Some(v) = r.metrics.iter().find_map(|m| m.value(metric, from, to)) else {
                // No data yet: not judged.
                return (None, String::new());
            };
            let ok = comparison.holds(v, bound.value());
            r.journal.emit(Event::Metric {
                condition: c.name.clone(),
                role: c.role,
                phase: Phase::During,
                ok,
                value: Some(v),
                bound: bound.value(),
                metric: metric.clone(),
                comparison: comparison.name().into(),
            });
            let detail = format!("{metric} = {v}, expected {} {bound}", comparison.name());
            (Some(ok), detail)
        }
    }
}
