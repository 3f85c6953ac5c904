//! `livefire sandbox service`: the demo orders API. Every request but `/health` and
//! `/openapi.json` is authorized by asking the token service who the bearer is; orders
//! belong to their creator. With `--defects` it carries two realistic bugs for a run to
//! find (off by default):
//! - authorization fails open: while the token service cannot be reached, a request
//!   with any bearer token is let through, and sees every user's orders;
//! - a write is acknowledged before it is durable: `POST /orders` answers 201 at once
//!   and the order is written by a background flush every few seconds, so a process
//!   killed in between loses orders it acknowledged.

use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::store::{Order, Store};
use crate::web::{self, Body, Req};

/// How long the API waits for the token service.
const AUTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the write-behind defect flushes acknowledged orders.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// The service's configuration (its flags).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub listen: String,
    /// host:port of the token service (or of a proxy in front of it).
    pub token_addr: String,
    pub defects: bool,
}

struct Api {
    store: Store,
    config: ServiceConfig,
    /// Acknowledged, not yet written (only with defects).
    pending: tokio::sync::Mutex<Vec<Order>>,
}

/// Serves the orders API on `config.listen`, forever.
pub async fn serve(config: ServiceConfig, store: Store) -> std::io::Result<()> {
    let listener = web::bind(&config.listen).await?;
    println!(
        "orders API listening on {} (store {}, token service {}, defects {})",
        config.listen,
        store.kind(),
        config.token_addr,
        if config.defects { "ON" } else { "off" }
    );
    let api = Arc::new(Api {
        store,
        config,
        pending: tokio::sync::Mutex::new(Vec::new()),
    });
    if api.config.defects {
        let flusher = api.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FLUSH_EVERY).await;
                flusher.flush().await;
            }
        });
    }
    web::serve(
        listener,
        Arc::new(move |req: Req| {
            let api = api.clone();
            async move { api.handle(req).await }
        }),
    )
    .await;
    Ok(())
}

/// Who a request acts for.
enum Caller {
    User(String),
    /// Defect: the token service could not be asked and the request was let through.
    Unchecked,
}

impl Caller {
    fn owner_filter(&self) -> Option<&str> {
        match self {
            Caller::User(u) => Some(u),
            Caller::Unchecked => None,
        }
    }
}

impl Api {
    async fn handle(&self, req: Req) -> Response<Body> {
        let path = req.path.trim_end_matches('/');
        let route = match path {
            "/health" => Route::Health,
            "/openapi.json" => Route::OpenApi,
            "/orders" => Route::Orders,
            p => match p.strip_prefix("/orders/") {
                Some(id) => Route::Order(id.to_owned()),
                None => {
                    return web::error(
                        StatusCode::NOT_FOUND,
                        "no such endpoint: see /openapi.json",
                    );
                }
            },
        };
        let allowed: &[Method] = match route {
            Route::Orders => &[Method::GET, Method::POST],
            _ => &[Method::GET],
        };
        if !allowed.contains(&req.method) {
            let mut r = web::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here");
            let allow = allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(v) = HeaderValue::from_str(&allow) {
                r.headers_mut().insert(hyper::header::ALLOW, v);
            }
            return r;
        }
        match route {
            Route::Health => self.health().await,
            Route::OpenApi => web::json(StatusCode::OK, &openapi()),
            Route::Orders | Route::Order(_) => {
                let caller = match self.authorize(&req).await {
                    Ok(c) => c,
                    Err(r) => return r,
                };
                match (route, req.method.clone()) {
                    (Route::Order(id), _) => self.get(&caller, &id).await,
                    (_, Method::POST) => self.create(&caller, &req).await,
                    _ => self.list(&caller, req.query.as_deref()).await,
                }
            }
        }
    }

