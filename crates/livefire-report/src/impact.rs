//! Time to impact from the run's own loads: the first second, while a fault was active,
//! in which a load's latency, errors or throughput moved clearly away from the seconds
//! just before the fault. The hypothesis probes are one signal; a `proxy.latency` that
//! takes p99 from 2 ms to 220 ms is an impact even when no probe fails.

use livefire_core::events::{Event, Record};
use livefire_core::window::Window;

use crate::journal::Journal;
use crate::summary::num;

/// How many seconds before a fault make its baseline.
const BASELINE_SECONDS: u64 = 5;
/// A p99 counts as changed when it is at least this many times the baseline's and at
/// least [`MIN_LATENCY_STEP_MS`] above it (a 0.2 ms -> 0.5 ms wobble is not an impact).
const LATENCY_FACTOR: f64 = 2.0;
const MIN_LATENCY_STEP_MS: f64 = 5.0;
/// An error rate counts as changed when it rises by this much (absolute fraction).
const ERROR_RATE_STEP: f64 = 0.05;
/// Throughput counts as changed when a second completes less than this share of the
/// baseline's mean.
const THROUGHPUT_SHARE: f64 = 0.5;

/// The first load signal that showed a fault: when (run-clock ms, the start of the
/// second) and what, in words (`load browse: p99 2.1 ms -> 220 ms`). Worked out while
/// the journal was read ([`ImpactFold`]), for every fault of its records.
pub(crate) fn first_load_impact(
    journal: &Journal,
    applied_ms: u64,
    until_ms: u64,
) -> Option<(u64, String)> {
    journal
        .metrics
        .impacts
        .get(&(applied_ms, until_ms))
        .cloned()
        .flatten()
}

/// Each fault's span as the summary sees it: from when its apply began (its
/// `fault_applied` event's `applying_ms`, else the event's time), until the first
/// `fault_rolled_back` of the same activity after it (`u64::MAX` when never rolled
/// back). The summary looks impacts up by this span.
pub(crate) fn fault_spans(records: &[Record]) -> Vec<(u64, u64)> {
    let mut faults: Vec<(&str, u64, Option<u64>)> = Vec::new();
    for r in records {
        match &r.event {
            Event::FaultApplied {
                activity,
                applying_ms,
                ..
            } => {
                let opened = crate::summary::apply_began(r.t, *applying_ms);
                faults.push((activity.as_str(), opened, None));
            }
            Event::FaultRolledBack { activity, .. } => {
                if let Some(f) = faults
                    .iter_mut()
                    .rev()
                    .find(|f| f.0 == activity.as_str() && f.2.is_none())
                {
                    f.2 = Some(r.t);
                }
            }
            _ => {}
        }
    }
    faults
        .into_iter()
        .map(|(_, applied, until)| (applied, until.unwrap_or(u64::MAX)))
        .collect()
}

/// One fault against one load, fed the load's windows as the journal is read: the
/// baseline merges the [`BASELINE_SECONDS`] before the fault's second; each second
/// after it, until the rollback, is judged against that baseline (the second it was
/// applied in is mixed: skipped). The first second that moved is the impact.
///
/// With the load's seconds in order, the baseline is complete once a second at or past
/// the fault's comes, and each later second is judged as it comes: nothing is kept but
/// the baseline's merged histogram while it is open. Out of order, the seconds' values
/// are kept and judged at the end, in order of second.
pub(crate) struct ImpactFold {
    applied_ms: u64,
    until_ms: u64,
    in_order: bool,
    first_second: u64,
    /// The baseline's windows merged, and how many, until it is judged.
    base: Option<(Window, u64)>,
    /// The baseline's p99, error rate and throughput; `None` inside when it had nothing
    /// completed (the load is no signal for this fault).
    judged: Option<Option<Baseline>>,
    /// Out of order: the seconds to judge (second, completed, error rate, p99 ms).
    pending: Vec<(u64, f64, f64, Option<f64>)>,
    found: Option<(u64, String)>,
}

#[derive(Clone, Copy)]
struct Baseline {
    p99: Option<f64>,
    err: f64,
    rps: f64,
}

impl ImpactFold {
    pub(crate) fn new(applied_ms: u64, until_ms: u64, in_order: bool) -> ImpactFold {
        ImpactFold {
            applied_ms,
            until_ms,
            in_order,
            first_second: applied_ms / 1000,
            base: None,
            judged: None,
            pending: Vec::new(),
            found: None,
        }
    }

    /// The fault's (applied ms, until ms), as [`fault_spans`] gave it.
    pub(crate) fn span(&self) -> (u64, u64) {
        (self.applied_ms, self.until_ms)
    }

