//! Write tracking for data-loss checks (Jepsen's set checker): during the run, the key of
//! every acknowledged write (and, where the key is known before sending, of every write
//! whose fate is unknown); after the run, `verify_writes` reads every key back and counts
//! writes `acked`, `lost` (acknowledged, then missing), `phantom` (present though never
//! acknowledged), `duplicated` (acknowledged or present more than once), and
//! `unverified` (the read-back itself failed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livefire_core::events::WriteRun;
use livefire_core::window::{Outcome, WindowStore};
use serde::{Deserialize, Serialize};

use crate::LoadError;
use crate::client::{Client, Conns, Key, Outgoing};
use crate::config::LoadConfig;
use crate::pg::{PgConn, PgTarget};
use crate::report::LoadReport;

/// The keys a load wrote, kept only for requests with `track_write`.
#[derive(Debug, Default)]
pub struct WriteLog {
    inner: Mutex<LogInner>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct LogInner {
    /// (request index, key) of each acknowledged write.
    acked: Vec<(usize, String)>,
    /// Acknowledged writes whose answer did not carry the key.
    acked_without_key: u64,
    /// (request index, key) of writes sent but not acknowledged (timeouts, resets).
    unknown: Vec<(usize, String)>,
    /// When the load started, and when the last write was acknowledged.
    start: Option<std::time::Instant>,
    last_ack: Option<std::time::Instant>,
    /// The longest time without an acknowledged write so far.
    max_gap: Duration,
    /// Every tracked write's fate in the order they ended, run-length encoded.
    runs: Vec<WriteRun>,
    /// Where recording runs stopped, past `MAX_RUNS` (ms since the start).
    truncated_ms: Option<u64>,
    /// When set, a run also ends where a new slice of this many ms begins (counted
    /// from the start, by the time a write ended): see [`WriteLog::sliced`].
    slice_ms: Option<u64>,
}

/// Runs kept per load: a write outcome that flips more often than this is summarized
/// up to the point where it stopped being recorded (memory stays flat).
const MAX_RUNS: usize = 50_000;

impl PartialEq for WriteLog {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other) || *self.lock() == *other.lock()
    }
}

