//! Faults. Each kind is split in two steps so that the engine can keep its write-ahead
//! promise by construction: [`prepare`] resolves the target and computes the undo record
//! without changing anything; the engine writes that record to the ledger (fsync'd);
//! only then does [`Prepared::apply`] change the world. [`undo`] needs nothing but the
//! record, so `livefire recover` can run it from a fresh process.

pub mod exec;
pub mod process;
pub mod proxy;

use std::collections::BTreeMap;

use livefire_core::undo::{ProcessId, ProxyOwner, UndoRecord};
use livefire_spec::{Fault, Target};

/// Fault kinds this build can run; `run` refuses the others with exit 3.
pub const BUILT: &[&str] = &[
    "process.kill",
    "process.pause",
    "process.restart",
    "command",
    "proxy.latency",
    "proxy.bandwidth",
    "proxy.slow_close",
    "proxy.timeout",
    "proxy.reset_peer",
    "proxy.slicer",
    "proxy.limit_data",
    "proxy.down",
    "proxy.drop",
    "proxy.corrupt",
    "http.abort",
    "http.delay",
];

/// Why a fault could not be prepared, applied or undone.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("fault kind `{0}` is not built in this livefire yet")]
    NotBuilt(String),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    #[error("target `{0}` is not declared")]
    UnknownTarget(String),
    #[error(transparent)]
    Proxy(#[from] proxy::ProxyFaultError),
    #[error("target `{name}` has no `restart:` command, so `{kind}` cannot bring it back")]
    NoRestart { name: String, kind: String },
}

/// The targets a run may touch, resolved: a process target's selector, restart command
/// and user; setup processes appear as processes with a known pid.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub targets: BTreeMap<String, Target>,
    /// Working directory for commands (the experiment file's folder).
    pub cwd: Option<String>,
    /// The run's seed (seeded toxics such as `corrupt` derive from it).
    pub seed: u64,
    /// The proxies the run owns.
    pub live: proxy::Live,
}

/// A fault ready to apply: the target is resolved and the undo record known.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub kind: &'static str,
    pub target: String,
    /// What rolls it back; `None` when nothing needs undoing.
    pub undo: Option<UndoRecord>,
    /// The resources it touches (for refusing overlapping runs).
    pub resources: Vec<String>,
    action: Action,
    live: proxy::Live,
}

#[derive(Debug, Clone)]
enum Action {
    Proxy {
        owner: ProxyOwner,
        proxy: String,
        change: proxy::Change,
    },
    Signal {
        process: ProcessId,
        signal: i32,
    },
    SignalThenRun {
        process: ProcessId,
        signal: i32,
        run: String,
        user: Option<String>,
    },
    Run {
        run: String,
        user: Option<String>,
        timeout_ms: u64,
    },
}

/// Default time limit of a fault's commands.
pub const COMMAND_TIMEOUT_MS: u64 = 30_000;

/// Resolves `fault`'s target now (a restarted process has a new pid) and computes its
/// undo record. Changes nothing. `activity` names what it adds (a proxy toxic).
pub fn prepare(fault: &Fault, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
    let live = targets.live.clone();
    if let Some(change) = proxy::change(fault, activity, targets.seed) {
        let (name, _) = fault.target().unwrap_or_default();
        let t = targets
            .targets
            .get(name)
            .and_then(|t| t.proxy.as_ref())
            .ok_or_else(|| FaultError::UnknownTarget(name.to_owned()))?;
        let (owner, proxy_name) = match (&t.listen, &t.api, &t.name) {
            (Some(listen), _, _) => (
                ProxyOwner::Run {
                    listen: listen.clone(),
                },
                name.to_owned(),
            ),
            (None, Some(url), Some(n)) => (ProxyOwner::Api { url: url.clone() }, n.clone()),
            _ => return Err(FaultError::UnknownTarget(name.to_owned())),
        };
        let undo = match &change {
            proxy::Change::Toxic(t) => UndoRecord::ProxyToxic {
                owner: owner.clone(),
                proxy: proxy_name.clone(),
                toxic: t.name.clone(),
            },
            proxy::Change::Down => UndoRecord::ProxyEnable {
                owner: owner.clone(),
                proxy: proxy_name.clone(),
            },
        };
        return Ok(Prepared {
            kind: fault.kind(),
            target: name.to_owned(),
            resources: vec![undo.resource()],
            undo: Some(undo),
            action: Action::Proxy {
                owner,
                proxy: proxy_name,
                change,
            },
            live,
        });
    }
    let process_target = |name: &str| -> Result<(ProcessId, &Target), FaultError> {
        let t = targets
            .targets
            .get(name)
            .ok_or_else(|| FaultError::UnknownTarget(name.to_owned()))?;
        let sel = t
            .process
            .as_ref()
            .ok_or_else(|| FaultError::UnknownTarget(name.to_owned()))?;
        Ok((process::resolve(name, sel)?, t))
    };
    let restart_record = |t: &Target| {
        t.restart.as_ref().map(|run| UndoRecord::Command {
            run: run.clone(),
            user: t.user.clone(),
            cwd: targets.cwd.clone(),
            timeout_ms: COMMAND_TIMEOUT_MS,
        })
    };
    Ok(match fault {
        Fault::ProcessPause(f) => {
            let (process, _) = process_target(&f.target)?;
            Prepared {
                kind: fault.kind(),
                target: f.target.clone(),
                undo: Some(UndoRecord::Signal {
                    process,
                    signal: nix::libc::SIGCONT,
                }),
                resources: vec![process::resource(process)],
                action: Action::Signal {
                    process,
                    signal: nix::libc::SIGSTOP,
                },
                live: live.clone(),
            }
        }
        Fault::ProcessKill(f) => {
            let (process, t) = process_target(&f.target)?;
            let signal = f
                .signal
                .as_deref()
                .and_then(livefire_spec::validate::parse_signal)
                .unwrap_or(nix::libc::SIGKILL);
            Prepared {
                kind: fault.kind(),
                target: f.target.clone(),
                undo: restart_record(t),
                resources: vec![process::resource(process)],
                action: Action::Signal { process, signal },
                live,
            }
        }
        Fault::ProcessRestart(f) => {
            let (process, t) = process_target(&f.target)?;
            let run = t.restart.clone().ok_or_else(|| FaultError::NoRestart {
                name: f.target.clone(),
                kind: fault.kind().into(),
            })?;
            let signal = f
                .signal
                .as_deref()
                .and_then(livefire_spec::validate::parse_signal)
                .unwrap_or(nix::libc::SIGKILL);
            Prepared {
                kind: fault.kind(),
                target: f.target.clone(),
                // Until the restart command has run, recovering means running it.
                undo: restart_record(t),
                resources: vec![process::resource(process)],
                action: Action::SignalThenRun {
                    process,
                    signal,
                    run,
                    user: t.user.clone(),
                },
                live: live.clone(),
            }
        }
        Fault::Command(c) => {
            let timeout_ms = c
                .timeout
                .map(|d| d.as_millis())
                .unwrap_or(COMMAND_TIMEOUT_MS);
            Prepared {
                kind: fault.kind(),
                target: String::new(),
                undo: c.rollback.as_ref().map(|run| UndoRecord::Command {
                    run: run.clone(),
                    user: c.user.clone(),
                    cwd: targets.cwd.clone(),
                    timeout_ms,
                }),
                resources: Vec::new(),
                action: Action::Run {
                    run: c.apply.clone(),
                    user: c.user.clone(),
                    timeout_ms,
                },
                live: live.clone(),
            }
        }
        other => return Err(FaultError::NotBuilt(other.kind().to_owned())),
    })
}

