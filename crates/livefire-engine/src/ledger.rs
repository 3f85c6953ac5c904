//! The write-ahead ledger. Before a fault changes anything its undo record is appended
//! and fsync'd; after a successful rollback a `done` line follows. A record without
//! `done` (or `forgotten`) is pending: `livefire recover` undoes it, and a new run
//! refuses to touch its resource. A rollback that fails appends `failed` with its
//! reason, so `livefire recover --list` can say why an entry stays; a person who fixed
//! the thing by hand drops the entry with `forgotten` (who and why). Each run writes
//! `$LIVEFIRE_HOME/ledger/<run-id>.jsonl` (the index recover reads) and the same lines
//! into its run folder, which keeps them after the index is removed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use livefire_core::undo::{UNDO_VERSION, UndoRecord};
use serde::{Deserialize, Serialize};

/// The name of the ledger's copy in a run folder.
pub const RUN_COPY: &str = "ledger.jsonl";

/// One line of a ledger file. Fields added after the first version are optional, so
/// older ledgers still read; a line this livefire cannot read is skipped.
// Lines are read and written one at a time: the size of `Add` costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Line {
    Add {
        v: u32,
        id: u64,
        run_id: String,
        /// The activity's name as the journal's events use it: its `name:`, else its id.
        activity: String,
        /// `timeline[i]`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        activity_id: Option<String>,
        /// For people: the activity's `name:` as written, else kind and target.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display: Option<String>,
        /// The fault kind (`process.pause`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        /// When the record was written (just before the fault applied), RFC 3339 UTC.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        /// The run folder, whose journal records a forget.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_dir: Option<PathBuf>,
        record: UndoRecord,
        resources: Vec<String>,
    },
    Done {
        id: u64,
    },
    /// A rollback of the entry failed (after its retries); the entry stays pending.
    Failed {
        id: u64,
        /// RFC 3339 UTC.
        at: String,
        /// Who tried: `engine`, `watchdog` or `recover`.
        by: String,
        reason: String,
    },
    /// A person dropped the entry by hand (`livefire recover --forget`).
    Forgotten {
        id: u64,
        /// RFC 3339 UTC.
        at: String,
        user: String,
        reason: String,
    },
}

/// The activity a ledger entry belongs to, as the engine names it.
#[derive(Debug, Clone, Copy)]
pub struct Activity<'a> {
    /// The name the journal's events use (its `name:`, else its id).
    pub name: &'a str,
    /// `timeline[i]`.
    pub id: &'a str,
    /// For people: its `name:` as written, else kind and target.
    pub display: &'a str,
    /// The fault kind (`process.pause`).
    pub kind: &'a str,
}

/// The last failed rollback of a pending entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub at: String,
    pub by: String,
    pub reason: String,
}

/// A pending entry read back from the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The ledger index file it was read from.
    pub file: PathBuf,
    pub id: u64,
    pub run_id: String,
    pub activity: String,
    pub activity_id: Option<String>,
    pub display: Option<String>,
    pub kind: Option<String>,
    pub since: Option<String>,
    pub run_dir: Option<PathBuf>,
    pub record: UndoRecord,
    pub resources: Vec<String>,
    /// Why its last rollback failed, if one did.
    pub failure: Option<Failure>,
}

impl Pending {
    /// The entry's name on the command line (`recover --forget`): `<run-id>:<n>`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.run_id, self.id)
    }

    /// The activity for people: its display name and, when it differs, its id
    /// (`victim paused (timeline[0])`). Older ledgers hold only the name.
    pub fn label(&self) -> String {
        let display = self.display.as_deref().unwrap_or(&self.activity);
        match self.activity_id.as_deref() {
            Some(id) if id != display => format!("{display} ({id})"),
            _ => display.to_owned(),
        }
    }
}

/// One run's ledger, open for appending.
#[derive(Debug)]
pub struct Ledger {
    files: Vec<File>,
    index: PathBuf,
    run_dir: PathBuf,
    next: u64,
    run_id: String,
    pending: usize,
}