impl WriteLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An empty log for a load that started at `start`.
    pub fn new(start: std::time::Instant) -> WriteLog {
        let log = WriteLog::default();
        log.lock().start = Some(start);
        log
    }

    /// An empty log whose runs also end at every `slice` after `start`, even when the
    /// next write has the same fate: a split run's segment records this way, so that
    /// where one segment's writes failed while another's were acknowledged, the merged
    /// runs ([`merge_runs`]) interleave at least at this resolution. Adjacent runs of
    /// the same fate coalesce again when merged, so the slices cost nothing there.
    pub fn sliced(start: std::time::Instant, slice: Duration) -> WriteLog {
        let log = WriteLog::new(start);
        log.lock().slice_ms = Some(slice.as_millis().max(1) as u64);
        log
    }

    /// The longest time with no acknowledged write, from the load's start to `end`
    /// (a failover's write gap).
    pub fn write_gap(&self, end: std::time::Instant) -> Duration {
        let l = self.lock();
        let since = l
            .last_ack
            .or(l.start)
            .map(|t| end.saturating_duration_since(t))
            .unwrap_or_default();
        l.max_gap.max(since)
    }

    pub(crate) fn acked(&self, req: usize, key: Option<String>) {
        let now = std::time::Instant::now();
        let mut l = self.lock();
        if let Some(prev) = l.last_ack.or(l.start) {
            let gap = now.saturating_duration_since(prev);
            if gap > l.max_gap {
                l.max_gap = gap;
            }
        }
        l.last_ack = Some(now);
        match key {
            Some(k) => l.acked.push((req, k)),
            None => l.acked_without_key += 1,
        }
    }

    pub(crate) fn unknown(&self, req: usize, key: String) {
        self.lock().unknown.push((req, key));
    }

    /// Records how one tracked write ended: sent at `sent`, acknowledged (`ok`) or
    /// failed at `done`. Consecutive writes with the same fate share one run.
    pub(crate) fn ended(&self, sent: std::time::Instant, done: std::time::Instant, ok: bool) {
        let mut l = self.lock();
        let Some(start) = l.start else { return };
        let ms = |t: std::time::Instant| t.saturating_duration_since(start).as_millis() as u64;
        let (sent, done) = (ms(sent), ms(done));
        if l.truncated_ms.is_some() {
            return;
        }
        let full = l.runs.len() >= MAX_RUNS;
        let slice = l.slice_ms;
        let same_slice = |first: u64| slice.is_none_or(|s| first / s == done / s);
        match l.runs.last_mut() {
            Some(r) if r.ok == ok && same_slice(r.first_done_ms) => {
                r.n += 1;
                r.first_sent_ms = r.first_sent_ms.min(sent);
                r.last_sent_ms = r.last_sent_ms.max(sent);
                r.last_done_ms = r.last_done_ms.max(done);
            }
            _ if full => l.truncated_ms = Some(done),
            _ => l.runs.push(WriteRun {
                ok,
                n: 1,
                first_sent_ms: sent,
                last_sent_ms: sent,
                first_done_ms: done,
                last_done_ms: done,
            }),
        }
    }

    /// The runs of acknowledged and failed writes so far, and where recording stopped
    /// (if it did).
    pub fn runs(&self) -> (Vec<WriteRun>, Option<u64>) {
        let l = self.lock();
        (l.runs.clone(), l.truncated_ms)
    }

    /// The runs that changed since `read` (the first call answers even with none), moving
    /// `read` past them; `None` when nothing changed. What another process (a split
    /// run's coordinator) needs to hold the same runs: see [`RunsUpdate`].
    pub fn runs_since(&self, read: &mut RunsRead) -> Option<RunsUpdate> {
        let l = self.lock();
        let len = l.runs.len();
        let last = l.runs.last().copied();
        if read.sent && len == read.len && last == read.last && l.truncated_ms == read.truncated {
            return None;
        }
        // Runs before the last one sent never change again; the last one may have grown.
        let from = read.len.saturating_sub(1).min(len);
        let update = RunsUpdate {
            from,
            runs: l.runs[from..].to_vec(),
            truncated_ms: l.truncated_ms,
        };
        *read = RunsRead {
            sent: true,
            len,
            last,
            truncated: l.truncated_ms,
        };
        Some(update)
    }

    /// How many acknowledged writes were recorded.
    pub fn acked_count(&self) -> u64 {
        let l = self.lock();
        l.acked.len() as u64 + l.acked_without_key
    }

    /// The keys recorded since `read` (at most `max` of them), moving `read` past them:
    /// what another process (a split run's coordinator) needs to read them back.
    pub fn keys_since(&self, read: &mut KeysRead, max: usize) -> WriteKeys {
        let l = self.lock();
        let acked: Vec<(usize, String)> = l.acked[read.acked.min(l.acked.len())..]
            .iter()
            .take(max)
            .cloned()
            .collect();
        read.acked += acked.len();
        let room = max - acked.len();
        let unknown: Vec<(usize, String)> = l.unknown[read.unknown.min(l.unknown.len())..]
            .iter()
            .take(room)
            .cloned()
            .collect();
        read.unknown += unknown.len();
        let acked_without_key = l.acked_without_key - read.acked_without_key;
        read.acked_without_key = l.acked_without_key;
        WriteKeys {
            acked,
            acked_without_key,
            unknown,
        }
    }

    /// Adds keys another process recorded (`keys_since` there), as if written here.
    pub fn add_keys(&self, keys: WriteKeys) {
        let mut l = self.lock();
        l.acked.extend(keys.acked);
        l.acked_without_key += keys.acked_without_key;
        l.unknown.extend(keys.unknown);
    }
}

/// Keys of tracked writes on their way from one process to another: each with the
/// index of its request (or statement) in the load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteKeys {
    /// Acknowledged writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acked: Vec<(usize, String)>,
    /// Acknowledged writes whose answer did not carry the key.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub acked_without_key: u64,
    /// Writes sent but not acknowledged, whose key was known before sending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<(usize, String)>,
}

impl WriteKeys {
    /// No key and no count: nothing to send.
    pub fn is_empty(&self) -> bool {
        self.acked.is_empty() && self.unknown.is_empty() && self.acked_without_key == 0
    }

    /// The acknowledged writes it carries, with or without a key.
    pub fn acked_count(&self) -> u64 {
        self.acked.len() as u64 + self.acked_without_key
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How far [`WriteLog::keys_since`] has read a log.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeysRead {
    acked: usize,
    acked_without_key: u64,
    unknown: usize,
}

/// How far [`WriteLog::runs_since`] has read a log.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunsRead {
    sent: bool,
    len: usize,
    last: Option<WriteRun>,
    truncated: Option<u64>,
}

/// A log's runs on their way from one process to another ([`WriteLog::runs_since`]):
/// the sender's runs from index `from` on, which replace what the receiver holds from
/// there (the last run sent before may have grown since).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunsUpdate {
    #[serde(default)]
    pub from: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<WriteRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_ms: Option<u64>,
}

