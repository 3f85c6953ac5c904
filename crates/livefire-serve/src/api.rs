//! The JSON API and the routes of the UI: method and path to handler, with who may do
//! what. `openapi.yaml` (beside this crate's Cargo.toml) documents every route; the
//! fuzzer reads it in this crate's tests.

use std::path::PathBuf;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::auth::{self, Caller, Denied, Role};
use crate::runs::{Runner, StartError, StopError};
use crate::server::{Body, BodyError, full, read_body};
use crate::store::Store;

/// What every request shares.
#[derive(Debug)]
pub struct App {
    pub store: Arc<Store>,
    pub runner: Arc<Runner>,
    /// Served over TLS: the session cookie is marked `Secure`.
    pub tls: bool,
    /// `--require-approval` and `--approval-expires`: a run in a `production: true`
    /// environment waits for a second person (`approval.rs`).
    pub approvals: crate::approval::Policy,
}

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("../openapi.yaml");

/// The run files a client may fetch, by name (nothing else in a run folder is served).
const RUN_FILES: &[(&str, &str)] = &[
    ("report.html", "text/html; charset=utf-8"),
    ("summary.json", "application/json"),
    ("junit.xml", "application/xml"),
    ("journal.jsonl", "application/x-ndjson"),
    ("experiment.yaml", "text/plain; charset=utf-8"),
];

