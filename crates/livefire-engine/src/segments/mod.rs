//! Split runs: one experiment's loads and campaigns spread over N segment processes
//! (`livefire agent`), launched by a back end (`launch::Launcher`: local child
//! processes here, Kubernetes in `livefire-k8s`), while the coordinator alone owns the
//! clock, the faults, the ledger and the referee.

pub mod agent;
pub mod coordinator;
pub mod launch;
pub mod local;
pub mod merge;
pub mod protocol;
pub mod split;

pub use launch::{LaunchError, LaunchSpec, Launched, Launcher, SegmentEvent, SegmentExit};
pub use local::LocalLauncher;
