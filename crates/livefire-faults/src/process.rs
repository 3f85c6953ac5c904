//! Finding processes and signalling them safely: a target is a pid plus its start time,
//! so a pid the kernel has reused for another process is never signalled; PID 1 and
//! livefire itself are never targets.

use std::time::{Duration, Instant};

use livefire_core::undo::ProcessId;
use livefire_spec::ProcessSelector;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(
        "pidfile {path} of target `{target}` cannot be read ({reason}): start the process or fix the path"
    )]
    Pidfile {
        target: String,
        path: String,
        reason: String,
    },
    #[error("no running process named `{name}` for target `{target}`: start it or fix the name")]
    NoMatch { target: String, name: String },
    #[error(
        "{count} processes are named `{name}` (pids {pids}) for target `{target}`: use `pid` or `pidfile` to pick one"
    )]
    Ambiguous {
        target: String,
        name: String,
        count: usize,
        pids: String,
    },
    #[error("process {pid} of target `{target}` is not running")]
    NotRunning { target: String, pid: u32 },
    #[error("refusing to touch pid {pid}: {why}")]
    Forbidden { pid: u32, why: &'static str },
    #[error("pid {pid} is gone")]
    Gone { pid: u32 },
    #[error(
        "pid {pid} now belongs to another process (start time {found}, expected {expected}); not signalling it"
    )]
    Reused { pid: u32, expected: u64, found: u64 },
    #[error("cannot signal pid {pid}: {source}")]
    Signal { pid: u32, source: nix::Error },
}

/// The resource name of a process, as the ledger compares them.
pub fn resource(p: ProcessId) -> String {
    format!("process:{}@{}", p.pid, p.start_time)
}

/// The start time (clock ticks after boot) of `pid`, or `None` if it is gone.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after the last
    // ')' start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The state letter of `pid` (`R`, `S`, `T` stopped, `Z` zombie), or `None` if gone.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

fn check_allowed(pid: u32) -> Result<(), ProcessError> {
    if pid <= 1 {
        return Err(ProcessError::Forbidden {
            pid,
            why: "PID 1 (and 0) are never a target",
        });
    }
    if pid == std::process::id() {
        return Err(ProcessError::Forbidden {
            pid,
            why: "it is livefire itself",
        });
    }
    Ok(())
}

/// Resolves a selector to a running process, now.
pub fn resolve(target: &str, sel: &ProcessSelector) -> Result<ProcessId, ProcessError> {
    let pid = if let Some(pid) = sel.pid {
        pid
    } else if let Some(path) = &sel.pidfile {
        let err = |reason: String| ProcessError::Pidfile {
            target: target.into(),
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| err("its first line is not a pid".into()))?
    } else if let Some(name) = &sel.name {
        let pids = by_name(name);
        match pids.len() {
            0 => {
                return Err(ProcessError::NoMatch {
                    target: target.into(),
                    name: name.clone(),
                });
            }
            1 => pids[0],
            n => {
                let list: Vec<String> = pids.iter().map(u32::to_string).collect();
                return Err(ProcessError::Ambiguous {
                    target: target.into(),
                    name: name.clone(),
                    count: n,
                    pids: list.join(", "),
                });
            }
        }
    } else {
        return Err(ProcessError::NoMatch {
            target: target.into(),
            name: String::new(),
        });
    };
    check_allowed(pid)?;
    match (start_time(pid), state(pid)) {
        (Some(start_time), Some(s)) if s != 'Z' && s != 'X' => Ok(ProcessId { pid, start_time }),
        _ => Err(ProcessError::NotRunning {
            target: target.into(),
            pid,
        }),
    }
}

/// Pids whose name, or basename of argv[0] or argv[1], is `name` (never livefire's own).
pub fn by_name(name: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && pid > 1)
        .filter(|&pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim_end() == name {
                return true;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline
                .split(|b| *b == 0)
                .take(2)
                .filter_map(|arg| std::str::from_utf8(arg).ok())
                .any(|arg| !arg.is_empty() && arg.rsplit('/').next() == Some(name))
        })
        .filter(|&pid| state(pid).is_some_and(|s| s != 'Z'))
        .collect();
    pids.sort_unstable();
    pids
}

/// Sends `signal` to the process, only if it is still the same process.
pub fn signal(p: ProcessId, signal: i32) -> Result<(), ProcessError> {
    check_allowed(p.pid)?;
    match start_time(p.pid) {
        None => return Err(ProcessError::Gone { pid: p.pid }),
        Some(found) if found != p.start_time => {
            return Err(ProcessError::Reused {
                pid: p.pid,
                expected: p.start_time,
                found,
            });
        }
        Some(_) => {}
    }
    // A zombie has exited; only its entry waits for a parent to reap it (after a
    // `kill -9` of livefire, no one may). Signalling it "works" and does nothing.
    if matches!(state(p.pid), Some('Z' | 'X')) {
        return Err(ProcessError::Gone { pid: p.pid });
    }
    let sig =
        Signal::try_from(signal).map_err(|source| ProcessError::Signal { pid: p.pid, source })?;
    kill(Pid::from_raw(p.pid as i32), sig).map_err(|source| match source {
        nix::Error::ESRCH => ProcessError::Gone { pid: p.pid },
        source => ProcessError::Signal { pid: p.pid, source },
    })
}

/// The state letter of the process, if it is still the same process (not gone, pid not
/// reused).
pub fn state_of(p: ProcessId) -> Option<char> {
    let s = state(p.pid)?;
    (start_time(p.pid)? == p.start_time).then_some(s)
}

/// Whether the process is still running (not gone, not a zombie, pid not reused).
pub fn alive(p: ProcessId) -> bool {
    state_of(p).is_some_and(|s| s != 'Z' && s != 'X')
}

/// Sends an undo record's signal (SIGCONT after a pause). A process that is gone, or
/// whose pid now belongs to another, has nothing left to undo: that is said, and a
/// reused pid is never signalled.
pub fn undo_signal(p: ProcessId, sig: i32) -> Result<String, crate::FaultError> {
    match signal(p, sig) {
        Ok(()) => Ok(format!("signal {sig} sent to pid {}", p.pid)),
        Err(ProcessError::Gone { .. }) | Err(ProcessError::Reused { .. }) => {
            Ok(format!("pid {} is gone; nothing to undo", p.pid))
        }
        Err(e) => Err(e.into()),
    }
}

/// Waits until the process is gone (or a zombie), up to `limit`.
pub fn wait_gone(p: ProcessId, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        match (start_time(p.pid), state(p.pid)) {
            (Some(t), Some(s)) if t == p.start_time && s != 'Z' => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => return,
        }
    }
}
