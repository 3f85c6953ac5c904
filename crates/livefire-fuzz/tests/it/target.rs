//! The planted-defect target: a small hyper service with its OpenAPI spec
//! (`target_openapi.yaml`), one planted defect per fuzz rule in `Mode::Defective`, and
//! none in `Mode::Correct` (which answers only statuses the spec declares).
//!
//! Tests start it in-process on 127.0.0.1:0; `examples/planted_target.rs` runs the same
//! code as a process for `bench/fuzz.sh`. It counts every request it serves and notes
//! when each planted defect first fired, so a benchmark can compare tools from the
//! target's side.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The spec the target implements.
pub const SPEC_YAML: &str = include_str!("target_openapi.yaml");

/// Tokens the target (and its auth dependency) know: token -> user.
pub const ALICE_TOKEN: &str = "alice-token";
pub const BOB_TOKEN: &str = "bob-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every planted defect on.
    Defective,
    /// Every planted defect off: a fuzzer must report nothing.
    Correct,
}

/// The planted defects, by the rule meant to find each.
pub const DEFECTS: &[(&str, &str)] = &[
    ("server_error", "GET /items"),
    ("status_conformance", "DELETE /items/{itemId}"),
    ("content_type", "GET /version"),
    ("response_schema", "GET /items/{itemId}"),
    ("negative_accepted", "POST /items"),
    ("auth_enforced", "GET /admin/users"),
    ("injection", "GET /search"),
    ("leak", "GET /reports/{name}"),
    // A name with `sleep` in it sleeps 2 s: time-based injection.
    ("injection", "GET /reports/{name}"),
    ("crash", "POST /parse"),
    ("slow", "GET /export"),
    ("object_access", "GET /notes/{noteId}"),
    // Fails open only while the auth dependency is unreachable.
    ("auth_enforced", "GET /account"),
];

/// What the target saw: a request count, an optional request log, and when each
/// planted defect first fired (time since start).
#[derive(Debug)]
pub struct Stats {
    pub started: Instant,
    pub requests: AtomicU64,
    pub log_requests: AtomicBool,
    pub log: Mutex<Vec<String>>,
    pub fired: Mutex<BTreeMap<String, Duration>>,
    pub deleted_created: AtomicU64,
    /// Requests that carried a valid token.
    pub authorized: AtomicU64,
    /// Successful `POST /login` calls.
    pub logins: AtomicU64,
    /// When non-zero, every answer is this many ms late (every tenth 20x later).
    pub degraded_ms: AtomicU64,
}

impl Stats {
    fn fire(&self, defect: &str) {
        let mut fired = self.fired.lock().unwrap();
        fired
            .entry(defect.to_string())
            .or_insert_with(|| self.started.elapsed());
    }

    pub fn json(&self) -> String {
        let fired = self.fired.lock().unwrap();
        let fired: BTreeMap<&String, f64> =
            fired.iter().map(|(k, v)| (k, v.as_secs_f64())).collect();
        serde_json::json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "uptime_s": self.started.elapsed().as_secs_f64(),
            "fired_s": fired,
        })
        .to_string()
    }
}

#[derive(Debug)]
struct State {
    mode: Mode,
    auth_dep: Option<SocketAddr>,
    stats: Arc<Stats>,
    items: Mutex<HashMap<u64, serde_json::Value>>,
    notes: Mutex<HashMap<u64, (String, String)>>,
    next_id: AtomicU64,
    /// Tokens from `POST /login` -> (user, uses left): each session expires after
    /// `SESSION_USES` authorized requests, so clients must log in again on a 401.
    sessions: Mutex<HashMap<String, (String, u32)>>,
}

/// How many authorized requests a login session allows.
pub const SESSION_USES: u32 = 25;

impl State {
    /// The user a token belongs to (a session token uses up one of its requests).
    fn user(&self, token: &str) -> Option<String> {
        if let Some(u) = local_user(token) {
            self.stats.authorized.fetch_add(1, Ordering::Relaxed);
            return Some(u.to_string());
        }
        let mut sessions = self.sessions.lock().unwrap();
        let (user, left) = sessions.get_mut(token)?;
        if *left == 0 {
            return None;
        }
        *left -= 1;
        self.stats.authorized.fetch_add(1, Ordering::Relaxed);
        Some(user.clone())
    }
}

