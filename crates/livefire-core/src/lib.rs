//! What every part of livefire shares: the metric source the referee reads, and (as the
//! engine grows) events and undo records. No I/O lives here.

pub mod metrics;
pub mod window;
