//! A test HTTP server: `/ok`, `/json`, `/status/N`, `/slow` (sleeps 2 s), `/echo` (body
//! and the `x-seq` header back), and every path stalls while a stall window is open.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

static CREATES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub struct Server {
    pub addr: SocketAddr,
    /// Connections accepted.
    pub conns: Arc<AtomicUsize>,
    /// Requests seen: "METHOD path-and-query body".
    pub seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

#[derive(Clone, Copy, Default)]
pub struct Opts {
    pub h2: bool,
    /// Every request arriving in `[from, until)` after start waits until `until`.
    pub stall: Option<(Duration, Duration)>,
}

pub async fn start(opts: Opts) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let began = Instant::now();
    let (c2, s2) = (conns.clone(), seen.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            c2.fetch_add(1, Ordering::SeqCst);
            let seen = s2.clone();
            let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                let seen = seen.clone();
                async move { Ok::<_, Infallible>(handle(req, seen, began, opts).await) }
            });
            let io = TokioIo::new(stream);
            tokio::spawn(async move {
                if opts.h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                }
            });
        }
    });
    Server {
        addr,
        conns,
        seen,
        task,
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    seen: Arc<Mutex<Vec<String>>>,
    began: Instant,
    opts: Opts,
) -> Response<Full<Bytes>> {
    if let Some((from, until)) = opts.stall {
        let t = began.elapsed();
        if t >= from && t < until {
            tokio::time::sleep_until((began + until).into()).await;
        }
    }
    let path = req.uri().path().to_string();
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let method = req.method().to_string();
    let xseq = req
        .headers()
        .get("x-seq")
        .map(|v| v.to_str().unwrap_or("").to_string());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    seen.lock()
        .unwrap()
        .push(format!("{method} {pq} {}", String::from_utf8_lossy(&body)));
    let resp = |status: u16, body: Bytes| {
        Response::builder()
            .status(status)
            .body(Full::new(body))
            .unwrap()
    };
    match path.as_str() {
        // A store that acknowledges creates, answers the 25th, 50th, 75th with the id
        // before (a duplicate), and "loses" every id divisible by 10.
        "/create" => {
            let n = CREATES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let id = if n.is_multiple_of(25) && n > 0 {
                n - 1
            } else {
                n
            };
            resp(201, Bytes::from(format!(r#"{{"id":{id}}}"#)))
        }
        p if p.starts_with("/item/") => {
            let id: u64 = p[6..].parse().unwrap_or(0);
            if id.is_multiple_of(10) {
                resp(404, Bytes::new())
            } else {
                resp(200, Bytes::from_static(b"{}"))
            }
        }
        "/json" => resp(200, Bytes::from_static(br#"{"items":[1,2],"id":7}"#)),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            resp(200, Bytes::from_static(b"slow"))
        }
        "/echo" => resp(
            200,
            Bytes::from(format!(
                "{}|{}",
                xseq.unwrap_or_default(),
                String::from_utf8_lossy(&body)
            )),
        ),
        p if p.starts_with("/status/") => {
            resp(p[8..].parse().unwrap_or(500), Bytes::from_static(b"status"))
        }
        _ => resp(200, Bytes::from_static(b"hello ok")),
    }
}
