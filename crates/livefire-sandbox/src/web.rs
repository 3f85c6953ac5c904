//! The HTTP plumbing the two sandbox services share: an HTTP/1.1 server loop on hyper,
//! JSON answers, and a one-shot client with a time limit.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// The body of every answer.
pub type Body = Full<Bytes>;

/// A request as the handlers see it: the body already read (up to 1 MiB).
#[derive(Debug)]
pub struct Req {
    pub method: hyper::Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: Result<Bytes, BodyError>,
}

/// A request body that could not be read (too large, or the connection broke).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(#[source] Box<dyn std::error::Error + Send + Sync>);

/// Binds `listen`, with a message that says what to do when the port is taken.
pub async fn bind(listen: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(listen).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {listen}: {e} (is the port in use? choose another)"),
        )
    })
}

/// Serves `handler` on every connection `listener` accepts, forever.
pub async fn serve<H, F>(listener: TcpListener, handler: Arc<H>)
where
    H: Fn(Req) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = Limited::new(body, 1 << 20)
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .map_err(BodyError);
                    let req = Req {
                        method: parts.method,
                        path: parts.uri.path().to_owned(),
                        query: parts.uri.query().map(str::to_owned),
                        headers: parts.headers,
                        body,
                    };
                    Ok::<_, Infallible>(handler(req).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A JSON answer.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"error": message}` with `status`.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

/// Why a one-shot request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("no answer from {0} within {1:?}")]
    Timeout(String, Duration),
    #[error("{0} broke the exchange: {1}")]
    Http(String, hyper::Error),
}

/// `GET path` on `addr` with `headers`, on a new connection, all within `limit`.
pub async fn get(
    addr: &str,
    path: &str,
    headers: &[(hyper::header::HeaderName, hyper::header::HeaderValue)],
    limit: Duration,
) -> Result<(StatusCode, Bytes), CallError> {
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| CallError::Connect(addr.to_owned(), e))?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CallError::Http(addr.to_owned(), e))?;
        tokio::spawn(conn);
        let mut req = Request::get(path).header(hyper::header::HOST, addr);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap_or_default();
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| CallError::Http(addr.to_owned(), e))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), 64 << 10)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| CallError::Timeout(addr.to_owned(), limit))?
}
