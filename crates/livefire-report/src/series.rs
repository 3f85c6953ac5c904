//! The metric windows, merged per series while the journal is read, and the time
//! series for the charts, downsampled to at most a few hundred points whatever the
//! run's length: probe samples binned by time (ok / failing counts, slowest answer), and
//! load windows merged per bucket, so each bucket's percentiles come from its merged
//! histogram (exact), never from averaging.
//!
//! Each window is decoded once ([`MetricsFold::add`]) and feeds every reader: the
//! loads' totals (summary), the chart buckets, the seconds with errors (detectors), the
//! per-second spread (compare) and the time to impact of each fault. What is held per
//! series does not grow with the run's length, as long as its seconds come in order
//! (the engine journals them so): one total, one open chart bucket, the open baselines
//! of faults. A journal whose seconds come out of order is merged exactly all the same,
//! holding its chart buckets until the end.

use std::collections::{BTreeMap, BTreeSet};

use livefire_core::events::{Event, Record, Role};
use livefire_core::window::{Counts, Window, metric_value};

use crate::impact::ImpactFold;
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

/// Every load's windows merged into at most [`MAX_POINTS`] buckets of whole seconds
/// (merged while the journal was read).
pub(crate) fn load_series(journal: &Journal) -> Vec<LoadSeries> {
    journal
        .metrics
        .loads
        .iter()
        .filter(|l| l.has_windows)
        .map(|l| LoadSeries {
            name: l.name.clone(),
            points: l.points.clone(),
        })
        .collect()
}

/// The first pass over a journal: which series there are, the first and last second of
/// each, whether each one's seconds come in order, and how many windows.
#[derive(Debug, Default)]
pub(crate) struct WindowScan {
    series: BTreeMap<String, SeriesScan>,
    windows: u64,
    last_t: u64,
}

#[derive(Debug, Clone, Copy)]
struct SeriesScan {
    first: u64,
    last: u64,
    in_order: bool,
}

impl WindowScan {
    /// A window line's series, second and journal time.
    pub(crate) fn add(&mut self, series: &str, second: u64, t: u64) {
        self.windows += 1;
        self.last_t = self.last_t.max(t);
        match self.series.get_mut(series) {
            Some(s) => {
                s.in_order &= second >= s.last;
                s.first = s.first.min(second);
                s.last = s.last.max(second);
            }
            None => {
                self.series.insert(
                    series.to_owned(),
                    SeriesScan {
                        first: second,
                        last: second,
                        in_order: true,
                    },
                );
            }
        }
    }
}

/// What the report keeps of the metric windows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    /// Window lines in the journal (decodable or not).
    pub windows: u64,
    /// The latest journal time of a window, ms.
    pub last_t: u64,
    /// Every load, by name: a series `L.R` is request `R` of load `L` when `L` is itself
    /// a series; every other series is a load.
    pub loads: Vec<LoadMetrics>,
    /// The first load signal that showed each fault, by (applied ms, rolled back ms or
    /// `u64::MAX`): when and what ([`crate::impact`]).
    pub impacts: BTreeMap<(u64, u64), Option<(u64, String)>>,
}

/// One load's windows, merged.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadMetrics {
    pub name: String,
    /// Whether the load has windows of its own (not only its requests').
    pub has_windows: bool,
    /// Every window of the load's own series merged.
    pub total: Window,
    /// Distinct seconds among its windows that decoded.
    pub seconds: u64,
    /// Per request name, every window merged.
    pub requests: Vec<(String, Window)>,
    /// The chart's buckets.
    pub points: Vec<LoadPoint>,
    /// The seconds with errors, in the order of the journal, with their counts.
    pub error_seconds: Vec<(u64, Counts)>,
    /// The spread of each per-second value ([`crate::compare`]'s `PER_SECOND`).
    pub spread: [RunningSpread; 6],
}

/// Mean and variance of a stream of values, without keeping them (Welford).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RunningSpread {
    n: usize,
    mean: f64,
    m2: f64,
}

