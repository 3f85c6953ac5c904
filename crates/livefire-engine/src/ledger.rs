//! The write-ahead ledger. Before a fault changes anything its undo record is appended
//! and fsync'd; after a successful rollback a `done` line follows. A record without
//! `done` is pending: `livefire recover` undoes it, and a new run refuses to touch its
//! resource. Each run writes `$LIVEFIRE_HOME/ledger/<run-id>.jsonl` (the index recover
//! reads) and the same lines into its run folder.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use livefire_core::undo::{UNDO_VERSION, UndoRecord};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Line {
    Add {
        v: u32,
        id: u64,
        run_id: String,
        activity: String,
        record: UndoRecord,
        resources: Vec<String>,
    },
    Done {
        id: u64,
    },
}

/// A pending entry read back from the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub file: PathBuf,
    pub id: u64,
    pub run_id: String,
    pub activity: String,
    pub record: UndoRecord,
    pub resources: Vec<String>,
}

/// One run's ledger, open for appending.
#[derive(Debug)]
pub struct Ledger {
    files: Vec<File>,
    index: PathBuf,
    next: u64,
    run_id: String,
    pending: usize,
}

impl Ledger {
    /// Opens the run's ledger in the index folder and in the run folder.
    pub fn create(run_id: &str, run_dir: &Path) -> std::io::Result<Ledger> {
        let dir = crate::home::ledger_dir();
        std::fs::create_dir_all(&dir)?;
        let index = dir.join(format!("{run_id}.jsonl"));
        let open = |p: &Path| OpenOptions::new().create(true).append(true).open(p);
        Ok(Ledger {
            files: vec![open(&index)?, open(&run_dir.join("ledger.jsonl"))?],
            index,
            next: 0,
            run_id: run_id.to_owned(),
            pending: 0,
        })
    }

    fn append(&mut self, line: &Line) -> std::io::Result<()> {
        let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        text.push('\n');
        for f in &mut self.files {
            f.write_all(text.as_bytes())?;
            f.sync_data()?;
        }
        Ok(())
    }

    /// Records an undo record, durably, and returns its id. Call before applying.
    pub fn add(
        &mut self,
        activity: &str,
        record: &UndoRecord,
        resources: &[String],
    ) -> std::io::Result<u64> {
        let id = self.next;
        self.next += 1;
        self.append(&Line::Add {
            v: UNDO_VERSION,
            id,
            run_id: self.run_id.clone(),
            activity: activity.to_owned(),
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
                record,
                resources,
                ..
            }) => pending.push(Pending {
                file: file.to_owned(),
                id,
                run_id,
                activity,
                record,
                resources,
            }),
            Ok(Line::Done { id }) => pending.retain(|p| p.id != id),
            Err(_) => {}
        }
    }
    pending
}

/// Appends `done` for an entry of another (crashed) run's ledger, durably.
pub fn mark_done(file: &Path, id: u64) -> std::io::Result<()> {
    let mut f = OpenOptions::new().append(true).open(file)?;
    let mut text = serde_json::to_string(&Line::Done { id }).map_err(std::io::Error::other)?;
    text.push('\n');
    f.write_all(text.as_bytes())?;
    f.sync_data()?;
    if pending_in(file).is_empty() {
        std::fs::remove_file(file)?;
    }
    Ok(())
}
