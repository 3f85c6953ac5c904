//! `LoadConfig`: the plain description of one load that the engine (from the experiment
//! file) and `livefire load` (from flags) both build.

use std::net::IpAddr;
use std::time::Duration;

use crate::data::DataSet;

/// One load: how sends are scheduled, what is sent, and how it is judged.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Metrics are named after it (`browse.rps`).
    pub name: String,
    /// When sends happen: a rate (open model) or virtual users (closed model).
    pub executor: Executor,
    /// How long the load runs.
    pub duration: Duration,
    /// Open model: at most this many requests in flight; a send that cannot start within
    /// `timeout` of its intended time is counted as dropped.
    pub max_in_flight: usize,
    /// Per-request timeout (connect, send and the whole response).
    pub timeout: Duration,
    /// What to send; one is chosen per send by weight.
    pub requests: Vec<RequestSpec>,
    /// Rows for `${data.COLUMN}`, one row per send (`seq` modulo the row count).
    pub data: Option<DataSet>,
    /// HTTP/1.1 (default) or HTTP/2 (h2c for http://, ALPN for https://).
    pub http_version: HttpVersion,
    /// Accept any TLS certificate (self-signed test targets).
    pub insecure: bool,
    /// The deterministic share of a split run this process takes.
    pub segment: Segment,
    /// Seed for every random template value and request choice.
    pub seed: u64,
    /// A PostgreSQL load: statements instead of HTTP requests (`requests` stays empty).
    pub postgres: Option<PostgresLoad>,
    /// Local addresses HTTP connections are opened from, in turn (empty: the kernel
    /// picks). One source address towards one ip:port has at most ~28k ephemeral ports,
    /// so a load holding more connections spreads them over several.
    pub source_addresses: Vec<IpAddr>,
}

impl LoadConfig {
    /// Its request names in order (its statements' for a PostgreSQL load): each is a
    /// series `LOAD.NAME` beside the load's own.
    pub fn request_names(&self) -> Vec<String> {
        match &self.postgres {
            Some(p) => p.statements.iter().map(|s| s.name.clone()).collect(),
            None => self.requests.iter().map(|r| r.name.clone()).collect(),
        }
    }

    /// Tells `store` that a load of one request records the same samples under that
    /// request as under the load (with nothing intended), so the store keeps them once
    /// and a segment sends them once. Its recorder and a split run's coordinator both
    /// call this, so both see the same series.
    pub fn share_series(&self, store: &livefire_core::window::WindowStore) {
        if let [only] = self.request_names().as_slice() {
            store.same_as(&format!("{}.{only}", self.name), &self.name);
        }
    }

    /// A config for one GET of `url` with the defaults of `livefire load`.
    pub fn get(name: &str, url: &str, executor: Executor, duration: Duration) -> Self {
        LoadConfig {
            name: name.to_string(),
            executor,
            duration,
            max_in_flight: 1000,
            timeout: Duration::from_secs(5),
            requests: vec![RequestSpec::get("get", url)],
            data: None,
            http_version: HttpVersion::Http1,
            insecure: false,
            segment: Segment::WHOLE,
            seed: 0,
            postgres: None,
            source_addresses: Vec::new(),
        }
    }

    /// A PostgreSQL load running `statements` against `dsn`.
    pub fn postgres(
        name: &str,
        dsn: &str,
        statements: Vec<SqlStatement>,
        executor: Executor,
        duration: Duration,
    ) -> Self {
        let mut c = LoadConfig::get(name, "http://unused/", executor, duration);
        c.requests.clear();
        c.postgres = Some(PostgresLoad {
            dsn: dsn.to_string(),
            read_write: false,
            statements,
        });
        c
    }
}

/// The PostgreSQL side of a load.
#[derive(Debug, Clone)]
pub struct PostgresLoad {
    /// `postgres://user@h1:5432,h2:5433/db` or `host=h1,h2 port=5432,5433 ...`.
    pub dsn: String,
    /// Connect only to a read-write server (`target_session_attrs=read-write`), so after a
    /// failover the next connection goes to the new primary.
    pub read_write: bool,
    pub statements: Vec<SqlStatement>,
}

/// One kind of statement in a PostgreSQL load.
#[derive(Debug, Clone)]
pub struct SqlStatement {
    /// Per-statement metrics are named after it.
    pub name: String,
    pub weight: u32,
    /// SQL with `$1`, `$2`, ... placeholders.
    pub sql: String,
    /// Parameter templates, converted to the types the server expects.
    pub params: Vec<String>,
    /// Record every acknowledged write's key and read it back after the run.
    pub track_write: Option<TrackWrite>,
}

