//! `command`: runs `apply` (with `sh -c`, as `user`, within `timeout`, default 30 s);
//! the undo record is the `rollback` command, if any.
//! Verify: none; a command does whatever it does, and the experiment's probes observe it.

use livefire_core::undo::UndoRecord;
use livefire_spec::CommandFault;

use crate::{Action, COMMAND_TIMEOUT_MS, Cx, FaultError, Kind, Prepared, Seen, Targets, exec};

const KIND: &str = "command";

pub(crate) struct Command<'a>(pub &'a CommandFault);

impl Kind for Command<'_> {
    fn check(&self, _: &Targets) -> Result<(), FaultError> {
        match &self.0.user {
            Some(user) if exec::lookup_user(user).is_none() => {
                Err(exec::ExecError::NoUser(user.clone()).into())
            }
            _ => Ok(()),
        }
    }

    fn prepare(&self, targets: &Targets, _activity: &str) -> Result<Prepared, FaultError> {
        let c = self.0;
        let timeout_ms = c
            .timeout
            .map(|d| d.as_millis())
            .unwrap_or(COMMAND_TIMEOUT_MS);
        Ok(Prepared::new(
            KIND,
            "",
            c.rollback.as_ref().map(|run| UndoRecord::Command {
                run: run.clone(),
                user: c.user.clone(),
                cwd: targets.cwd.clone(),
                timeout_ms,
            }),
            Vec::new(),
            Ran {
                run: c.apply.clone(),
                user: c.user.clone(),
                timeout_ms,
            },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Ran {
    run: String,
    user: Option<String>,
    timeout_ms: u64,
}

impl Action for Ran {
    fn apply(&self, cx: &Cx<'_>) -> Result<String, FaultError> {
        exec::run(&self.run, self.user.as_deref(), cx.cwd, self.timeout_ms)?.check()?;
        Ok(format!("`{}` exited 0", self.run))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        Ok(None)
    }
}
