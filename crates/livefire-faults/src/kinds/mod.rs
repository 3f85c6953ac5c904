//! The fault kinds, one file each (the Toxiproxy toxics, which share everything but
//! their toxic, are one file with one entry per kind). What the kinds share, finding
//! and checking their targets, is here.

pub(crate) mod command;
pub(crate) mod cpu_stress;
pub(crate) mod disk_fill;
pub(crate) mod memory_stress;
pub(crate) mod net_bandwidth;
pub(crate) mod net_loss;
pub(crate) mod net_partition;
pub(crate) mod person;
pub(crate) mod postgres_corrupt;
pub(crate) mod postgres_exhaust;
pub(crate) mod postgres_lock_table;
pub(crate) mod postgres_revoke_login;
pub(crate) mod postgres_terminate;
pub(crate) mod process_kill;
pub(crate) mod process_pause;
pub(crate) mod process_restart;
pub(crate) mod proxy_down;
pub(crate) mod toxics;

use livefire_core::undo::{ProxyOwner, UndoRecord};
use livefire_spec::{ProcessSelector, Target};

use crate::{COMMAND_TIMEOUT_MS, FaultError, Targets, target};

/// The declared process target `name` and its selector.
pub(crate) fn process_target<'t>(
    targets: &'t Targets,
    name: &str,
    kind: &'static str,
) -> Result<(&'t Target, &'t ProcessSelector), FaultError> {
    let t = target(targets, name)?;
    let sel = t.process.as_ref().ok_or_else(|| FaultError::WrongTarget {
        name: name.to_owned(),
        kind,
        wants: "process",
    })?;
    Ok((t, sel))
}

/// Whose proxy the proxy target `name` is, and its name there: a proxy the run owns
/// (named after the target) or one on an existing server's API.
pub(crate) fn proxy_target(
    targets: &Targets,
    name: &str,
    kind: &'static str,
) -> Result<(ProxyOwner, String), FaultError> {
    let wrong = || FaultError::WrongTarget {
        name: name.to_owned(),
        kind,
        wants: "proxy",
    };
    let p = target(targets, name)?.proxy.as_ref().ok_or_else(wrong)?;
    match (&p.listen, &p.api, &p.name) {
        (Some(listen), _, _) => Ok((
            ProxyOwner::Run {
                listen: listen.clone(),
            },
            name.to_owned(),
        )),
        (None, Some(url), Some(n)) => Ok((ProxyOwner::Api { url: url.clone() }, n.clone())),
        _ => Err(wrong()),
    }
}

/// The signal a `process.kill` or `process.restart` sends: SIGKILL unless it names one.
pub(crate) fn signal(named: Option<&str>) -> Result<i32, FaultError> {
    match named {
        None => Ok(nix::libc::SIGKILL),
        Some(s) => {
            livefire_spec::validate::parse_signal(s).ok_or_else(|| FaultError::Signal(s.into()))
        }
    }
}

/// Running the target's `restart:` (target `name`) brings it back; `None` when it
/// declares none.
pub(crate) fn restart_record(name: &str, t: &Target, targets: &Targets) -> Option<UndoRecord> {
    t.restart.as_ref().map(|run| UndoRecord::Command {
        run: run.clone(),
        user: t.user.clone(),
        cwd: targets.restart_cwd_of(name),
        timeout_ms: COMMAND_TIMEOUT_MS,
    })
}

/// A `cpu.stress` or `memory.stress` acts on the machine livefire runs on: with a
/// `target`, it must be a declared `host` target.
pub(crate) fn host_target(
    targets: &Targets,
    name: Option<&str>,
    kind: &'static str,
) -> Result<(), FaultError> {
    let Some(name) = name else { return Ok(()) };
    match target(targets, name)?.host {
        Some(_) => Ok(()),
        None => Err(FaultError::WrongTarget {
            name: name.to_owned(),
            kind,
            wants: "host",
        }),
    }
}

/// The directory of the declared `path` target `name`.
pub(crate) fn path_target<'t>(
    targets: &'t Targets,
    name: &str,
    kind: &'static str,
) -> Result<&'t str, FaultError> {
    target(targets, name)?
        .path
        .as_deref()
        .ok_or_else(|| FaultError::WrongTarget {
            name: name.to_owned(),
            kind,
            wants: "path",
        })
}

/// A size for people: `1.5GiB`, `64MiB`, `512KiB`, `100B`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            return if v.fract() == 0.0 {
                format!("{v}{unit}")
            } else {
                format!("{v:.1}{unit}")
            };
        }
    }
    format!("{n}B")
}
