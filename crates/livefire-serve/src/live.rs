//! A run's journal as Server-Sent Events: every record as it is written (the whole
//! journal first, then what follows), so a page draws the same series as report.html
//! while the run goes on. A `window` event's histogram is replaced by the figures the
//! charts use (requests, errors, p50, p99), a few bytes instead of kilobytes.
//!
//! One tail per run, however many watch it. The first client of a run creates its
//! [`Hub`] (in [`Hubs`], the `Runner`'s registry): one task reads the journal every
//! [`POLL`], turns each new line into its SSE message once, and appends the messages of
//! that look as one [`Piece`] to the hub's history, an append-only list behind a
//! `tokio::sync::watch` that also wakes the clients. Each client is a task of its own
//! with its own index into the history: it sends the pieces it has not sent yet (a
//! clone of `Bytes`, no copy), then waits for the next one. A client that joins late
//! starts at piece 0, so it gets the whole journal first; a slow client only falls
//! behind in its own index, and neither loses records nor holds up the others or the
//! run. `Last-Event-ID` (a browser sends it on reconnecting) starts a client after that
//! `seq`. Once the run has ended (the `Runner` no longer has it live) and a look finds
//! nothing new, the history is marked ended and every client finishes with
//! `event: end`. A run that ended long ago takes the same path: the first look reads
//! the file (4 MiB at a time, without waiting between looks), the next finds nothing.
//!
//! Memory is bounded by who watches: clients hold the hub (`Arc`), the registry and the
//! tail only a `Weak`. When the last client of a run goes, the hub and its history are
//! dropped, its tail stops at its next look, and the registry's dead entry is pruned
//! when a client subscribes; the next client of that run starts a fresh hub, which
//! reads the journal from the start.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::runs::Runner;
use crate::server::Body;

/// How often a run's one tail looks at its journal for new lines. Measured against 200 ms
/// (bench/serve.sh, 100 clients, debug build): the median delay fell from ~120 to ~70 ms
/// for about the same console CPU, the clients' work being the same either way.
const POLL: Duration = Duration::from_millis(100);
/// A comment line after this long without a message keeps proxies from closing an idle
/// stream.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// The most of the journal one look reads, so a huge journal streams out in pieces.
const LOOK: u64 = 4 << 20;
/// How many pieces may wait between a client's task and its connection.
const CLIENT_QUEUE: usize = 16;

const END: &[u8] = b"event: end\ndata: {}\n\n";
const STILL_HERE: &[u8] = b": still here\n\n";

/// The runs being watched now: run id to its hub, while a client holds it.
#[derive(Debug, Default)]
pub struct Hubs(Mutex<HashMap<String, Weak<Hub>>>);

/// One run's shared tail: the SSE messages of its journal so far.
#[derive(Debug)]
pub struct Hub {
    history: watch::Sender<History>,
}

#[derive(Debug, Default)]
struct History {
    /// In journal order; only ever appended to.
    pieces: Vec<Piece>,
    /// The run has ended and every line of its journal is in `pieces`.
    ended: bool,
}

/// The messages of one look at the journal, back to back.
#[derive(Debug)]
struct Piece {
    bytes: Bytes,
    /// Each message's `seq` and where it starts in `bytes`.
    starts: Vec<(u64, usize)>,
}

/// Why a stream is refused.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(
        "Last-Event-ID `{0}` is not a journal seq: send the `id` of the last event received (a number), or no Last-Event-ID for the whole journal"
    )]
    LastEventId(String),
}

/// The event stream of the run `id` (its folder `dir`), after the `seq` in the request's
/// `Last-Event-ID` when it has one; it ends (`event: end`) once the run has ended and
/// every line was sent.
pub fn events(
    dir: PathBuf,
    runner: Arc<Runner>,
    id: String,
    headers: &HeaderMap,
) -> Result<Response<Body>, EventsError> {
    let after = last_event_id(headers)?;
    let hub = runner.hubs.subscribe(&id, dir, &runner);
    let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_QUEUE);
    tokio::spawn(follow(hub, after, tx));
    let mut r = Response::new(ChannelBody(rx).boxed());
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(r)
}

impl Hubs {
    /// The run's hub, made (and its tail started) if nobody watches the run yet.
    fn subscribe(&self, id: &str, dir: PathBuf, runner: &Arc<Runner>) -> Arc<Hub> {
        let mut hubs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hub) = hubs.get(id).and_then(Weak::upgrade) {
            return hub;
        }
        hubs.retain(|_, hub| hub.strong_count() > 0);
        let hub = Arc::new(Hub {
            history: watch::Sender::new(History::default()),
        });
        hubs.insert(id.to_owned(), Arc::downgrade(&hub));
        let reader = Reader {
            path: dir.join("journal.jsonl"),
            file: None,
            partial: Vec::new(),
        };
        tokio::spawn(tail(
            Arc::downgrade(&hub),
            reader,
            runner.clone(),
            id.to_owned(),
        ));
        hub
    }
}

/// The `Last-Event-ID` header as a seq; none (or empty) is the whole journal.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, EventsError> {
    let Some(v) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| EventsError::LastEventId(text))
}

