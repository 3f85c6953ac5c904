//! `watch:` commands: a team's own alert checks, each run every `every` while the
//! timeline runs. They judge nothing (the referee does); each time one starts firing is
//! a `noticed` event with what it said, so the report's detectors table shows whether
//! the team's alerting would have caught each fault, and how soon.

use std::time::{Duration, Instant};

use livefire_core::events::Event;
use livefire_faults::exec::{ExecError, Output};

use crate::journal::Journal;
use crate::plan::PlannedWatch;

/// The detector kind of every watch in the journal and the detectors table.
const KIND: &str = "watch";

/// At most this many characters of what a command printed go into a `noticed` event.
const SAID_CHARS: usize = 200;

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
        let timeout = u64::try_from(w.timeout.as_millis()).unwrap_or(u64::MAX);
        let (command, user, dir) = (w.command.clone(), w.user.clone(), cwd.clone());
        // A dropped task leaves this thread to finish the command: `timeout` bounds it.
        let ran = tokio::task::spawn_blocking(move || {
            livefire_faults::exec::run(&command, user.as_deref(), Some(&dir), timeout)
        })
        .await;
        let fired = match ran {
            Ok(Ok(out)) => fires(&w, &out),
            Ok(Err(e)) => {
                if !warned {
                    warned = true;
                    journal.emit(Event::Warning {
                        message: failed(&w.name, &e),
                    });
                }
                None
            }
            Err(_) => None,
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
