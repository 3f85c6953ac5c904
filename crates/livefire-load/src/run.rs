//! The one worker loop. An executor is data (`Executor`); `Shared::next` turns it into
//! tickets (send now, this send is dropped, stop), and every worker, whatever the model,
//! runs the same loop: take a ticket, build the request, send it, record the outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use livefire_core::window::{Outcome, WindowStore};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::LoadError;
use crate::check::Compiled;
use crate::client::{Client, Conns, Key, Outgoing};
use crate::config::{Body, Executor, LoadConfig, Segment};
use crate::data::DataSet;
use crate::pg::{PgConn, PgTarget};
use crate::recorder::{Intent, Recorder};
use crate::report::LoadReport;
use crate::schedule::{RateSchedule, VuSchedule};
use crate::template::{Fill, Template};
use crate::writes::WriteLog;

/// Runs one load from `start` (the run's clock: windows are numbered in seconds since
/// it) until its duration ends or `cancel` fires, publishing a window per second into
/// `store`. Errors only for an invalid config, before anything is sent; failed requests
/// are outcomes in the report.
pub async fn run(
    config: LoadConfig,
    start: Instant,
    cancel: CancellationToken,
    store: Arc<WindowStore>,
) -> Result<LoadReport, LoadError> {
    run_with_writes(config, start, cancel, store, None).await
}

/// As [`run`], recording tracked writes into `writes` (made with the same `start`)
/// when given, so that another task can read their keys while the load runs (a split
/// run's segment streams them to the coordinator).
pub async fn run_with_writes(
    config: LoadConfig,
    start: Instant,
    cancel: CancellationToken,
    store: Arc<WindowStore>,
    writes: Option<Arc<WriteLog>>,
) -> Result<LoadReport, LoadError> {
    let plan = Plan::prepare(&config)?;
    let names = config.request_names();
    config.share_series(&store);
    let writes = plan
        .tracks
        .iter()
        .any(Option::is_some)
        .then(|| writes.unwrap_or_else(|| Arc::new(WriteLog::new(start))));
    let (mode, intent, initial_workers) = match &config.executor {
        Executor::Rate { rate, stages } => {
            let sched = RateSchedule::new(*rate, stages, config.duration);
            let intent = Intent::Schedule(sched.clone(), config.segment);
            (
                Mode::Open {
                    sched,
                    next: tokio::sync::Mutex::new(0),
                },
                intent,
                1,
            )
        }
        Executor::Vus { vus, stages, think } => {
            let sched = VuSchedule::new(*vus, stages, config.duration);
            let workers = config.segment.share_of(sched.max_vus()) as usize;
            (
                Mode::Closed {
                    sched,
                    think: *think,
                },
                Intent::Sent,
                workers,
            )
        }
    };
    let needs_tls = config
        .requests
        .iter()
        .any(|r| r.url.trim_start().starts_with("https"));
    let shared = Arc::new(Shared {
        start,
        end: start + config.duration,
        timeout: config.timeout,
        max_in_flight: config.max_in_flight.max(1),
        segment: config.segment,
        seed: config.seed,
        mode,
        plan,
        data: config.data.clone(),
        client: Client::new(config.http_version, config.insecure, needs_tls)
            .with_source_addresses(config.source_addresses.clone()),
        recorder: Recorder::new(start, config.name.clone(), names, intent, store.clone()),
        cancel: cancel.clone(),
        tracker: TaskTracker::new(),
        workers: AtomicUsize::new(0),
        idle: AtomicUsize::new(0),
        closed_seq: AtomicU64::new(0),
        writes: writes.clone(),
    });

    for k in 0..initial_workers {
        shared.spawn_worker(k);
    }
    let ticker = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut s = 1u64;
            loop {
                let at = shared.start + Duration::from_secs(s) + Duration::from_millis(2);
                tokio::select! {
                    _ = shared.cancel.cancelled() => break,
                    _ = tokio::time::sleep_until(at.into()) => {}
                }
                shared.recorder.tick(Instant::now());
                s += 1;
            }
        })
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = wait_workers(&shared) => {}
    }
    // On cancel, workers stop at their next await; requests in flight are not recorded.
    shared.tracker.close();
    shared.tracker.wait().await;
    ticker.abort();
    let end = Instant::now();
    let (requests, intended) = shared.recorder.finish(end);
    // A load that ran its course lasted its duration (the last send of 10/s for 1 s is
    // due at 0.9 s); a cancelled one lasted until it was stopped.
    let mut lasted = end.saturating_duration_since(start);
    if !cancel.is_cancelled() {
        lasted = lasted.max(config.duration);
    }
    let mut report = LoadReport::new(config.name.clone(), lasted, requests, intended);
    if let Some(log) = &writes {
        // The longest stretch without an acknowledged write, to the load's end: what a
        // failover cost the writers. Known now, judged with the writes.* metrics.
        let gap = log
            .write_gap(end.min(start + config.duration))
            .as_secs_f64();
        report.write_gap_secs = Some(gap);
        store.set_fact(&format!("{}.writes.gap", config.name), gap);
        let worst = store.fact("failover.write_gap").map_or(gap, |g| g.max(gap));
        store.set_fact("failover.write_gap", worst);
    }
    report.write_log = writes;
    Ok(report)
}

