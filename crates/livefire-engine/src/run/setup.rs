//! The setup phase: the proxies the run owns, the `setup:` processes and their ready
//! probes; and, at teardown, stopping those processes.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::Arc;
use std::time::{Duration, Instant};

use livefire_core::events::{AbortCause, Event};
use livefire_faults::Targets;
use livefire_spec::{ProcessSelector, Ready, Target};
use tokio::sync::mpsc;

use crate::journal::Journal;
use crate::plan::Plan;
use crate::probe;

use super::shared::Shared;

/// Starts the proxies the run owns (`proxy: { listen, upstream }` targets).
pub(super) fn start_proxies(plan: &Plan, shared: &Shared) -> Result<(), SetupFailure> {
    for (name, t) in &plan.targets {
        let Some(livefire_spec::ProxyTarget {
            listen: Some(listen),
            upstream: Some(upstream),
            ..
        }) = &t.proxy
        else {
            continue;
        };
        let config =
            livefire_proxy::ProxyConfig::new(name.clone(), listen.clone(), upstream.clone());
        let proxy =
            livefire_proxy::Proxy::start_with(config, tokio_util::sync::CancellationToken::new())
                .map_err(|source| SetupFailure::Proxy {
                name: name.clone(),
                source,
            })?;
        shared.journal.emit(Event::ProxyStarted {
            name: name.clone(),
            listen: listen.clone(),
            upstream: upstream.clone(),
        });
        shared
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .proxies
            .insert(listen.clone(), Arc::new(proxy));
    }
    Ok(())
}

/// Why setup did not complete.
pub(super) enum SetupError {
    Failed(SetupFailure),
    Aborted(AbortCause),
}

/// What went wrong in setup; nothing was applied. Each says what to look at or change.
#[derive(Debug, thiserror::Error)]
pub(super) enum SetupFailure {
    #[error("proxy target `{name}`: {source}")]
    Proxy {
        name: String,
        source: livefire_proxy::ProxyError,
    },
    #[error(
        "setup `{name}`: {addr} already answers before the process started: something else holds that port; stop it or change the port"
    )]
    PortTaken { name: String, addr: String },
    #[error("cannot create {}: {source}", path.display())]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("setup `{name}`: {source}")]
    Shell {
        name: String,
        source: livefire_faults::exec::ExecError,
    },
    #[error("setup `{name}`: cannot start `{command}`: {source}")]
    Spawn {
        name: String,
        command: String,
        source: std::io::Error,
    },
    #[error("setup `{name}` exited ({status}) before it was ready; see {}", log.display())]
    Exited {
        name: String,
        status: ExitStatus,
        log: PathBuf,
    },
    #[error("setup `{name}` was not ready within {timeout} ({detail}); see {}", log.display())]
    NotReady {
        name: String,
        timeout: livefire_spec::values::Duration,
        detail: String,
        log: PathBuf,
    },
}

/// Starts every `setup:` process in order and waits until each is ready. The processes
/// started so far are in `children` whatever happens, so teardown stops them.
pub(super) async fn start_setup(
    plan: &Plan,
    run_dir: &Path,
    journal: &Journal,
    children: &mut Vec<(String, Child)>,
    abort_rx: &mut mpsc::UnboundedReceiver<AbortCause>,
) -> Option<SetupError> {
    let cwd = plan.dir.to_string_lossy();
    for s in &plan.setup {
        let log = run_dir.join(format!("setup-{}.log", s.name));
        // If the ready address answers before the process starts, something else holds
        // it: waiting for "ready" would judge the wrong process.
        if let Some(ready) = &s.ready {
            let (probe, expect) = ready_probe(ready);
            if probe::sample(&probe, READY_PROBE_TIMEOUT, &expect, Some(&cwd))
                .await
                .ok
            {
                let addr = match ready {
                    Ready::Http(h) => h.url.clone(),
                    Ready::Tcp(t) => t.address.clone(),
                };
                return Some(SetupError::Failed(SetupFailure::PortTaken {
                    name: s.name.clone(),
                    addr,
                }));
            }
        }
        let child = match spawn_setup_process(s, &log) {
            Ok(c) => c,
            Err(e) => return Some(SetupError::Failed(e)),
        };
        journal.emit(Event::SetupStarted {
            name: s.name.clone(),
            pid: child.id(),
        });
        children.push((s.name.clone(), child));
        let Some(ready) = &s.ready else { continue };
        let (_, child) = children.last_mut().expect("pushed above");
        if let Some(e) = wait_until_ready(s, ready, child, &cwd, &log, abort_rx).await {
            return Some(e);
        }
    }
    None
}

