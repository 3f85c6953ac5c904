//! `livefire recover`: undo whatever crashed runs left in the ledger, newest first, from
//! the records alone; list what is pending and why; and forget an entry that a person
//! fixed by hand, recording who and why in the ledger and in the run's journal. Entries
//! of a run that is still alive (its control socket answers) are left to that run.

use std::io::Write;
use std::path::{Path, PathBuf};

use livefire_core::events::{Event, JOURNAL_VERSION, Record};

use crate::ledger::{self, Pending};

/// What recover did.
#[derive(Debug, Default)]
pub struct Recovered {
    pub undone: Vec<String>,
    pub failed: Vec<String>,
    /// Entries of runs still alive, left to them.
    pub skipped: Vec<String>,
    /// Run ids whose stale control socket was removed.
    pub stale_sockets: Vec<String>,
}

/// A pending entry as `recover --list` shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub entry: Pending,
    /// Its run is still alive: the run rolls it back itself.
    pub run_active: bool,
}

/// What `recover --forget` did.
#[derive(Debug)]
pub struct Forgot {
    pub entry: Pending,
    pub user: String,
    /// Where the journal event went, or why it could not be written (the ledger has
    /// the record either way).
    pub journal: Result<PathBuf, JournalError>,
}

/// Why `recover --forget` could not write its event to the run's journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot append to {path}: {source}")]
    Append {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("this ledger entry is from an older livefire and does not name its run folder")]
    NoRunFolder,
}

/// Why an entry could not be forgotten. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    #[error(
        "say why the entry can be dropped: --reason \"what was fixed by hand\" (it is written to the run's journal and the ledger)"
    )]
    NoReason,
    #[error("no pending ledger entry `{entry}`; pending: {}", list_or_none(.pending))]
    NotFound { entry: String, pending: Vec<String> },
    #[error(
        "entry `{entry}` belongs to run {run}, which is still active and rolls it back itself; stop it with `livefire halt {run}`"
    )]
    RunActive { entry: String, run: String },
    #[error("cannot write the ledger {}: {source}", .file.display())]
    Ledger {
        file: PathBuf,
        source: std::io::Error,
    },
}

fn list_or_none(keys: &[String]) -> String {
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join(", ")
    }
}

/// Every pending entry, oldest first, with whether its run is still alive.
pub fn list() -> Vec<Listed> {
    let mut alive = RunLiveness::default();
    ledger::pending_all()
        .into_iter()
        .map(|entry| Listed {
            run_active: alive.is_active(&entry.run_id),
            entry,
        })
        .collect()
}

/// Undoes every pending entry of dead runs, newest first; removes stale sockets.
pub fn recover() -> Recovered {
    let mut out = Recovered {
        stale_sockets: crate::control::remove_stale(),
        ..Recovered::default()
    };
    let mut alive = RunLiveness::default();
    let mut pending = ledger::pending_all();
    pending.reverse();
    for p in pending {
        let what = format!("{} {}: {}", p.key(), p.label(), p.record.describe());
        if alive.is_active(&p.run_id) {
            out.skipped.push(format!(
                "{what}: run {} is still active and rolls it back itself",
                p.run_id
            ));
            continue;
        }
        match livefire_faults::undo(&p.record) {
            Ok(detail) => match ledger::mark_done(&p) {
                Ok(()) => out.undone.push(format!("{what}: {detail}")),
                Err(e) => out.failed.push(format!(
                    "{what}: undone, but the ledger could not be updated: {e}"
                )),
            },
            Err(e) => {
                let reason = e.to_string();
                let note = match ledger::mark_failed(&p, "recover", &reason) {
                    Ok(()) => String::new(),
                    Err(e) => format!(" (and the ledger could not record why: {e})"),
                };
                out.failed.push(format!("{what}: {reason}{note}"));
            }
        }
    }
    out
}

/// How many entries are pending now (recover's exit code: 0 when none).
pub fn remaining() -> usize {
    ledger::pending_all().len()
}