async fn wait_workers(shared: &Arc<Shared>) {
    // Workers spawn workers (open model), so wait until the count is zero rather than
    // closing the tracker early.
    loop {
        if shared.workers.load(Ordering::Acquire) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The most virtual users one process (one segment) runs.
const MAX_VUS_PER_PROCESS: u64 = 100_000;

/// A config checked and compiled: templates parsed, checks validated.
struct Plan {
    /// HTTP requests (empty for a PostgreSQL load).
    requests: Vec<PlannedRequest>,
    /// SQL statements (empty for an HTTP load), and where they go.
    sql: Vec<PlannedSql>,
    pg: Option<PgTarget>,
    /// Per request or statement: how its write's key is found, when tracked.
    tracks: Vec<Option<Track>>,
    weights: Vec<u32>,
    weight_total: u32,
}

struct PlannedSql {
    sql: String,
    params: Vec<Template>,
}

/// Where a tracked write's key comes from.
enum Track {
    /// A JSON path into the HTTP answer.
    Json(Vec<crate::check::Step>),
    /// A column of the first returned row.
    Column(String),
    /// A statement parameter (0-based), known before sending.
    Param(usize),
}

struct PlannedRequest {
    method: http::Method,
    url: Template,
    /// The URL and key when the URL has no template (parsed once).
    fixed: Option<(http::Uri, Arc<Key>)>,
    headers: Vec<(http::HeaderName, Template)>,
    body: Option<(Template, bool)>,
    checks: Vec<Compiled>,
    has_status_check: bool,
    wants_body: bool,
}

impl Plan {
    fn prepare(config: &LoadConfig) -> Result<Plan, LoadError> {
        let cfg = |m: String| LoadError::Config(m);
        let statements = config
            .postgres
            .as_ref()
            .map(|p| p.statements.as_slice())
            .unwrap_or(&[]);
        if config.postgres.is_some() && !config.requests.is_empty() {
            return Err(cfg("a load sends either HTTP requests or PostgreSQL statements, not both; split it in two loads".into()));
        }
        if config.requests.is_empty() && statements.is_empty() {
            return Err(cfg("the load has no requests; give it at least one".into()));
        }
        match &config.executor {
            Executor::Rate { rate, stages } => {
                if !rate.is_finite()
                    || *rate < 0.0
                    || stages.iter().any(|s| !s.to.is_finite() || s.to < 0.0)
                {
                    return Err(cfg(format!(
                        "bad rate {rate}: give a positive rate such as 200/s"
                    )));
                }
                if *rate == 0.0 && stages.iter().all(|s| s.to == 0.0) {
                    return Err(cfg(
                        "the rate is 0: give a positive rate such as 200/s".into()
                    ));
                }
            }
            Executor::Vus { vus, stages, .. } => {
                if *vus == 0 && stages.iter().all(|s| s.to < 1.0) {
                    return Err(cfg("0 virtual users: give at least 1 (-c 10)".into()));
                }
                // The limit is per process (a segment's share): a million VUs is a load
                // for ten segments or more, not one that cannot be written.
                let limit = MAX_VUS_PER_PROCESS * config.segment.count.max(1) as u64;
                if stages
                    .iter()
                    .any(|s| !s.to.is_finite() || s.to < 0.0 || s.to > limit as f64)
                {
                    return Err(cfg(format!("a VU stage must be between 0 and {limit}")));
                }
                let max = VuSchedule::new(*vus, stages, config.duration).max_vus();
                let mine = config.segment.share_of(max);
                if mine > MAX_VUS_PER_PROCESS {
                    return Err(cfg(format!(
                        "{mine} virtual users in one process is more than {MAX_VUS_PER_PROCESS}; split the load into more segments (--segments, --segment)"
                    )));
                }
            }
        }
        if config.duration.is_zero() {
            return Err(cfg("the duration is 0: give one such as 10s".into()));
        }
        if config.timeout.is_zero() {
            return Err(cfg("the timeout is 0: give one such as 5s".into()));
        }
        if config.segment.count == 0 || config.segment.index >= config.segment.count {
            return Err(cfg("bad segment: write i/N with 1 <= i <= N".into()));
        }
        let columns = crate::template::columns_of(config.data.as_ref());
        let mut requests = Vec::new();
        let mut weights = Vec::new();
        for r in &config.requests {
            let terr = |message: String| LoadError::Template {
                request: r.name.clone(),
                message,
            };
            if r.name.is_empty() || r.name.contains(['.', ' ']) {
                return Err(cfg(format!(
                    "request name `{}`: use a non-empty name without dots or spaces",
                    r.name
                )));
            }
            let url = Template::parse(&r.url, &columns).map_err(|e| terr(e.to_string()))?;
            // Fill the URL once to check it is an absolute http(s) URL.
            let mut rng = SmallRng::seed_from_u64(0);
            let sample_row = config.data.as_ref().and_then(|d| d.row(0));
            let sample = url.render(&mut Fill {
                rng: &mut rng,
                seq: 0,
                row: sample_row,
            });
            let uri: http::Uri = sample.parse().map_err(|e| {
                terr(format!(
                    "bad URL `{sample}`: {e}; write it like http://127.0.0.1:8080/path"
                ))
            })?;
            let key = Key::of(&uri).map_err(|m| terr(format!("bad URL `{sample}`: {m}")))?;
            let fixed = url.is_static().then(|| (uri, Arc::new(key)));
            let mut headers = Vec::new();
            for (name, value) in &r.headers {
                let hn = http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| terr(format!("bad header name `{name}`")))?;
                headers.push((
                    hn,
                    Template::parse(value, &columns).map_err(|e| terr(e.to_string()))?,
                ));
            }
            let body = match &r.body {
                Body::Empty => None,
                Body::Text(t) => Some((
                    Template::parse(t, &columns).map_err(|e| terr(e.to_string()))?,
                    false,
                )),
                Body::Json(v) => {
                    let text = serde_json::to_string(v)
                        .map_err(|e| terr(format!("bad JSON body: {e}")))?;
                    Some((
                        Template::parse_json(&text, &columns).map_err(|e| terr(e.to_string()))?,
                        true,
                    ))
                }
            };
            let checks = r
                .checks
                .iter()
                .map(Compiled::new)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| terr(e.to_string()))?;
            let has_status_check = checks.iter().any(|c| matches!(c, Compiled::Status(_)));
            let wants_body = checks.iter().any(Compiled::needs_body);
            requests.push(PlannedRequest {
                method: r.method.clone(),
                url,
                fixed,
                headers,
                body,
                checks,
                has_status_check,
                wants_body,
            });
            weights.push(r.weight);
        }
        let mut tracks: Vec<Option<Track>> = Vec::new();
        for r in &config.requests {
            let terr = |message: String| LoadError::Template {
                request: r.name.clone(),
                message,
            };
            tracks.push(match &r.track_write {
                None => None,
                Some(t) => {
                    if !t.read.contains("{key}") {
                        return Err(terr(format!(
                            "track_write.read `{}` must hold `{{key}}` where the key goes",
                            t.read
                        )));
                    }
                    Some(Track::Json(
                        crate::check::parse_path(&t.key).map_err(|e| terr(e.to_string()))?,
                    ))
                }
            });
        }
        let mut sql = Vec::new();
        let mut pg = None;
        if let Some(p) = &config.postgres {
            pg = Some(PgTarget::new(&p.dsn, p.read_write, config.timeout)?);
            for s in &p.statements {
                let terr = |message: String| LoadError::Template {
                    request: s.name.clone(),
                    message,
                };
                if s.name.is_empty() || s.name.contains(['.', ' ']) {
                    return Err(cfg(format!(
                        "statement name `{}`: use a non-empty name without dots or spaces",
                        s.name
                    )));
                }
                if s.sql.trim().is_empty() {
                    return Err(terr("the statement's SQL is empty".into()));
                }
                let params = s
                    .params
                    .iter()
                    .map(|p| Template::parse(p, &columns))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| terr(e.to_string()))?;
                tracks.push(match &s.track_write {
                    None => None,
                    Some(t) => {
                        if t.read.trim().is_empty() {
                            return Err(terr("track_write.read is empty: give a query with $1 for the key".into()));
                        }
                        match t.key.strip_prefix('$') {
                            Some(n) => {
                                let n: usize = n.parse().ok().filter(|n| (1..=params.len()).contains(n)).ok_or_else(|| {
                                    terr(format!("track_write.key `{}`: name a column, or a parameter $1..${}", t.key, params.len()))
                                })?;
                                Some(Track::Param(n - 1))
                            }
                            None => Some(Track::Column(t.key.clone())),
                        }
                    }
                });
                sql.push(PlannedSql {
                    sql: s.sql.clone(),
                    params,
                });
                weights.push(s.weight);
            }
        }
        let targets: Vec<&Key> = requests
            .iter()
            .filter_map(|r| r.fixed.as_ref().map(|(_, k)| &**k))
            .collect();
        if config.postgres.is_some() && !config.source_addresses.is_empty() {
            return Err(cfg(
                "source_addresses applies to HTTP loads only: remove it from the PostgreSQL load"
                    .into(),
            ));
        }
        crate::client::check_source_addresses(&config.source_addresses, &targets).map_err(cfg)?;
        let weight_total: u32 = weights.iter().sum();
        if weight_total == 0 {
            return Err(cfg(
                "every request has weight 0: give at least one a positive weight".into(),
            ));
        }
        Ok(Plan {
            requests,
            sql,
            pg,
            tracks,
            weights,
            weight_total,
        })
    }
}

