//! Reading `journal.jsonl`: every line that parses, where a truncated or corrupted
//! journal stops, a journal from a newer livefire, and the metric windows of loads,
//! each decoded once and merged per series while the journal is read.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use livefire_core::events::{Event, JOURNAL_VERSION, PlannedActivity, PlannedCondition, Record};
use livefire_core::window::Window;

use crate::series::{Metrics, MetricsFold, WindowScan};

/// The journal event type that carries one second of a load's measurements:
/// `{"type":"window","series":"browse","second":3,"window":{...}}`, where `series` is a
/// load or `load.request`. Such lines are not kept: each is decoded once and merged
/// into what the report needs of its series (a decoded histogram is ~190 KB; an hour
/// of them is not held, nor their text).
pub const WINDOW_EVENT: &str = "window";

/// The latest time a journal may carry (a hundred years, in milliseconds).
const MAX_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// A journal as read from disk.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// The events, in the order of the file; `window` events are not among them (see
    /// [`Journal::window_count`]).
    pub records: Vec<Record>,
    /// Set when reading stopped early: which line, and why.
    pub stopped: Option<String>,
    /// Events of a type this livefire does not know, by type, with their count; they
    /// are skipped, the rest of the journal is read.
    pub unknown: BTreeMap<String, u64>,
    /// The metric windows, merged per series while reading: totals, chart buckets,
    /// seconds with errors, per-second spread and the loads' time to impact.
    pub(crate) metrics: Metrics,
}

/// Reads a journal. A line that is not JSON (a run that crashed mid-write) or an event
/// that does not have the fields its type needs (a corrupted file) ends the reading
/// there, with `stopped` saying where; a journal from a newer version says so. Errors
/// only when the file cannot be read at all.
///
/// The file is read twice, a line at a time, and never held: the first pass keeps the
/// events and learns the series (their names, first and last second, whether their
/// seconds come in order) and the faults; the second decodes each metric window once
/// and merges it into its series' state. What is held is the events and, per series, a
/// few merged histograms, however long the run (see [`crate::series`]).
pub fn read_journal(path: &Path) -> std::io::Result<Journal> {
    let mut journal = Journal::default();
    let mut scan = WindowScan::default();
    let open = || std::fs::File::open(path).map(std::io::BufReader::new);
    let read = for_each_line(open()?, usize::MAX, |no, line| {
        journal.push_line(no, line, &mut scan)
    })?;
    let mut fold = MetricsFold::new(&journal.records, scan);
    for_each_line(open()?, read, |_, line| {
        fold_window_line(&mut fold, line);
        true
    })?;
    journal.metrics = fold.finish();
    Ok(journal)
}

/// Parses a journal's text; see [`read_journal`].
pub fn parse_journal(text: &str) -> Journal {
    let mut journal = Journal::default();
    let mut scan = WindowScan::default();
    let mut read = 0;
    for (i, line) in text.lines().enumerate() {
        if !journal.push_line(i + 1, line, &mut scan) {
            break;
        }
        read = i + 1;
    }
    let mut fold = MetricsFold::new(&journal.records, scan);
    for line in text.lines().take(read) {
        fold_window_line(&mut fold, line);
    }
    journal.metrics = fold.finish();
    journal
}

/// Calls `f` with each line (numbered from 1) of at most `limit` lines, until it
/// returns false; returns how many lines it accepted.
fn for_each_line(
    mut reader: impl BufRead,
    limit: usize,
    mut f: impl FnMut(usize, &str) -> bool,
) -> std::io::Result<usize> {
    let mut buf = Vec::new();
    let mut accepted = 0;
    while accepted < limit {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        if !f(accepted + 1, &String::from_utf8_lossy(&buf)) {
            break;
        }
        accepted += 1;
    }
    Ok(accepted)
}