impl RunsUpdate {
    /// Brings `runs` and `truncated_ms` (what the receiver holds of the sender's log)
    /// up to date, with every time moved `shift_ms` later (onto the receiver's clock).
    pub fn apply(self, shift_ms: u64, runs: &mut Vec<WriteRun>, truncated_ms: &mut Option<u64>) {
        runs.truncate(self.from);
        runs.extend(self.runs.into_iter().map(|r| WriteRun {
            first_sent_ms: r.first_sent_ms.saturating_add(shift_ms),
            last_sent_ms: r.last_sent_ms.saturating_add(shift_ms),
            first_done_ms: r.first_done_ms.saturating_add(shift_ms),
            last_done_ms: r.last_done_ms.saturating_add(shift_ms),
            ..r
        }));
        *truncated_ms = self.truncated_ms.map(|t| t.saturating_add(shift_ms));
    }
}

/// Several logs' runs (a split run's segments', on one clock) as one sequence in the
/// order the writes ended, as one log of all their writes would have recorded them, to
/// the resolution of the runs given: each run stays whole (its writes' own times are
/// not known), runs are taken in the order of their first and then last write's end
/// (each log's own order kept), and neighbours of the same fate coalesce into one (their
/// counts added, the earliest and latest of their times kept). Where recording stopped
/// is the earliest of the logs' (`truncated_ms`): runs that began after it are left out,
/// since some logs recorded nothing from there on.
pub fn merge_runs(parts: &[(Vec<WriteRun>, Option<u64>)]) -> (Vec<WriteRun>, Option<u64>) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let truncated_ms = parts.iter().filter_map(|(_, t)| *t).min();
    let key = |r: &WriteRun| (r.first_done_ms, r.last_done_ms);
    // The head of each log, earliest first (its first and last end, the log, the run's
    // index in it); ties go to the earlier log.
    type Head = ((u64, u64), usize, usize);
    let mut heads: BinaryHeap<Reverse<Head>> = parts
        .iter()
        .enumerate()
        .filter_map(|(p, (runs, _))| runs.first().map(|r| Reverse((key(r), p, 0))))
        .collect();
    let mut out: Vec<WriteRun> = Vec::new();
    while let Some(Reverse((_, p, i))) = heads.pop() {
        let runs = &parts[p].0;
        if let Some(next) = runs.get(i + 1) {
            heads.push(Reverse((key(next), p, i + 1)));
        }
        let r = runs[i];
        if truncated_ms.is_some_and(|t| r.first_done_ms > t) {
            continue;
        }
        match out.last_mut() {
            Some(o) if o.ok == r.ok => {
                o.n += r.n;
                o.first_sent_ms = o.first_sent_ms.min(r.first_sent_ms);
                o.last_sent_ms = o.last_sent_ms.max(r.last_sent_ms);
                o.first_done_ms = o.first_done_ms.min(r.first_done_ms);
                o.last_done_ms = o.last_done_ms.max(r.last_done_ms);
            }
            _ => out.push(r),
        }
    }
    (out, truncated_ms)
}

/// The result of reading every tracked write back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCounts {
    pub acked: u64,
    pub lost: u64,
    pub phantom: u64,
    pub duplicated: u64,
    pub unverified: u64,
}

/// Reads back every tracked write of `report` (run it after rollback and recovery) and
/// publishes `<load>.writes.acked|lost|phantom|duplicated` into `store`.
pub async fn verify_writes(
    config: &LoadConfig,
    report: &LoadReport,
    store: &WindowStore,
    concurrency: usize,
) -> Result<WriteCounts, LoadError> {
    let Some(log) = report.write_log.as_ref() else {
        return Ok(WriteCounts::default());
    };
    let inner = log.lock().clone();
    let mut counts = WriteCounts {
        acked: inner.acked.len() as u64 + inner.acked_without_key,
        ..Default::default()
    };
    counts.unverified = inner.acked_without_key;

    // Distinct keys per request, with how many times each was acknowledged.
    let mut acked: BTreeMap<(usize, String), u64> = BTreeMap::new();
    for (r, k) in &inner.acked {
        *acked.entry((*r, k.clone())).or_default() += 1;
    }
    let unknown: BTreeSet<(usize, String)> = inner
        .unknown
        .iter()
        .filter(|rk| !acked.contains_key(*rk))
        .cloned()
        .collect();
    let keys: Vec<(usize, String)> = acked
        .keys()
        .cloned()
        .chain(unknown.iter().cloned())
        .collect();
    let present = read_back(config, keys, concurrency.max(1)).await?;

    for ((r, k), times) in &acked {
        match present.get(&(*r, k.clone())) {
            Some(Some(0)) => counts.lost += 1,
            Some(Some(n)) => {
                if *n > 1 || *times > 1 {
                    counts.duplicated += 1;
                }
            }
            _ => counts.unverified += 1,
        }
    }
    for rk in &unknown {
        match present.get(rk) {
            Some(Some(n)) if *n > 0 => counts.phantom += 1,
            Some(Some(_)) => {}
            _ => counts.unverified += 1,
        }
    }
    let name = &report.name;
    store.set_fact(&format!("{name}.writes.acked"), counts.acked as f64);
    store.set_fact(&format!("{name}.writes.lost"), counts.lost as f64);
    store.set_fact(&format!("{name}.writes.phantom"), counts.phantom as f64);
    store.set_fact(
        &format!("{name}.writes.duplicated"),
        counts.duplicated as f64,
    );
    Ok(counts)
}