enum Mode {
    Open {
        sched: RateSchedule,
        next: tokio::sync::Mutex<u64>,
    },
    Closed {
        sched: VuSchedule,
        think: Duration,
    },
}

enum Ticket {
    Send { seq: u64, intended: Instant },
    Drop { seq: u64, intended: Instant },
    Done,
}

struct Shared {
    start: Instant,
    end: Instant,
    timeout: Duration,
    max_in_flight: usize,
    segment: Segment,
    seed: u64,
    mode: Mode,
    plan: Plan,
    data: Option<DataSet>,
    client: Client,
    recorder: Recorder,
    cancel: CancellationToken,
    tracker: TaskTracker,
    workers: AtomicUsize,
    /// Open model: workers waiting for (or holding) the dispatcher.
    idle: AtomicUsize,
    closed_seq: AtomicU64,
    writes: Option<Arc<WriteLog>>,
}

impl Shared {
    fn spawn_worker(self: &Arc<Self>, k: usize) {
        self.workers.fetch_add(1, Ordering::AcqRel);
        let shared = self.clone();
        self.tracker.spawn(async move {
            // One cancellation wait per worker (not per request): the loop's awaits stop
            // where they are when the run is cancelled.
            tokio::select! {
                biased;
                _ = shared.cancel.cancelled() => {}
                _ = worker(&shared, k) => {}
            }
            shared.workers.fetch_sub(1, Ordering::AcqRel);
        });
    }

