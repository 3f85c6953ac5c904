//! Local upstream servers and small client helpers for the tests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use livefire_proxy::{Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server: writes back what it reads, half-closes after the client does.
pub async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A server that sends `payload` to each client, then closes.
pub async fn source_server(payload: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let p = payload.clone();
            tokio::spawn(async move {
                let _ = s.write_all(&p).await;
                let _ = s.shutdown().await;
                // Keep the socket until the client is done, so the close is ours.
                let mut sink = [0u8; 1024];
                while let Ok(n) = s.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// A server that records how many bytes each connection sent it, reported on `tx`
/// when the connection ends.
pub async fn sink_server() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut total = 0;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    total += n;
                }
                let _ = tx.send(total);
            });
        }
    });
    (addr, rx)
}

pub async fn proxy_to(upstream: SocketAddr) -> Proxy {
    Proxy::start(ProxyConfig::new(
        "test",
        "127.0.0.1:0",
        upstream.to_string(),
    ))
    .await
    .unwrap()
}

pub async fn connect(p: &Proxy) -> TcpStream {
    let s = TcpStream::connect(p.listen()).await.unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `msg` and reads the same number of bytes back; returns the time it took.
pub async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let t = Instant::now();
    s.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut back))
        .await
        .expect("round trip timed out")
        .unwrap();
    assert_eq!(back, msg);
    t.elapsed()
}

/// Reads until EOF or error, with a generous cap; returns the bytes and how it ended.
pub async fn read_to_end(s: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("read did not end within 20s");
    (out, r.map(|_| ()))
}

/// Starts the admin API exactly as `livefire proxy` does, on an ephemeral port.
/// The server stops when the returned token is dropped... or cancelled.
pub async fn api_server() -> (SocketAddr, tokio_util::sync::DropGuard) {
    let cancel = tokio_util::sync::CancellationToken::new();
    let args = livefire_proxy::ProxyArgs {
        host: "127.0.0.1".into(),
        port: 0,
        config: None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let c = cancel.clone();
    tokio::spawn(async move {
        livefire_proxy::server::run_until(&args, c, move |a| {
            let _ = tx.send(a);
        })
        .await
        .unwrap();
    });
    (rx.await.unwrap(), cancel.drop_guard())
}

/// One HTTP/1.1 request with `Connection: close`; returns status and body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    http_with(addr, method, path, body, "livefire-tests").await
}

pub async fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    user_agent: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: {user_agent}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}
