//! The admin HTTP API, shaped like Toxiproxy's so its clients work unchanged: the same
//! routes, status codes, JSON shapes, defaults and `{"error": ..., "status": N}` bodies.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ProxyError;
use crate::proxy::{Proxy, ProxyConfig};
use crate::toxic::Toxic;

/// The version `GET /version` reports: Toxiproxy's API level this server speaks, with
/// livefire's own version as build metadata (clients that compare versions see 2.12).
pub const API_VERSION: &str = concat!("2.12.0+livefire.", env!("CARGO_PKG_VERSION"));

/// Bodies larger than this are refused; every valid body is far smaller.
const MAX_BODY: usize = 1024 * 1024;

/// A per-proxy metric: name, help, type, and how to read it from the stats.
type SimpleMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::ProxyStats) -> u64,
);

/// An error as the API answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_body(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("bad request body: {detail}"),
        )
    }

    fn missing(field: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("missing required field: {field}"),
        )
    }

    fn proxy_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "proxy not found")
    }

    /// Toxiproxy's error body.
    pub fn to_json(&self) -> Value {
        json!({"error": self.message, "status": self.status.as_u16()})
    }
}

impl From<ProxyError> for ApiError {
    fn from(e: ProxyError) -> ApiError {
        let status = match &e {
            ProxyError::Toxic(_) | ProxyError::BadAddress { .. } => StatusCode::BAD_REQUEST,
            ProxyError::ToxicExists(_) => StatusCode::CONFLICT,
            ProxyError::ToxicNotFound(_) => StatusCode::NOT_FOUND,
            ProxyError::Listen { .. } | ProxyError::NoRuntime => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// The set of proxies an API server manages. Cheap to share; every operation is a
/// short critical section with no await inside.
#[derive(Debug, Default)]
pub struct Registry {
    proxies: Mutex<BTreeMap<String, Proxy>>,
}

/// The result of a request: status and JSON body (`None` for 204).
pub type ApiResult = Result<(StatusCode, Option<Value>), ApiError>;

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Proxy>> {
        self.proxies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the named proxy (for callers embedding the registry).
    pub fn with_proxy<T>(&self, name: &str, f: impl FnOnce(&Proxy) -> T) -> Option<T> {
        self.lock().get(name).map(f)
    }

    /// Handles one API request. `body` is the raw request body. Never panics on input.
    pub fn handle(&self, method: &Method, path: &str, body: &[u8]) -> ApiResult {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let m = method.clone();
        match (m, segs.as_slice()) {
            (Method::GET, ["proxies"]) => Ok((StatusCode::OK, Some(self.index()))),
            (Method::POST, ["proxies"]) => self.create(&parse_body(body)?),
            (Method::POST, ["populate"]) => self.populate(&parse_body(body)?),
            (Method::POST, ["reset"]) => self.reset(),
            (Method::GET, ["version"]) => {
                Ok((StatusCode::OK, Some(json!({"version": API_VERSION}))))
            }
            (Method::GET, ["proxies", name]) => {
                let p = self
                    .with_proxy(name, Proxy::to_json)
                    .ok_or_else(ApiError::proxy_not_found)?;
                Ok((StatusCode::OK, Some(p)))
            }
            (Method::POST | Method::PATCH, ["proxies", name]) => {
                self.update(name, &parse_body(body)?)
            }
            (Method::DELETE, ["proxies", name]) => {
                self.lock()
                    .remove(*name)
                    .ok_or_else(ApiError::proxy_not_found)?;
                Ok((StatusCode::NO_CONTENT, None))
            }
            (Method::GET, ["proxies", name, "toxics"]) => {
                let t = self
                    .with_proxy(name, |p| {
                        p.toxics().iter().map(Toxic::to_json).collect::<Vec<_>>()
                    })
                    .ok_or_else(ApiError::proxy_not_found)?;
                Ok((StatusCode::OK, Some(Value::Array(t))))
            }
            (Method::POST, ["proxies", name, "toxics"]) => {
                let v = parse_body(body)?;
                let t = self
                    .with_proxy(name, |p| -> Result<Value, ApiError> {
                        let toxic = Toxic::from_json(&v).map_err(ProxyError::from)?;
                        Ok(p.add_toxic(toxic)?.to_json())
                    })
                    .ok_or_else(ApiError::proxy_not_found)??;
                Ok((StatusCode::OK, Some(t)))
            }
            (Method::GET, ["proxies", name, "toxics", toxic]) => {
                let t = self
                    .with_proxy(name, |p| p.toxic(toxic))
                    .ok_or_else(ApiError::proxy_not_found)?
                    .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "toxic not found"))?;
                Ok((StatusCode::OK, Some(t.to_json())))
            }
            (Method::POST | Method::PATCH, ["proxies", name, "toxics", toxic]) => {
                let v = parse_body(body)?;
                let t = self
                    .with_proxy(name, |p| {
                        p.update_toxic(toxic, |t| Ok(t.patched(&v)?))
                            .map(|t| t.to_json())
                    })
                    .ok_or_else(ApiError::proxy_not_found)??;
                Ok((StatusCode::OK, Some(t)))
            }
            (Method::DELETE, ["proxies", name, "toxics", toxic]) => {
                self.with_proxy(name, |p| p.remove_toxic(toxic))
                    .ok_or_else(ApiError::proxy_not_found)??;
                Ok((StatusCode::NO_CONTENT, None))
            }
            (_, ["proxies"] | ["populate"] | ["reset"] | ["version"] | ["metrics"])
            | (_, ["proxies", _] | ["proxies", _, "toxics"] | ["proxies", _, "toxics", _]) => {
                Err(ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("method {method} not allowed"),
                ))
            }
            _ => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no route {path}: see GET /proxies"),
            )),
        }
    }

    fn index(&self) -> Value {
        let map: Map<String, Value> = self
            .lock()
            .iter()
            .map(|(k, p)| (k.clone(), p.to_json()))
            .collect();
        Value::Object(map)
    }

    fn create(&self, body: &Value) -> ApiResult {
        let input = ProxyInput::parse(body, None)?;
        let name = input.name.ok_or_else(|| ApiError::missing("name"))?;
        let upstream = input
            .upstream
            .ok_or_else(|| ApiError::missing("upstream"))?;
        let mut proxies = self.lock();
        if proxies.contains_key(&name) {
            return Err(ApiError::new(StatusCode::CONFLICT, "proxy already exists"));
        }
        let cfg = ProxyConfig {
            name: name.clone(),
            listen: input.listen.unwrap_or_else(default_listen),
            upstream,
            enabled: input.enabled.unwrap_or(true),
        };
        let proxy = Proxy::start_with(cfg, CancellationToken::new())?;
        let out = proxy.to_json();
        proxies.insert(name, proxy);
        Ok((StatusCode::CREATED, Some(out)))
    }

    /// Creates or replaces a list of proxies; a proxy whose listen and upstream are
    /// unchanged is kept as is (with its toxics), as Toxiproxy does.
    pub fn populate(&self, body: &Value) -> ApiResult {
        let Value::Array(items) = body else {
            return Err(ApiError::bad_body("expected a JSON array of proxies"));
        };
        let mut inputs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let input = ProxyInput::parse(item, Some(i + 1))?;
            let name = input
                .name
                .clone()
                .ok_or_else(|| ApiError::missing(&format!("name at proxy {}", i + 1)))?;
            let upstream = input
                .upstream
                .clone()
                .ok_or_else(|| ApiError::missing(&format!("upstream at proxy {}", i + 1)))?;
            inputs.push(ProxyConfig {
                name,
                listen: input.listen.unwrap_or_else(default_listen),
                upstream,
                enabled: input.enabled.unwrap_or(true),
            });
        }
        let mut done = Vec::new();
        let mut proxies = self.lock();
        for cfg in inputs {
            if let Some(existing) = proxies.get(&cfg.name)
                && existing.upstream() == cfg.upstream
                && same_listen(&existing.listen(), &cfg.listen)
            {
                done.push(existing.to_json());
                continue;
            }
            // Stop the old one first so the new one may take its listen address.
            proxies.remove(&cfg.name);
            match Proxy::start_with(cfg.clone(), CancellationToken::new()) {
                Ok(p) => {
                    done.push(p.to_json());
                    proxies.insert(cfg.name, p);
                }
                Err(e) => {
                    let e = ApiError::from(e);
                    let body =
                        json!({"error": e.message, "status": e.status.as_u16(), "proxies": done});
                    return Ok((e.status, Some(body)));
                }
            }
        }
        Ok((StatusCode::CREATED, Some(json!({ "proxies": done }))))
    }

    fn update(&self, name: &str, body: &Value) -> ApiResult {
        let input = ProxyInput::parse(body, None)?;
        let out = self
            .with_proxy(name, |p| -> Result<Value, ApiError> {
                let listen = input.listen.clone().unwrap_or_else(|| p.listen());
                let upstream = input.upstream.clone().unwrap_or_else(|| p.upstream());
                let enabled = input.enabled.unwrap_or_else(|| p.enabled());
                p.update(&listen, &upstream, enabled)?;
                Ok(p.to_json())
            })
            .ok_or_else(ApiError::proxy_not_found)??;
        Ok((StatusCode::OK, Some(out)))
    }

    /// Enables every proxy and removes every toxic.
    pub fn reset(&self) -> ApiResult {
        for p in self.lock().values() {
            p.set_enabled(true)?;
            p.reset_toxics();
        }
        Ok((StatusCode::NO_CONTENT, None))
    }

    /// Prometheus text: Toxiproxy's byte counters (same names and labels), plus
    /// connection counters.
    pub fn metrics(&self) -> String {
        let proxies = self.lock();
        let mut out = String::new();
        let rows: Vec<_> = proxies
            .values()
            .map(|p| (p.name().to_string(), p.listen(), p.upstream(), p.stats()))
            .collect();
        drop(proxies);
        let counter = |out: &mut String, name: &str, help: &str, kind: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        counter(
            &mut out,
            "toxiproxy_proxy_received_bytes_total",
            "Bytes read from the source side, per proxy and direction.",
            "counter",
        );
        for (name, listen, upstream, st) in &rows {
            for (dir, d) in [("upstream", st.upstream), ("downstream", st.downstream)] {
                let _ = writeln!(
                    out,
                    "toxiproxy_proxy_received_bytes_total{{direction=\"{dir}\",listener=\"{}\",proxy=\"{}\",upstream=\"{}\"}} {}",
                    esc(listen),
                    esc(name),
                    esc(upstream),
                    d.received_bytes
                );
            }
        }
        counter(
            &mut out,
            "toxiproxy_proxy_sent_bytes_total",
            "Bytes written to the destination side, per proxy and direction.",
            "counter",
        );
        for (name, listen, upstream, st) in &rows {
            for (dir, d) in [("upstream", st.upstream), ("downstream", st.downstream)] {
                let _ = writeln!(
                    out,
                    "toxiproxy_proxy_sent_bytes_total{{direction=\"{dir}\",listener=\"{}\",proxy=\"{}\",upstream=\"{}\"}} {}",
                    esc(listen),
                    esc(name),
                    esc(upstream),
                    d.sent_bytes
                );
            }
        }
        let simple: [SimpleMetric; 3] = [
            (
                "livefire_proxy_connections_total",
                "Client connections accepted.",
                "counter",
                |s| s.connections_total,
            ),
            (
                "livefire_proxy_connections_active",
                "Client connections open now.",
                "gauge",
                |s| s.connections_active,
            ),
            (
                "livefire_proxy_upstream_errors_total",
                "Clients closed because the upstream was unreachable.",
                "counter",
                |s| s.upstream_errors,
            ),
        ];
        for (metric, help, kind, get) in simple {
            counter(&mut out, metric, help, kind);
            for (name, _, _, st) in &rows {
                let _ = writeln!(out, "{metric}{{proxy=\"{}\"}} {}", esc(name), get(st));
            }
        }
        out
    }

    /// Stops every proxy.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// A proxy body's fields, type-checked; absent ones are `None`.