impl Prepared {
    /// Changes the world. Call only after the undo record is in the ledger.
    pub fn apply(&self, cwd: Option<&str>) -> Result<String, FaultError> {
        match &self.action {
            Action::Proxy {
                owner,
                proxy,
                change,
            } => Ok(proxy::apply(owner, proxy, change, &self.live)?),
            Action::Signal { process, signal } => {
                process::signal(*process, *signal)?;
                Ok(format!("signal {signal} sent to pid {}", process.pid))
            }
            Action::SignalThenRun {
                process,
                signal,
                run,
                user,
            } => {
                process::signal(*process, *signal)?;
                process::wait_gone(*process, std::time::Duration::from_secs(10));
                let out = exec::run(run, user.as_deref(), cwd, COMMAND_TIMEOUT_MS)?;
                out.check()?;
                Ok(format!(
                    "pid {} killed with signal {signal}; `{run}` ran",
                    process.pid
                ))
            }
            Action::Run {
                run,
                user,
                timeout_ms,
            } => {
                let out = exec::run(run, user.as_deref(), cwd, *timeout_ms)?;
                out.check()?;
                Ok(format!("`{run}` exited 0"))
            }
        }
    }

    /// A restart after `process.restart` applied means nothing is left to undo.
    pub fn undo_after_apply(&self) -> Option<&UndoRecord> {
        match self.action {
            Action::SignalThenRun { .. } => None,
            _ => self.undo.as_ref(),
        }
    }
}

/// Rolls back from the record alone (as `livefire recover` does). Returns what it did.
pub fn undo(record: &UndoRecord) -> Result<String, FaultError> {
    undo_with(record, None)
}

/// Rolls back, with the run's live proxies when the run is still going.
pub fn undo_with(record: &UndoRecord, live: Option<&proxy::Live>) -> Result<String, FaultError> {
    match record {
        UndoRecord::ProxyToxic {
            owner,
            proxy,
            toxic,
        } => Ok(proxy::undo(owner, proxy, Some(toxic), live)?),
        UndoRecord::ProxyEnable { owner, proxy } => Ok(proxy::undo(owner, proxy, None, live)?),
        UndoRecord::Signal { process, signal } => match process::signal(*process, *signal) {
            Ok(()) => Ok(format!("signal {signal} sent to pid {}", process.pid)),
            // The process it would resume is gone: there is nothing left to undo, and a
            // reused pid is never signalled.
            Err(process::ProcessError::Gone { .. }) | Err(process::ProcessError::Reused { .. }) => {
                Ok(format!("pid {} is gone; nothing to undo", process.pid))
            }
            Err(e) => Err(e.into()),
        },
        UndoRecord::Command {
            run,
            user,
            cwd,
            timeout_ms,
        } => {
            let out = exec::run(run, user.as_deref(), cwd.as_deref(), *timeout_ms)?;
            out.check()?;
            Ok(format!("`{run}` exited 0"))
        }
    }
}
