//! `memory.stress`: one `livefire stress-worker` process holds `size` bytes, every page
//! written, so it is resident; refused when it would leave less than `keep_available`
//! of what the system (or livefire's cgroup) could still give. The undo record stops the
//! worker by its token, which frees the memory.
//! Verify: the worker's resident memory is at least `size`; clean once it is gone.

use livefire_core::undo::UndoRecord;
use livefire_spec::MemoryStress;

use super::{bytes, cpu_stress::worker_seen, host_target};
use crate::stress::{self, Work, WorkerArgs};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets};

const KIND: &str = "memory.stress";

pub(crate) struct Memory<'a>(pub &'a MemoryStress);

impl Memory<'_> {
    /// What must stay available: `keep_available`, else the larger of 10% of memory
    /// and 256MiB.
    fn margin(&self, total: u64) -> u64 {
        match self.0.keep_available {
            Some(k) => k.0,
            None => (total / 10).max(256 << 20),
        }
    }
}

impl Memory<'_> {
    /// The margin, once `size` is known to fit what is available now.
    fn room(&self) -> Result<u64, FaultError> {
        let (total, available) = stress::memory().map_err(|e| FaultError::Refused {
            kind: KIND,
            why: e.to_string(),
        })?;
        let margin = self.margin(total);
        fits(self.0.size.0, available, margin)?;
        Ok(margin)
    }
}

impl Kind for Memory<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        host_target(targets, self.0.target.as_deref(), KIND)?;
        if let Some((_, why)) = self.0.mistakes().into_iter().next() {
            return Err(FaultError::Refused { kind: KIND, why });
        }
        // What the system has now; `prepare` and `apply` look again.
        self.room().map(drop)
    }

    fn prepare(&self, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
        let size = self.0.size.0;
        let margin = self.room()?;
        let token = stress::new_token("memory", activity);
        let record = UndoRecord::StressWorker {
            token: token.clone(),
        };
        Ok(Prepared::new(
            KIND,
            self.0.target.as_deref().unwrap_or(""),
            Some(record.clone()),
            vec![record.resource()],
            Hold {
                prefix: stress::token_prefix("memory", activity),
                token,
                size,
                margin,
            },
            targets,
        ))
    }
}

/// Refuses a `size` that would leave less than `margin` of `available`.
fn fits(size: u64, available: u64, margin: u64) -> Result<(), FaultError> {
    if size.saturating_add(margin) <= available {
        return Ok(());
    }
    Err(FaultError::Refused {
        kind: KIND,
        why: format!(
            "holding {} would leave less than the {} that must stay available ({} is available now): \
             ask for at most {}, or lower `keep_available`",
            bytes(size),
            bytes(margin),
            bytes(available),
            bytes(available.saturating_sub(margin))
        ),
    })
}

#[derive(Debug)]
struct Hold {
    token: String,
    /// What verify looks for: any worker of this activity (see `stress::token_prefix`).
    prefix: String,
    size: u64,
    margin: u64,
}

impl Action for Hold {
    fn apply(&self, cx: &Cx<'_>) -> Result<String, FaultError> {
        // Memory may have gone since `prepare`: look again, right before taking it.
        let (_, available) = stress::memory().map_err(|e| FaultError::Refused {
            kind: KIND,
            why: e.to_string(),
        })?;
        fits(self.size, available, self.margin)?;
        let pid = stress::spawn(&WorkerArgs {
            token: self.token.clone(),
            parent: std::process::id(),
            bound: stress::bound(cx.until),
            work: Work::Memory { bytes: self.size },
        })?;
        Ok(format!(
            "{} held, every page written (stress worker pid {pid})",
            bytes(self.size)
        ))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        Ok(Some(worker_seen(&self.prefix, |pid| {
            stress::rss(pid).is_some_and(|r| r >= self.size)
        })))
    }
}
