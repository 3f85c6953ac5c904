//! `livefire load URL`: an ad-hoc load without an experiment file, printing a summary like
//! oha / wrk2. The binary calls [`command`]; it returns the exit code.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use livefire_core::exit::Exit;
use livefire_core::units::{Rate, parse_duration, parse_rate, parse_source_address};
use livefire_core::window::WindowStore;
use tokio_util::sync::CancellationToken;

use crate::config::{Body, Check, Executor, HttpVersion, LoadConfig, RequestSpec, Segment};
use crate::data::DataSet;

/// Flags of `livefire load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The URL to load (http:// or https://); may hold templates such as ${random.int(1,100)}.
    pub url: String,
    /// Open model: send at this rate whatever the answers take (e.g. 200/s, 12000/m;
    /// a bare 200 is per second).
    #[arg(short = 'r', long, visible_alias = "rps", conflicts_with = "vus", value_parser = parse_rate)]
    pub rate: Option<Rate>,
    /// Closed model: this many virtual users, each sending as soon as its last answer came.
    #[arg(short = 'c', long = "vus")]
    pub vus: Option<u32>,
    /// Ramp to a rate (with -r) or VU count (with -c) over a duration, after the start
    /// value: `--stage 500/s:30s` or `--stage 100:30s` (repeatable, in order).
    #[arg(long = "stage", value_name = "TO:OVER", value_parser = parse_stage)]
    pub stages: Vec<StageArg>,
    /// Closed model: each VU waits this long between its answer and its next send.
    #[arg(long, value_parser = parse_duration)]
    pub think: Option<Duration>,
    /// How long to run (e.g. 10s, 2m).
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// HTTP method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// A request body (text template).
    #[arg(short = 'b', long, conflicts_with = "json_body")]
    pub body: Option<String>,
    /// A JSON request body; its strings may hold templates.
    #[arg(long = "json-body")]
    pub json_body: Option<String>,
    /// Per-request timeout.
    #[arg(short = 't', long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Open model: at most this many requests in flight; later sends are dropped.
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: usize,
    /// The status every response must have (a check; others count as check_failed).
    #[arg(long)]
    pub expect_status: Option<u16>,
    /// A CSV or JSON-lines file whose rows feed ${data.COLUMN}.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use HTTP/2 (h2c for http://, ALPN for https://).
    #[arg(long)]
    pub http2: bool,
    /// Accept any TLS certificate.
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Take share i of N of the rate, VUs and data rows (e.g. 2/4) for a split run.
    #[arg(long)]
    pub segment: Option<String>,
    /// A local address to open connections from (repeatable: connections take them in
    /// turn), e.g. 127.0.0.2, to hold more connections than one address has ports.
    #[arg(long = "source-address", value_name = "IP", value_parser = parse_source_address)]
    pub source_addresses: Vec<std::net::IpAddr>,
    /// Seed for template values.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the summary as JSON (with the full latency histogram).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON summary to DIR/load.json, for `livefire merge`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Flags of `livefire merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Folders of the segments: each holds a `load.json` (from `livefire load --out`) or a
    /// run's `journal.jsonl` (its `load_ended` events).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Print the merged summaries as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Merges the load reports found in `args.dirs` exactly (counts add, histograms add
/// bucket by bucket) and prints one summary per load name. Exit 0, or 3 when a folder
/// holds nothing to merge or a report does not parse.
pub fn merge_command(args: &MergeArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let mut merged: std::collections::BTreeMap<String, crate::LoadReport> = Default::default();
    for dir in &args.dirs {
        let reports = match reports_in(dir) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(err, "error: {}: {e}", dir.display());
                return Exit::Invalid;
            }
        };
        for r in reports {
            match merged.get_mut(&r.name) {
                Some(m) => m.merge(&r),
                None => {
                    merged.insert(r.name.clone(), r);
                }
            }
        }
    }
    if args.json {
        let all: Vec<serde_json::Value> = merged.values().map(|r| r.to_json()).collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&all).unwrap_or_default()
        );
    } else {
        for (i, r) in merged.values().enumerate() {
            if i > 0 {
                let _ = writeln!(out);
            }
            let _ = write!(out, "{}", r.render_text());
        }
    }
    Exit::Ok
}

