//! livefire-serve's library parts without a server: tokens and roles against a real
//! store, and schedules' cron expressions. The HTTP end to end (runs, STOP, schedules,
//! approvals, the UI in Chromium, the fuzzer) is in `crates/livefire/tests/it/serve*.rs`,
//! which need the `livefire` binary.

/// Approvals: only a second person decides; a request cut off by a crash waits again.
mod approvals;
/// Schedules' cron: accepted and refused expressions, the next firing after an instant.
mod cron;
/// Tokens: made, stored hashed, refused when unknown, expired or revoked; roles ordered.
mod tokens;