/// How many times each key is present (`None`: the read failed).
async fn read_back(
    config: &LoadConfig,
    keys: Vec<(usize, String)>,
    concurrency: usize,
) -> Result<BTreeMap<(usize, String), Option<u64>>, LoadError> {
    let timeout = config.timeout;
    let reader = Arc::new(Reader::new(config)?);
    let chunk = keys.len().div_ceil(concurrency).max(1);
    let mut tasks = Vec::new();
    for part in keys.chunks(chunk) {
        let part = part.to_vec();
        let reader = reader.clone();
        tasks.push(tokio::spawn(async move {
            let mut conns = Conns::default();
            let mut pg = PgConn::default();
            let mut out = Vec::with_capacity(part.len());
            for (r, k) in part {
                let n = tokio::time::timeout(timeout, reader.count(r, &k, &mut conns, &mut pg))
                    .await
                    .ok()
                    .flatten();
                out.push(((r, k), n));
            }
            out
        }));
    }
    let mut all = BTreeMap::new();
    for t in tasks {
        if let Ok(part) = t.await {
            all.extend(part);
        }
    }
    Ok(all)
}

/// The headers of a write that its read-back sends as well: those with a fixed value
/// (no per-request template), except the ones that describe the write's body.
fn read_headers(r: &crate::config::RequestSpec) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in &r.headers {
        if value.contains("${") {
            continue;
        }
        let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) else {
            continue;
        };
        if n == http::header::CONTENT_TYPE || n == http::header::CONTENT_LENGTH {
            continue;
        }
        map.append(n, v);
    }
    map
}

struct Reader {
    /// Per request index: the read template (URL or SQL), if tracked.
    reads: Vec<Option<String>>,
    /// Per request index: the write's own fixed headers (credentials, mostly), which
    /// the read-back sends too, so an API that needs a token can be read back.
    headers: Vec<http::HeaderMap>,
    http: Client,
    pg: Option<PgTarget>,
}

impl Reader {
    fn new(config: &LoadConfig) -> Result<Reader, LoadError> {
        let (reads, pg) = match &config.postgres {
            Some(p) => (
                p.statements
                    .iter()
                    .map(|s| s.track_write.as_ref().map(|t| t.read.clone()))
                    .collect(),
                Some(PgTarget::new(&p.dsn, p.read_write, config.timeout)?),
            ),
            None => (
                config
                    .requests
                    .iter()
                    .map(|r| r.track_write.as_ref().map(|t| t.read.clone()))
                    .collect(),
                None,
            ),
        };
        let tls = config.requests.iter().any(|r| {
            r.track_write
                .as_ref()
                .is_some_and(|t| t.read.starts_with("https"))
        });
        let headers = config.requests.iter().map(read_headers).collect();
        Ok(Reader {
            reads,
            headers,
            http: Client::new(config.http_version, config.insecure, tls),
            pg,
        })
    }

    async fn count(
        &self,
        req: usize,
        key: &str,
        conns: &mut Conns,
        pg: &mut PgConn,
    ) -> Option<u64> {
        let read = self.reads.get(req)?.as_ref()?;
        if let Some(target) = &self.pg {
            // Statement indexes past the load's own keep the read statements apart.
            let rows = pg
                .query(target, 10_000 + req, read, &[key.to_string()])
                .await
                .ok()?;
            return Some(rows.len() as u64);
        }
        let url = read.replace("{key}", key);
        let uri: http::Uri = url.parse().ok()?;
        let k = Key::of(&uri).ok()?;
        let req = Outgoing {
            key: Arc::new(k),
            method: http::Method::GET,
            uri,
            headers: self.headers.get(req).cloned().unwrap_or_default(),
            body: bytes::Bytes::new(),
        };
        for _ in 0..3 {
            match self.http.send(conns, req.clone(), false).await {
                Ok(a) if (200..300).contains(&a.status) => return Some(1),
                Ok(a) if a.status == 404 || a.status == 410 => return Some(0),
                Ok(_) => return None,
                Err(Outcome::Reset) => continue,
                Err(_) => return None,
            }
        }
        None
    }
}
