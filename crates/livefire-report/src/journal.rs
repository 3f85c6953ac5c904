//! Reading `journal.jsonl`: every line that parses, where a truncated or corrupted
//! journal stops, a journal from a newer livefire, and the metric windows of loads.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use livefire_core::events::{Event, JOURNAL_VERSION, PlannedActivity, PlannedCondition, Record};
use livefire_core::window::Window;

/// The journal event type that carries one second of a load's measurements:
/// `{"type":"window","series":"browse","second":3,"window":{...}}`, where `series` is a
/// load or `load.request`. Such lines are kept as text and decoded on demand (a decoded
/// histogram is ~190 KB; an hour of them is not), never held as records.
pub const WINDOW_EVENT: &str = "window";

/// The latest time a journal may carry (a hundred years, in milliseconds).
const MAX_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// A journal as read from disk.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// The events, in the order of the file.
    pub records: Vec<Record>,
    /// The metric windows of loads, in the order of the file (kept as their JSON text
    /// and decoded on demand); `window` events are here, not in `records`.
    pub windows: Vec<RawWindow>,
    /// Set when reading stopped early: which line, and why.
    pub stopped: Option<String>,
    /// Events of a type this livefire does not know, by type, with their count; they
    /// are skipped, the rest of the journal is read.
    pub unknown: BTreeMap<String, u64>,
}

/// One second of one series (a load, or `load.request`) as it was journaled.
#[derive(Debug, Clone)]
pub struct RawWindow {
    /// The journal time of the event, in milliseconds.
    pub t: u64,
    /// The load's name, or `load.request`.
    pub series: String,
    /// Which second since the run's start the window covers.
    pub second: u64,
    json: String,
}

impl RawWindow {
    /// Decodes the window (counts, latency histogram); `None` when it does not decode.
    pub fn decode(&self) -> Option<Window> {
        serde_json::from_str(&self.json).ok()
    }
}

/// Reads a journal. A line that is not JSON (a run that crashed mid-write) or an event
/// that does not have the fields its type needs (a corrupted file) ends the reading
/// there, with `stopped` saying where; a journal from a newer version says so. Errors
/// only when the file cannot be read at all. The file is read a line at a time (a
/// one-hour journal is tens of MB; only the parsed events are kept).
pub fn read_journal(path: &Path) -> std::io::Result<Journal> {
    let mut reader = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut journal = Journal::default();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        if !journal.push_line(line_no, &String::from_utf8_lossy(&buf)) {
            break;
        }
    }
    Ok(journal)
}

/// Parses a journal's text; see [`read_journal`].
pub fn parse_journal(text: &str) -> Journal {
    let mut journal = Journal::default();
    for (i, line) in text.lines().enumerate() {
        if !journal.push_line(i + 1, line) {
            break;
        }
    }
    journal
}

impl Journal {
    /// Adds one line of the journal; false when the reading stops there (`stopped`
    /// says why).
    fn push_line(&mut self, line_no: usize, line: &str) -> bool {
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
            && let Some(w) = raw_window(&value, t)
        {
            self.windows.push(w);
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

fn raw_window(value: &serde_json::Value, t: u64) -> Option<RawWindow> {
    Some(RawWindow {
        t,
        series: value.get("series")?.as_str()?.to_owned(),
        second: value.get("second")?.as_u64()?,
        json: value.get("window")?.to_string(),
    })
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

/// One load's windows, as indexes into [`Journal::windows`].
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadWindows {
    pub name: String,
    /// The load's own series.
    pub total: Vec<usize>,
    /// Per request name.
    pub requests: BTreeMap<String, Vec<usize>>,
}

impl Journal {
    /// The windows grouped by load: a series `L.R` is request `R` of load `L` when `L`
    /// is itself a series; every other series is a load.
    pub(crate) fn loads(&self) -> Vec<LoadWindows> {
        let names: std::collections::BTreeSet<&str> =
            self.windows.iter().map(|w| w.series.as_str()).collect();
        let owner = |s: &str| -> Option<(String, String)> {
            s.char_indices()
                .filter(|(_, c)| *c == '.')
                .map(|(i, _)| (&s[..i], &s[i + 1..]))
                .rfind(|(l, _)| names.contains(l))
                .map(|(l, r)| (l.to_owned(), r.to_owned()))
        };
        let mut loads: BTreeMap<String, LoadWindows> = BTreeMap::new();
        for (i, w) in self.windows.iter().enumerate() {
            match owner(&w.series) {
                Some((load, request)) => loads
                    .entry(load.clone())
                    .or_insert_with(|| LoadWindows {
                        name: load,
                        ..Default::default()
                    })
                    .requests
                    .entry(request)
                    .or_default()
                    .push(i),
                None => loads
                    .entry(w.series.clone())
                    .or_insert_with(|| LoadWindows {
                        name: w.series.clone(),
                        ..Default::default()
                    })
                    .total
                    .push(i),
            }
        }
        loads.into_values().collect()
    }
}
