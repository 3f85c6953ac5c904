//! Trends: one experiment's ended runs over time, as `GET /api/experiments/NAME/trends`
//! gives them and the console's Trends page draws them: the time to recover of each
//! fault, each hypothesis condition's and guardrail's margin (how close its worst
//! value came to its bound), and the findings. Each run is read from its folder as
//! `livefire report` reads it: summary.json, or the journal summarized again when the
//! summary is missing (a run that crashed before writing it).

use std::path::Path;

use livefire_report::{ConditionSummary, Summary};
use serde::Serialize;

/// The most runs a trend shows: the latest ones.
pub const MAX_RUNS: usize = 100;

/// An experiment's trend, oldest run first.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    pub experiment: String,
    pub runs: Vec<Point>,
    /// Every fault and condition seen in any run, in first-seen order, so a page draws
    /// one line each even when a run lacks one.
    pub faults: Vec<String>,
    pub conditions: Vec<String>,
    /// Runs left out, with why (still going, no journal).
    pub skipped: Vec<Skipped>,
}

/// One run of the trend.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub id: String,
    pub started: String,
    pub verdict: Option<String>,
    pub duration_ms: u64,
    pub faults: Vec<FaultPoint>,
    pub conditions: Vec<ConditionPoint>,
    pub findings: usize,
    /// Findings at or above the failing severity.
    pub failing_findings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultPoint {
    pub activity: String,
    pub kind: String,
    pub time_to_impact_ms: Option<u64>,
    /// From the rollback to the hypothesis holding again; `None` when it never broke
    /// or never recovered (`recovered` says which).
    pub time_to_recover_ms: Option<u64>,
    pub recovered: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConditionPoint {
    pub name: String,
    /// `hypothesis` or `guardrail`.
    pub role: String,
    pub held: bool,
    pub samples: u64,
    pub failures: u64,
    /// Metric conditions: the bound and the worst value, in the metric's unit.
    pub bound: Option<f64>,
    pub worst: Option<f64>,
    /// Metric conditions: how far the worst value stayed from the bound, as a percent
    /// of the bound: positive inside the limit, negative beyond it (`None` for a bound
    /// of 0, and for probe conditions).
    pub margin_pct: Option<f64>,
    /// Probe conditions: the share of samples that failed, in percent.
    pub failing_pct: Option<f64>,
    /// Probe conditions: the slowest answer.
    pub max_latency_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub id: String,
    pub why: String,
}

/// A run the trend may include: its id, folder, state, verdict and start.
#[derive(Debug, Clone)]
pub struct RunRef {
    pub id: String,
    pub dir: String,
    pub state: String,
    pub verdict: Option<String>,
    pub started: String,
}

/// `GET /api/experiments/NAME/trends`: 404 for an unknown experiment.
pub async fn respond(
    store: std::sync::Arc<crate::store::Store>,
    name: &str,
) -> http::Response<crate::server::Body> {
    use crate::api::{error, json_status};
    use http::StatusCode;
    match store.experiment(name) {
        Ok(Some(_)) => {}
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no experiment named `{name}`: GET /api/experiments lists them"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let runs = match store.runs() {
        Ok(rows) => rows
            .into_iter()
            .filter(|r| r.experiment == name)
            .map(|r| RunRef {
                id: r.id,
                dir: r.dir,
                state: r.state,
                verdict: r.verdict,
                started: r.started,
            })
            .collect(),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let name = name.to_owned();
    // Reading run folders (and perhaps summarizing a journal) blocks.
    match tokio::task::spawn_blocking(move || trend(&name, runs)).await {
        Ok(t) => json_status(StatusCode::OK, serde_json::json!(t)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Builds the trend of `experiment` from its runs (any order; the latest
/// [`MAX_RUNS`] are kept, oldest first). Reads run folders: call off the runtime.
pub fn trend(experiment: &str, mut runs: Vec<RunRef>) -> Trend {
    runs.sort_by(|a, b| a.started.cmp(&b.started).then(a.id.cmp(&b.id)));
    let keep_from = runs.len().saturating_sub(MAX_RUNS);
    let mut out = Trend {
        experiment: experiment.to_owned(),
        runs: Vec::new(),
        faults: Vec::new(),
        conditions: Vec::new(),
        skipped: Vec::new(),
    };
    for r in runs.into_iter().skip(keep_from) {
        if r.state != "ended" {
            out.skipped.push(Skipped {
                id: r.id,
                why: format!("{}: it is in the trend once it has ended", r.state),
            });
            continue;
        }
        let summary = match summary_of(Path::new(&r.dir)) {
            Ok(s) => s,
            Err(why) => {
                out.skipped.push(Skipped { id: r.id, why });
                continue;
            }
        };
        let point = point(&r, &summary);
        for f in &point.faults {
            if !out.faults.contains(&f.activity) {
                out.faults.push(f.activity.clone());
            }
        }
        for c in &point.conditions {
            if !out.conditions.contains(&c.name) {
                out.conditions.push(c.name.clone());
            }
        }
        out.runs.push(point);
    }
    out
}

/// A run folder's summary: summary.json as the run wrote it, else its journal
/// summarized again.
fn summary_of(dir: &Path) -> Result<Summary, String> {
    if let Ok(text) = std::fs::read_to_string(dir.join("summary.json"))
        && let Ok(s) = serde_json::from_str::<Summary>(&text)
    {
        return Ok(s);
    }
    match livefire_report::read_journal(&dir.join("journal.jsonl")) {
        Ok(j) => Ok(livefire_report::summarize(&j)),
        Err(e) => Err(format!(
            "neither summary.json nor a readable journal.jsonl in {} ({e})",
            dir.display()
        )),
    }
}

fn point(r: &RunRef, s: &Summary) -> Point {
    Point {
        id: r.id.clone(),
        started: r.started.clone(),
        verdict: r
            .verdict
            .clone()
            .or_else(|| s.verdict.map(|v| v.label().to_owned())),
        duration_ms: s.duration_ms,
        faults: s
            .faults
            .iter()
            .map(|f| FaultPoint {
                activity: f.activity.clone(),
                kind: f.kind.clone(),
                time_to_impact_ms: f.time_to_impact_ms,
                time_to_recover_ms: f.time_to_recover_ms,
                recovered: f.time_to_impact_ms.is_none() || f.time_to_recover_ms.is_some(),
            })
            .collect(),
        conditions: s.conditions.iter().map(condition).collect(),
        findings: s.findings.len(),
        failing_findings: s.findings.iter().filter(|f| f.fails).count(),
    }
}

/// A condition's margin. The summary's worst value is the one furthest on the wrong
/// side of the bound when any sample failed, else the one closest to it; so the sign
/// comes from whether samples failed, and the size from the distance.
fn condition(c: &ConditionSummary) -> ConditionPoint {
    let margin_pct = match (c.bound, c.worst_value) {
        (Some(b), Some(w)) if b != 0.0 && b.is_finite() && w.is_finite() => {
            let distance = ((b - w) / b).abs() * 100.0;
            Some(if c.failures > 0 { -distance } else { distance })
        }
        _ => None,
    };
    let probe = c.bound.is_none();
    ConditionPoint {
        name: c.name.clone(),
        role: c.role.label().to_owned(),
        held: c.held,
        samples: c.samples,
        failures: c.failures,
        bound: c.bound,
        worst: c.worst_value,
        margin_pct,
        failing_pct: (probe && c.samples > 0).then(|| c.failures as f64 * 100.0 / c.samples as f64),
        max_latency_ms: c.max_latency_ms,
    }
}
