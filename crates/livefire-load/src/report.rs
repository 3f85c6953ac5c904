//! `LoadReport`: what a finished load returns (totals, per request, the whole latency
//! histogram), and its renderings: a text summary like oha / wrk2 and JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use livefire_core::window::{Outcome, Window};
use serde::{Deserialize, Serialize};

/// The totals of one load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub name: String,
    /// From the run's start to the last recorded outcome.
    pub duration_secs: f64,
    /// Sends the schedule meant to make (open model), or that were made (closed model).
    pub intended: u64,
    /// Every request merged; `total.intended` equals `intended`.
    pub total: Window,
    /// Per request name.
    pub requests: BTreeMap<String, Window>,
    /// For loads with tracked writes: the longest time without an acknowledged write
    /// (`<load>.writes.gap`, `failover.write_gap`), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_gap_secs: Option<f64>,
    /// The keys of tracked writes, for `verify_writes` (not serialized).
    #[serde(skip)]
    pub write_log: Option<std::sync::Arc<crate::writes::WriteLog>>,
}

/// The machine-readable summary of a load (`livefire load --json`, `livefire merge
/// --json`, the engine's `load_ended` events). The committed schema is `schema/load.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadSummary {
    /// The load's name (metrics are named after it).
    pub name: String,
    /// How long the load ran.
    pub duration_secs: f64,
    /// Requests that completed (every outcome but `dropped`).
    pub requests: u64,
    /// Sends that started.
    pub sent: u64,
    /// Sends the schedule asked for (open model), or that were made (closed model).
    pub intended: u64,
    /// `sent / intended`; null when nothing was intended.
    pub rate_achieved: Option<f64>,
    /// Completed requests per second.
    pub rps: f64,
    /// Errors / completed requests (`dropped` left out); null when none completed.
    pub error_rate: Option<f64>,
    /// Count of every outcome: ok, http_4xx, http_5xx, timeout, connect_refused, reset,
    /// tls, check_failed, dropped, other.
    pub outcomes: BTreeMap<String, u64>,
    /// Latency from the intended send time, in seconds.
    pub latency_secs: LatencySummary,
    /// The full report: per-request windows with base64 HdrHistogram V2 histograms, for
    /// exact merging (`livefire merge`).
    #[schemars(with = "serde_json::Value")]
    pub report: LoadReport,
}

/// Latency figures in seconds; null when nothing was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LatencySummary {
    pub min: Option<f64>,
    pub mean: Option<f64>,
    pub max: Option<f64>,
    /// `p10`, `p25`, `p50`, `p75`, `p90`, `p95`, `p99`, `p99.9`, `p99.99`, `p100`.
    pub percentiles: BTreeMap<String, Option<f64>>,
}

/// The JSON Schema of `LoadSummary`, as committed in `schema/load.json`.
pub fn summary_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(LoadSummary)).unwrap_or_default()
}

/// Percentiles shown in summaries.
pub const SPECTRUM: [f64; 10] = [0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999, 0.9999, 1.0];

impl LoadReport {
    pub(crate) fn new(
        name: String,
        duration: Duration,
        requests: Vec<(String, Window)>,
        intended: u64,
    ) -> Self {
        let mut total = Window::default();
        for (_, w) in &requests {
            total.merge(w);
        }
        total.intended = intended;
        LoadReport {
            name,
            duration_secs: duration.as_secs_f64(),
            intended,
            total,
            requests: requests.into_iter().collect(),
            write_gap_secs: None,
            write_log: None,
        }
    }

    /// Completed requests per second over the run.
    pub fn rps(&self) -> f64 {
        self.total.counts.completed() as f64 / self.duration_secs.max(1e-9)
    }

    /// Sends that started divided by sends intended.
    pub fn rate_achieved(&self) -> Option<f64> {
        (self.intended > 0).then(|| self.total.sent as f64 / self.intended as f64)
    }

    /// Merges another process's report of the same load (a segment) exactly.
    pub fn merge(&mut self, other: &LoadReport) {
        self.duration_secs = self.duration_secs.max(other.duration_secs);
        self.intended += other.intended;
        // Writes from all segments together leave no longer gap than any one segment's,
        // so the smaller is the merged run's bound.
        self.write_gap_secs = match (self.write_gap_secs, other.write_gap_secs) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.total.merge(&other.total);
        for (n, w) in &other.requests {
            self.requests.entry(n.clone()).or_default().merge(w);
        }
    }

