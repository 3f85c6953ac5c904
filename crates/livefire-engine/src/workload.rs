//! Loads in experiments: a `load:` activity becomes a `livefire_load::LoadConfig`, run on
//! the experiment's clock, publishing one-second windows into the store the referee
//! reads; each finished window is journaled.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use livefire_core::events::Event;
use livefire_core::window::WindowStore;
use livefire_load::{
    Body, Check, Executor, HttpVersion, JsonExpect, LoadConfig, RequestSpec, Segment, Stage,
};
use livefire_spec::{Load, StageTarget};

use crate::journal::Journal;

/// Why a `load:` activity cannot run as written; each names the load.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error(
        "load `{0}` would send nothing (a rate of 0/s, 0 VUs, or stages that stay at 0): give a rate or VUs above 0"
    )]
    SendsNothing(String),
    #[error("load `{name}` request `{request}`: bad method: {source}")]
    Method {
        name: String,
        request: String,
        source: http::method::InvalidMethod,
    },
    #[error("load `{name}`: {source}")]
    Data {
        name: String,
        source: livefire_load::LoadError,
    },
}

/// Builds the load's config; errors name the load and say what to fix.
pub fn config(
    name: &str,
    l: &Load,
    duration: Duration,
    cwd: &Path,
    seed: u64,
) -> Result<LoadConfig, WorkloadError> {
    let stages: Vec<Stage> = l
        .stages
        .iter()
        .map(|s| Stage {
            to: match s.to {
                StageTarget::Rate(r) => r.per_second,
                StageTarget::Vus(v) => v as f64,
            },
            over: s.over.0,
        })
        .collect();
    // A load that would send nothing is a mistake, not a quiet run.
    let peak = stages.iter().map(|s| s.to).fold(0.0, f64::max);
    let sends_nothing = peak <= 0.0
        && match (l.rate, l.vus) {
            (_, Some(vus)) => vus == 0,
            (Some(rate), None) => rate.per_second <= 0.0,
            (None, None) => true,
        };
    if sends_nothing {
        return Err(WorkloadError::SendsNothing(name.to_owned()));
    }
    let executor = match (l.rate, l.vus) {
        (_, Some(vus)) => Executor::Vus {
            vus,
            stages,
            think: l.think.map(|d| d.0).unwrap_or_default(),
        },
        (Some(rate), None) => Executor::Rate {
            rate: rate.per_second,
            stages,
        },
        (None, None) => Executor::Rate { rate: 0.0, stages },
    };
    let mut requests = Vec::new();
    for (i, r) in l.requests.iter().enumerate() {
        let rname = r.name.clone().unwrap_or_else(|| format!("req{}", i + 1));
        let method = r
            .method
            .as_deref()
            .unwrap_or("GET")
            .parse::<http::Method>()
            .map_err(|source| WorkloadError::Method {
                name: name.to_owned(),
                request: rname.clone(),
                source,
            })?;
        let body = match (&r.json, &r.body) {
            (Some(j), _) => Body::Json(j.clone()),
            (None, Some(b)) => Body::Text(b.clone()),
            (None, None) => Body::Empty,
        };
        let mut checks = Vec::new();
        for c in &r.checks {
            if let Some(s) = c.status {
                checks.push(Check::Status(s));
            }
            if let Some(b) = &c.body_contains {
                checks.push(Check::BodyContains(b.clone()));
            }
            for (path, want) in &c.json {
                let expect = match want.get("type").and_then(|t| t.as_str()) {
                    Some(t) if want.as_object().is_some_and(|o| o.len() == 1) => {
                        JsonExpect::Type(t.to_owned())
                    }
                    _ => JsonExpect::Equals(want.clone()),
                };
                checks.push(Check::Json {
                    path: path.clone(),
                    expect,
                });
            }
        }
        requests.push(RequestSpec {
            name: rname,
            weight: r.weight.unwrap_or(1),
            method,
            url: r.url.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body,
            checks,
            track_write: r.track_write.as_ref().map(track),
        });
    }
    let data = match &l.data {
        Some(d) => Some(
            livefire_load::DataSet::from_file(&cwd.join(&d.file)).map_err(|source| {
                WorkloadError::Data {
                    name: name.to_owned(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    Ok(LoadConfig {
        name: name.to_owned(),
        executor,
        duration,
        max_in_flight: l.max_in_flight.unwrap_or(1000) as usize,
        timeout: l.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(5)),
        requests,
        data,
        http_version: if l.http2 == Some(true) {
            HttpVersion::Http2
        } else {
            HttpVersion::Http1
        },
        insecure: false,
        segment: Segment::WHOLE,
        seed,
        source_addresses: l.source_addresses.iter().map(|a| a.0).collect(),
        postgres: l.postgres.as_ref().map(|pg| livefire_load::PostgresLoad {
            dsn: pg.dsn.clone(),
            read_write: pg.target_session_attrs.as_deref() == Some("read-write"),
            statements: l
                .statements
                .iter()
                .enumerate()
                .map(|(i, st)| livefire_load::SqlStatement {
                    name: st.name.clone().unwrap_or_else(|| format!("stmt{}", i + 1)),
                    weight: st.weight.unwrap_or(1),
                    sql: st.sql.clone(),
                    params: st.params.clone(),
                    track_write: st.track_write.as_ref().map(track),
                })
                .collect(),
        }),
    })
}

fn track(t: &livefire_spec::TrackWrite) -> livefire_load::TrackWrite {
    livefire_load::TrackWrite {
        key: t.key.clone(),
        read: t.read.clone(),
    }
}

/// Whether the load records writes to read back after the run.
pub fn tracks_writes(c: &LoadConfig) -> bool {
    c.requests.iter().any(|r| r.track_write.is_some())
        || c.postgres
            .as_ref()
            .is_some_and(|p| p.statements.iter().any(|s| s.track_write.is_some()))
}

/// Raises the open-files limit to the hard limit (`livefire_load::limits`) and refuses,
/// before anything runs, a plan whose loads' virtual users (`segment`'s share) cannot
/// all hold a connection at once: loads count together where their times overlap.
/// Returns the limits, when they can be read.
pub fn check_open_files(
    plan: &crate::plan::Plan,
    segment: livefire_load::Segment,
) -> Result<Option<livefire_load::limits::OpenFiles>, String> {
    let Some(limits) = livefire_load::limits::raise_open_files() else {
        return Ok(None);
    };
    let loads: Vec<(Duration, Duration, &LoadConfig)> = plan
        .activities
        .iter()
        .filter_map(|a| match &a.body {
            crate::plan::Body::Load(c) => Some((a.start, a.start + a.duration, &**c)),
            _ => None,
        })
        .collect();
    // The busiest moment begins when some load begins.
    for (at, _, _) in &loads {
        let active: Vec<&LoadConfig> = loads
            .iter()
            .filter(|(s, e, _)| s <= at && at < e)
            .map(|(_, _, c)| *c)
            .collect();
        let needed = active
            .iter()
            .map(|c| {
                let mut c = (*c).clone();
                c.segment = segment;
                livefire_load::limits::connections_needed(&c)
            })
            .sum();
        let names: Vec<String> = active.iter().map(|c| format!("`{}`", c.name)).collect();
        let what = match names.len() {
            1 => format!("load {}", names[0]),
            _ => format!("loads {} (running together)", names.join(", ")),
        };
        livefire_load::limits::check_open_files(needed, &limits, &what)
            .map_err(|e| format!("{e} (nothing was applied)"))?;
    }
    Ok(Some(limits))
}

/// Journals every window that is complete (its second has passed) and not journaled
/// yet. Call once a second, and once more with `all` at the end.
pub fn journal_windows(
    store: &WindowStore,
    journal: &Journal,
    start: Instant,
    done: &mut std::collections::BTreeMap<String, u64>,
    all: bool,
) {
    let now_s = start.elapsed().as_secs();
    for series in store.series() {
        let next = done.get(&series).copied().unwrap_or(0);
        let mut last = None;
        // The seconds not journaled yet that have ended (all of them at the end).
        let to = if all {
            u64::MAX
        } else {
            now_s.saturating_sub(1)
        };
        for (second, window) in store.windows(&series, next, to) {
            journal.emit(Event::Window {
                series: series.clone(),
                second,
                window,
            });
            last = Some(second + 1);
        }
        if let Some(l) = last {
            done.insert(series, l);
        }
    }
}

/// A shared store, as the referee's metric source.
pub fn source(store: &Arc<WindowStore>) -> Arc<dyn livefire_core::metrics::MetricSource> {
    store.clone()
}