/// Why `livefire merge` found nothing it can merge in a folder.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("cannot read load.json: {0}")]
    Read(#[source] std::io::Error),
    #[error("load.json is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("journal.jsonl line {line}: not JSON: {source}")]
    JournalLine {
        line: usize,
        source: serde_json::Error,
    },
    #[error("{what}: not a livefire load report: {source}")]
    NotAReport {
        what: String,
        source: serde_json::Error,
    },
    #[error(
        "no load.json or journal.jsonl here; pass the folders `livefire load --out` or `livefire run` wrote"
    )]
    NothingHere,
    #[error("the journal has no load_ended event (no load finished in that run)")]
    NoLoadEnded,
}

fn reports_in(dir: &std::path::Path) -> Result<Vec<crate::LoadReport>, MergeError> {
    let parse = |v: &serde_json::Value, what: &str| -> Result<crate::LoadReport, MergeError> {
        serde_json::from_value(v["report"].clone()).map_err(|source| MergeError::NotAReport {
            what: what.to_owned(),
            source,
        })
    };
    let load = dir.join("load.json");
    if load.exists() {
        let text = std::fs::read_to_string(&load).map_err(MergeError::Read)?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(MergeError::NotJson)?;
        return Ok(vec![parse(&v, "load.json")?]);
    }
    let journal = dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).map_err(|_| MergeError::NothingHere)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if !line.contains("\"load_ended\"") {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|source| MergeError::JournalLine {
                line: i + 1,
                source,
            })?;
        if v["type"] == "load_ended" {
            out.push(parse(
                &v["report"],
                &format!("journal.jsonl line {}", i + 1),
            )?);
        }
    }
    if out.is_empty() {
        return Err(MergeError::NoLoadEnded);
    }
    Ok(out)
}

/// One `--stage TO:OVER`. TO is read when the model is known: a rate with `-r` (the
/// rate grammar: a bare number is per second) or a VU count with `-c`.
#[derive(Debug, Clone, PartialEq)]
pub struct StageArg {
    pub to: String,
    pub over: Duration,
}