    /// The next ticket for worker `k`: the executor, as data, decides.
    async fn next(self: &Arc<Self>, k: usize) -> Ticket {
        match &self.mode {
            Mode::Open { sched, next } => {
                self.idle.fetch_add(1, Ordering::AcqRel);
                let mut j = next.lock().await;
                // Only the worker holding the dispatcher waits for the next send time, so
                // idle workers (and their connections) are reused rather than all woken.
                let i = self.segment.index as u64 + *j * self.segment.count as u64;
                let ticket = match sched.offset(i) {
                    None => Ticket::Done,
                    Some(offset) => {
                        *j += 1;
                        let intended = self.start + Duration::from_secs_f64(offset);
                        let now = Instant::now();
                        if now > intended + self.timeout {
                            // Every worker was busy (max_in_flight reached) or the generator
                            // fell behind for longer than the timeout: this send never starts.
                            Ticket::Drop { seq: i, intended }
                        } else {
                            if intended > now {
                                tokio::time::sleep_until(intended.into()).await;
                            }
                            Ticket::Send { seq: i, intended }
                        }
                    }
                };
                drop(j);
                let idle_others = self.idle.fetch_sub(1, Ordering::AcqRel) - 1;
                if matches!(ticket, Ticket::Send { .. })
                    && idle_others == 0
                    && self.workers.load(Ordering::Acquire) < self.max_in_flight
                {
                    // Keep one worker waiting at the dispatcher while this one sends.
                    self.spawn_worker(self.workers.load(Ordering::Acquire));
                }
                ticket
            }
            Mode::Closed { sched, .. } => loop {
                let now = Instant::now();
                if now >= self.end {
                    return Ticket::Done;
                }
                let t = now.saturating_duration_since(self.start).as_secs_f64();
                let active = self.segment.share_of(sched.vus_at(t));
                if (k as u64) < active {
                    let local = self.closed_seq.fetch_add(1, Ordering::Relaxed);
                    let seq = self.segment.index as u64 + local * self.segment.count as u64;
                    return Ticket::Send { seq, intended: now };
                }
                // Not active yet (or ramped down): sleep until the ramp reaches this
                // worker's VU, rather than polling (100,000 idle VUs polling every 50 ms
                // would be two million wake-ups a second during a ramp).
                let needed = k as u64 * self.segment.count as u64 + self.segment.index as u64 + 1;
                let wake = sched
                    .first_time_with(needed, t)
                    .map_or(self.end, |s| self.start + Duration::from_secs_f64(s))
                    .max(now + Duration::from_millis(1))
                    .min(self.end);
                tokio::time::sleep_until(wake.into()).await;
            },
        }
    }

