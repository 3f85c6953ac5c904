//! What every part of livefire shares: journal events, undo records, metric windows,
//! and the metric source the referee reads. No I/O lives here.

pub mod events;
pub mod metrics;
pub mod undo;
pub mod window;
