//! Integration tests of livefire-core.

/// Exit codes: each meaning has the number DESIGN.md's table gives it.
mod exit;
/// The one grammar of durations, rates, percentages, shares and sizes.
mod units;