/// Why the flags of `livefire load` do not make a load; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("bad stage `{0}`: write TO:OVER, like 500/s:30s or 100:30s")]
    Stage(String),
    #[error(transparent)]
    Unit(#[from] livefire_core::units::UnitError),
    #[error("--stage {to}: {source}")]
    StageRate {
        to: String,
        source: livefire_core::units::UnitError,
    },
    #[error("bad stage `{0}`: with -c, TO is a VU count")]
    StageVus(String),
    #[error("--think {0} needs the closed model (-c), not -r")]
    ThinkWithRate(livefire_core::units::Duration),
    #[error("-c 0: give at least one virtual user")]
    NoVus,
    #[error("bad URL `{url}`: {why}; write it like http://127.0.0.1:8080/path")]
    Url { url: String, why: String },
    #[error("bad URL `{url}`: {source}")]
    Target {
        url: String,
        source: crate::client::UrlError,
    },
    #[error("bad method `{0}`: use GET, POST, PUT, ...")]
    Method(String),
    #[error("bad header `{0}`: write it as `Name: value`")]
    Header(String),
    #[error("bad --json-body: {0}")]
    JsonBody(#[source] serde_json::Error),
    #[error(transparent)]
    Data(#[from] crate::LoadError),
    #[error(transparent)]
    Segment(#[from] crate::config::SegmentError),
}

/// Parses `--stage TO:OVER`; OVER is a duration.
pub fn parse_stage(s: &str) -> Result<StageArg, ArgsError> {
    let (to, over) = s
        .rsplit_once(':')
        .ok_or_else(|| ArgsError::Stage(s.to_owned()))?;
    Ok(StageArg {
        to: to.trim().to_owned(),
        over: parse_duration(over)?,
    })
}

impl LoadArgs {
    /// The config these flags describe, or a message saying what to fix.
    pub fn to_config(&self) -> Result<LoadConfig, ArgsError> {
        let open = self.rate.is_some();
        let mut stages = Vec::new();
        for s in &self.stages {
            let to = if open {
                parse_rate(&s.to)
                    .map_err(|source| ArgsError::StageRate {
                        to: s.to.clone(),
                        source,
                    })?
                    .as_per_second()
            } else {
                let v: u32 =
                    s.to.parse()
                        .map_err(|_| ArgsError::StageVus(s.to.clone()))?;
                v as f64
            };
            stages.push(crate::config::Stage { to, over: s.over });
        }
        let think = match self.think {
            Some(t) if open => {
                return Err(ArgsError::ThinkWithRate(livefire_core::units::Duration(t)));
            }
            Some(t) => t,
            None => Duration::ZERO,
        };
        let executor = match (&self.rate, self.vus) {
            (Some(r), _) => Executor::Rate {
                rate: r.as_per_second(),
                stages,
            },
            (None, Some(0)) if stages.is_empty() => {
                return Err(ArgsError::NoVus);
            }
            (None, Some(v)) => Executor::Vus {
                vus: v,
                stages,
                think,
            },
            (None, None) => Executor::Vus {
                vus: 50,
                stages,
                think,
            },
        };
        let uri: http::Uri = self.url.parse().map_err(|e: http::uri::InvalidUri| {
            // The http crate's "invalid format" says nothing a person can act on.
            let why = if self.url.contains("://") {
                e.to_string()
            } else {
                "it is not a URL (no `://`)".to_owned()
            };
            ArgsError::Url {
                url: self.url.clone(),
                why,
            }
        })?;
        crate::client::Key::of(&uri).map_err(|source| ArgsError::Target {
            url: self.url.clone(),
            source,
        })?;
        let method = http::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| ArgsError::Method(self.method.clone()))?;
        let mut headers = Vec::new();
        for h in &self.headers {
            let (n, v) = h
                .split_once(':')
                .ok_or_else(|| ArgsError::Header(h.clone()))?;
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let body = match (&self.body, &self.json_body) {
            (Some(b), _) => Body::Text(b.clone()),
            (None, Some(j)) => Body::Json(serde_json::from_str(j).map_err(ArgsError::JsonBody)?),
            (None, None) => Body::Empty,
        };
        let checks = self.expect_status.map(Check::Status).into_iter().collect();
        let data = match &self.data {
            Some(p) => Some(DataSet::from_file(p)?),
            None => None,
        };
        let segment = match &self.segment {
            Some(s) => Segment::parse(s)?,
            None => Segment::WHOLE,
        };
        Ok(LoadConfig {
            name: "load".into(),
            executor,
            duration: self.duration,
            max_in_flight: self.max_in_flight,
            timeout: self.timeout,
            requests: vec![RequestSpec {
                name: "get".into(),
                weight: 1,
                method,
                url: self.url.clone(),
                headers,
                body,
                checks,
                track_write: None,
            }],
            data,
            http_version: if self.http2 {
                HttpVersion::Http2
            } else {
                HttpVersion::Http1
            },
            insecure: self.insecure,
            segment,
            seed: self.seed,
            postgres: None,
            source_addresses: self.source_addresses.clone(),
        })
    }
}

/// Runs `livefire load` and returns its exit code: 0 when the load ran (whatever the
/// target answered: errors are in the summary), 3 for invalid input. Ctrl-C stops the
/// load early and still prints the summary.
pub fn command(args: &LoadArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let config = match args.to_config() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return Exit::Invalid;
        }
    };
    // One open file per connection: take what the hard limit allows, and refuse
    // virtual users it cannot hold before anything is sent.
    if let Some(limits) = crate::limits::raise_open_files() {
        let needed = crate::limits::connections_needed(&config);
        let what = format!("load `{}`", config.name);
        if let Err(e) = crate::limits::check_open_files(needed, &limits, &what) {
            let _ = writeln!(err, "error: {e}");
            return Exit::Invalid;
        }
    }
    if let Some(dir) = &args.out
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        let _ = writeln!(
            err,
            "error: cannot create {}: {e}; choose another --out",
            dir.display()
        );
        return Exit::Invalid;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the runtime: {e}");
            return Exit::Invalid;
        }
    };
    let result = rt.block_on(async {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                c2.cancel();
            }
        });
        crate::run(config, Instant::now(), cancel, Arc::new(WindowStore::new())).await
    });
    match result {
        Ok(report) => {
            if let Some(dir) = &args.out {
                let path = dir.join("load.json");
                let text = serde_json::to_string_pretty(&report.to_json()).unwrap_or_default();
                if let Err(e) = std::fs::write(&path, text) {
                    let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
                }
            }
            if args.json {
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
                );
            } else {
                let _ = write!(out, "{}", report.render_text());
            }
            Exit::Ok
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            Exit::Invalid
        }
    }
}