/// The second pass: a window line decoded (once) and merged; other lines are skipped
/// after a look at their type. A window whose histogram does not decode adds nothing,
/// as before: it still counts among the windows and in its series' span.
fn fold_window_line(fold: &mut MetricsFold, line: &str) {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<Cow<'a, str>>,
    }
    #[derive(serde::Deserialize)]
    struct WindowLine {
        series: String,
        second: u64,
        window: Window,
    }
    let is_window = serde_json::from_str::<Head<'_>>(line)
        .is_ok_and(|h| h.kind.as_deref() == Some(WINDOW_EVENT));
    if !is_window {
        return;
    }
    if let Ok(w) = serde_json::from_str::<WindowLine>(line) {
        fold.add(&w.series, w.second, w.window);
    }
}

impl Journal {
    /// How many metric windows the journal holds (merged into the report's series,
    /// not kept).
    pub fn window_count(&self) -> u64 {
        self.metrics.windows
    }

    /// Adds one line of the journal in the first pass; false when the reading stops
    /// there (`stopped` says why).
    fn push_line(&mut self, line_no: usize, line: &str, scan: &mut WindowScan) -> bool {
        if line.trim().is_empty() {
            return true;
        }
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                self.stopped = Some(format!(
                    "line {line_no}: the journal stops here: the line is not complete JSON ({e}); the run probably ended while writing it"
                ));
                return false;
            }
        };
        let v = value.get("v").and_then(|v| v.as_u64());
        match v {
            Some(v) if v > u64::from(JOURNAL_VERSION) => {
                self.stopped = Some(format!(
                    "line {line_no}: journal version {v} is newer than this livefire reads ({JOURNAL_VERSION}): upgrade livefire to read the rest"
                ));
                return false;
            }
            Some(_) => {}
            None => {
                self.stopped = Some(format!(
                    "line {line_no}: the journal stops here: the line has no version `v`; is this a livefire journal?"
                ));
                return false;
            }
        }
        let kind = value
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        let t = value.get("t").and_then(|t| t.as_u64()).unwrap_or(0);
        let second = value.get("second").and_then(|t| t.as_u64()).unwrap_or(0);
        // No run lasts a hundred years: such a time is damage, and would overflow the
        // arithmetic of the charts.
        if t > MAX_MS || second > MAX_MS / 1000 {
            self.stopped = Some(format!(
                "line {line_no}: the journal stops here: a time beyond a hundred years; the file may be corrupted"
            ));
            return false;
        }
        if kind == WINDOW_EVENT
            && let (Some(series), Some(second), Some(_)) = (
                value.get("series").and_then(|s| s.as_str()),
                value.get("second").and_then(|s| s.as_u64()),
                value.get("window"),
            )
        {
            scan.add(series, second, t);
            return true;
        }
        match serde_json::from_value::<Record>(value) {
            Ok(r) => self.records.push(r),
            Err(e) if e.to_string().contains("unknown variant") => {
                *self.unknown.entry(kind).or_default() += 1;
            }
            Err(e) => {
                self.stopped = Some(format!(
                    "line {line_no}: the journal stops here: a `{kind}` event that livefire cannot read ({e}); the file may be corrupted"
                ));
                return false;
            }
        }
        true
    }
}

/// The experiment as it ran, from the journal's `plan` event (journals of livefire
/// before 0.1.0 have none).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Resolved, secrets masked, as JSON.
    pub experiment: serde_json::Value,
    pub conditions: Vec<PlannedCondition>,
    pub activities: Vec<PlannedActivity>,
    /// `--env NAME`, and whether it is marked production.
    pub environment: Option<String>,
    pub production: bool,
}

impl Journal {
    /// The `plan` event, if the journal has one.
    pub fn plan(&self) -> Option<Plan> {
        self.records.iter().find_map(|r| match &r.event {
            Event::Plan {
                experiment,
                conditions,
                activities,
                environment,
                production,
            } => Some(Plan {
                experiment: experiment.clone(),
                conditions: conditions.clone(),
                activities: activities.clone(),
                environment: environment.clone(),
                production: *production,
            }),
            _ => None,
        })
    }
}
