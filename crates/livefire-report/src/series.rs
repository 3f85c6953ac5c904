//! Time series for the charts, downsampled to at most a few hundred points whatever the
//! run's length: probe samples binned by time (ok / failing counts, slowest answer), and
//! load windows merged per bucket, so each bucket's percentiles come from its merged
//! histogram (exact), never from averaging.

use std::collections::BTreeMap;

use livefire_core::events::{Event, Role};
use livefire_core::window::{Window, metric_value};

use crate::journal::Journal;

/// Points a chart's series keeps at most.
pub(crate) const MAX_POINTS: usize = 600;

/// One condition's samples, binned.
#[derive(Debug, Clone)]
pub(crate) struct ProbeSeries {
    pub name: String,
    pub role: Role,
    /// Bins that hold samples: (start ms, end ms, ok count, failing count, slowest ms).
    pub bins: Vec<ProbeBin>,
    /// Whether the condition is a metric (no latency of its own).
    pub metric: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ProbeBin {
    pub from_ms: u64,
    pub to_ms: u64,
    pub ok: u64,
    pub failed: u64,
    pub max_latency_ms: Option<f64>,
}

/// One load's per-bucket values.
#[derive(Debug, Clone)]
pub(crate) struct LoadSeries {
    pub name: String,
    pub points: Vec<LoadPoint>,
}

#[derive(Debug, Clone)]
pub(crate) struct LoadPoint {
    /// Middle of the bucket, ms since the start.
    pub t_ms: u64,
    pub rps: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Errors / completed.
    pub error_rate: Option<f64>,
    /// Dropped sends per second.
    pub dropped: f64,
    /// Errors per second by kind (`timeout`, `http_5xx`, ...), kinds with none left out.
    pub errors: Vec<(&'static str, f64)>,
}

/// The width of a bin so that `duration_ms` fits in at most `max_points` bins.
pub(crate) fn bin_width_ms(duration_ms: u64, max_points: usize) -> u64 {
    duration_ms.div_ceil(max_points.max(1) as u64).max(1)
}

/// Every probe and metric condition's samples, binned to at most `max_points` bins over
/// `duration_ms`, in order of first sample.
pub(crate) fn probe_series(
    journal: &Journal,
    duration_ms: u64,
    max_points: usize,
) -> Vec<ProbeSeries> {
    let width = bin_width_ms(duration_ms, max_points);
    let mut out: Vec<ProbeSeries> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &journal.records {
        let (name, role, ok, latency, metric) = match &r.event {
            Event::Probe {
                condition,
                role,
                ok,
                latency_ms,
                ..
            } => (condition, *role, *ok, Some(*latency_ms), false),
            Event::Metric {
                condition,
                role,
                ok,
                ..
            } => (condition, *role, *ok, None, true),
            _ => continue,
        };
        let i = *index.entry(name.as_str()).or_insert_with(|| {
            out.push(ProbeSeries {
                name: name.clone(),
                role,
                bins: Vec::new(),
                metric,
            });
            out.len() - 1
        });
        // A probe sample shows when it was sent: a probe that hangs during a fault
        // was failing from then, not from when its timeout fired.
        let at = latency.map_or(r.t, |l| crate::summary::sent_at(r.t, l));
        let from = at / width * width;
        let s = &mut out[i];
        // Samples come in time order, so a new bin is always the last one.
        if s.bins.last().is_none_or(|b| b.from_ms != from) {
            s.bins.push(ProbeBin {
                from_ms: from,
                to_ms: from + width,
                ok: 0,
                failed: 0,
                max_latency_ms: None,
            });
        }
        let Some(b) = s.bins.last_mut() else { continue };
        if ok {
            b.ok += 1;
        } else {
            b.failed += 1;
        }
        if let Some(l) = latency.filter(|l| l.is_finite()) {
            b.max_latency_ms = Some(b.max_latency_ms.unwrap_or(0.0).max(l));
        }
    }
    out
}

/// Every load's windows merged into at most `max_points` buckets of whole seconds.
pub(crate) fn load_series(journal: &Journal, max_points: usize) -> Vec<LoadSeries> {
    let mut out = Vec::new();
    for load in journal.loads() {
        let name = load.name;
        let mut list: Vec<(u64, usize)> = load
            .total
            .iter()
            .map(|&i| (journal.windows[i].second, i))
            .collect();
        if list.is_empty() {
            continue;
        }
        list.sort_unstable();
        let (first, last) = (list[0].0, list[list.len() - 1].0);
        let span = last - first + 1;
        let width = span.div_ceil(max_points.max(1) as u64).max(1);
        let mut points = Vec::new();
        let mut current: Option<(u64, Window)> = None;
        let flush = |points: &mut Vec<LoadPoint>, bucket: u64, w: &Window| {
            let seconds = width;
            let ms = |suffix| metric_value(w, seconds, suffix).map(|v| v * 1e3);
            points.push(LoadPoint {
                t_ms: bucket * 1000 + width * 500,
                rps: w.counts.completed() as f64 / seconds as f64,
                p50_ms: ms("latency.p50"),
                p90_ms: ms("latency.p90"),
                p99_ms: ms("latency.p99"),
                error_rate: crate::summary::error_rate(w),
                dropped: w.counts.get(livefire_core::window::Outcome::Dropped) as f64
                    / seconds as f64,
                errors: w
                    .counts
                    .iter()
                    .filter(|(o, _)| o.is_error())
                    .map(|(o, n)| (o.as_str(), n as f64 / seconds as f64))
                    .collect(),
            });
        };
        for (second, i) in list {
            let Some(lw) = journal.windows[i].decode() else {
                continue;
            };
            let bucket = first + (second - first) / width * width;
            match &mut current {
                Some((b, w)) if *b == bucket => w.merge(&lw),
                _ => {
                    if let Some((b, w)) = current.take() {
                        flush(&mut points, b, &w);
                    }
                    current = Some((bucket, lw));
                }
            }
        }
        if let Some((b, w)) = current.take() {
            flush(&mut points, b, &w);
        }
        out.push(LoadSeries { name, points });
    }
    out
}
