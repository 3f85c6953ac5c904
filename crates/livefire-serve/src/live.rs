//! A run's journal as Server-Sent Events: every record as it is written (the whole
//! journal first, then what follows), so a page draws the same series as report.html
//! while the run goes on. A `window` event's histogram is replaced by the figures the
//! charts use (requests, errors, p50, p99), a few bytes instead of kilobytes.

use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::runs::Runner;
use crate::server::Body;

/// How often the journal is looked at for new lines.
const POLL: Duration = Duration::from_millis(200);
/// A comment line this often keeps proxies from closing an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

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

/// The event stream of the run in `dir`; it ends (`event: end`) once the run has ended
/// and every line was sent.
pub fn events(dir: PathBuf, runner: Arc<Runner>, id: String) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let journal = dir.join("journal.jsonl");
        let mut offset = 0u64;
        let mut partial = String::new();
        let mut quiet = tokio::time::Instant::now();
        loop {
            // Read before asking whether the run is live: a run that ended between the
            // two has its last lines sent before `end`.
            let live = runner.is_live(&id);
            let chunk = read_from(&journal, &mut offset);
            partial.push_str(&chunk);
            while let Some(i) = partial.find('\n') {
                let line: String = partial.drain(..=i).collect();
                let Some(msg) = message(line.trim_end()) else {
                    continue;
                };
                if tx.send(Bytes::from(msg)).await.is_err() {
                    return;
                }
                quiet = tokio::time::Instant::now();
            }
            if !live && chunk.is_empty() {
                let _ = tx
                    .send(Bytes::from_static(b"event: end\ndata: {}\n\n"))
                    .await;
                return;
            }
            if quiet.elapsed() > HEARTBEAT {
                if tx
                    .send(Bytes::from_static(b": still here\n\n"))
                    .await
                    .is_err()
                {
                    return;
                }
                quiet = tokio::time::Instant::now();
            }
            tokio::time::sleep(POLL).await;
        }
    });
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
    r
}

/// What the file holds past `offset` (complete or not), moving `offset` on.
fn read_from(path: &std::path::Path, offset: &mut u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    if f.seek(SeekFrom::Start(*offset)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    // At most 4 MiB a look, so a huge journal streams out in pieces.
    if f.take(4 << 20).read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    // Keep a multi-byte character cut at the end for the next look.
    let cut = match std::str::from_utf8(&bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => bytes.len(),
    };
    *offset += cut as u64;
    String::from_utf8_lossy(&bytes[..cut]).into_owned()
}

/// One journal line as an SSE message (`id` is its `seq`); `None` for a line that is not
/// a record (a run killed mid-write).
fn message(line: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(line).ok()?;
    if v.get("type").and_then(Value::as_str) == Some("window")
        && let Some(w) = v.get("window").cloned()
    {
        v["window"] = compact_window(w);
    }
    let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
    Some(format!("id: {seq}\nevent: record\ndata: {v}\n\n"))
}

/// A window's figures for a chart: completed requests, errors, p50, p99 and max (ms).
fn compact_window(w: Value) -> Value {
    let Ok(w) = serde_json::from_value::<livefire_core::window::Window>(w) else {
        return Value::Null;
    };
    let ms = |us: Option<u64>| us.map(|u| u as f64 / 1000.0);
    json!({
        "completed": w.counts.completed(),
        "errors": w.counts.errors(),
        "p50_ms": ms(w.latency.quantile_us(0.5)),
        "p99_ms": ms(w.latency.quantile_us(0.99)),
        "max_ms": ms(w.latency.max_us()),
    })
}