impl RunningSpread {
    fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    /// How many values, and their sample standard deviation; `None` under 3 values
    /// (no estimate).
    pub(crate) fn sd(&self) -> Option<(usize, f64)> {
        (self.n >= 3).then(|| (self.n, (self.m2 / (self.n - 1) as f64).max(0.0).sqrt()))
    }
}

/// The second pass: each window merged into its series' state as it is read.
pub(crate) struct MetricsFold {
    series: BTreeMap<String, SeriesFold>,
    windows: u64,
    last_t: u64,
}

struct SeriesFold {
    /// The load it is a request of, with the request's name.
    owner: Option<(String, String)>,
    total: Window,
    seconds: Seconds,
    /// Loads only: what their own windows feed.
    load: Option<LoadFold>,
}

struct LoadFold {
    chart: ChartFold,
    error_seconds: Vec<(u64, Counts)>,
    spread: [RunningSpread; 6],
    impacts: Vec<ImpactFold>,
}

/// Distinct seconds: counted on the fly when they come in order, a set otherwise.
enum Seconds {
    InOrder { last: Option<u64>, n: u64 },
    Set(BTreeSet<u64>),
}

impl Seconds {
    fn add(&mut self, s: u64) {
        match self {
            Seconds::InOrder { last, n } => {
                if *last != Some(s) {
                    *last = Some(s);
                    *n += 1;
                }
            }
            Seconds::Set(set) => {
                set.insert(s);
            }
        }
    }

    fn count(&self) -> u64 {
        match self {
            Seconds::InOrder { n, .. } => *n,
            Seconds::Set(set) => set.len() as u64,
        }
    }
}

/// A load's chart buckets: `width` seconds each from the load's first second, so the
/// whole span fits in [`MAX_POINTS`]. With seconds in order only the current bucket is
/// open; a bucket is turned into its point once a later one starts.
struct ChartFold {
    first: u64,
    width: u64,
    in_order: bool,
    open: BTreeMap<u64, Window>,
    points: Vec<LoadPoint>,
}

impl ChartFold {
    fn add(&mut self, second: u64, w: Window) {
        let bucket = self.first + second.saturating_sub(self.first) / self.width * self.width;
        if self.in_order {
            while let Some(entry) = self.open.first_entry() {
                if *entry.key() >= bucket {
                    break;
                }
                let (b, done) = entry.remove_entry();
                self.points.push(point(b, self.width, &done));
            }
        }
        match self.open.get_mut(&bucket) {
            Some(open) => open.merge(&w),
            None => {
                self.open.insert(bucket, w);
            }
        }
    }

    fn finish(mut self) -> Vec<LoadPoint> {
        for (b, w) in std::mem::take(&mut self.open) {
            self.points.push(point(b, self.width, &w));
        }
        self.points
    }
}

/// A chart bucket of `width` seconds starting at second `bucket`.
fn point(bucket: u64, width: u64, w: &Window) -> LoadPoint {
    let ms = |suffix| metric_value(w, width, suffix).map(|v| v * 1e3);
    LoadPoint {
        t_ms: bucket * 1000 + width * 500,
        rps: w.counts.completed() as f64 / width as f64,
        p50_ms: ms("latency.p50"),
        p90_ms: ms("latency.p90"),
        p99_ms: ms("latency.p99"),
        error_rate: crate::summary::error_rate(w),
        dropped: w.counts.get(livefire_core::window::Outcome::Dropped) as f64 / width as f64,
        errors: w
            .counts
            .iter()
            .filter(|(o, _)| o.is_error())
            .map(|(o, n)| (o.as_str(), n as f64 / width as f64))
            .collect(),
    }
}