/// A running target; dropping it stops accepting connections.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Target {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the target on `bind` (use `127.0.0.1:0`).
pub async fn start(mode: Mode, auth_dep: Option<SocketAddr>, bind: &str) -> Target {
    let listener = TcpListener::bind(bind).await.expect("bind target");
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats {
        started: Instant::now(),
        requests: AtomicU64::new(0),
        log_requests: AtomicBool::new(false),
        log: Mutex::new(Vec::new()),
        fired: Mutex::new(BTreeMap::new()),
        deleted_created: AtomicU64::new(0),
        authorized: AtomicU64::new(0),
        logins: AtomicU64::new(0),
        degraded_ms: AtomicU64::new(0),
    });
    let state = Arc::new(State {
        mode,
        auth_dep,
        stats: stats.clone(),
        items: Mutex::new(HashMap::new()),
        notes: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        sessions: Mutex::new(HashMap::new()),
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let state = state.clone();
                    async move { handle(state, req).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Target { addr, stats, task }
}

/// The auth dependency: a line protocol on TCP (`TOKEN\n` -> `OK user\n` | `NO\n`).
/// Dropping it (or calling `stop`) makes it unreachable: connections are refused.
#[derive(Debug)]
pub struct AuthDep {
    pub addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl AuthDep {
    pub async fn start() -> AuthDep {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind auth dep");
        let addr = listener.local_addr().unwrap();
        AuthDep {
            addr,
            task: Some(spawn_auth_dep(listener)),
        }
    }

    /// Stops listening (new connections are refused).
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&mut self) {
        self.stop();
        for _ in 0..50 {
            if let Ok(listener) = TcpListener::bind(self.addr).await {
                self.task = Some(spawn_auth_dep(listener));
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("could not rebind the auth dependency on {}", self.addr);
    }
}

impl Drop for AuthDep {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_auth_dep(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(read).read_line(&mut line).await.is_ok() {
                    let answer = match local_user(line.trim()) {
                        Some(user) => format!("OK {user}\n"),
                        None => "NO\n".to_string(),
                    };
                    let _ = write.write_all(answer.as_bytes()).await;
                }
            });
        }
    })
}

fn local_user(token: &str) -> Option<&'static str> {
    match token {
        ALICE_TOKEN => Some("alice"),
        BOB_TOKEN => Some("bob"),
        _ => None,
    }
}

/// Asks the auth dependency; `Err` when it cannot be reached.
async fn ask_dep(addr: SocketAddr, token: &str) -> Result<Option<String>, ()> {
    let work = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|_| ())?;
        stream
            .write_all(format!("{token}\n").as_bytes())
            .await
            .map_err(|_| ())?;
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .await
            .map_err(|_| ())?;
        match line.trim().strip_prefix("OK ") {
            Some(user) => Ok(Some(user.to_string())),
            None if line.trim() == "NO" => Ok(None),
            None => Err(()),
        }
    };
    tokio::time::timeout(Duration::from_millis(500), work)
        .await
        .unwrap_or(Err(()))
}

type Resp = Response<Full<Bytes>>;

fn json(status: u16, value: serde_json::Value) -> Resp {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap()
}

fn error(status: u16, message: &str) -> Resp {
    json(status, serde_json::json!({ "error": message }))
}