    async fn health(&self) -> Response<Body> {
        match tokio::time::timeout(Duration::from_secs(3), self.store.health()).await {
            Ok(Ok(())) => web::json(
                StatusCode::OK,
                &json!({ "status": "ok", "store": self.store.kind() }),
            ),
            Ok(Err(e)) => web::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "unavailable", "store": self.store.kind(), "error": e.0 }),
            ),
            Err(_) => web::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "unavailable", "store": self.store.kind(), "error": "the store did not answer within 3s" }),
            ),
        }
    }

    /// Asks the token service who the bearer is. No header: 401 without asking.
    async fn authorize(&self, req: &Req) -> Result<Caller, Response<Body>> {
        let Some(auth) = req.headers.get(hyper::header::AUTHORIZATION) else {
            return Err(web::error(
                StatusCode::UNAUTHORIZED,
                "missing Authorization: Bearer TOKEN",
            ));
        };
        let header = [(HeaderName::from_static("authorization"), auth.clone())];
        match web::get(&self.config.token_addr, "/verify", &header, AUTH_TIMEOUT).await {
            Ok((StatusCode::OK, body)) => {
                let user = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("user").and_then(Value::as_str).map(str::to_owned));
                match user {
                    Some(u) => Ok(Caller::User(u)),
                    None => Err(self.auth_unavailable("the token service answered without a user")),
                }
            }
            Ok((StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _)) => {
                Err(web::error(StatusCode::UNAUTHORIZED, "invalid bearer token"))
            }
            Ok((status, _)) => {
                Err(self.auth_unavailable(&format!("the token service answered {status}")))
            }
            Err(e) if self.config.defects => {
                // DEFECT (--defects): fail open while the token service is unreachable.
                eprintln!("authorization skipped: {e}");
                Ok(Caller::Unchecked)
            }
            Err(e) => Err(self.auth_unavailable(&e.to_string())),
        }
    }

    fn auth_unavailable(&self, why: &str) -> Response<Body> {
        web::error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("authorization unavailable: {why}"),
        )
    }

    async fn get(&self, caller: &Caller, id: &str) -> Response<Body> {
        let Ok(id) = id.parse::<i64>() else {
            return web::error(StatusCode::BAD_REQUEST, "an order id is a whole number");
        };
        if self.config.defects {
            let pending = self.pending.lock().await;
            if let Some(o) = pending
                .iter()
                .find(|o| o.id == id && caller.owner_filter().is_none_or(|u| u == o.owner))
            {
                return web::json(StatusCode::OK, &json!(o));
            }
        }
        match self.store.get(caller.owner_filter(), id).await {
            Ok(Some(o)) => web::json(StatusCode::OK, &json!(o)),
            Ok(None) => web::error(StatusCode::NOT_FOUND, "no such order"),
            Err(e) => web::error(StatusCode::SERVICE_UNAVAILABLE, &e.0),
        }
    }

    async fn list(&self, caller: &Caller, query: Option<&str>) -> Response<Body> {
        let mut search = None;
        let mut limit = 20i64;
        for (k, v) in query.map(parse_query).unwrap_or_default() {
            match k.as_str() {
                "search" => search = Some(v),
                "limit" => match v.parse::<i64>() {
                    Ok(n) if (1..=100).contains(&n) => limit = n,
                    _ => {
                        return web::error(
                            StatusCode::BAD_REQUEST,
                            "limit is a whole number from 1 to 100",
                        );
                    }
                },
                _ => {}
            }
        }
        match self
            .store
            .list(caller.owner_filter(), search.as_deref(), limit)
            .await
        {
            Ok(mut items) => {
                if self.config.defects {
                    // The write-behind buffer answers reads too, so nothing looks amiss
                    // until the process dies.
                    let pending = self.pending.lock().await;
                    let visible = pending.iter().filter(|o| {
                        caller.owner_filter().is_none_or(|u| u == o.owner)
                            && search.as_deref().is_none_or(|s| o.item.contains(s))
                    });
                    items.extend(visible.cloned());
                    items.sort_by_key(|o| std::cmp::Reverse(o.id));
                    items.dedup_by_key(|o| o.id);
                    items.truncate(limit as usize);
                }
                web::json(StatusCode::OK, &json!({ "items": items }))
            }
            Err(e) => web::error(StatusCode::SERVICE_UNAVAILABLE, &e.0),
        }
    }

    async fn create(&self, caller: &Caller, req: &Req) -> Response<Body> {
        let body = match &req.body {
            Ok(b) => b,
            Err(e) => {
                return web::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("cannot read the body: {e}"),
                );
            }
        };
        let (item, qty) = match parse_new_order(body) {
            Ok(v) => v,
            Err(e) => return web::error(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let owner = match caller {
            Caller::User(u) => u.clone(),
            Caller::Unchecked => "unknown".to_owned(),
        };
        let result = if self.config.defects {
            // DEFECT (--defects): acknowledge now, write at the next flush.
            match self.store.reserve_id().await {
                Ok(id) => {
                    let order = Order {
                        id,
                        owner,
                        item,
                        qty,
                    };
                    self.pending.lock().await.push(order.clone());
                    Ok(order)
                }
                Err(e) => Err(e),
            }
        } else {
            self.store.create(&owner, &item, qty).await
        };
        match result {
            Ok(order) => {
                let mut r = web::json(StatusCode::CREATED, &json!(order));
                if let Ok(v) = HeaderValue::from_str(&format!("/orders/{}", order.id)) {
                    r.headers_mut().insert(hyper::header::LOCATION, v);
                }
                r
            }
            Err(e) => web::error(StatusCode::SERVICE_UNAVAILABLE, &e.0),
        }
    }

    /// Writes the acknowledged orders (the write-behind defect); kept for the next
    /// flush if the store refuses.
    async fn flush(&self) {
        let batch: Vec<Order> = self.pending.lock().await.clone();
        if batch.is_empty() {
            return;
        }
        match self.store.insert_all(batch.clone()).await {
            Ok(()) => {
                let mut pending = self.pending.lock().await;
                pending.retain(|o| !batch.iter().any(|b| b.id == o.id));
            }
            Err(e) => eprintln!("flush of {} order(s) failed, will retry: {e}", batch.len()),
        }
    }
}