impl MetricsFold {
    /// Ready to merge the windows the first pass found, with the faults of `records`.
    pub(crate) fn new(records: &[Record], scan: WindowScan) -> MetricsFold {
        let spans = crate::impact::fault_spans(records);
        let names: BTreeSet<&str> = scan.series.keys().map(String::as_str).collect();
        let owner = |s: &str| -> Option<(String, String)> {
            s.char_indices()
                .filter(|(_, c)| *c == '.')
                .map(|(i, _)| (&s[..i], &s[i + 1..]))
                .rfind(|(l, _)| names.contains(l))
                .map(|(l, r)| (l.to_owned(), r.to_owned()))
        };
        let series = scan
            .series
            .iter()
            .map(|(name, sc)| {
                let owner = owner(name);
                let load = owner.is_none().then(|| {
                    let span = sc.last - sc.first + 1;
                    LoadFold {
                        chart: ChartFold {
                            first: sc.first,
                            width: span.div_ceil(MAX_POINTS as u64).max(1),
                            in_order: sc.in_order,
                            open: BTreeMap::new(),
                            points: Vec::new(),
                        },
                        error_seconds: Vec::new(),
                        spread: Default::default(),
                        impacts: spans
                            .iter()
                            .map(|&(applied, until)| ImpactFold::new(applied, until, sc.in_order))
                            .collect(),
                    }
                });
                let fold = SeriesFold {
                    owner,
                    total: Window::default(),
                    seconds: if sc.in_order {
                        Seconds::InOrder { last: None, n: 0 }
                    } else {
                        Seconds::Set(BTreeSet::new())
                    },
                    load,
                };
                (name.clone(), fold)
            })
            .collect();
        MetricsFold {
            series,
            windows: scan.windows,
            last_t: scan.last_t,
        }
    }

    /// One decoded window of `series` for `second`.
    pub(crate) fn add(&mut self, series: &str, second: u64, w: Window) {
        let Some(s) = self.series.get_mut(series) else {
            return;
        };
        s.total.merge(&w);
        s.seconds.add(second);
        let Some(load) = &mut s.load else {
            return;
        };
        if w.counts.errors() > 0 {
            load.error_seconds.push((second, w.counts));
        }
        for (spread, v) in load.spread.iter_mut().zip(crate::compare::per_second(&w)) {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                spread.push(v);
            }
        }
        for impact in &mut load.impacts {
            impact.add(second, &w);
        }
        load.chart.add(second, w);
    }

    /// The merged metrics, each load with its requests.
    pub(crate) fn finish(self) -> Metrics {
        let mut loads: BTreeMap<String, LoadMetrics> = BTreeMap::new();
        let mut impacts: Vec<(String, Vec<ImpactFold>)> = Vec::new();
        for (name, s) in self.series {
            match s.owner {
                Some((load, request)) => loads
                    .entry(load.clone())
                    .or_insert_with(|| LoadMetrics {
                        name: load,
                        ..Default::default()
                    })
                    .requests
                    .push((request, s.total)),
                None => {
                    let l = loads.entry(name.clone()).or_insert_with(|| LoadMetrics {
                        name: name.clone(),
                        ..Default::default()
                    });
                    l.has_windows = true;
                    l.total = s.total;
                    l.seconds = s.seconds.count();
                    if let Some(fold) = s.load {
                        l.points = fold.chart.finish();
                        l.error_seconds = fold.error_seconds;
                        l.spread = fold.spread;
                        impacts.push((name, fold.impacts));
                    }
                }
            }
        }
        for l in loads.values_mut() {
            l.requests.sort_by(|a, b| a.0.cmp(&b.0));
        }
        // Per fault, the earliest signal over the loads (in name order on a tie).
        let mut by_span: BTreeMap<(u64, u64), Option<(u64, String)>> = BTreeMap::new();
        for (name, folds) in impacts {
            for fold in folds {
                let span = fold.span();
                let best = by_span.entry(span).or_default();
                if let Some((at, what)) = fold.finish()
                    && best.as_ref().is_none_or(|(t, _)| at < *t)
                {
                    *best = Some((at, format!("load `{name}`: {what}")));
                }
            }
        }
        Metrics {
            windows: self.windows,
            last_t: self.last_t,
            loads: loads.into_values().collect(),
            impacts: by_span,
        }
    }
}
