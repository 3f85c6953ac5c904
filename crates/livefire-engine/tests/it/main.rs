//! Tests of the engine's parts that stand alone. Whole runs are tested end to end, on
//! real processes, in the `livefire` crate's tests.

/// Which pending undo record holds which target, every kind against every kind.
mod held;
/// The ledger read back: pending entries, why their undo failed, forgotten ones; and the
/// event a forget appends to an ended run's journal.
mod ledger;
/// The coordinator's sparse merge of window lines: exact against whole windows.
mod merge;
/// `livefire_engine::plan::plan`: display names, defaults, refusals.
mod plan;
/// The local segment launcher: real child processes, their lines and exits, stop.
mod segments;
/// `sql` probes on a real PostgreSQL: rows, values, errors, timeout, masked DSN.
mod sql_probe;
