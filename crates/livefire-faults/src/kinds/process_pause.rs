//! `process.pause`: SIGSTOP for the fault's duration; the undo record sends SIGCONT.
//! Verify: the process is stopped (`T` in /proc), and runs again after the undo.

use livefire_core::undo::{ProcessId, UndoRecord};
use livefire_spec::TargetOnly;
use nix::libc::{SIGCONT, SIGSTOP};

use super::process_target;
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets, process};

const KIND: &str = "process.pause";

pub(crate) struct Pause<'a>(pub &'a TargetOnly);

impl Kind for Pause<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        process_target(targets, &self.0.target, KIND).map(drop)
    }

    fn prepare(&self, targets: &Targets, _activity: &str) -> Result<Prepared, FaultError> {
        let name = &self.0.target;
        let (_, sel) = process_target(targets, name, KIND)?;
        let process = process::resolve(name, sel)?;
        Ok(Prepared::new(
            KIND,
            name,
            Some(UndoRecord::Signal {
                process,
                signal: SIGCONT,
            }),
            vec![process::resource(process)],
            Paused { process },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Paused {
    process: ProcessId,
}

impl Action for Paused {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        process::signal(self.process, SIGSTOP)?;
        Ok(format!("pid {} stopped (SIGSTOP)", self.process.pid))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let state = process::state_of(self.process);
        Ok(Some(Seen {
            applied: matches!(state, Some('T' | 't')),
            clean: matches!(state, Some(s) if !matches!(s, 'T' | 't' | 'Z' | 'X')),
            detail: match state {
                Some(s) => format!("pid {} is in state {s}", self.process.pid),
                None => format!("pid {} is gone", self.process.pid),
            },
        }))
    }
}
