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
    /// The keys of tracked writes, for `verify_writes` (not serialized).
    #[serde(skip)]
    pub write_log: Option<std::sync::Arc<crate::writes::WriteLog>>,
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
        self.total.merge(&other.total);
        for (n, w) in &other.requests {
            self.requests.entry(n.clone()).or_default().merge(w);
        }
    }

    /// The JSON form `livefire load --json` prints: totals, a percentile spectrum in
    /// seconds, outcome counts, and the base64 HdrHistogram for exact merging.
    pub fn to_json(&self) -> serde_json::Value {
        let lat = &self.total.latency;
        let pct: serde_json::Map<String, serde_json::Value> = SPECTRUM
            .iter()
            .map(|q| {
                (
                    format!("p{}", trim_q(*q * 100.0)),
                    lat.quantile_us(*q).map(|v| v as f64 / 1e6).into(),
                )
            })
            .collect();
        let outcomes: serde_json::Map<String, serde_json::Value> = Outcome::ALL
            .iter()
            .map(|o| (o.as_str().to_string(), self.total.counts.get(*o).into()))
            .collect();
        serde_json::json!({
            "name": self.name,
            "duration_secs": self.duration_secs,
            "requests": self.total.counts.completed(),
            "sent": self.total.sent,
            "intended": self.intended,
            "rate_achieved": self.rate_achieved(),
            "rps": self.rps(),
            "error_rate": error_rate(&self.total),
            "outcomes": outcomes,
            "latency_secs": {
                "min": lat.min_us().map(|v| v as f64 / 1e6),
                "mean": lat.mean_us().map(|v| v / 1e6),
                "max": lat.max_us().map(|v| v as f64 / 1e6),
                "percentiles": pct,
            },
            "report": self,
        })
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