/// Refuses a body that is not an object or that holds a key outside `allowed`, naming
/// it: a misspelt `env` must not start a drill without its environment.
pub(crate) fn only_keys(v: &Value, allowed: &[&str]) -> Result<(), String> {
    let Some(m) = v.as_object() else {
        return Err("send a JSON object".into());
    };
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(format!(
            "unknown field `{}`: the fields are {}",
            k.escape_debug(),
            allowed
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Answers one request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = parts.method.clone();
    // The UI and the API's own description need no token; everything else does.
    match (&method, segments.as_slice()) {
        (&Method::GET, [""]) => return crate::ui::page(),
        (&Method::GET, ["assets", name]) => return crate::ui::asset(name),
        (&Method::GET, ["api", "openapi.yaml"]) => {
            return with_type(StatusCode::OK, "application/yaml", OPENAPI);
        }
        (&Method::POST, ["api", which @ ("login" | "logout")]) => {
            if let Err(d) = auth::same_origin(&parts.headers) {
                return denied(&d);
            }
            return match *which {
                "login" => login(&app, body, app.tls).await,
                _ => logout(app.tls),
            };
        }
        _ => {}
    }
    if segments.first() != Some(&"api") {
        return error(
            StatusCode::NOT_FOUND,
            format!("no page {path}: the console is at /"),
        );
    }
    let caller = match caller(&app, &parts.headers) {
        Ok(c) => c,
        Err(d) => return denied(&d),
    };
    // A browser sends the cookie on its own, so a change made with it must carry the
    // page's CSRF token too.
    if caller.by_cookie && !matches!(method, Method::GET | Method::HEAD) {
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        if sent != Some(caller.csrf.as_str()) {
            return denied(&Denied::Csrf);
        }
    }
    // A game day's pages, mounted from livefire-gameday (gameday.rs).
    if let ["api", "runs", id, "gameday", rest @ ..] = segments.as_slice() {
        return crate::gameday::handle(&app, &caller, id, rest, parts, body).await;
    }
    // The live page's stream reads `Last-Event-ID` (live.rs).
    if let (&Method::GET, ["api", "runs", id, "events"]) = (&method, segments.as_slice()) {
        return run_events(&app, id, &parts.headers);
    }
    let query = parts.uri.query().unwrap_or("").to_owned();
    route(&app, &caller, &method, &segments[1..], &query, body).await
}

/// `GET /api/runs/ID/events`: the run's journal as Server-Sent Events.
fn run_events(app: &Arc<App>, id: &str, headers: &http::HeaderMap) -> Response<Body> {
    match app.store.run(id) {
        Ok(Some(row)) => {
            match crate::live::events(PathBuf::from(row.dir), app.runner.clone(), row.id, headers) {
                Ok(r) => r,
                Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
            }
        }
        Ok(None) => no_run(id),
        Err(e) => internal(e),
    }
}

async fn route(
    app: &Arc<App>,
    caller: &Caller,
    method: &Method,
    path: &[&str],
    query: &str,
    body: Incoming,
) -> Response<Body> {
    let need = |role: Role| auth::require(caller, role);
    match (method, path) {
        (&Method::GET, ["whoami"]) => json_ok(json!({
            "name": caller.name,
            "role": caller.role,
            "csrf": caller.csrf,
        })),
        (&Method::GET, ["experiments"]) => match app.store.experiments() {
            Ok(rows) => json_ok(json!(
                rows.into_iter()
                    .map(|r| json!({"name": r.name, "updated": r.updated, "updated_by": r.updated_by}))
                    .collect::<Vec<_>>()
            )),
            Err(e) => internal(e),
        },
        (&Method::GET, ["experiments", name]) => match app.store.experiment(name) {
            Ok(Some(r)) => json_ok(json!(r)),
            Ok(None) => no_experiment(name),
            Err(e) => internal(e),
        },
        (&Method::PUT, ["experiments", name]) => {
            if let Err(d) = need(Role::Operator) {
                return denied(&d);
            }
            if let Err(why) = check_name(name) {
                return error(StatusCode::BAD_REQUEST, why);
            }
            let text = match text_body(body).await {
                Ok(t) => t,
                Err(r) => return *r,
            };
            if let Err(r) = validate(name, &text) {
                return *r;
            }
            let existed = matches!(app.store.experiment(name), Ok(Some(_)));
            if let Err(e) = app.store.put_experiment(name, &text, &caller.label()) {
                return internal(e);
            }
            let _ = app.store.audit(
                &caller.label(),
                "upload",
                &format!("experiment:{name}"),
                &format!("{} bytes", text.len()),
            );
            let status = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            json_status(status, json!({"name": name, "valid": true}))
        }
        (&Method::POST, ["validate"]) => {
            let name = query_value(query, "name").unwrap_or_else(|| "experiment".into());
            let text = match text_body(body).await {
                Ok(t) => t,
                Err(r) => return *r,
            };
            match validate(&name, &text) {
                Ok(v) => json_ok(v),
                Err(r) => *r,
            }
        }
        (&Method::GET, ["experiments", name, "plan"]) => plan(app, name),
        (&Method::GET, ["experiments", name, "trends"]) => {
            crate::trends::respond(app.store.clone(), name).await
        }
        (&Method::GET, ["runs"]) => match app.store.runs() {
            Ok(rows) => json_ok(json!(rows)),
            Err(e) => internal(e),
        },
        (&Method::POST, ["runs"]) => {
            if let Err(d) = need(Role::Operator) {
                return denied(&d);
            }
            let v = match json_body(body).await {
                Ok(v) => v,
                Err(r) => return *r,
            };
            let Some(name) = v.get("experiment").and_then(Value::as_str) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "send {\"experiment\": NAME}, the name of an uploaded experiment".into(),
                );
            };
            crate::approval::start(app, caller, &v, name).await
        }
        (&Method::GET, ["runs", id]) => run_detail(app, id),
        (&Method::POST, ["runs", id, "stop"]) => {
            if let Err(d) = need(Role::Operator) {
                return denied(&d);
            }
            match app.runner.stop(caller, id).await {
                Ok(row) => json_status(
                    StatusCode::ACCEPTED,
                    json!({"run": row, "pending_undo": Runner::pending_undo(id)}),
                ),
                Err(e @ StopError::Unknown(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
                Err(e @ StopError::Ended(_)) => error(StatusCode::CONFLICT, e.to_string()),
                Err(e @ StopError::Socket { .. }) => {
                    error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                }
                Err(StopError::Store(e)) => internal(e),
            }
        }
        (&Method::GET, ["runs", id, "files", file]) => run_file(app, id, file),
        (&Method::GET, ["audit"]) => match app.store.audit_log(None) {
            Ok(rows) => json_ok(json!(rows)),
            Err(e) => internal(e),
        },
        (&Method::GET, ["tokens"]) => {
            if let Err(d) = need(Role::Admin) {
                return denied(&d);
            }
            match app.store.tokens() {
                Ok(rows) => json_ok(json!(rows)),
                Err(e) => internal(e),
            }
        }
        (&Method::POST, ["tokens"]) => {
            if let Err(d) = need(Role::Admin) {
                return denied(&d);
            }
            let v = match json_body(body).await {
                Ok(v) => v,
                Err(r) => return *r,
            };
            create_token(app, caller, &v)
        }
        (&Method::DELETE, ["tokens", name]) => {
            if let Err(d) = need(Role::Admin) {
                return denied(&d);
            }
            match app.store.revoke_token(name) {
                Ok(true) => {
                    let _ = app
                        .store
                        .audit(&caller.label(), "revoke", &format!("token:{name}"), "");
                    json_ok(json!({"revoked": name}))
                }
                Ok(false) => error(StatusCode::NOT_FOUND, format!("no token named `{name}`")),
                Err(e) => internal(e),
            }
        }
        (_, ["schedules", ..]) => crate::schedule::route(app, caller, method, path, body).await,
        (_, ["approvals", ..]) => crate::approval::route(app, caller, method, path, body).await,
        _ => error(
            StatusCode::NOT_FOUND,
            "no such route: GET /api/openapi.yaml lists them".into(),
        ),
    }
}

fn caller(app: &App, headers: &http::HeaderMap) -> Result<Caller, Denied> {
    let (token, by_cookie) = auth::token_of(headers).ok_or(Denied::Missing)?;
    auth::check(&app.store, &token, by_cookie)
}

/// `POST /api/login` `{"token": ...}`: sets the session cookie the UI then uses.
async fn login(app: &App, body: Incoming, tls: bool) -> Response<Body> {
    let v = match json_body(body).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if let Err(why) = only_keys(&v, &["token"]) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let Some(token) = v.get("token").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "send {\"token\": TOKEN}".into());
    };
    match auth::check(&app.store, token.trim(), true) {
        Ok(c) => {
            let mut r = json_ok(json!({"name": c.name, "role": c.role, "csrf": c.csrf}));
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict{}",
                auth::COOKIE,
                token.trim(),
                if tls { "; Secure" } else { "" }
            );
            if let Ok(v) = header::HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(d) => denied(&d),
    }
}

