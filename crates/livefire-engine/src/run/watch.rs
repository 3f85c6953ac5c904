//! `watch:` commands: a team's own alert checks, each run every `every` while the
//! timeline runs. They judge nothing (the referee does); each time one starts firing is
//! a `noticed` event with what it said, so the report's detectors table shows whether
//! the team's alerting would have caught each fault, and how soon.

use std::process::Stdio;
use std::time::{Duration, Instant};

use livefire_core::events::Event;
use livefire_faults::exec::{ExecError, Output};

use crate::journal::Journal;
use crate::plan::PlannedWatch;

/// The detector kind of every watch in the journal and the detectors table.
const KIND: &str = "watch";

/// At most this many characters of what a command printed go into a `noticed` event.
const SAID_CHARS: usize = 200;

/// At most this many bytes of each of a command's outputs are read.
const OUTPUT_BYTES: u64 = 1 << 20;

/// How long what a finished command printed is waited for: a command that started a
/// daemon may leave it holding the pipes.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Runs `w` every `every` from `start` until the task is dropped, journaling `watching`
/// first, then `noticed` each time it starts firing (it must stop firing before it can
/// notice again). A run that cannot start or overruns its timeout does not fire; the
/// first such failure is a warning, so a broken check is not mistaken for a quiet one.
pub(super) async fn watch(w: PlannedWatch, cwd: String, journal: Journal, start: Instant) {
    journal.emit(Event::Watching {
        detector: w.name.clone(),
        kind: KIND.into(),
    });
    let (mut firing, mut warned) = (false, false);
    let mut next = start;
    loop {
        tokio::time::sleep_until(next.into()).await;
        let ran = check(&w, &cwd).await;
        let fired = match ran {
            Ok(out) => fires(&w, &out),
            Err(e) => {
                if !warned {
                    warned = true;
                    journal.emit(Event::Warning {
                        message: failed(&w.name, &e),
                    });
                }
                None
            }
        };
        match fired {
            Some(how) if !firing => {
                firing = true;
                journal.emit(Event::Noticed {
                    detector: w.name.clone(),
                    kind: KIND.into(),
                    how,
                });
            }
            Some(_) => {}
            None => firing = false,
        }
        next = (next + w.every).max(Instant::now());
    }
}

/// Runs the watch's command once (`sh -c` in `cwd`, as its user), killing its process
/// group after `timeout`, or at once when this future is dropped: the run stopped
/// watching, and a check it no longer reads must not keep running (nor keep the run's
/// runtime from shutting down).
async fn check(w: &PlannedWatch, cwd: &str) -> Result<Output, ExecError> {
    let command = livefire_faults::exec::shell(&w.command, w.user.as_deref(), Some(cwd))?;
    let mut child = tokio::process::Command::from(command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ExecError::Spawn {
            run: w.command.clone(),
            source,
        })?;
    let mut group = Group(child.id());
    let stdout = tokio::spawn(read(child.stdout.take()));
    let stderr = tokio::spawn(read(child.stderr.take()));
    let status = match tokio::time::timeout(w.timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(source)) => {
            return Err(ExecError::Spawn {
                run: w.command.clone(),
                source,
            });
        }
        Err(_) => {
            drop(group);
            let _ = child.wait().await;
            return Err(ExecError::Timeout {
                run: w.command.clone(),
                ms: u64::try_from(w.timeout.as_millis()).unwrap_or(u64::MAX),
            });
        }
    };
    // Its shell has exited and been reaped: its pid may be reused, so it is not
    // signalled again.
    group.0 = None;
    let text = |read: Result<Result<String, _>, _>| read.ok().and_then(Result::ok);
    Ok(Output {
        run: w.command.clone(),
        code: status.code(),
        stdout: text(tokio::time::timeout(OUTPUT_GRACE, stdout).await).unwrap_or_default(),
        stderr: text(tokio::time::timeout(OUTPUT_GRACE, stderr).await).unwrap_or_default(),
    })
}

/// The process group of a running check (its shell's pid), killed when dropped.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Up to [`OUTPUT_BYTES`] of what a pipe carries, until it closes.
async fn read(pipe: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    if let Some(p) = pipe {
        let _ = p.take(OUTPUT_BYTES).read_to_end(&mut bytes).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether one run of a watch's command fires, and if so what it said, in words for
/// the detectors table (`exited 2: disk 97% full`, `printed CRITICAL: disk full`).
fn fires(w: &PlannedWatch, out: &Output) -> Option<String> {
    match &w.fires_on_stdout {
        None => match out.code {
            Some(0) => None,
            Some(code) => Some(format!("exited {code}{}", said(out))),
            None => Some(format!("was killed by a signal{}", said(out))),
        },
        // The line that holds the text says most about what fired.
        Some(text) => out
            .stdout
            .lines()
            .find(|l| l.contains(text.as_str()))
            .map(|line| format!("printed {}", clip(line.trim()))),
    }
}

/// At most [`SAID_CHARS`] characters of `line`.
fn clip(line: &str) -> String {
    line.chars().take(SAID_CHARS).collect()
}

/// `: <first non-blank line>` of what the command printed (its output, else its
/// errors), or nothing when it printed nothing.
fn said(out: &Output) -> String {
    let text = if out.stdout.trim().is_empty() {
        &out.stderr
    } else {
        &out.stdout
    };
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(": {}", clip(line)),
        None => String::new(),
    }
}

/// The warning for a watch whose command could not give an answer.
fn failed(name: &str, e: &ExecError) -> String {
    match e {
        ExecError::Timeout { ms, .. } => format!(
            "watch `{name}` did not finish within {}: a run that overruns its `timeout` does not fire; raise `timeout` or make the check quicker",
            livefire_spec::values::Duration(Duration::from_millis(*ms))
        ),
        e => format!("watch `{name}` could not run its command, so it cannot fire: {e}"),
    }
}
