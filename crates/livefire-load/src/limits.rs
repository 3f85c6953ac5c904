//! The open-files limit of the process: every connection is a file, so each virtual
//! user of a closed-model load needs one. `raise_open_files` lifts the soft limit to the
//! hard limit at start (what `ulimit -n` would do), `check_open_files` refuses, before
//! anything is sent, virtual users the limit cannot hold.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::LoadError;
use crate::config::{Executor, LoadConfig};
use crate::schedule::VuSchedule;

/// Files kept free for everything that is not a load's connection: stdio, the journal,
/// the runtime, probes and read-backs.
pub const RESERVED_FILES: u64 = 256;

/// The process's open-files limit after `raise_open_files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit now: what the process may hold.
    pub limit: u64,
    /// The soft limit before it was raised.
    pub was: u64,
    /// The hard limit (the most an unprivileged process may raise to).
    pub hard: u64,
}

impl std::fmt::Display for OpenFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "open files {}", self.limit)?;
        if self.was != self.limit {
            write!(f, " (raised from {})", self.was)?;
        }
        Ok(())
    }
}

/// Raises the soft open-files limit to the hard limit (or, when the hard limit is
/// unlimited, to the kernel's `fs.nr_open`). Returns the limits as they are afterwards;
/// `None` when they cannot be read.
pub fn raise_open_files() -> Option<OpenFiles> {
    let (was, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let mut limit = was;
    let mut targets = vec![hard];
    if let Some(nr_open) = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    {
        targets.push(nr_open.min(hard));
    }
    for target in targets {
        if target <= limit {
            break;
        }
        if setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
            limit = target;
            break;
        }
    }
    Some(OpenFiles { limit, was, hard })
}

/// The connections a load holds at once for sure: one per virtual user of this
/// segment's share (closed model). An open-model load opens connections as its answers
/// are slow, up to `max_in_flight`, so it has no fixed need.
pub fn connections_needed(config: &LoadConfig) -> u64 {
    match &config.executor {
        Executor::Vus { vus, stages, .. } => {
            let max = VuSchedule::new(*vus, stages, config.duration).max_vus();
            config.segment.share_of(max)
        }
        Executor::Rate { .. } => 0,
    }
}

/// Refuses `needed` connections (for the loads named in `what`) that `limits` cannot
/// hold with `RESERVED_FILES` to spare, saying what to do.
pub fn check_open_files(needed: u64, limits: &OpenFiles, what: &str) -> Result<(), LoadError> {
    if needed == 0 || needed + RESERVED_FILES <= limits.limit {
        return Ok(());
    }
    Err(LoadError::Config(format!(
        "{what}: {needed} virtual users in this process need {needed} connections, one open file each, plus {RESERVED_FILES} for the rest, but the open-files limit is {} (hard limit {}): raise the hard limit (`ulimit -Hn` as root, systemd's LimitNOFILE, the container runtime's nofile) or split the load over more segments (--segments)",
        limits.limit, limits.hard
    )))
}
