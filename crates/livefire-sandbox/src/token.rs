//! `livefire sandbox token`: the token service the orders API asks, for every request,
//! who the bearer of a token is. It is a process of its own so that the link to it can
//! be degraded (a livefire proxy in between) or cut (the process killed).

use std::collections::HashMap;
use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;

use crate::web::{self, Req};

/// Serves `GET /verify` (header `Authorization: Bearer TOKEN` → 200 `{"user": NAME}`
/// or 401) and `GET /health` on `listen`, forever. `tokens` are (user, token) pairs.
pub async fn serve(listen: &str, tokens: Vec<(String, String)>) -> std::io::Result<()> {
    let listener = web::bind(listen).await?;
    let by_token: Arc<HashMap<String, String>> =
        Arc::new(tokens.into_iter().map(|(u, t)| (t, u)).collect());
    println!("token service listening on {listen}");
    web::serve(
        listener,
        Arc::new(move |req: Req| {
            let by_token = by_token.clone();
            async move { answer(&by_token, &req) }
        }),
    )
    .await;
    Ok(())
}

fn answer(by_token: &HashMap<String, String>, req: &Req) -> hyper::Response<web::Body> {
    match req.path.as_str() {
        "/health" => web::json(StatusCode::OK, &json!({ "status": "ok" })),
        "/verify" => {
            let token = req
                .headers
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            match token.and_then(|t| by_token.get(t)) {
                Some(user) => web::json(StatusCode::OK, &json!({ "user": user })),
                None => web::error(StatusCode::UNAUTHORIZED, "invalid or missing bearer token"),
            }
        }
        _ => web::error(StatusCode::NOT_FOUND, "no such endpoint: try GET /verify"),
    }
}

/// A `--token` that is not `USER=TOKEN`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not USER=TOKEN")]
pub struct TokenError(String);

/// Parses `USER=TOKEN`.
pub fn parse_token(s: &str) -> Result<(String, String), TokenError> {
    match s.split_once('=') {
        Some((u, t)) if !u.is_empty() && !t.is_empty() => Ok((u.to_owned(), t.to_owned())),
        _ => Err(TokenError(s.to_owned())),
    }
}
