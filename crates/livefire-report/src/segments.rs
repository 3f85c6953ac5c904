//! A split run's segments (`livefire run --segments N`) as the summary tells them: how
//! many ran, which were lost, when and why, each one's share of the requests and
//! errors, and its clock offset against the coordinator. Read from the journal's
//! `segment` events; each segment's own stream stays in the run folder
//! (`segments/<i>/stream.jsonl`).

use std::fmt::Write as _;

use livefire_core::events::{Event, SegmentState};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::escape;
use crate::journal::Journal;

/// Segments listed one by one in the terminal up to this many (all of them in
/// `summary.json` and the HTML report); past it, only the lost ones.
const LISTED: usize = 16;

/// One segment of a split run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SegmentSummary {
    /// `i/N`, 1-based.
    pub segment: String,
    /// Where it ended up: `started`, `ready`, `done` or `lost`.
    pub state: String,
    /// Where it ran (`pid 4242, on local, shared start ...`, a pod).
    pub launched: String,
    /// When it was lost, in milliseconds since the run's start.
    pub lost_ms: Option<u64>,
    /// Why it was lost (`killed by SIGKILL; 2 of 3 segments left, ...`).
    pub lost_why: Option<String>,
    /// Its wall clock minus the coordinator's at the ready barrier, in milliseconds.
    pub clock_offset_ms: Option<i64>,
    /// Requests its loads completed, and how many were errors (what it sent before it
    /// ended, for a lost one).
    pub requests: Option<u64>,
    pub errors: Option<u64>,
    /// Its part of all segments' requests and of all their errors (0..1).
    pub requests_share: Option<f64>,
    pub errors_share: Option<f64>,
    /// For loads with `track_write`: the acknowledged writes whose keys it sent to the
    /// coordinator (before it ended, for a lost one); all segments' are read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_acked: Option<u64>,
}

