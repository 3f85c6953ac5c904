//! Game days in the console. An experiment with a `scenario:` started from the console
//! runs as `livefire gameday` (its own responders' page on loopback, for `livefire mark`),
//! and the console mounts livefire-gameday's pages for it under
//! `/api/runs/ID/gameday/`, behind the console's tokens:
//!
//! - the responders' page itself ([`livefire_gameday::page::Page`], the same page,
//!   stream and API): anyone logged in sees it; its mark buttons are there only for
//!   operators, and a mark is taken only from an operator (with the session's CSRF token,
//!   as every change), passed on to the run's own page (which checks the responder and
//!   writes the journal) and written to the audit log;
//! - the facilitator's view (`facilitator`): [`livefire_gameday::facilitator::Board`]
//!   folded from the journal, every curveball with its kind and target, so operators
//!   only; `end/N` ends curveball N early through the run's control socket, as the
//!   terminal view's number keys do.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use livefire_gameday::live::MarkView;
use livefire_gameday::marks::{MarkError, MarkRequest, MarkSink};
use serde_json::json;

use crate::api::{App, error, json_status, set};
use crate::auth::{self, Caller, Role};
use crate::server::{Body, full};
use crate::store::Store;

/// Answers `/api/runs/ID/gameday/REST` (the caller is known and, for a change made with
/// the cookie, its CSRF token checked).
pub async fn handle(
    app: &Arc<App>,
    caller: &Caller,
    id: &str,
    rest: &[&str],
    parts: http::request::Parts,
    body: Incoming,
) -> Response<Body> {
    let row = match app.store.run(id) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no run `{id}`: GET /api/runs lists them"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let dir = PathBuf::from(&row.dir);
    if !is_gameday(&dir) {
        return error(
            StatusCode::NOT_FOUND,
            format!("run {id} is not a game day: an experiment with a `scenario:` runs as one"),
        );
    }
    let method = parts.method.clone();
    match (&method, rest) {
        (&Method::GET, ["facilitator"]) => {
            if let Err(d) = auth::require(caller, Role::Operator) {
                return crate::api::denied(&d);
            }
            board(&dir).await
        }
        (&Method::POST, ["end", n]) => {
            if let Err(d) = auth::require(caller, Role::Operator) {
                return crate::api::denied(&d);
            }
            end_curveball(app, caller, id, n).await
        }
        (&Method::POST, ["api", "marks"]) => {
            if let Err(d) = auth::require(caller, Role::Operator) {
                return crate::api::denied(&d);
            }
            let sink = Forward {
                run: id.to_owned(),
                who: caller.label(),
                store: app.store.clone(),
            };
            let page =
                livefire_gameday::page::Page::new(&dir.join("journal.jsonl"), Arc::new(sink));
            let req = mounted(parts, "/api/marks", body);
            page.handle(req).await
        }
        (_, rest) => {
            // The page's own paths are relative: the page needs the trailing `/`.
            if rest.is_empty() && !parts.uri.path().ends_with('/') {
                let mut r = error(
                    StatusCode::PERMANENT_REDIRECT,
                    "the game day's page is at .../gameday/".into(),
                );
                set(
                    &mut r,
                    header::LOCATION,
                    &format!("/api/runs/{id}/gameday/"),
                );
                return r;
            }
            let path = format!("/{}", rest.join("/"));
            let page = livefire_gameday::page::Page::new(
                &dir.join("journal.jsonl"),
                Arc::new(livefire_gameday::marks::Closed),
            );
            let html = path == "/" || path == "/index.html";
            let reply = page.handle(mounted(parts, &path, body)).await;
            if html && reply.status() == StatusCode::OK {
                return console_page(reply, caller).await;
            }
            reply
        }
    }
}

/// Whether the run folder's experiment has a `scenario:` (its experiment.yaml is the
/// experiment as run, in JSON).
pub fn is_gameday(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("experiment.yaml"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("scenario").is_some_and(|s| !s.is_null()))
}

/// The request as the page sees it: `path` (and the query) relative to the mount.
fn mounted(parts: http::request::Parts, path: &str, body: Incoming) -> Request<Incoming> {
    let uri = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let mut req = Request::new(body);
    *req.method_mut() = parts.method;
    *req.headers_mut() = parts.headers;
    if let Ok(u) = uri.parse() {
        *req.uri_mut() = u;
    }
    req
}

