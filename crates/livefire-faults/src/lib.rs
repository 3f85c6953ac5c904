//! Faults. Every kind is one file under `kinds/` and one arm of the exhaustive match in
//! [`catalog`], so a kind the spec adds does not compile until it is routed.
//!
//! Each kind is split in steps so that the engine keeps its write-ahead promise by
//! construction: [`check`] says what can be known before anything is applied (without
//! the target alive); [`prepare`] resolves the target and computes the undo record
//! without changing anything; the engine writes that record to the ledger (fsync'd);
//! only then does [`Prepared::apply`] change the world. [`undo`] needs nothing but the
//! record, so `livefire recover` can run it from a fresh process. [`Prepared::verify`]
//! observes whether the fault shows and whether the world is clean again (the
//! conformance harness runs every kind through it).

pub mod catalog;
pub mod exec;
pub mod external;
mod kinds;
pub mod net;
pub mod pg_sessions;
pub mod pg_watch;
pub mod process;
pub mod proxy;
pub mod stress;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use livefire_core::undo::UndoRecord;
use livefire_spec::Target;

pub use catalog::{check, prepare, undo, undo_with};
pub use kinds::postgres_corrupt::CorruptError;

/// Why a fault could not be checked, prepared, applied, verified or undone.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    #[error("target `{0}` is not declared: declare it under `targets:`")]
    UnknownTarget(String),
    #[error("`{kind}` acts on a {wants} target; `{name}` is not one")]
    WrongTarget {
        name: String,
        kind: &'static str,
        wants: &'static str,
    },
    #[error(transparent)]
    Proxy(#[from] proxy::ProxyFaultError),
    #[error("target `{name}` has no `restart:` command, so `{kind}` cannot bring it back")]
    NoRestart { name: String, kind: &'static str },
    #[error("unknown signal `{0}`: write e.g. `SIGKILL`, `TERM` or `9`")]
    Signal(String),
    #[error(transparent)]
    Stress(#[from] stress::StressError),
    /// A fault whose attributes or target refuse it, before anything is applied.
    #[error("`{kind}`: {why}")]
    Refused { kind: &'static str, why: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// An attribute the file states wrongly (validation refuses it first, where written).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Corrupt(CorruptError),
    #[error(transparent)]
    Postgres(#[from] pg_sessions::PgError),
    /// Undoing a record whose code is not in this crate (`external`), or its error.
    #[error("{0}")]
    Elsewhere(String),
}

/// The targets a run may touch, resolved: a process target's selector, restart command
/// and user; setup processes appear as processes with a known pid.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub targets: BTreeMap<String, Target>,
    /// Working directory for commands (the experiment file's folder).
    pub cwd: Option<String>,
    /// Where a target's `restart:` runs instead, by target name: a setup process
    /// restarts in its own `cwd:`, where it was started.
    pub restart_cwd: BTreeMap<String, String>,
    /// The run's seed (seeded toxics such as `corrupt` derive from it).
    pub seed: u64,
    /// The proxies the run owns.
    pub live: proxy::Live,
    /// livefire's home (`$LIVEFIRE_HOME`): where faults keep what they must put back
    /// later (`postgres.corrupt`'s saved pages, in `saved/`).
    pub home: Option<std::path::PathBuf>,
}

impl Targets {
    /// The working directory of target `name`'s `restart:`.
    pub fn restart_cwd_of(&self, name: &str) -> Option<String> {
        self.restart_cwd.get(name).or(self.cwd.as_ref()).cloned()
    }
}

/// Default time limit of a fault's commands.
pub const COMMAND_TIMEOUT_MS: u64 = 30_000;

/// A fault ready to apply: the target is resolved and the undo record known.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub kind: &'static str,
    pub target: String,
    /// What rolls it back; `None` when nothing needs undoing.
    pub undo: Option<UndoRecord>,
    /// The resources it touches (for refusing overlapping runs).
    pub resources: Vec<String>,
    action: Arc<dyn Action>,
    live: proxy::Live,
}

/// What [`Prepared::verify`] saw. `applied` and `clean` are not always opposites: after
/// `process.restart` a new process runs (applied) and the target is up (clean).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The fault shows: the process is stopped, the toxic is on the proxy, ...
    pub applied: bool,
    /// The world is as a probe saw it before the fault.
    pub clean: bool,
    /// What was looked at, for messages.
    pub detail: String,
}

/// The half of a kind that runs after `prepare`: plain data (pids, addresses, names)
/// plus the two things it does with it.
pub(crate) trait Action: std::fmt::Debug + Send + Sync {
    /// Changes the world. Runs only after the undo record is in the ledger.
    fn apply(&self, cx: &Cx<'_>) -> Result<String, FaultError>;
    /// Observes the world; `None` when livefire cannot see this kind's effect.
    fn verify(&self, cx: &Cx<'_>) -> Result<Option<Seen>, FaultError>;
    /// True when a successful `apply` leaves nothing to undo (a restart that ran).
    fn heals_itself(&self) -> bool {
        false
    }
}

/// What an [`Action`] may use besides its own data.
pub(crate) struct Cx<'a> {
    /// Working directory for commands.
    pub cwd: Option<&'a str>,
    /// The proxies the run owns.
    pub live: &'a proxy::Live,
    /// When the fault ends, if the caller said: what a fault that runs a process of its
    /// own (a stress worker) bounds it by.
    pub until: Option<Instant>,
}

impl Prepared {
    pub(crate) fn new(
        kind: &'static str,
        target: &str,
        undo: Option<UndoRecord>,
        resources: Vec<String>,
        action: impl Action + 'static,
        targets: &Targets,
    ) -> Prepared {
        Prepared {
            kind,
            target: target.to_owned(),
            undo,
            resources,
            action: Arc::new(action),
            live: targets.live.clone(),
        }
    }

    /// Changes the world. Call only after the undo record is in the ledger.
    pub fn apply(&self, cwd: Option<&str>) -> Result<String, FaultError> {
        self.action.apply(&Cx {
            cwd,
            live: &self.live,
            until: None,
        })
    }

    /// [`Prepared::apply`] for a fault that ends at `until`: a fault that runs a process
    /// of its own (a stress worker) makes it stop by itself shortly after, whatever
    /// happens to livefire.
    pub fn apply_until(&self, cwd: Option<&str>, until: Instant) -> Result<String, FaultError> {
        self.action.apply(&Cx {
            cwd,
            live: &self.live,
            until: Some(until),
        })
    }

    /// Looks at the world now: does the fault show, is the world clean? `None` when
    /// livefire cannot see this kind's effect (a `command` does whatever it does; the
    /// experiment's probes observe it).
    pub fn verify(&self) -> Result<Option<Seen>, FaultError> {
        self.action.verify(&Cx {
            cwd: None,
            live: &self.live,
            until: None,
        })
    }

    /// What is left to undo once `apply` succeeded: nothing after a restart that ran.
    pub fn undo_after_apply(&self) -> Option<&UndoRecord> {
        if self.action.heals_itself() {
            None
        } else {
            self.undo.as_ref()
        }
    }
}

/// A fault's spec side: what each kind file implements for the catalog.
pub(crate) trait Kind {
    /// What can be checked before anything is applied, without the target alive.
    fn check(&self, targets: &Targets) -> Result<(), FaultError>;
    /// Resolves the target now and computes the undo record. Changes nothing.
    fn prepare(&self, targets: &Targets, activity: &str) -> Result<Prepared, FaultError>;
}

/// The declared target `name`, or why there is none.
pub(crate) fn target<'t>(targets: &'t Targets, name: &str) -> Result<&'t Target, FaultError> {
    targets
        .targets
        .get(name)
        .ok_or_else(|| FaultError::UnknownTarget(name.to_owned()))
}