/// Drops the pending entry `key` (`<run-id>:<n>`, as `--list` shows it) after a person
/// fixed by hand what it would undo: records `user` and `reason` in the ledger and in
/// the run's journal.
pub fn forget(key: &str, reason: &str, user: &str) -> Result<Forgot, ForgetError> {
    if reason.trim().is_empty() {
        return Err(ForgetError::NoReason);
    }
    let pending = ledger::pending_all();
    let Some(entry) = pending.iter().find(|p| p.key() == key.trim()).cloned() else {
        return Err(ForgetError::NotFound {
            entry: key.to_owned(),
            pending: pending.iter().map(Pending::key).collect(),
        });
    };
    if crate::control::is_active(&entry.run_id) {
        return Err(ForgetError::RunActive {
            entry: key.to_owned(),
            run: entry.run_id.clone(),
        });
    }
    forget_entry(entry, reason.trim(), user)
}

/// Forgets one entry: the ledger first (it decides what is pending), then the journal.
pub fn forget_entry(entry: Pending, reason: &str, user: &str) -> Result<Forgot, ForgetError> {
    let at =
        ledger::mark_forgotten(&entry, user, reason).map_err(|source| ForgetError::Ledger {
            file: entry.file.clone(),
            source,
        })?;
    let event = Event::UndoForgotten {
        entry: entry.key(),
        activity: entry.activity.clone(),
        kind: entry.kind.clone().unwrap_or_default(),
        undo: entry.record.describe(),
        user: user.to_owned(),
        reason: reason.to_owned(),
        at,
    };
    let journal = match &entry.run_dir {
        Some(dir) => {
            let path = dir.join("journal.jsonl");
            append_event(&path, event)
                .map(|()| path.clone())
                .map_err(|source| JournalError::Append { path, source })
        }
        None => Err(JournalError::NoRunFolder),
    };
    Ok(Forgot {
        entry,
        user: user.to_owned(),
        journal,
    })
}

/// Appends one event to an ended run's journal: the next `seq`, and the `t` of the last
/// event (the run's clock stopped with it; the event carries its own wall-clock time).
pub fn append_event(journal: &Path, event: Event) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(journal)?;
    let (last, ends_with_newline) = last_record(&mut f)?;
    let (seq, t) = last.map_or((0, 0), |(seq, t)| (seq + 1, t));
    let record = Record {
        v: JOURNAL_VERSION,
        seq,
        t,
        event,
    };
    let mut line = serde_json::to_string(&record).map_err(std::io::Error::other)?;
    line.push('\n');
    if !ends_with_newline {
        // The run died mid-line: start ours on a line of its own.
        line.insert(0, '\n');
    }
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// The `seq` and `t` of a journal's last complete event, and whether the file ends with
/// a newline (an empty file does). Reads from the end: journals of long runs are big.
fn last_record(f: &mut std::fs::File) -> std::io::Result<(Option<(u64, u64)>, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata()?.len();
    let mut tail = 64 * 1024;
    loop {
        let from = len.saturating_sub(tail);
        f.seek(SeekFrom::Start(from))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        let ends_with_newline = bytes.last().is_none_or(|b| *b == b'\n');
        let text = String::from_utf8_lossy(&bytes);
        // The first line of a tail may be cut: skip it unless the tail is the file.
        let lines: Vec<&str> = text.lines().skip(usize::from(from > 0)).collect();
        let found = lines.iter().rev().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            Some((v.get("seq")?.as_u64()?, v.get("t")?.as_u64()?))
        });
        if found.is_some() || from == 0 {
            return Ok((found, ends_with_newline));
        }
        tail = tail.saturating_mul(4);
    }
}

/// Who is forgetting: the user behind `sudo` when there is one, else the OS user.
pub fn os_user() -> String {
    if let Some(u) = std::env::var_os("SUDO_USER").filter(|u| !u.is_empty()) {
        return u.to_string_lossy().into_owned();
    }
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => format!("uid {uid}"),
    }
}

/// Asks each run's socket once.
#[derive(Default)]
struct RunLiveness(std::collections::HashMap<String, bool>);

impl RunLiveness {
    fn is_active(&mut self, run_id: &str) -> bool {
        *self
            .0
            .entry(run_id.to_owned())
            .or_insert_with(|| crate::control::is_active(run_id))
    }
}
