//! What every part of livefire shares: journal events, exit codes, undo records, metric
//! windows, the metric source the referee reads, the JSON path subset, and the one
//! grammar of durations, rates, percentages and sizes. No I/O lives here.

pub mod events;
pub mod exit;
pub mod jsonpath;
pub mod metrics;
pub mod undo;
pub mod units;
pub mod window;

/// The livefire version, one for the whole workspace (`[workspace.package] version`):
/// what `--version` prints and what the journal, summary, report and JUnit record.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
