//! The home's index of runs, `$LIVEFIRE_HOME/runs.jsonl`: one line per run and per fuzz
//! run, appended when its folder is created, so `livefire runs`, `livefire report ID` and
//! `livefire compare ID ID` find a run wherever `--out` or `settings.out` put it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The index file's name in the home.
pub const INDEX_FILE: &str = "runs.jsonl";

/// What made a run folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// `livefire run`: the folder holds a journal.
    Run,
    /// `livefire fuzz`: the folder holds findings.json, findings.sarif, fuzz-summary.json.
    Fuzz,
}

/// One line of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The run id, which is also the folder's name.
    pub id: String,
    /// The run folder, absolute.
    pub dir: PathBuf,
    pub title: String,
    pub kind: RunKind,
}

/// Where livefire keeps state between runs: `$LIVEFIRE_HOME`, else `~/.livefire` (the
/// same rule as the engine's ledger; the report crate does not depend on the engine).
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("LIVEFIRE_HOME") {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join(".livefire")
}

/// Appends a run to the index in `home`. One `write` of one line to a file opened for
/// appending, so runs that start at once do not mix their lines.
pub fn append(
    home: &Path,
    id: &str,
    dir: &Path,
    title: &str,
    kind: RunKind,
) -> std::io::Result<()> {
    let entry = IndexEntry {
        id: id.to_owned(),
        dir: std::path::absolute(dir)?,
        title: title.to_owned(),
        kind,
    };
    std::fs::create_dir_all(home)?;
    let mut line = serde_json::to_string(&entry).map_err(std::io::Error::other)?;
    line.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join(INDEX_FILE))?
        .write_all(line.as_bytes())
}

/// Every run in the index of `home`, in the order they were created. A missing index is
/// an empty list; a line that does not parse (a crash mid-write) is skipped.
pub fn read(home: &Path) -> std::io::Result<Vec<IndexEntry>> {
    let text = match std::fs::read_to_string(home.join(INDEX_FILE)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The run with this id, the newest if the index names it twice.
pub fn find(home: &Path, id: &str) -> Option<IndexEntry> {
    read(home).ok()?.into_iter().rev().find(|e| e.id == id)
}