    fn rng(&self, seq: u64) -> SmallRng {
        SmallRng::seed_from_u64(self.seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn pick(&self, rng: &mut SmallRng) -> usize {
        if self.plan.weights.len() == 1 {
            return 0;
        }
        let mut x = rng.random_range(0..self.plan.weight_total);
        for (i, w) in self.plan.weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        self.plan.weights.len() - 1
    }

    fn build(&self, idx: usize, seq: u64, rng: &mut SmallRng) -> Result<Outgoing, Outcome> {
        let r = &self.plan.requests[idx];
        let row = self.data.as_ref().and_then(|d| d.row(seq));
        let mut fill = Fill { rng, seq, row };
        let (uri, key) = match &r.fixed {
            Some((u, k)) => (u.clone(), k.clone()),
            None => {
                let s = r.url.render(&mut fill);
                let uri: http::Uri = s.parse().map_err(|_| Outcome::Other)?;
                let key = Key::of(&uri).map_err(|_| Outcome::Other)?;
                (uri, Arc::new(key))
            }
        };
        let mut headers = if r.headers.is_empty() && r.body.is_none() {
            http::HeaderMap::new()
        } else {
            http::HeaderMap::with_capacity(r.headers.len() + 1)
        };
        for (name, t) in &r.headers {
            let v =
                http::HeaderValue::from_str(&t.render(&mut fill)).map_err(|_| Outcome::Other)?;
            headers.append(name.clone(), v);
        }
        let body = match &r.body {
            None => Bytes::new(),
            Some((t, json)) => {
                if *json && !headers.contains_key(http::header::CONTENT_TYPE) {
                    headers.insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                }
                Bytes::from(t.render(&mut fill))
            }
        };
        Ok(Outgoing {
            key,
            method: r.method.clone(),
            uri,
            headers,
            body,
        })
    }

    /// Sends HTTP request `idx` and judges the answer; records a tracked write's key.
    async fn execute_http(
        &self,
        idx: usize,
        seq: u64,
        rng: &mut SmallRng,
        conns: &mut Conns,
    ) -> Outcome {
        let req = match self.build(idx, seq, rng) {
            Err(o) => return o,
            Ok(req) => req,
        };
        let key = req.key.clone();
        let track = self.plan.tracks.get(idx).and_then(Option::as_ref);
        let want_body = self.plan.requests[idx].wants_body || track.is_some();
        let result =
            tokio::time::timeout(self.timeout, self.client.send(conns, req, want_body)).await;
        match result {
            Err(_) => {
                // The connection is mid-request; it cannot be reused.
                conns.forget(&key);
                Outcome::Timeout
            }
            Ok(Err(o)) => o,
            Ok(Ok(answer)) => {
                let outcome = self.judge(idx, answer.status, &answer.body);
                if let (Some(Track::Json(path)), Some(log), Outcome::Ok) =
                    (track, &self.writes, outcome)
                {
                    let key = serde_json::from_slice::<serde_json::Value>(&answer.body)
                        .ok()
                        .and_then(|doc| crate::check::lookup(&doc, path).map(json_key));
                    log.acked(idx, key);
                }
                outcome
            }
        }
    }

    /// Runs SQL statement `idx`; records a tracked write's key (acknowledged, or of
    /// unknown fate when the key is a parameter and the answer never came).
    async fn execute_sql(
        &self,
        pg: &PgTarget,
        idx: usize,
        seq: u64,
        rng: &mut SmallRng,
        conn: &mut PgConn,
    ) -> Outcome {
        let st = &self.plan.sql[idx];
        let row = self.data.as_ref().and_then(|d| d.row(seq));
        let mut fill = Fill { rng, seq, row };
        let params: Vec<String> = st.params.iter().map(|t| t.render(&mut fill)).collect();
        let result =
            tokio::time::timeout(self.timeout, conn.query(pg, idx, &st.sql, &params)).await;
        let outcome = match &result {
            Err(_) => Outcome::Timeout,
            Ok(Err(o)) => *o,
            Ok(Ok(_)) => Outcome::Ok,
        };
        if let (Some(track), Some(log)) = (
            self.plan.tracks.get(idx).and_then(Option::as_ref),
            &self.writes,
        ) {
            match (track, &result) {
                (Track::Param(n), Ok(Ok(_))) => log.acked(idx, params.get(*n).cloned()),
                (Track::Column(c), Ok(Ok(rows))) => {
                    log.acked(idx, rows.first().and_then(|r| crate::pg::column_text(r, c)))
                }
                // Refused: the write surely never happened. Otherwise its fate is unknown.
                (Track::Param(n), _) if outcome != Outcome::ConnectRefused => {
                    if let Some(k) = params.get(*n) {
                        log.unknown(idx, k.clone());
                    }
                }
                _ => {}
            }
        }
        outcome
    }

    fn judge(&self, idx: usize, status: u16, body: &[u8]) -> Outcome {
        let r = &self.plan.requests[idx];
        let mut json = None;
        if r.has_status_check {
            for c in r.checks.iter().filter(|c| matches!(c, Compiled::Status(_))) {
                if !c.passes(status, body, &mut json) {
                    return status_class(status).unwrap_or(Outcome::CheckFailed);
                }
            }
        } else if let Some(o) = status_class(status) {
            return o;
        }
        if r.checks.iter().all(|c| c.passes(status, body, &mut json)) {
            Outcome::Ok
        } else {
            Outcome::CheckFailed
        }
    }
}

fn json_key(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn status_class(status: u16) -> Option<Outcome> {
    match status {
        400..=499 => Some(Outcome::Http4xx),
        500..=599 => Some(Outcome::Http5xx),
        _ => None,
    }
}

/// The one worker loop, for every executor.
async fn worker(shared: &Arc<Shared>, k: usize) {
    let mut conns = Conns::default();
    let mut pg_conn = PgConn::default();
    let think = match &shared.mode {
        Mode::Closed { think, .. } => *think,
        Mode::Open { .. } => Duration::ZERO,
    };
    loop {
        let ticket = shared.next(k).await;
        let (seq, intended, dropped) = match ticket {
            Ticket::Done => return,
            Ticket::Send { seq, intended } => (seq, intended, false),
            Ticket::Drop { seq, intended } => (seq, intended, true),
        };
        let mut rng = shared.rng(seq);
        let idx = shared.pick(&mut rng);
        if dropped {
            let now = Instant::now();
            shared.recorder.record(
                idx,
                Outcome::Dropped,
                now.saturating_duration_since(intended),
                now,
            );
            continue;
        }
        let sent_at = Instant::now();
        shared.recorder.sent(idx, sent_at);
        let outcome = if let Some(pg) = &shared.plan.pg {
            // Boxed: a PostgreSQL query's future is large, and inline it would make
            // every worker's future (held for the life of each VU) as large, HTTP or not.
            Box::pin(shared.execute_sql(pg, idx, seq, &mut rng, &mut pg_conn)).await
        } else {
            shared.execute_http(idx, seq, &mut rng, &mut conns).await
        };
        let now = Instant::now();
        shared
            .recorder
            .record(idx, outcome, now.saturating_duration_since(intended), now);
        if let Some(log) = &shared.writes
            && shared.plan.tracks.get(idx).is_some_and(Option::is_some)
        {
            log.ended(sent_at, now, outcome == Outcome::Ok);
        }
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
    }
}