fn bearer(req: &Request<Incoming>) -> Option<String> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), decode(v));
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.replace('+', " ");
    let bytes = bytes.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, std::io::Error> {
    let stats = &state.stats;
    let n = stats.requests.fetch_add(1, Ordering::Relaxed);
    // A degraded target: every answer late, every tenth twenty times later.
    let degraded = stats.degraded_ms.load(Ordering::Relaxed);
    if degraded > 0 {
        let ms = if n.rem_euclid(10) == 0 {
            degraded * 20
        } else {
            degraded
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if path == "/__stats" {
        return Ok(json(200, serde_json::from_str(&stats.json()).unwrap()));
    }
    if path == "/openapi.yaml" {
        return Ok(Response::builder()
            .header("content-type", "application/yaml")
            .body(Full::new(Bytes::from_static(SPEC_YAML.as_bytes())))
            .unwrap());
    }
    let q = query(&req);
    let token = bearer(&req);
    let defective = state.mode == Mode::Defective;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let uri = req.uri().to_string();
    // Read the body with a cap so a huge body cannot exhaust the target.
    let body = match Limited::new(req.into_body(), 4 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if stats.log_requests.load(Ordering::Relaxed) {
        stats.log.lock().unwrap().push(format!(
            "{method} {uri} {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }

    if path == "/login" && method == Method::POST {
        let creds: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if creds["user"] != "alice" || creds["password"] != "wonderland" {
            return Ok(error(401, "bad login"));
        }
        let n = stats.logins.fetch_add(1, Ordering::Relaxed) + 1;
        let token = format!("session-{n}");
        state
            .sessions
            .lock()
            .unwrap()
            .insert(token.clone(), ("alice".into(), SESSION_USES));
        return Ok(json(200, serde_json::json!({ "data": { "token": token } })));
    }
    let known = matches!(
        segments.as_slice(),
        ["items"]
            | ["items", _]
            | ["version"]
            | ["search"]
            | ["reports", _]
            | ["export"]
            | ["parse"]
            | ["admin", "users"]
            | ["account"]
            | ["notes"]
            | ["notes", _]
    );
    if !known {
        return Ok(error(404, "no such path"));
    }
    if method == Method::TRACE {
        return Ok(error(501, "trace is not implemented"));
    }
    let resp = match (&method, segments.as_slice()) {
        (&Method::GET, ["items"]) => {
            let Some(limit) = q.get("limit").and_then(|l| l.parse::<i64>().ok()) else {
                return Ok(error(400, "limit must be an integer"));
            };
            if limit == 0 && defective {
                stats.fire("server_error");
                return Ok(error(500, "internal error"));
            }
            if !(1..=100).contains(&limit) {
                return Ok(error(400, "limit out of range"));
            }
            if let Some(tag) = q.get("tag")
                && !["red", "green", "blue"].contains(&tag.as_str())
            {
                return Ok(error(400, "bad tag"));
            }
            let items: Vec<serde_json::Value> = state
                .items
                .lock()
                .unwrap()
                .values()
                .take(limit as usize)
                .cloned()
                .collect();
            json(200, serde_json::json!({ "items": items }))
        }
        (&Method::POST, ["items"]) => {
            let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_slice(&body) else {
                return Ok(error(400, "body must be a JSON object"));
            };
            if obj
                .keys()
                .any(|k| !["name", "price", "note"].contains(&k.as_str()))
            {
                return Ok(error(400, "unknown property"));
            }
            let name_ok = match obj.get("name") {
                Some(serde_json::Value::String(s)) => (1..=64).contains(&s.chars().count()),
                None if defective => {
                    stats.fire("negative_accepted");
                    obj.insert("name".into(), "unnamed".into());
                    true
                }
                _ => false,
            };
            let price_ok = matches!(obj.get("price").and_then(|p| p.as_i64()), Some(p) if (0..=1_000_000).contains(&p))
                && obj.get("price").is_some_and(|p| p.is_i64() || p.is_u64());
            let note_ok = match obj.get("note") {
                None => true,
                Some(serde_json::Value::String(s)) => s.chars().count() <= 256,
                _ => false,
            };
            if !(name_ok && price_ok && note_ok) {
                return Ok(error(400, "invalid item"));
            }
            let id = state.next_id.fetch_add(1, Ordering::Relaxed);
            obj.insert("id".into(), id.into());
            let item = serde_json::Value::Object(obj);
            state.items.lock().unwrap().insert(id, item.clone());
            let mut resp = json(201, item);
            resp.headers_mut()
                .insert("location", format!("/items/{id}").parse().unwrap());
            resp
        }
        (m, ["items", id]) if *m == Method::GET || *m == Method::DELETE => {
            let Ok(id) = id.parse::<u64>() else {
                return Ok(error(400, "itemId must be an integer"));
            };
            if *m == Method::GET {
                let item = state.items.lock().unwrap().get(&id).cloned();
                match item {
                    None => error(404, "no such item"),
                    Some(mut item) => {
                        if defective {
                            stats.fire("response_schema");
                            let price = item["price"].clone();
                            item["price"] = format!("{price}.00").into();
                        }
                        json(200, item)
                    }
                }
            } else {
                let removed = state.items.lock().unwrap().remove(&id);
                match removed {
                    None => error(404, "no such item"),
                    Some(item) => {
                        stats.deleted_created.fetch_add(1, Ordering::Relaxed);
                        if defective {
                            stats.fire("status_conformance");
                            json(200, item)
                        } else {
                            Response::builder()
                                .status(204)
                                .body(Full::new(Bytes::new()))
                                .unwrap()
                        }
                    }
                }
            }
        }
        (&Method::GET, ["version"]) => {
            if defective {
                stats.fire("content_type");
                Response::builder()
                    .header("content-type", "text/plain")
                    .body(Full::new(Bytes::from_static(b"{\"version\":\"1.0\"}")))
                    .unwrap()
            } else {
                json(200, serde_json::json!({ "version": "1.0" }))
            }
        }
        (&Method::GET, ["search"]) => {
            let Some(term) = q
                .get("q")
                .filter(|t| !t.is_empty() && t.chars().count() <= 100)
            else {
                return Ok(error(400, "q must be 1..100 characters"));
            };
            if defective && term.contains('\'') {
                stats.fire("injection");
                return Ok(error(
                    500,
                    &format!(
                        "ERROR:  unterminated quoted string at or near \"'{term}\"\nLINE 1: SELECT name FROM items WHERE name LIKE '%{term}%'"
                    ),
                ));
            }
            let results: Vec<String> = state
                .items
                .lock()
                .unwrap()
                .values()
                .filter_map(|i| i["name"].as_str().map(String::from))
                .filter(|n| n.contains(term.as_str()))
                .collect();
            json(200, serde_json::json!({ "results": results }))
        }
        (&Method::GET, ["reports", name]) => {
            if defective && decode(name).to_ascii_lowercase().contains("sleep") {
                // The planted time-based injection: the name reaches a shell.
                stats.fire("time_injection");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            let valid = !name.is_empty()
                && name.len() <= 16
                && name.bytes().all(|b| b.is_ascii_lowercase());
            if !valid {
                return Ok(error(400, "bad report name"));
            }
            if *name == "daily" {
                json(200, serde_json::json!({ "name": "daily" }))
            } else if defective {
                stats.fire("leak");
                json(
                    404,
                    serde_json::json!({ "error": format!(
                        "Traceback (most recent call last):\n  File \"/srv/app/reports.py\", line 42, in load\n    conn = connect(\"10.12.0.7:5432\")\nKeyError: '{name}'"
                    ) }),
                )
            } else {
                error(404, "no such report")
            }
        }
        (&Method::GET, ["export"]) => match q.get("format").map(String::as_str) {
            Some("json") => json(200, serde_json::json!({ "rows": 0 })),
            Some("csv") => {
                if defective {
                    stats.fire("slow");
                    tokio::time::sleep(Duration::from_millis(1200)).await;
                }
                json(200, serde_json::json!({ "rows": 0 }))
            }
            _ => error(400, "format must be json or csv"),
        },
        (&Method::POST, ["parse"]) => {
            if body.len() > 4096 {
                if defective {
                    stats.fire("crash");
                    // The planted crash: drop the connection without answering.
                    return Err(std::io::Error::other("parser crashed"));
                }
                return Ok(error(413, "body too large"));
            }
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(serde_json::Value::Object(obj)) => match obj.get("doc") {
                    None => json(200, serde_json::json!({ "keys": 0 })),
                    Some(serde_json::Value::Object(doc)) => {
                        json(200, serde_json::json!({ "keys": doc.len() }))
                    }
                    Some(_) => error(400, "doc must be an object"),
                },
                _ => error(400, "body must be a JSON object"),
            }
        }
        (&Method::GET, ["admin", "users"]) => {
            let allowed = token.as_deref().and_then(|t| state.user(t)).is_some();
            if !allowed && defective {
                stats.fire("auth_enforced");
            }
            if allowed || defective {
                json(200, serde_json::json!(["alice", "bob"]))
            } else {
                error(401, "credentials required")
            }
        }
        (&Method::GET, ["account"]) => {
            let Some(token) = token else {
                return Ok(error(401, "credentials required"));
            };
            let answer = match state.auth_dep {
                Some(dep) => ask_dep(dep, &token).await,
                None => Ok(state.user(&token)),
            };
            match answer {
                Ok(Some(user)) => json(200, serde_json::json!({ "user": user })),
                Ok(None) => error(401, "bad credentials"),
                Err(()) if defective => {
                    // The planted fail-open: the auth service is down, let everyone in.
                    stats.fire("auth_fail_open");
                    json(200, serde_json::json!({ "user": "anonymous" }))
                }
                Err(()) => error(503, "auth service unavailable"),
            }
        }
        (&Method::POST, ["notes"]) => {
            let Some(user) = token.as_deref().and_then(|t| state.user(t)) else {
                return Ok(error(401, "credentials required"));
            };
            let form = query_from(&body);
            let Some(text) = form
                .get("text")
                .filter(|t| !t.is_empty() && t.chars().count() <= 200)
            else {
                return Ok(error(400, "text must be 1..200 characters"));
            };
            let id = state.next_id.fetch_add(1, Ordering::Relaxed);
            state
                .notes
                .lock()
                .unwrap()
                .insert(id, (user.to_string(), text.clone()));
            json(
                201,
                serde_json::json!({ "id": id, "owner": user, "text": text }),
            )
        }
        (&Method::GET, ["notes", id]) => {
            let Some(user) = token.as_deref().and_then(|t| state.user(t)) else {
                return Ok(error(401, "credentials required"));
            };
            let Ok(id) = id.parse::<u64>() else {
                return Ok(error(400, "noteId must be an integer"));
            };
            let note = state.notes.lock().unwrap().get(&id).cloned();
            match note {
                Some((owner, text)) if owner == user || defective => {
                    if owner != user {
                        stats.fire("object_access");
                    }
                    json(
                        200,
                        serde_json::json!({ "id": id, "owner": owner, "text": text }),
                    )
                }
                _ => error(404, "no such note"),
            }
        }
        _ => error(405, "method not allowed"),
    };
    Ok(resp)
}

fn query_from(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    let mut out = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), decode(v));
    }
    out
}

/// Sends one request with a plain TCP client (no fuzzer code involved), for tests of
/// the target itself. Returns (status, body).
pub async fn raw_request(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut out),
    )
    .await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