fn logout(tls: bool) -> Response<Body> {
    let mut r = json_ok(json!({"logged_out": true}));
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        auth::COOKIE,
        if tls { "; Secure" } else { "" }
    );
    if let Ok(v) = header::HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Loads an experiment's text as `livefire validate` does (every environment): its
/// summary, or 400 with each error located (file, line, column).
fn validate(name: &str, text: &str) -> Result<Value, Box<Response<Body>>> {
    let options = livefire_spec::Options {
        every_environment: true,
        built: Some(livefire_engine::plan::built()),
        ..Default::default()
    };
    let file = format!("{name}.yaml");
    match livefire_spec::load_str_with(&file, text, &options) {
        Ok(loaded) => {
            let e = &loaded.experiment;
            Ok(json!({
                "valid": true,
                "title": e.title,
                "targets": e.targets.len(),
                "activities": e.timeline.len(),
                "hypothesis": e.hypothesis.len(),
                "guardrails": e.guardrails.len(),
                "warnings": diagnostics(&loaded.warnings),
            }))
        }
        Err(livefire_spec::LoadError::Invalid(report)) => Err(Box::new(invalid(&report))),
        Err(other) => Err(Box::new(error(StatusCode::BAD_REQUEST, other.to_string()))),
    }
}

fn diagnostics(report: &livefire_spec::Report) -> Vec<Value> {
    report
        .diagnostics
        .iter()
        .map(|d| {
            json!({
                "file": report.file,
                "line": d.pos.line,
                "column": d.pos.col,
                "severity": match d.severity {
                    livefire_spec::Severity::Error => "error",
                    livefire_spec::Severity::Warning => "warning",
                },
                "message": d.message,
            })
        })
        .collect()
}