    /// One window of the load.
    pub(crate) fn add(&mut self, s: u64, w: &Window) {
        if self.found.is_some() {
            return;
        }
        let first = self.first_second;
        if s + BASELINE_SECONDS >= first && s < first {
            let (base, n) = self.base.get_or_insert_with(|| (Window::default(), 0));
            base.merge(w);
            *n += 1;
            return;
        }
        // A second that starts after the fault was applied and before it was rolled
        // back (the second it was applied in is mixed: skip it).
        let judge = s > first && s * 1000 < self.until_ms;
        if !self.in_order {
            if judge {
                self.pending
                    .push((s, w.counts.completed() as f64, error_rate(w), p99_ms(w)));
            }
            return;
        }
        if s < first {
            return;
        }
        let Some(base) = self.baseline() else {
            return;
        };
        if judge && let Some(what) = changed(w, base.p99, base.err, base.rps) {
            self.found = Some((s * 1000, what));
        }
    }

    /// The baseline, judged once (its histogram dropped then).
    fn baseline(&mut self) -> Option<Baseline> {
        *self.judged.get_or_insert_with(|| {
            let (base, n) = self.base.take()?;
            (base.counts.completed() > 0).then(|| Baseline {
                p99: p99_ms(&base),
                err: error_rate(&base),
                rps: base.counts.completed() as f64 / n as f64,
            })
        })
    }

    /// The first second that moved: when (not before the fault was applied) and what.
    pub(crate) fn finish(mut self) -> Option<(u64, String)> {
        let applied = self.applied_ms;
        if let Some((at, what)) = self.found.take() {
            return Some((at.max(applied), what));
        }
        let base = self.baseline()?;
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|p| p.0);
        pending.into_iter().find_map(|(s, done, err, p99)| {
            changed_values(done, err, p99, base.p99, base.err, base.rps)
                .map(|what| ((s * 1000).max(applied), what))
        })
    }
}

/// What moved in one second against the baseline, if anything did.
fn changed(w: &Window, base_p99: Option<f64>, base_err: f64, base_rps: f64) -> Option<String> {
    changed_values(
        w.counts.completed() as f64,
        error_rate(w),
        p99_ms(w),
        base_p99,
        base_err,
        base_rps,
    )
}

/// [`changed`], from a second's completed count, error rate and p99.
fn changed_values(
    done: f64,
    err: f64,
    p99: Option<f64>,
    base_p99: Option<f64>,
    base_err: f64,
    base_rps: f64,
) -> Option<String> {
    if done < base_rps * THROUGHPUT_SHARE {
        return Some(format!("throughput {}/s -> {}/s", num(base_rps), num(done)));
    }
    if err - base_err >= ERROR_RATE_STEP {
        return Some(format!(
            "errors {}% -> {}%",
            num(base_err * 100.0),
            num(err * 100.0)
        ));
    }
    match (base_p99, p99) {
        (Some(b), Some(p)) if p >= b * LATENCY_FACTOR && p - b >= MIN_LATENCY_STEP_MS => {
            Some(format!("p99 {} ms -> {} ms", num(b), num(p)))
        }
        _ => None,
    }
}

fn p99_ms(w: &Window) -> Option<f64> {
    w.latency.quantile_us(0.99).map(|us| us as f64 / 1e3)
}

fn error_rate(w: &Window) -> f64 {
    let done = w.counts.completed();
    if done == 0 {
        0.0
    } else {
        w.counts.errors() as f64 / done as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livefire_core::window::Outcome;

    fn window(ok: u64, errors: u64, latency_ms: u64) -> Window {
        let mut w = Window::default();
        for _ in 0..ok {
            w.record(Outcome::Ok, latency_ms * 1000);
        }
        for _ in 0..errors {
            w.record(Outcome::Http5xx, latency_ms * 1000);
        }
        w
    }

    #[test]
    fn each_signal_is_named_and_noise_is_not() {
        let base = window(100, 0, 2);
        let (b99, berr, brps) = (p99_ms(&base), error_rate(&base), 100.0);
        let cases: &[(Window, Option<&str>)] = &[
            (window(100, 0, 2), None),
            (window(100, 0, 3), None),
            (window(100, 0, 220), Some("p99 2")),
            (window(80, 20, 2), Some("errors 0% -> 20%")),
            (window(10, 0, 2), Some("throughput 100/s -> 10/s")),
        ];
        for (w, want) in cases {
            let got = changed(w, b99, berr, brps);
            match want {
                None => assert_eq!(got, None),
                Some(prefix) => {
                    let got = got.expect("a change");
                    assert!(got.starts_with(prefix), "{got} should start with {prefix}");
                }
            }
        }
    }
}