/// The segments of a split run, in order; empty for a run on one machine.
pub fn segments(journal: &Journal) -> Vec<SegmentSummary> {
    let mut out: Vec<SegmentSummary> = Vec::new();
    for r in &journal.records {
        let Event::Segment {
            segment,
            state,
            detail,
            clock_offset_ms,
            requests,
            errors,
            writes_acked,
        } = &r.event
        else {
            continue;
        };
        let at = match out.iter().position(|s| s.segment == *segment) {
            Some(at) => at,
            None => {
                out.push(SegmentSummary {
                    segment: segment.clone(),
                    state: String::new(),
                    launched: String::new(),
                    lost_ms: None,
                    lost_why: None,
                    clock_offset_ms: None,
                    requests: None,
                    errors: None,
                    requests_share: None,
                    errors_share: None,
                    writes_acked: None,
                });
                out.len() - 1
            }
        };
        let s = &mut out[at];
        s.state = serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        match state {
            SegmentState::Started => s.launched = detail.clone(),
            SegmentState::Ready => s.clock_offset_ms = *clock_offset_ms,
            SegmentState::Lost => {
                s.lost_ms = Some(r.t);
                s.lost_why = Some(detail.clone());
            }
            SegmentState::Done => {}
        }
        if requests.is_some() {
            s.requests = *requests;
            s.errors = *errors;
        }
        if writes_acked.is_some() {
            s.writes_acked = *writes_acked;
        }
    }
    let total = |f: fn(&SegmentSummary) -> Option<u64>| out.iter().filter_map(f).sum::<u64>();
    let (requests, errors) = (total(|s| s.requests), total(|s| s.errors));
    for s in &mut out {
        s.requests_share = s
            .requests
            .filter(|_| requests > 0)
            .map(|n| n as f64 / requests as f64);
        s.errors_share = s
            .errors
            .filter(|_| errors > 0)
            .map(|n| n as f64 / errors as f64);
    }
    // By segment number, not by who spoke first.
    out.sort_by_key(|s| {
        s.segment
            .split('/')
            .next()
            .and_then(|i| i.parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    });
    out
}

/// The terminal's lines: `segments: 4 ran, 1 lost`, then one line per segment (only
/// the lost ones past `LISTED`). None for a run on one machine.
pub fn lines(segments: &[SegmentSummary]) -> Vec<String> {
    if segments.is_empty() {
        return Vec::new();
    }
    let lost = segments.iter().filter(|s| s.state == "lost").count();
    let offsets: Vec<i64> = segments.iter().filter_map(|s| s.clock_offset_ms).collect();
    let mut head = format!("segments: {} ran, {lost} lost", segments.len());
    if let (Some(lo), Some(hi)) = (offsets.iter().min(), offsets.iter().max()) {
        let _ = write!(head, "; clock offsets {lo:+} .. {hi:+} ms");
    }
    let mut out = vec![head];
    let all = segments.len() <= LISTED;
    for s in segments.iter().filter(|s| all || s.state == "lost") {
        out.push(format!("  {}", line(s)));
    }
    if !all {
        out.push(format!(
            "  (each of the {} segments: summary.json `segments`, the report, segments/<i>/ in the run folder)",
            segments.len()
        ));
    }
    out
}

/// `segment 2/3: lost at 4.20s (killed by SIGKILL; ...), 310 requests (33.1%), 0 errors, clock -1 ms`.
fn line(s: &SegmentSummary) -> String {
    let mut l = format!("segment {}: ", s.segment);
    match (&s.lost_ms, &s.lost_why) {
        (Some(t), Some(why)) => {
            let _ = write!(l, "lost at {} ({why})", crate::summary::secs(*t));
        }
        _ => l.push_str(&s.state),
    }
    if let Some(n) = s.requests {
        let _ = write!(l, ", {n} requests{}", share(s.requests_share));
    }
    if let Some(n) = s.errors {
        let _ = write!(l, ", {n} errors{}", share(s.errors_share));
    }
    if let Some(n) = s.writes_acked {
        let _ = write!(l, ", {n} acknowledged writes");
    }
    if let Some(o) = s.clock_offset_ms {
        let _ = write!(l, ", clock {o:+} ms");
    }
    l
}

fn share(v: Option<f64>) -> String {
    v.map(|v| format!(" ({:.1}%)", v * 100.0))
        .unwrap_or_default()
}

/// The report's `Segments` section; empty for a run on one machine.
pub fn html_section(segments: &[SegmentSummary]) -> String {
    if segments.is_empty() {
        return String::new();
    }
    let mut h = String::new();
    let lost = segments.iter().filter(|s| s.state == "lost").count();
    let _ = writeln!(
        h,
        r#"<section><h2>Segments</h2><p>{} segment(s) ran, {lost} lost; each one's stream is in the run folder under <code>segments/&lt;i&gt;/</code>.</p><table id="segments"><tr><th>segment</th><th>state</th><th>requests</th><th>errors</th><th>clock offset</th><th>where</th></tr>"#,
        segments.len()
    );
    for s in segments {
        let state = match (&s.lost_ms, &s.lost_why) {
            (Some(t), Some(why)) => format!("lost at {} ({why})", crate::summary::secs(*t)),
            _ => s.state.clone(),
        };
        let count = |n: Option<u64>, v: Option<f64>| {
            n.map(|n| format!("{n}{}", share(v))).unwrap_or_default()
        };
        let _ = writeln!(
            h,
            r#"<tr><td>{}</td><td class="{}">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            escape(&s.segment),
            if s.state == "lost" { "bad" } else { "good" },
            escape(&state),
            escape(&count(s.requests, s.requests_share)),
            escape(&count(s.errors, s.errors_share)),
            s.clock_offset_ms
                .map(|o| format!("{o:+} ms"))
                .unwrap_or_default(),
            escape(&s.launched),
        );
    }
    let _ = writeln!(h, "</table></section>");
    h
}