struct ProxyInput {
    name: Option<String>,
    listen: Option<String>,
    upstream: Option<String>,
    enabled: Option<bool>,
}

impl ProxyInput {
    fn parse(body: &Value, index: Option<usize>) -> Result<ProxyInput, ApiError> {
        let at = index.map(|i| format!(" at proxy {i}")).unwrap_or_default();
        let obj = body.as_object().ok_or_else(|| {
            ApiError::bad_body(format!(
                "expected a JSON object like {{\"name\": ..., \"upstream\": ...}}{at}"
            ))
        })?;
        let s = |key: &str| -> Result<Option<String>, ApiError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(v)) if v.is_empty() => Ok(None),
                Some(Value::String(v)) => Ok(Some(v.clone())),
                Some(_) => Err(ApiError::bad_body(format!("{key} must be a string{at}"))),
            }
        };
        let enabled = match obj.get("enabled") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                return Err(ApiError::bad_body(format!(
                    "enabled must be true or false{at}"
                )));
            }
        };
        Ok(ProxyInput {
            name: s("name")?,
            listen: s("listen")?,
            upstream: s("upstream")?,
            enabled,
        })
    }
}

/// Toxiproxy listens on every interface when `listen` is empty; livefire keeps to
/// loopback unless told otherwise, so a forgotten field does not expose a port.
fn default_listen() -> String {
    "127.0.0.1:0".to_string()
}

