//! `process.restart`: kills the process (SIGKILL unless `signal:` names one), waits
//! until it is gone, then runs the target's `restart:` at once. Until the restart has
//! run, the undo record is that same command; once it ran, nothing is left to undo.
//! Verify: the target runs as a new process; clean while the target runs.

use std::time::Duration;

use livefire_core::undo::ProcessId;
use livefire_spec::{ProcessKill, ProcessSelector};

use super::{process_target, restart_record, signal};
use crate::process;
use crate::{Action, COMMAND_TIMEOUT_MS, Cx, FaultError, Kind, Prepared, Seen, Targets, exec};

const KIND: &str = "process.restart";

pub(crate) struct Restart<'a>(pub &'a ProcessKill);

impl Kind for Restart<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        let (t, _) = process_target(targets, &self.0.target, KIND)?;
        if t.restart.is_none() {
            return Err(FaultError::NoRestart {
                name: self.0.target.clone(),
                kind: KIND,
            });
        }
        signal(self.0.signal.as_deref()).map(drop)
    }

    fn prepare(&self, targets: &Targets, _activity: &str) -> Result<Prepared, FaultError> {
        let name = &self.0.target;
        let (t, sel) = process_target(targets, name, KIND)?;
        let process = process::resolve(name, sel)?;
        let undo = restart_record(name, t, targets);
        let run = t.restart.clone().ok_or_else(|| FaultError::NoRestart {
            name: name.clone(),
            kind: KIND,
        })?;
        Ok(Prepared::new(
            KIND,
            name,
            undo,
            vec![process::resource(process)],
            Restarted {
                process,
                signal: signal(self.0.signal.as_deref())?,
                run,
                user: t.user.clone(),
                cwd: targets.restart_cwd_of(name),
                target: name.clone(),
                selector: sel.clone(),
            },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Restarted {
    process: ProcessId,
    signal: i32,
    run: String,
    user: Option<String>,
    /// Where `run` runs: the target's own, not always the commands' `cx.cwd`.
    cwd: Option<String>,
    target: String,
    selector: ProcessSelector,
}

impl Action for Restarted {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        process::signal(self.process, self.signal)?;
        process::wait_gone(self.process, Duration::from_secs(10));
        exec::run(
            &self.run,
            self.user.as_deref(),
            self.cwd.as_deref(),
            COMMAND_TIMEOUT_MS,
        )?
        .check()?;
        Ok(format!(
            "pid {} killed with signal {}; `{}` ran",
            self.process.pid, self.signal, self.run
        ))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let now = process::resolve(&self.target, &self.selector).ok();
        Ok(Some(Seen {
            applied: now.is_some_and(|p| p != self.process) && !process::alive(self.process),
            clean: now.is_some(),
            detail: match now {
                Some(p) => format!("target `{}` runs as pid {}", self.target, p.pid),
                None => format!("target `{}` is not running", self.target),
            },
        }))
    }

    fn heals_itself(&self) -> bool {
        true
    }
}