/// The run's one tail: looks at the journal until the run has ended and every line was
/// read, or nobody holds the hub any more.
async fn tail(hub: Weak<Hub>, mut reader: Reader, runner: Arc<Runner>, id: String) {
    loop {
        if hub.strong_count() == 0 {
            return;
        }
        // Ask whether the run is live before reading: a run that ended between the two
        // has its last lines (the audit lines the Runner appends) read before `end`.
        let live = runner.is_live(&id);
        // File reads and JSON parsing off the runtime's threads, which serve the clients.
        let Ok((back, read, piece)) = tokio::task::spawn_blocking(move || {
            let (read, piece) = reader.look();
            (reader, read, piece)
        })
        .await
        else {
            return;
        };
        reader = back;
        let Some(h) = hub.upgrade() else {
            return;
        };
        let ended = !live && read == 0;
        if piece.is_some() || ended {
            h.history.send_modify(|history| {
                history.pieces.extend(piece);
                history.ended = ended;
            });
        }
        if ended {
            return;
        }
        drop(h);
        // A run that has ended is read as fast as the file gives; a live one each POLL.
        if live || read == 0 {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// One client: every piece from the first (or after `after`), then `end`.
async fn follow(hub: Arc<Hub>, after: Option<u64>, tx: mpsc::Sender<Bytes>) {
    let mut history = hub.history.subscribe();
    let mut next = 0;
    loop {
        let (new, ended) = {
            let h = history.borrow_and_update();
            let new: Vec<Bytes> = h.pieces[next..]
                .iter()
                .filter_map(|p| p.after(after))
                .collect();
            next = h.pieces.len();
            (new, h.ended)
        };
        for bytes in new {
            if tx.send(bytes).await.is_err() {
                return;
            }
        }
        if ended {
            let _ = tx.send(Bytes::from_static(END)).await;
            return;
        }
        tokio::select! {
            changed = history.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tx.closed() => return,
            () = tokio::time::sleep(HEARTBEAT) => {
                if tx.send(Bytes::from_static(STILL_HERE)).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl Piece {
    /// The messages of this piece whose seq is past `after` (all without it). Seqs grow
    /// along the journal, so these are the piece's tail.
    fn after(&self, after: Option<u64>) -> Option<Bytes> {
        let Some(after) = after else {
            return Some(self.bytes.clone());
        };
        let (_, start) = self.starts.iter().find(|(seq, _)| *seq > after)?;
        Some(self.bytes.slice(*start..))
    }
}

/// Reads a journal from where it left off; keeps the file open between looks (the
/// journal is only ever appended to) and the last line until it is complete.
struct Reader {
    path: PathBuf,
    file: Option<std::fs::File>,
    partial: Vec<u8>,
}

impl Reader {
    /// Reads what was added since the last look (up to [`LOOK`]): how many bytes, and the
    /// messages of the lines it completed.
    fn look(&mut self) -> (usize, Option<Piece>) {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(file) = &self.file else {
            return (0, None);
        };
        let before = self.partial.len();
        let read = match file.take(LOOK).read_to_end(&mut self.partial) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(journal = %self.path.display(), "cannot read the journal: {e}");
                self.partial.truncate(before);
                0
            }
        };
        // Lines are cut at `\n` bytes, which no multi-byte character contains.
        let Some(last) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return (read, None);
        };
        let rest = self.partial.split_off(last + 1);
        let lines = std::mem::replace(&mut self.partial, rest);
        let mut bytes = BytesMut::new();
        let mut starts = Vec::new();
        for line in lines.split(|b| *b == b'\n') {
            let Some((seq, msg)) = message(line) else {
                continue;
            };
            starts.push((seq, bytes.len()));
            bytes.extend_from_slice(msg.as_bytes());
        }
        let piece = (!starts.is_empty()).then(|| Piece {
            bytes: bytes.freeze(),
            starts,
        });
        (read, piece)
    }
}

/// A body fed by a channel: each message is one chunk of the stream.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

/// One journal line as an SSE message (`id` is its `seq`); `None` for a line that is not
/// a record (a run killed mid-write).
fn message(line: &[u8]) -> Option<(u64, String)> {
    let mut v: Value = serde_json::from_slice(line).ok()?;
    if v.get("type").and_then(Value::as_str) == Some("window")
        && let Some(w) = v.get("window").cloned()
    {
        v["window"] = compact_window(w);
    }
    let seq = v.get("seq").and_then(Value::as_u64)?;
    Some((seq, format!("id: {seq}\nevent: record\ndata: {v}\n\n")))
}

/// A window's figures for a chart: completed requests, errors, dropped sends, and p50,
/// p90, p99 and max (ms).
fn compact_window(w: Value) -> Value {
    let Ok(w) = serde_json::from_value::<livefire_core::window::Window>(w) else {
        return Value::Null;
    };
    let ms = |us: Option<u64>| us.map(|u| u as f64 / 1000.0);
    json!({
        "completed": w.counts.completed(),
        "errors": w.counts.errors(),
        "dropped": w.counts.get(livefire_core::window::Outcome::Dropped),
        "p50_ms": ms(w.latency.quantile_us(0.5)),
        "p90_ms": ms(w.latency.quantile_us(0.9)),
        "p99_ms": ms(w.latency.quantile_us(0.99)),
        "max_ms": ms(w.latency.max_us()),
    })
}
