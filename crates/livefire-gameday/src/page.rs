//! The responders' page: a small HTTP server with the page's embedded assets (no CDN,
//! nothing fetched from elsewhere), `GET /api/state` and `GET /api/events` (Server-Sent
//! Events: the state again whenever the journal changes it), and `POST /api/marks`.
//! It reads only the journal, through [`Live`]'s view, so what a hidden curveball is
//! never reaches the page, its stream or its API before it ends. `livefire serve`
//! mounts the same [`Page`] for a run folder, with its own [`MarkSink`].
//!
//! [`Live`]: crate::live::Live

use std::convert::Infallible;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::marks::{MarkError, MarkRequest, MarkSink};
use crate::tail::Tail;

/// The page's files, in the binary.
const HTML: &str = include_str!("../assets/page.html");
const JS: &str = include_str!("../assets/page.js");
const CSS: &str = include_str!("../assets/page.css");

/// The largest `POST /api/marks` body taken.
const MAX_BODY: usize = 16 * 1024;
/// How often an open event stream looks at the journal.
const POLL: Duration = Duration::from_millis(250);
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEPALIVE: Duration = Duration::from_secs(15);

type Reply = Response<BoxBody<Bytes, Infallible>>;

/// The page of one run: its journal, followed, and what takes its marks.
#[derive(Clone)]
pub struct Page {
    tail: Arc<Mutex<Tail>>,
    sink: Arc<dyn MarkSink>,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page").finish_non_exhaustive()
    }
}

impl Page {
    /// The page of the run whose journal is `journal` (a run folder's `journal.jsonl`).
    pub fn new(journal: &Path, sink: Arc<dyn MarkSink>) -> Page {
        Page {
            tail: Arc::new(Mutex::new(Tail::new(journal))),
            sink,
        }
    }

    /// Answers one request. Paths are relative to where the page is mounted: `/`,
    /// `/page.js`, `/page.css`, `/api/state`, `/api/events`, `/api/marks`.
    pub async fn handle<B>(&self, req: Request<B>) -> Reply
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path().to_owned();
        let responder = query_param(req.uri().query().unwrap_or(""), "as");
        match (req.method(), path.as_str()) {
            (&Method::GET, "/" | "/index.html") => asset(HTML, "text/html; charset=utf-8"),
            (&Method::GET, "/page.js") => asset(JS, "text/javascript; charset=utf-8"),
            (&Method::GET, "/page.css") => asset(CSS, "text/css; charset=utf-8"),
            (&Method::GET, "/api/state") => {
                let view = self.view(responder.as_deref());
                json_reply(StatusCode::OK, &view)
            }
            (&Method::GET, "/api/events") => self.events(responder),
            (&Method::POST, "/api/marks") => self.post_mark(req).await,
            (_, "/" | "/index.html" | "/page.js" | "/page.css" | "/api/state" | "/api/events")
            | (_, "/api/marks") => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed: GET the page and its state, POST /api/marks",
            ),
            _ => error(
                StatusCode::NOT_FOUND,
                "not found: the page is at /, its API at /api/state, /api/events and /api/marks",
            ),
        }
    }

    fn view(&self, responder: Option<&str>) -> crate::live::View {
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.refresh();
        tail.live().view(responder)
    }

    /// The event stream: an `event: state` with the view at once, then again each time
    /// it changes, until the client goes away.
    fn events(&self, responder: Option<String>) -> Reply {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let page = self.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut quiet = Duration::ZERO;
            loop {
                let view = page.view(responder.as_deref());
                let frame = if last.as_ref() != Some(&view) {
                    let data = serde_json::to_string(&view).unwrap_or_default();
                    last = Some(view);
                    quiet = Duration::ZERO;
                    Some(format!("event: state\ndata: {data}\n\n"))
                } else if quiet >= KEEPALIVE {
                    quiet = Duration::ZERO;
                    Some(": keep-alive\n\n".to_owned())
                } else {
                    None
                };
                if let Some(f) = frame
                    && tx.send(Bytes::from(f)).await.is_err()
                {
                    return;
                }
                tokio::time::sleep(POLL).await;
                quiet += POLL;
                if tx.is_closed() {
                    return;
                }
            }
        });
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-store")
            .body(Stream(rx).boxed())
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
    }

    async fn post_mark<B>(&self, req: Request<B>) -> Reply
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // A form another site posts is not JSON: only a script of this page, a shell
        // or a bot that says `Content-Type: application/json` can mark.
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_type {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the mark as JSON with `Content-Type: application/json`",
            );
        }
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("cannot read the mark ({e}): send at most {MAX_BODY} bytes"),
                );
            }
        };
        let request: MarkRequest = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "not a mark: {e}: send {{\"mark\": \"detected\"|\"mitigated\"|\"resolved\", \"responder\": NAME, \"note\": TEXT}}"
                    ),
                );
            }
        };
        let sink = self.sink.clone();
        // The sink writes the journal (a file): not on the runtime's threads.
        match tokio::task::spawn_blocking(move || sink.mark(request)).await {
            Ok(Ok(mark)) => json_reply(StatusCode::CREATED, &mark),
            Ok(Err(e)) => mark_error(&e),
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the mark was not recorded: {e}"),
            ),
        }
    }
}

/// Serves `page` on `listener` until the task is dropped or aborted.
pub async fn serve(listener: tokio::net::TcpListener, page: Page) {
    while let Ok((stream, _)) = listener.accept().await {
        let page = page.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let page = page.clone();
                async move { Ok::<_, Infallible>(page.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An event stream's body: frames as the stream's task sends them.
struct Stream(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for Stream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn asset(body: &'static str, content_type: &str) -> Reply {
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store")
        // Everything the page uses comes from here; nothing else may load.
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
        )
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from_static(body.as_bytes())).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn json_reply(status: StatusCode, value: &impl serde::Serialize) -> Reply {
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn error(status: StatusCode, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

fn mark_error(e: &MarkError) -> Reply {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    error(status, &e.to_string())
}

/// One parameter of a query string, percent-decoded (`as=ana%20b` is `ana b`).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name)
            .then(|| percent_decode(v))
            .filter(|v| !v.is_empty())
    })
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes
            .get(i + 1)
            .copied()
            .and_then(hex)
            .zip(bytes.get(i + 2).copied().and_then(hex));
        match (bytes[i], pair) {
            (b'+', _) => out.push(b' '),
            (b'%', Some((hi, lo))) => {
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
