//! `process.kill`: sends a signal (SIGKILL unless `signal:` names one) once. The undo
//! record is the target's `restart:` command, run at `at + for`; without one there is
//! nothing to undo and the process stays down.
//! Verify: the killed process is gone; clean once the target runs again.

use livefire_core::undo::ProcessId;
use livefire_spec::{ProcessKill, ProcessSelector};

use super::{process_target, restart_record, signal};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets, process};

const KIND: &str = "process.kill";

pub(crate) struct Kill<'a>(pub &'a ProcessKill);

impl Kind for Kill<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        process_target(targets, &self.0.target, KIND)?;
        signal(self.0.signal.as_deref()).map(drop)
    }

    fn prepare(&self, targets: &Targets, _activity: &str) -> Result<Prepared, FaultError> {
        let name = &self.0.target;
        let (t, sel) = process_target(targets, name, KIND)?;
        let process = process::resolve(name, sel)?;
        Ok(Prepared::new(
            KIND,
            name,
            restart_record(name, t, targets),
            vec![process::resource(process)],
            Killed {
                process,
                signal: signal(self.0.signal.as_deref())?,
                target: name.clone(),
                selector: sel.clone(),
            },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Killed {
    process: ProcessId,
    signal: i32,
    target: String,
    selector: ProcessSelector,
}

impl Action for Killed {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        process::signal(self.process, self.signal)?;
        Ok(format!(
            "signal {} sent to pid {}",
            self.signal, self.process.pid
        ))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let now = process::resolve(&self.target, &self.selector).ok();
        Ok(Some(Seen {
            applied: !process::alive(self.process),
            clean: now.is_some(),
            detail: match now {
                Some(p) => format!("target `{}` runs as pid {}", self.target, p.pid),
                None => format!("target `{}` is not running", self.target),
            },
        }))
    }
}
