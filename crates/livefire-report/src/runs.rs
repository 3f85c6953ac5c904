//! `livefire runs`: every run the home's index knows (wherever it went) and every run
//! folder under the runs folder, oldest first, with verdict, duration and title (from
//! summary.json, else rebuilt from the journal; for a fuzz run, from its results).

use std::path::{Path, PathBuf};

use crate::index::{self, RunKind};
use crate::summary::Summary;
use crate::{read_journal, summarize};

/// One past run.
#[derive(Debug, Clone)]
pub struct RunEntry {
    pub id: String,
    pub dir: PathBuf,
    pub kind: RunKind,
    pub title: String,
    /// `held`, `aborted`, `incomplete`, `3 findings`, ...
    pub verdict: String,
    pub duration_ms: Option<u64>,
}

/// The runs in `home`'s index whose folder is still there, then every folder under
/// `out` that holds a `journal.jsonl` and is not in the index (runs from before the
/// index), sorted by id (run ids start with their UTC start time). A missing `out` or
/// index adds nothing.
pub fn list_runs(home: &Path, out: &Path) -> std::io::Result<Vec<RunEntry>> {
    let mut found: Vec<(String, PathBuf, RunKind, String)> = Vec::new();
    for e in index::read(home)? {
        if e.dir.is_dir() && !found.iter().any(|f| f.1 == e.dir) {
            found.push((e.id, e.dir, e.kind, e.title));
        }
    }
    let entries = match std::fs::read_dir(out) {
        Ok(e) => Some(e),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    for dir in entries
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("journal.jsonl").is_file())
    {
        let abs = std::path::absolute(&dir).unwrap_or(dir);
        if !found.iter().any(|f| f.1 == abs) {
            let id = abs
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push((id, abs, RunKind::Run, String::new()));
        }
    }
    // `fuzz-20260126T...` sorts with `20260126T...`.
    found.sort_by(|a, b| {
        a.0.trim_start_matches("fuzz-")
            .cmp(b.0.trim_start_matches("fuzz-"))
    });
    Ok(found
        .into_iter()
        .filter_map(|(id, dir, kind, title)| match kind {
            RunKind::Run => run_entry(id, dir, title),
            RunKind::Fuzz => Some(fuzz_entry(id, dir, title)),
        })
        .collect())
}

fn run_entry(id: String, dir: PathBuf, title: String) -> Option<RunEntry> {
    let summary = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Summary>(&t).ok())
        .or_else(|| {
            read_journal(&dir.join("journal.jsonl"))
                .ok()
                .map(|j| summarize(&j))
        })?;
    Some(RunEntry {
        id,
        kind: RunKind::Run,
        title: if summary.title.is_empty() {
            title
        } else {
            summary.title.clone()
        },
        verdict: match summary.verdict {
            None => "incomplete".to_owned(),
            Some(_) => crate::verdict_word(summary.verdict).to_owned(),
        },
        duration_ms: Some(summary.duration_ms),
        dir,
    })
}

/// A fuzz run: its findings count and duration from findings.json and
/// fuzz-summary.json (a fuzz run has no journal and no verdict of its own).
fn fuzz_entry(id: String, dir: PathBuf, title: String) -> RunEntry {
    let json = |name: &str| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).ok()?).ok()
    };
    let findings =
        json("findings.json").and_then(|v| v.get("findings")?.as_array().map(|a| a.len()));
    let duration_ms = json("fuzz-summary.json").and_then(|v| v.get("elapsed_ms")?.as_u64());
    RunEntry {
        id,
        kind: RunKind::Fuzz,
        title,
        verdict: match findings {
            Some(1) => "fuzz: 1 finding".to_owned(),
            Some(n) => format!("fuzz: {n} findings"),
            None => "fuzz: no results".to_owned(),
        },
        duration_ms,
        dir,
    }
}