impl Ledger {
    /// Creates the run's ledger in the index folder and in the run folder. The index
    /// must not exist yet (`AlreadyExists`): it is how a run id is claimed in the home,
    /// whatever folder the run is in.
    pub fn create(run_id: &str, run_dir: &Path) -> std::io::Result<Ledger> {
        let dir = crate::home::ledger_dir();
        std::fs::create_dir_all(&dir)?;
        let index = dir.join(format!("{run_id}.jsonl"));
        let claimed = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&index)?;
        let copy = OpenOptions::new()
            .create(true)
            .append(true)
            .open(run_dir.join(RUN_COPY))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&index);
            })?;
        Ok(Ledger {
            files: vec![claimed, copy],
            index,
            // `recover --forget` runs from anywhere: it needs the folder by a full path.
            run_dir: std::path::absolute(run_dir)?,
            next: 0,
            run_id: run_id.to_owned(),
            pending: 0,
        })
    }

    fn append(&mut self, line: &Line) -> std::io::Result<()> {
        let text = encode(line)?;
        for f in &mut self.files {
            f.write_all(text.as_bytes())?;
            f.sync_data()?;
        }
        Ok(())
    }

    /// Records an undo record, durably, and returns its id. Call before applying.
    pub fn add(
        &mut self,
        activity: &Activity,
        record: &UndoRecord,
        resources: &[String],
    ) -> std::io::Result<u64> {
        let id = self.next;
        self.next += 1;
        self.append(&Line::Add {
            v: UNDO_VERSION,
            id,
            run_id: self.run_id.clone(),
            activity: activity.name.to_owned(),
            activity_id: Some(activity.id.to_owned()),
            display: Some(activity.display.to_owned()),
            kind: Some(activity.kind.to_owned()),
            since: Some(crate::clock::rfc3339_now()),
            run_dir: Some(self.run_dir.clone()),
            record: record.clone(),
            resources: resources.to_vec(),
        })?;
        self.pending += 1;
        Ok(id)
    }

    /// Marks an entry rolled back.
    pub fn done(&mut self, id: u64) -> std::io::Result<()> {
        self.append(&Line::Done { id })?;
        self.pending = self.pending.saturating_sub(1);
        Ok(())
    }

    /// Records why an entry's rollback failed (`by`: who tried); it stays pending.
    pub fn failed(&mut self, id: u64, by: &str, reason: &str) -> std::io::Result<()> {
        self.append(&Line::Failed {
            id,
            at: crate::clock::rfc3339_now(),
            by: by.to_owned(),
            reason: reason.to_owned(),
        })
    }

    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Removes the index file when nothing is pending (the run folder keeps its copy).
    pub fn close(self) {
        if self.pending == 0 {
            let _ = std::fs::remove_file(&self.index);
        }
    }
}

fn encode(line: &Line) -> std::io::Result<String> {
    let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    text.push('\n');
    Ok(text)
}

/// Every pending entry in the ledger index, oldest first.
pub fn pending_all() -> Vec<Pending> {
    let Ok(dir) = std::fs::read_dir(crate::home::ledger_dir()) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for file in files {
        all.extend(pending_in(&file));
    }
    all
}

/// Pending entries of one ledger file. Unreadable lines (a crash mid-write) are skipped:
/// a half-written `add` was never followed by its apply.
pub fn pending_in(file: &Path) -> Vec<Pending> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut pending: Vec<Pending> = Vec::new();
    for line in text.lines() {
        match serde_json::from_str::<Line>(line) {
            Ok(Line::Add {
                id,
                run_id,
                activity,
                activity_id,
                display,
                kind,
                since,
                run_dir,
                record,
                resources,
                ..
            }) => pending.push(Pending {
                file: file.to_owned(),
                id,
                run_id,
                activity,
                activity_id,
                display,
                kind,
                since,
                run_dir,
                record,
                resources,
                failure: None,
            }),
            Ok(Line::Done { id }) | Ok(Line::Forgotten { id, .. }) => {
                pending.retain(|p| p.id != id)
            }
            Ok(Line::Failed { id, at, by, reason }) => {
                if let Some(p) = pending.iter_mut().find(|p| p.id == id) {
                    p.failure = Some(Failure { at, by, reason });
                }
            }
            Err(_) => {}
        }
    }
    pending
}

/// Appends a line about a pending entry of another (ended or crashed) run, durably: to
/// the index (which must work) and to the run folder's copy (when the folder is still
/// there). Removes the index file once nothing in it is pending.
fn append_for(p: &Pending, line: &Line) -> std::io::Result<()> {
    let text = encode(line)?;
    let mut f = OpenOptions::new().append(true).open(&p.file)?;
    f.write_all(text.as_bytes())?;
    f.sync_data()?;
    if let Some(copy) = p.run_dir.as_ref().map(|d| d.join(RUN_COPY)) {
        // The copy is the run's record; the index is what recover acts on.
        if let Ok(mut f) = OpenOptions::new().append(true).open(copy) {
            let _ = f.write_all(text.as_bytes()).and_then(|_| f.sync_data());
        }
    }
    if pending_in(&p.file).is_empty() {
        std::fs::remove_file(&p.file)?;
    }
    Ok(())
}

/// Marks a pending entry rolled back.
pub fn mark_done(p: &Pending) -> std::io::Result<()> {
    append_for(p, &Line::Done { id: p.id })
}

/// Records why a pending entry's rollback failed; it stays pending.
pub fn mark_failed(p: &Pending, by: &str, reason: &str) -> std::io::Result<()> {
    append_for(
        p,
        &Line::Failed {
            id: p.id,
            at: crate::clock::rfc3339_now(),
            by: by.to_owned(),
            reason: reason.to_owned(),
        },
    )
}

/// Drops a pending entry that a person fixed by hand; returns the time it wrote.
pub fn mark_forgotten(p: &Pending, user: &str, reason: &str) -> std::io::Result<String> {
    let at = crate::clock::rfc3339_now();
    append_for(
        p,
        &Line::Forgotten {
            id: p.id,
            at: at.clone(),
            user: user.to_owned(),
            reason: reason.to_owned(),
        },
    )?;
    Ok(at)
}