/// The responders' page as the console serves it: with the session's CSRF token for the
/// page's script to send, and without the mark buttons for a viewer.
async fn console_page(reply: Response<Body>, caller: &Caller) -> Response<Body> {
    let (mut parts, body) = reply.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut html = String::from_utf8_lossy(&bytes).into_owned();
    let meta = format!(
        "<meta name=\"csrf-token\" content=\"{}\">\n</head>",
        caller.csrf
    );
    html = html.replacen("</head>", &meta, 1);
    if auth::require(caller, Role::Operator).is_err() {
        html = html.replacen(
            "<section class=\"marking\"",
            "<section class=\"marking\" hidden",
            1,
        );
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("SAMEORIGIN"),
    );
    // The page may sit in the console's frame, and in no one else's.
    if let Some(csp) = parts.headers.get(header::CONTENT_SECURITY_POLICY).cloned()
        && let Ok(csp) = csp.to_str()
        && let Ok(v) = header::HeaderValue::from_str(&format!("{csp}; frame-ancestors 'self'"))
    {
        parts.headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    Response::from_parts(parts, full(Bytes::from(html)))
}

/// Marks taken by the console, passed on to the run's own page, and audited.
struct Forward {
    run: String,
    who: String,
    store: Arc<Store>,
}

impl MarkSink for Forward {
    fn mark(&self, request: MarkRequest) -> Result<MarkView, MarkError> {
        use livefire_gameday::client::{ClientError, pick, post};
        let game = pick(Some(&self.run)).map_err(|_| MarkError::NotLive)?;
        let mark = post(&game, &request).map_err(|e| match e {
            ClientError::Refused { status, message } => MarkError::Forwarded { status, message },
            other => MarkError::Forwarded {
                status: 503,
                message: format!("the game day did not take the mark: {other}"),
            },
        })?;
        let _ = self.store.audit(
            &self.who,
            "mark",
            &self.run,
            &format!("{} as {}", mark.mark.label(), mark.responder),
        );
        Ok(mark)
    }
}

/// The facilitator's view: the board folded from the journal, as JSON.
async fn board(dir: &Path) -> Response<Body> {
    let journal = dir.join("journal.jsonl");
    let folded = tokio::task::spawn_blocking(move || {
        let j = livefire_report::read_journal(&journal)?;
        let mut b = livefire_gameday::facilitator::Board::default();
        for r in &j.records {
            b.apply(r);
        }
        Ok::<_, std::io::Error>(b)
    })
    .await;
    let b = match folded {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return error(
                StatusCode::NOT_FOUND,
                format!("the run has no readable journal yet ({e})"),
            );
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    json_status(
        StatusCode::OK,
        json!({
            "title": b.title,
            "t_ms": b.t_ms,
            "phase": b.phase,
            "verdict": b.verdict,
            "now_and_next": b.now_and_next(),
            "curveballs": b.curveballs.iter().map(|c| json!({
                "number": c.number,
                "name": c.name,
                "kind": c.kind,
                "target": c.target,
                "at_ms": c.at_ms,
                "for_ms": c.for_ms,
                "applied_ms": c.applied_ms,
                "ended_ms": c.ended_ms,
                "ended_by": c.ended_by,
                "state": b.state(c),
                "active": c.applied_ms.is_some() && c.ended_ms.is_none(),
            })).collect::<Vec<_>>(),
            "events": b.events.iter().map(|(t, line)| json!({"t_ms": t, "line": line})).collect::<Vec<_>>(),
        }),
    )
}

/// `end curveball N` on the run's control socket, as the facilitator's key sends it.
async fn end_curveball(app: &App, caller: &Caller, id: &str, n: &str) -> Response<Body> {
    let Ok(n) = n.parse::<u32>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`{n}` is not a curveball number: the facilitator's view numbers them"),
        );
    };
    if !app.runner.is_live(id) {
        return error(
            StatusCode::CONFLICT,
            format!("run `{id}` has ended already; nothing to end"),
        );
    }
    let socket = livefire_engine::control::socket_of(id);
    let command = livefire_engine::control::end_curveball_command(n);
    match livefire_engine::control::send(&socket, &command).await {
        Ok(reply) => {
            let _ = app
                .store
                .audit(&caller.label(), "end curveball", id, reply.trim());
            json_status(StatusCode::ACCEPTED, json!({"said": reply.trim()}))
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "cannot reach run {id}'s control socket ({e}); if it crashed, run `livefire recover`"
            ),
        ),
    }
}