impl SqlStatement {
    pub fn new(name: &str, sql: &str, params: &[&str]) -> Self {
        SqlStatement {
            name: name.to_string(),
            weight: 1,
            sql: sql.to_string(),
            params: params.iter().map(|p| p.to_string()).collect(),
            track_write: None,
        }
    }
}

/// Write tracking (Jepsen's set checker): which key a write made, and how to read it back.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackWrite {
    /// HTTP: a JSON path into the response (`$.id`). SQL: a column of the returned row
    /// (`id`), or a parameter (`$1`), which also makes unacknowledged writes' keys known,
    /// so phantoms can be counted.
    pub key: String,
    /// HTTP: a URL template where `{key}` is the key (2xx: present, 404/410: missing).
    /// SQL: a query with `$1` for the key; the number of rows it returns is how many times
    /// the write is present.
    pub read: String,
}

/// How sends are scheduled.
#[derive(Debug, Clone, PartialEq)]
pub enum Executor {
    /// Open model: sends at `rate` per second (then ramping through `stages`), whether or
    /// not earlier ones were answered; latency counts from the intended send time.
    Rate { rate: f64, stages: Vec<Stage> },
    /// Closed model: `vus` virtual users (then ramping through `stages`), each sending,
    /// waiting for the answer, then thinking for `think`.
    Vus {
        vus: u32,
        stages: Vec<Stage>,
        think: Duration,
    },
}

/// Ramp linearly from the previous value to `to` over `over`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// Target rate (per second) or VU count.
    pub to: f64,
    /// How long the ramp takes.
    pub over: Duration,
}

/// HTTP protocol version of a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    #[default]
    Http1,
    Http2,
}

/// A `--segment` that is not `i/N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad segment `{0}`: write i/N with 1 <= i <= N, e.g. 2/4")]
pub struct SegmentError(String);

/// A share of a split run: this process is `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub index: u32,
    pub count: u32,
}

impl Segment {
    /// The whole load in one process.
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// Parses `i/N` (1-based `i`, as users count: `--segment 1/4` .. `4/4`).
    pub fn parse(s: &str) -> Result<Segment, SegmentError> {
        let bad = || SegmentError(s.to_owned());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i: u32 = i.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        if n == 0 || i == 0 || i > n {
            return Err(bad());
        }
        Ok(Segment {
            index: i - 1,
            count: n,
        })
    }

    /// Whether the global item `k` (send index, VU id) belongs to this segment.
    pub fn owns(&self, k: u64) -> bool {
        k % self.count as u64 == self.index as u64
    }

    /// How many of the global items `0..total` belong to this segment.
    pub fn share_of(&self, total: u64) -> u64 {
        let (i, n) = (self.index as u64, self.count as u64);
        if total > i {
            (total - i).div_ceil(n)
        } else {
            0
        }
    }
}

/// One kind of request in a load.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// Per-request metrics are named after it (`browse.search.rps`).
    pub name: String,
    /// Relative weight when choosing which request to send.
    pub weight: u32,
    pub method: http::Method,
    /// URL template, e.g. `http://127.0.0.1:8080/orders?q=${random.word}`.
    pub url: String,
    /// Header names and value templates.
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Every check must pass for the outcome to be `ok`; a failing one is `check_failed`.
    pub checks: Vec<Check>,
    /// Record each acknowledged write's key and read it back after the run.
    pub track_write: Option<TrackWrite>,
}

impl RequestSpec {
    /// A plain GET.
    pub fn get(name: &str, url: &str) -> Self {
        RequestSpec {
            name: name.to_string(),
            weight: 1,
            method: http::Method::GET,
            url: url.to_string(),
            headers: Vec::new(),
            body: Body::Empty,
            checks: Vec::new(),
            track_write: None,
        }
    }
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Empty,
    /// A text template.
    Text(String),
    /// A JSON value whose strings are templates; sent with `content-type: application/json`.
    Json(serde_json::Value),
}

/// A check on a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// The status code equals this.
    Status(u16),
    /// The body contains this text.
    BodyContains(String),
    /// The JSON value at `path` (`$.items[0].id`) meets `expect`.
    Json { path: String, expect: JsonExpect },
}

/// What a JSON check expects of the value at its path.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonExpect {
    /// The path exists.
    Exists,
    /// The value equals this.
    Equals(serde_json::Value),
    /// The value has this JSON type: `null`, `bool`, `number`, `string`, `array`, `object`.
    Type(String),
}
