//! The one interface through which the referee reads metrics that activities publish.
//!
//! A workload publishes one-second windows; the referee never sees windows, only the
//! value of a named metric (`browse.latency.p99`) aggregated over a time range, so that
//! percentiles over several seconds are computed from merged histograms, never averaged.

/// Something that publishes metrics by name (a workload, a fuzz campaign).
pub trait MetricSource: Send + Sync {
    /// The metric names this source can answer, e.g. `browse.rps`.
    fn names(&self) -> Vec<String>;

    /// The value of `metric` aggregated over `[from_ms, to_ms)` (milliseconds since the
    /// run's start), or `None` when the source has no data for that range yet.
    ///
    /// Units are canonical: latencies in seconds, rates and shares as fractions,
    /// throughput per second, counts as counts.
    fn value(&self, metric: &str, from_ms: u64, to_ms: u64) -> Option<f64>;
}
