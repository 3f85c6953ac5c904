//! Reading `journal.jsonl`: every line that parses, where a truncated or corrupted
//! journal stops, a journal from a newer livefire, and the metric windows of loads.

use std::collections::BTreeMap;
use std::path::Path;

use livefire_core::events::{JOURNAL_VERSION, Record};
use livefire_core::window::LoadWindow;

/// Journal event types that carry a load's one-second metric window. The window is
/// either the event's own fields (`load`, `second`, `total`, `requests`) or sits under a
/// `window` key; both shapes are read, so the report needs no change when the engine
/// starts journaling windows.
pub const WINDOW_EVENT_TYPES: [&str; 4] = ["load_window", "window", "metric_window", "metrics"];

/// A journal as read from disk.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// The events, in the order of the file.
    pub records: Vec<Record>,
    /// The metric windows of loads, in the order of the file (kept as their JSON text
    /// and decoded on demand: a decoded histogram is ~400 KB, an hour of them is not).
    pub windows: Vec<RawWindow>,
    /// Set when reading stopped early: which line, and why.
    pub stopped: Option<String>,
    /// Events of a type this livefire does not know, by type, with their count; they
    /// are skipped, the rest of the journal is read.
    pub unknown: BTreeMap<String, u64>,
}

/// One load window as it was journaled.
#[derive(Debug, Clone)]
pub struct RawWindow {
    /// The journal time of the event, in milliseconds.
    pub t: u64,
    /// The load's name.
    pub load: String,
    /// Which second since the run's start the window covers.
    pub second: u64,
    json: String,
}

impl RawWindow {
    /// Decodes the window (counts, latency histograms).
    pub fn decode(&self) -> Option<LoadWindow> {
        serde_json::from_str(&self.json).ok()
    }
}

/// Reads a journal. A line that is not JSON (a run that crashed mid-write) or an event
/// that does not have the fields its type needs (a corrupted file) ends the reading
/// there, with `stopped` saying where; a journal from a newer version says so. Errors
/// only when the file cannot be read at all.
pub fn read_journal(path: &Path) -> std::io::Result<Journal> {
    let bytes = std::fs::read(path)?;
    Ok(parse_journal(&String::from_utf8_lossy(&bytes)))
}

/// Parses a journal's text; see [`read_journal`].
pub fn parse_journal(text: &str) -> Journal {
    let mut journal = Journal::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                journal.stopped = Some(format!(
                    "line {line_no}: the journal stops here: the line is not complete JSON ({e}); the run probably ended while writing it"
                ));
                break;
            }
        };
        let v = value.get("v").and_then(|v| v.as_u64());
        match v {
            Some(v) if v > u64::from(JOURNAL_VERSION) => {
                journal.stopped = Some(format!(
                    "line {line_no}: journal version {v} is newer than this livefire reads ({JOURNAL_VERSION}): upgrade livefire to read the rest"
                ));
                break;
            }
            Some(_) => {}
            None => {
                journal.stopped = Some(format!(
                    "line {line_no}: the journal stops here: the line has no version `v`; is this a livefire journal?"
                ));
                break;
            }
        }
        let kind = value
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        let t = value.get("t").and_then(|t| t.as_u64()).unwrap_or(0);
        let is_window = WINDOW_EVENT_TYPES.contains(&kind.as_str());
        if is_window {
            if let Some(w) = raw_window(&value, t) {
                journal.windows.push(w);
            }
        }
        match serde_json::from_value::<Record>(value) {
            Ok(r) => journal.records.push(r),
            Err(_) if is_window => {}
            Err(e) if e.to_string().contains("unknown variant") => {
                *journal.unknown.entry(kind).or_default() += 1;
            }
            Err(e) => {
                journal.stopped = Some(format!(
                    "line {line_no}: the journal stops here: a `{kind}` event that livefire cannot read ({e}); the file may be corrupted"
                ));
                break;
            }
        }
    }
    journal
}

fn raw_window(value: &serde_json::Value, t: u64) -> Option<RawWindow> {
    let body = value.get("window").unwrap_or(value);
    let load = body.get("load")?.as_str()?.to_owned();
    let second = body.get("second")?.as_u64()?;
    body.get("total")?;
    let mut obj = serde_json::Map::new();
    for key in ["load", "second", "total", "requests"] {
        if let Some(v) = body.get(key) {
            obj.insert(key.into(), v.clone());
        }
    }
    Some(RawWindow {
        t,
        load,
        second,
        json: serde_json::Value::Object(obj).to_string(),
    })
}