    /// The JSON form `livefire load --json` prints (and `load_ended` journal events
    /// carry): totals, a percentile spectrum in seconds, outcome counts, and the report
    /// with its base64 HdrHistograms for exact merging. Its schema is `schema/load.json`.
    pub fn summary(&self) -> LoadSummary {
        let lat = &self.total.latency;
        let secs = |us: Option<u64>| us.map(|v| v as f64 / 1e6);
        LoadSummary {
            name: self.name.clone(),
            duration_secs: self.duration_secs,
            requests: self.total.counts.completed(),
            sent: self.total.sent,
            intended: self.intended,
            rate_achieved: self.rate_achieved(),
            rps: self.rps(),
            error_rate: error_rate(&self.total),
            outcomes: Outcome::ALL
                .iter()
                .map(|o| (o.as_str().to_string(), self.total.counts.get(*o)))
                .collect(),
            latency_secs: LatencySummary {
                min: secs(lat.min_us()),
                mean: lat.mean_us().map(|v| v / 1e6),
                max: secs(lat.max_us()),
                percentiles: SPECTRUM
                    .iter()
                    .map(|q| {
                        (
                            format!("p{}", trim_q(*q * 100.0)),
                            secs(lat.quantile_us(*q)),
                        )
                    })
                    .collect(),
            },
            report: self.clone(),
        }
    }

    /// `summary()` as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.summary()).unwrap_or_default()
    }

    /// The text summary `livefire load` prints.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let t = &self.total;
        let done = t.counts.completed();
        let _ = writeln!(s, "Summary ({}):", self.name);
        let _ = writeln!(s, "  Duration:       {:.2} s", self.duration_secs);
        let _ = writeln!(
            s,
            "  Requests:       {done} completed, {} sent, {} intended",
            t.sent, self.intended
        );
        let _ = writeln!(s, "  Throughput:     {:.1} req/s", self.rps());
        if let Some(r) = self.rate_achieved() {
            let _ = writeln!(s, "  Rate achieved:  {:.1} %", r * 100.0);
        }
        if let Some(e) = error_rate(t) {
            let _ = writeln!(s, "  Success rate:   {:.2} %", (1.0 - e) * 100.0);
        }
        let lat = &t.latency;
        if let (Some(min), Some(mean), Some(max)) = (lat.min_us(), lat.mean_us(), lat.max_us()) {
            let _ = writeln!(s, "\nLatency (from the intended send time):");
            let _ = writeln!(s, "  Fastest:  {}", fmt_us(min as f64));
            let _ = writeln!(s, "  Average:  {}", fmt_us(mean));
            let _ = writeln!(s, "  Slowest:  {}", fmt_us(max as f64));
            let _ = writeln!(s, "\nPercentile spectrum:");
            for q in SPECTRUM {
                if let Some(v) = lat.quantile_us(q) {
                    let _ = writeln!(s, "  {:>8}% in {}", trim_q(q * 100.0), fmt_us(v as f64));
                }
            }
        }
        let _ = writeln!(s, "\nOutcomes:");
        for (o, n) in t.counts.iter() {
            let _ = writeln!(s, "  {:<16} {n}", o.as_str());
        }
        if self.requests.len() > 1 {
            let _ = writeln!(s, "\nPer request:");
            for (name, w) in &self.requests {
                let p99 = w
                    .latency
                    .quantile_us(0.99)
                    .map(|v| fmt_us(v as f64))
                    .unwrap_or_else(|| "-".into());
                let err = error_rate(w)
                    .map(|e| format!("{:.2} %", e * 100.0))
                    .unwrap_or_else(|| "-".into());
                let _ = writeln!(
                    s,
                    "  {name:<16} {:>10} requests  p99 {p99:>10}  errors {err}",
                    w.counts.completed()
                );
            }
        }
        s
    }
}

fn error_rate(w: &Window) -> Option<f64> {
    let done = w.counts.completed();
    (done > 0).then(|| w.counts.errors() as f64 / done as f64)
}

fn trim_q(q: f64) -> String {
    let s = format!("{q:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.3} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.3} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}
