//! Integration tests of livefire-core.

/// Journal events as written: field names other tools rely on.
mod events;
/// Exit codes: each meaning has the number DESIGN.md's table gives it.
mod exit;
/// The one grammar of durations, rates, percentages, shares and sizes.
mod units;
