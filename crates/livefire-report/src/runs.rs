//! `livefire runs`: the run folders under the runs folder, oldest first, with verdict,
//! duration and title (from summary.json, else rebuilt from the journal).

use std::path::{Path, PathBuf};

use crate::summary::Summary;
use crate::{read_journal, summarize};

/// One past run.
#[derive(Debug, Clone)]
pub struct RunEntry {
    pub dir: PathBuf,
    pub summary: Summary,
}

/// Every folder under `out` that holds a `journal.jsonl`, sorted by name (run folders
/// start with their UTC start time). A missing `out` is an empty list.
pub fn list_runs(out: &Path) -> std::io::Result<Vec<RunEntry>> {
    let entries = match std::fs::read_dir(out) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("journal.jsonl").is_file())
        .collect();
    dirs.sort();
    Ok(dirs
        .into_iter()
        .filter_map(|dir| {
            let summary = std::fs::read_to_string(dir.join("summary.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Summary>(&t).ok())
                .or_else(|| {
                    read_journal(&dir.join("journal.jsonl"))
                        .ok()
                        .map(|j| summarize(&j))
                })?;
            Some(RunEntry { dir, summary })
        })
        .collect())
}