/// Starts one setup process in its own process group, its output to `log`.
fn spawn_setup_process(s: &crate::plan::SetupStep, log: &Path) -> Result<Child, SetupFailure> {
    let file = std::fs::File::create(log).map_err(|source| SetupFailure::Log {
        path: log.to_owned(),
        source,
    })?;
    // `exec` so the pid livefire holds is the process itself, not a shell.
    let simple = !s.command.contains([';', '&', '|', '\n', '(', '`', '$']);
    let command = if simple {
        format!("exec {}", s.command)
    } else {
        s.command.clone()
    };
    let mut cmd = livefire_faults::exec::shell(&command, s.user.as_deref(), Some(&s.cwd)).map_err(
        |source| SetupFailure::Shell {
            name: s.name.clone(),
            source,
        },
    )?;
    cmd.envs(&s.env);
    let err = file
        .try_clone()
        .map(std::process::Stdio::from)
        .unwrap_or_else(|_| std::process::Stdio::null());
    die_with_livefire(&mut cmd);
    cmd.stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|source| SetupFailure::Spawn {
            name: s.name.clone(),
            command: s.command.clone(),
            source,
        })
}

/// Polls the ready probe until it answers, the process exits, its timeout (default
/// 10 s) runs out, or the run is aborted.
async fn wait_until_ready(
    s: &crate::plan::SetupStep,
    ready: &Ready,
    child: &mut Child,
    cwd: &str,
    log: &Path,
    abort_rx: &mut mpsc::UnboundedReceiver<AbortCause>,
) -> Option<SetupError> {
    let timeout = s.ready_timeout;
    let deadline = Instant::now() + timeout;
    loop {
        let (probe, expect) = ready_probe(ready);
        let sample = probe::sample(&probe, READY_PROBE_TIMEOUT, &expect, Some(cwd)).await;
        if sample.ok {
            return None;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Some(SetupError::Failed(SetupFailure::Exited {
                name: s.name.clone(),
                status,
                log: log.to_owned(),
            }));
        }
        if Instant::now() >= deadline {
            return Some(SetupError::Failed(SetupFailure::NotReady {
                name: s.name.clone(),
                timeout: livefire_spec::values::Duration(timeout),
                detail: sample.detail,
                log: log.to_owned(),
            }));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            Some(cause) = abort_rx.recv() => return Some(SetupError::Aborted(cause)),
        }
    }
}

/// The targets faults act on: the declared ones, and each setup process as a process
/// target of its name (with its `restart:`), and the proxies the run started.
pub(super) fn fault_targets(plan: &Plan, children: &[(String, Child)], shared: &Shared) -> Targets {
    let mut targets = Targets {
        targets: plan.targets.clone(),
        cwd: Some(plan.dir.to_string_lossy().into_owned()),
        seed: plan.settings.seed,
        live: shared
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        home: Some(crate::home::home()),
        restart_cwd: Default::default(),
    };
    for (name, child) in children {
        let setup = plan.setup.iter().find(|s| &s.name == name);
        let restart = setup.and_then(|s| s.restart.clone());
        // It restarts where it was started.
        if let Some(s) = setup {
            targets.restart_cwd.insert(name.clone(), s.cwd.clone());
        }
        targets.targets.insert(
            name.clone(),
            Target {
                process: Some(ProcessSelector {
                    pid: Some(child.id()),
                    ..Default::default()
                }),
                restart,
                // It restarts as whom it was started as.
                user: setup.and_then(|s| s.user.clone()),
                ..Default::default()
            },
        );
    }
    targets
}

/// Makes a setup process die with livefire even when livefire is killed with SIGKILL,
/// so a crash never leaves the experiment's own processes holding their ports. (What
/// the faults changed is the ledger's business; `livefire recover` undoes it.)
#[allow(unsafe_code)]
pub(super) fn die_with_livefire(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only makes the
    // prctl(PR_SET_PDEATHSIG) system call, which is async-signal-safe; it allocates
    // nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

/// The probe that says a setup process is ready.
/// How long one poll of a setup process's `ready:` may take.
const READY_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

pub(super) fn ready_probe(ready: &Ready) -> (livefire_spec::Probe, livefire_spec::Expect) {
    let timeout = None;
    match ready {
        Ready::Http(h) => (
            livefire_spec::Probe::Http(livefire_spec::HttpProbe {
                url: h.url.clone(),
                method: None,
                headers: Default::default(),
                body: None,
                timeout,
            }),
            livefire_spec::Expect::default(),
        ),
        Ready::Tcp(t) => (
            livefire_spec::Probe::Tcp(livefire_spec::TcpProbe {
                address: t.address.clone(),
                timeout,
            }),
            livefire_spec::Expect {
                ok: Some(true),
                ..Default::default()
            },
        ),
    }
}

/// Stops setup processes: resume (a paused one cannot die of SIGTERM), SIGTERM to its
/// process group, then SIGKILL after 3 s.
pub(super) async fn stop_setup(children: &mut [(String, Child)], journal: &Journal) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    for (name, child) in children.iter_mut().rev() {
        let pg = Pid::from_raw(child.id() as i32);
        let _ = killpg(pg, Signal::SIGCONT);
        let _ = killpg(pg, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = killpg(pg, Signal::SIGKILL);
                    let _ = child.wait();
                    break;
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        journal.emit(Event::SetupStopped { name: name.clone() });
    }
}