enum Route {
    Health,
    OpenApi,
    Orders,
    Order(String),
}

/// Why a new order's body was refused (the 400 answer's message).
#[derive(Debug, thiserror::Error)]
enum OrderError {
    #[error("the body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the body must be a JSON object")]
    NotObject,
    #[error("unknown field `{0}`: an order has `item` and `qty`")]
    UnknownField(String),
    #[error("`item` must be a string")]
    ItemNotString,
    #[error("`item` must have 1 to 200 characters")]
    ItemLength,
    #[error("`item` must not contain NUL characters")]
    ItemNul,
    #[error("`qty` must be a whole number from 1 to 1000")]
    Qty,
}

/// `{"item": non-empty string up to 200 characters, "qty": 1..=1000}`.
fn parse_new_order(body: &[u8]) -> Result<(String, i32), OrderError> {
    let v: Value = serde_json::from_slice(body).map_err(OrderError::NotJson)?;
    let obj = v.as_object().ok_or(OrderError::NotObject)?;
    if let Some(k) = obj.keys().find(|k| *k != "item" && *k != "qty") {
        return Err(OrderError::UnknownField(k.clone()));
    }
    let item = obj
        .get("item")
        .and_then(Value::as_str)
        .ok_or(OrderError::ItemNotString)?;
    if item.trim().is_empty() || item.chars().count() > 200 {
        return Err(OrderError::ItemLength);
    }
    if item.contains('\0') {
        return Err(OrderError::ItemNul);
    }
    let qty = obj
        .get("qty")
        .and_then(Value::as_i64)
        .filter(|q| (1..=1000).contains(q))
        .ok_or(OrderError::Qty)?;
    Ok((item.to_owned(), qty as i32))
}

/// `a=1&b=x%20y` as decoded pairs.
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).replace('\0', "")
}

/// The OpenAPI 3 document of the orders API.
pub fn openapi() -> Value {
    let error = json!({ "$ref": "#/components/schemas/Error" });
    let err = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": error } } });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "livefire sandbox orders API",
            "version": "1.0.0",
            "description": "The demo service of `livefire sandbox`: orders stored in PostgreSQL (or SQLite), each request authorized by a separate token service."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Order": {
                    "type": "object",
                    "required": ["id", "owner", "item", "qty"],
                    "properties": {
                        "id": { "type": "integer", "format": "int64", "minimum": 1 },
                        "owner": { "type": "string" },
                        "item": { "type": "string", "minLength": 1, "maxLength": 200 },
                        "qty": { "type": "integer", "minimum": 1, "maximum": 1000 }
                    }
                },
                "NewOrder": {
                    "type": "object",
                    "required": ["item", "qty"],
                    "additionalProperties": false,
                    "properties": {
                        "item": { "type": "string", "minLength": 1, "maxLength": 200 },
                        "qty": { "type": "integer", "minimum": 1, "maximum": 1000 }
                    }
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": { "type": "string" } }
                }
            }
        },
        "security": [ { "bearer": [] } ],
        "paths": {
            "/health": {
                "get": {
                    "operationId": "health",
                    "security": [],
                    "responses": {
                        "200": { "description": "the service and its store answer",
                                 "content": { "application/json": { "schema": { "type": "object", "required": ["status"], "properties": { "status": { "type": "string" }, "store": { "type": "string" } } } } } },
                        "503": { "description": "the store does not answer",
                                 "content": { "application/json": { "schema": { "type": "object", "required": ["status"], "properties": { "status": { "type": "string" }, "store": { "type": "string" }, "error": { "type": "string" } } } } } }
                    }
                }
            },
            "/orders": {
                "get": {
                    "operationId": "listOrders",
                    "parameters": [
                        { "name": "search", "in": "query", "required": false, "schema": { "type": "string" } },
                        { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 100 } }
                    ],
                    "responses": {
                        "200": { "description": "the caller's orders, newest first",
                                 "content": { "application/json": { "schema": { "type": "object", "required": ["items"], "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Order" } } } } } } },
                        "400": err("a bad parameter"),
                        "401": err("no valid bearer token"),
                        "503": err("the store or the token service is unavailable")
                    }
                },
                "post": {
                    "operationId": "createOrder",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewOrder" } } } },
                    "responses": {
                        "201": { "description": "the order, written",
                                 "headers": { "Location": { "schema": { "type": "string" } } },
                                 "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Order" } } } },
                        "400": err("the body is not a valid order"),
                        "401": err("no valid bearer token"),
                        "413": err("the body is too large"),
                        "503": err("the store or the token service is unavailable")
                    }
                }
            },
            "/orders/{id}": {
                "get": {
                    "operationId": "getOrder",
                    "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "format": "int64" } } ],
                    "responses": {
                        "200": { "description": "the order", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Order" } } } },
                        "400": err("the id is not a whole number"),
                        "401": err("no valid bearer token"),
                        "404": err("no such order of the caller's"),
                        "503": err("the store or the token service is unavailable")
                    }
                }
            }
        }
    })
}