/// 400 with the located diagnostics, and the text `livefire validate` prints.
fn invalid(report: &livefire_spec::Report) -> Response<Body> {
    let errors = report.errors().count();
    json_status(
        StatusCode::BAD_REQUEST,
        json!({
            "error": format!("{}: {errors} error{}", report.file, if errors == 1 { "" } else { "s" }),
            "diagnostics": diagnostics(report),
            "text": report.to_string(),
        }),
    )
}

fn plan(app: &App, name: &str) -> Response<Body> {
    let row = match app.store.experiment(name) {
        Ok(Some(r)) => r,
        Ok(None) => return no_experiment(name),
        Err(e) => return internal(e),
    };
    let file = app.runner.experiment_path(name);
    // Whole or not at all: a run starting from the same file meanwhile reads it too.
    if let Err(e) = crate::runs::write_file(&file, &row.text) {
        return internal(e);
    }
    match livefire_engine::plan::plan(&file, &[], None) {
        Ok(plan) => json_ok(json!({
            "title": plan.title,
            "text": livefire_engine::plan::render(&plan),
            "activities": plan.activities.iter().map(|a| json!({
                "id": a.id,
                "name": a.name,
                "kind": a.kind,
                "target": a.target,
                "start_ms": a.start.as_millis() as u64,
                "duration_ms": a.duration.as_millis() as u64,
            })).collect::<Vec<_>>(),
            "conditions": plan.conditions.iter().map(|c| json!({"name": c.name})).collect::<Vec<_>>(),
        })),
        Err(livefire_engine::plan::PlanError::Load(livefire_spec::LoadError::Invalid(r))) => {
            invalid(&r)
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// The answer to a run that did not start: 404, 400 (located), 409 (a held target).
pub(crate) fn start_error(e: StartError) -> Response<Body> {
    match e {
        e @ StartError::NoExperiment(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        StartError::Invalid(r) => invalid(&r),
        e @ StartError::Refused(_) => error(StatusCode::BAD_REQUEST, e.to_string()),
        StartError::Held { target, run, why } => {
            let message = StartError::Held {
                target: target.clone(),
                run: run.clone(),
                why,
            }
            .to_string();
            json_status(
                StatusCode::CONFLICT,
                json!({"error": message, "run": run, "target": target}),
            )
        }
        StartError::Store(e) => internal(e),
        e @ StartError::Spawn(_) => internal(e),
    }
}

fn run_detail(app: &App, id: &str) -> Response<Body> {
    let row = match app.store.run(id) {
        Ok(Some(r)) => r,
        Ok(None) => return no_run(id),
        Err(e) => return internal(e),
    };
    let dir = PathBuf::from(&row.dir);
    let summary: Value = std::fs::read_to_string(dir.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let files: Vec<&str> = RUN_FILES
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| dir.join(n).is_file())
        .collect();
    json_ok(json!({
        "run": row,
        "live": app.runner.is_live(id),
        "pending_undo": Runner::pending_undo(id),
        "audit": app.store.audit_log(Some(id)).unwrap_or_default(),
        "files": files,
        "summary": summary,
        "gameday": crate::gameday::is_gameday(&dir),
    }))
}

fn run_file(app: &App, id: &str, file: &str) -> Response<Body> {
    let row = match app.store.run(id) {
        Ok(Some(r)) => r,
        Ok(None) => return no_run(id),
        Err(e) => return internal(e),
    };
    let Some((name, kind)) = RUN_FILES.iter().find(|(n, _)| *n == file) else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no run file `{file}`: ask for one of {}",
                RUN_FILES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    };
    match std::fs::read(PathBuf::from(&row.dir).join(name)) {
        Ok(bytes) => {
            let mut r = Response::new(full(bytes));
            set(&mut r, header::CONTENT_TYPE, kind);
            if *name == "report.html" {
                // report.html fetches nothing; say so to the browser as well.
                set(
                    &mut r,
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                );
            }
            r
        }
        Err(_) => error(
            StatusCode::NOT_FOUND,
            format!("run {id} has no {name} (yet): the reports are written when it ends"),
        ),
    }
}

fn create_token(app: &App, caller: &Caller, v: &Value) -> Response<Body> {
    if let Err(why) = only_keys(v, &["role", "name", "expires"]) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let Some(role) = v.get("role").and_then(Value::as_str).and_then(Role::parse) else {
        return error(
            StatusCode::BAD_REQUEST,
            "send {\"role\": \"viewer\" | \"operator\" | \"admin\", \"name\": NAME, \"expires\": \"30d\"}"
                .into(),
        );
    };
    let name = match v.get("name").and_then(Value::as_str) {
        Some(n) => n.to_owned(),
        None => format!("{}-{}", role.as_str(), auth::unix_now()),
    };
    if let Err(why) = check_name(&name) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let expires = match v.get("expires").and_then(Value::as_str) {
        None => None,
        Some(t) => match livefire_core::units::parse_duration(t) {
            Ok(d) => Some(d),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("expires: {e}")),
        },
    };
    match auth::create(&app.store, &name, role, expires) {
        Ok(token) => {
            let _ = app.store.audit(
                &caller.label(),
                "create",
                &format!("token:{name}"),
                role.as_str(),
            );
            json_status(
                StatusCode::CREATED,
                json!({"name": name, "role": role, "token": token}),
            )
        }
        Err(e @ crate::store::StoreError::NameTaken(_)) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e) => internal(e),
    }
}

/// A name for an experiment or a token: letters, digits, `.`, `_`, `-`, 1 to 64.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name `{}`: use 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.`",
            name.chars().take(80).collect::<String>()
        ))
    }
}

fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

async fn text_body(body: Incoming) -> Result<String, Box<Response<Body>>> {
    let bytes = read_body(body).await.map_err(|e| Box::new(body_error(e)))?;
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not UTF-8 (byte {}): send the experiment as UTF-8 text",
                e.utf8_error().valid_up_to()
            ),
        ))
    })
}

pub(crate) async fn json_body(body: Incoming) -> Result<Value, Box<Response<Body>>> {
    let bytes = read_body(body).await.map_err(|e| Box::new(body_error(e)))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON ({e}): send a JSON object"),
        ))
    })
}

/// A body that may be empty (then `null`); otherwise JSON, as `json_body`.
pub(crate) async fn optional_json_body(body: Incoming) -> Result<Value, Box<Response<Body>>> {
    let bytes = read_body(body).await.map_err(|e| Box::new(body_error(e)))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON ({e}): send a JSON object, or nothing"),
        ))
    })
}

fn body_error(e: BodyError) -> Response<Body> {
    match e {
        BodyError::TooLarge => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} KiB: an experiment file is a few KiB",
                crate::server::MAX_BODY / 1024
            ),
        ),
        BodyError::TooSlow => error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {}s: send it whole, at once",
                crate::server::BODY_TIMEOUT.as_secs()
            ),
        ),
        BodyError::Broken => error(
            StatusCode::BAD_REQUEST,
            "the body was cut off: send it again".into(),
        ),
    }
}

fn no_experiment(name: &str) -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        format!("no experiment named `{name}`: GET /api/experiments lists them"),
    )
}

fn no_run(id: &str) -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        format!("no run `{id}`: GET /api/runs lists them"),
    )
}

pub(crate) fn denied(d: &Denied) -> Response<Body> {
    let status = StatusCode::from_u16(d.status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut r = error(status, d.to_string());
    if status == StatusCode::UNAUTHORIZED {
        set(
            &mut r,
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"livefire\"",
        );
    }
    r
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Response<Body> {
    tracing::warn!("request failed: {e}");
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub fn error(status: StatusCode, message: String) -> Response<Body> {
    json_status(status, json!({ "error": message }))
}

fn json_ok(v: Value) -> Response<Body> {
    json_status(StatusCode::OK, v)
}

pub fn json_status(status: StatusCode, v: Value) -> Response<Body> {
    with_type(status, "application/json", v.to_string())
}

pub fn with_type(status: StatusCode, kind: &str, body: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_TYPE, kind);
    set(&mut r, header::CACHE_CONTROL, "no-store");
    set(&mut r, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    r
}

pub fn set(r: &mut Response<Body>, name: header::HeaderName, value: &str) {
    if let Ok(v) = header::HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}