fn same_listen(current: &str, wanted: &str) -> bool {
    current == wanted
        || match (current.parse::<SocketAddr>(), wanted.parse::<SocketAddr>()) {
            (Ok(c), Ok(w)) => c.ip() == w.ip() && (w.port() == 0 || w.port() == c.port()),
            _ => false,
        }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_body("EOF (send a JSON body)"));
    }
    serde_json::from_slice(body).map_err(ApiError::bad_body)
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves the API on `listener` until `cancel` fires.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, cancel: CancellationToken) {
    loop {
        let (sock, _) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(err) => {
                    tracing::warn!(%err, "admin API accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let registry = registry.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let registry = registry.clone();
                async move { Ok::<_, Infallible>(respond(&registry, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(sock), svc);
            tokio::select! {
                _ = cancel.cancelled() => {}
                r = conn => if let Err(err) = r {
                    tracing::debug!(%err, "admin API connection ended with an error");
                },
            }
        });
    }
}

async fn respond(registry: &Registry, req: hyper::Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // Toxiproxy refuses browsers so a web page cannot drive the API (CSRF).
    let browser = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    if browser {
        return text(StatusCode::FORBIDDEN, "User agent not allowed\n");
    }
    if method == Method::GET && path.trim_end_matches('/') == "/metrics" {
        let mut r = text(StatusCode::OK, &registry.metrics());
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return r;
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return json_response(Err(ApiError::bad_body(format!(
                "could not read the body: {e}"
            ))));
        }
    };
    let result = registry.handle(&method, &path, &body);
    if let Err(e) = &result {
        tracing::debug!(%method, %path, status = e.status.as_u16(), error = %e.message, "admin API error");
    }
    json_response(result)
}

fn json_response(result: ApiResult) -> Response<Full<Bytes>> {
    let (status, body) = match result {
        Ok((status, body)) => (status, body),
        Err(e) => (e.status, Some(e.to_json())),
    };
    let mut builder = Response::builder().status(status);
    let bytes = match body {
        Some(v) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    builder
        .body(Full::new(bytes))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
