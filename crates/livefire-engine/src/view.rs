//! The run's progress on the terminal: in a TTY one line redrawn each second (elapsed /
//! planned, active faults, per load rps with a sparkline, p99 and error rate, findings,
//! hypothesis and guardrail state); otherwise the same facts as a plain line per second,
//! for CI logs; nothing with `--quiet`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

use livefire_core::metrics::MetricSource;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// One line redrawn in place (stderr is a terminal).
    Tty,
    /// A plain line per second.
    Plain,
    /// Nothing.
    #[default]
    Quiet,
}

/// What one status line says.
#[derive(Debug, Default)]
pub struct Status {
    pub elapsed_s: u64,
    pub planned_s: u64,
    pub active: Vec<String>,
    pub deviated: bool,
}

/// Keeps the last seconds of each load's throughput for the sparkline.
#[derive(Debug, Default)]
pub struct Progress {
    rps: BTreeMap<String, VecDeque<f64>>,
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

fn sparkline(values: &VecDeque<f64>) -> String {
    let max = values.iter().copied().fold(0.0, f64::max);
    values
        .iter()
        .map(|v| {
            if max <= 0.0 {
                SPARKS[0]
            } else {
                SPARKS[((v / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

impl Progress {
    /// The status line. `loads` and `campaigns` are the metric prefixes of the run's
    /// workloads; `now_ms` is the run's clock.
    pub fn line(
        &mut self,
        view: View,
        s: &Status,
        loads: &[String],
        campaigns: &[String],
        metrics: &[std::sync::Arc<dyn MetricSource>],
        now_ms: u64,
    ) -> String {
        let mut out = String::new();
        let clock = |t: u64| format!("{:02}:{:02}", t / 60, t % 60);
        let _ = write!(out, "{} / {}", clock(s.elapsed_s), clock(s.planned_s));
        let _ = write!(
            out,
            "  active: {}",
            if s.active.is_empty() {
                "none".to_string()
            } else {
                s.active.join(", ")
            }
        );
        // The last complete second.
        let to = now_ms / 1000 * 1000;
        let from = to.saturating_sub(1000);
        let value = |m: &str| metrics.iter().find_map(|src| src.value(m, from, to));
        for load in loads {
            let rps = value(&format!("{load}.rps")).unwrap_or(0.0);
            let history = self.rps.entry(load.clone()).or_default();
            history.push_back(rps);
            while history.len() > 10 {
                history.pop_front();
            }
            let _ = write!(out, "  {load}: {rps:.0} rps");
            if view == View::Tty {
                let _ = write!(out, " {}", sparkline(history));
            }
            if let Some(p99) = value(&format!("{load}.latency.p99")) {
                let _ = write!(out, " p99 {:.0}ms", p99 * 1e3);
            }
            if let Some(err) = value(&format!("{load}.error_rate")) {
                let _ = write!(out, " err {:.1}%", err * 100.0);
            }
        }
        for c in campaigns {
            let n = value(&format!("{c}.findings")).unwrap_or(0.0);
            let _ = write!(out, "  {c}: {n:.0} finding(s)");
        }
        let _ = write!(
            out,
            "  hypothesis: {}  guardrails: ok",
            if s.deviated { "DEVIATED" } else { "holding" }
        );
        out
    }
}

/// Prints one status line the way `view` wants.
pub fn print(view: View, line: &str) {
    match view {
        View::Tty => eprint!("\r\x1b[2K{line}"),
        View::Plain => eprintln!("{line}"),
        View::Quiet => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_highest_second() {
        let v: VecDeque<f64> = [0.0, 50.0, 100.0].into_iter().collect();
        assert_eq!(sparkline(&v), "▁▅█");
    }
}
