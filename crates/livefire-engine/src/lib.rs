//! The engine: turns a validated experiment into a run. It owns the clock, the journal,
//! the ledger, the referee (the only part that decides verdicts), signals, the control
//! socket and the watchdog. Activities only report facts.

pub mod campaign;
pub mod clock;
pub mod control;
pub mod held;
pub mod home;
pub mod journal;
pub mod journal_plan;
pub mod ledger;
pub mod plan;
pub mod probe;
pub mod prom;
pub mod recover;
pub mod run;
pub mod segments;
pub mod view;
pub mod workload;

pub use run::{Attach, Attached, Outcome, RunError, RunOptions, run, run_split};
