//! The lean HTTP/1.1 client against a raw TCP server that answers with exact bytes:
//! chunked bodies, `Connection: close`, bodies until close, idle closes, garbage.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use livefire_core::window::{Counts, Outcome, WindowStore};
use livefire_load::{Check, Executor, LoadConfig, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy)]
enum Mode {
    /// Chunked body with an extension and a trailer, kept alive.
    Chunked,
    /// Content-Length body and `Connection: close`, then close.
    Close,
    /// No length: the body ends when the server closes.
    UntilClose,
    /// Answers once, then closes the idle connection without a word.
    IdleClose,
    /// Not HTTP.
    Garbage,
    /// Accepts and closes at once.
    Hangup,
}

async fn raw_server(mode: Mode) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", l.local_addr().unwrap());
    let conns = Arc::new(AtomicUsize::new(0));
    let c2 = conns.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            c2.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // Read one request head.
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let reply: &[u8] = match mode {
                        Mode::Chunked => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
                        Mode::Close => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                        Mode::UntilClose => b"HTTP/1.1 200 OK\r\n\r\nhello world",
                        Mode::IdleClose => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                        Mode::Garbage => b"SMTP ready\r\n\r\n",
                        Mode::Hangup => return,
                    };
                    if s.write_all(reply).await.is_err() {
                        return;
                    }
                    match mode {
                        Mode::Chunked => continue,
                        Mode::IdleClose => {
                            // Close a moment later, while the client thinks it is idle.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            return;
                        }
                        _ => return,
                    }
                }
            });
        }
    });
    (url, conns)
}

async fn load(url: &str, checks: Vec<Check>, vus: u32, dur_ms: u64) -> Counts {
    let ex = Executor::Vus {
        vus,
        stages: vec![],
        think: Duration::from_millis(20),
    };
    let mut cfg = LoadConfig::get("h1", url, ex, Duration::from_millis(dur_ms));
    cfg.requests[0].checks = checks;
    cfg.timeout = Duration::from_secs(2);
    run(
        cfg,
        Instant::now(),
        CancellationToken::new(),
        Arc::new(WindowStore::new()),
    )
    .await
    .unwrap()
    .total
    .counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_framings_are_read_whole() {
    let world = || vec![Check::BodyContains("hello world".into())];
    let (url, conns) = raw_server(Mode::Chunked).await;
    let c = load(&url, world(), 1, 300).await;
    assert!(
        c.get(Outcome::Ok) > 3 && c.get(Outcome::Ok) == c.total(),
        "{c:?}"
    );
    assert_eq!(
        conns.load(Ordering::SeqCst),
        1,
        "chunked answers keep the connection"
    );

    let (url, conns) = raw_server(Mode::Close).await;
    let c = load(&url, vec![Check::BodyContains("hello".into())], 1, 300).await;
    assert!(
        c.get(Outcome::Ok) > 3 && c.get(Outcome::Ok) == c.total(),
        "{c:?}"
    );
    assert_eq!(
        conns.load(Ordering::SeqCst) as u64,
        c.total(),
        "a new connection after each close"
    );

    let (url, _) = raw_server(Mode::UntilClose).await;
    let c = load(&url, world(), 1, 300).await;
    assert!(
        c.get(Outcome::Ok) > 3 && c.get(Outcome::Ok) == c.total(),
        "{c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_close_is_retried_not_counted_as_reset() {
    let (url, _) = raw_server(Mode::IdleClose).await;
    let c = load(&url, vec![], 2, 400).await;
    assert!(c.get(Outcome::Ok) > 5, "{c:?}");
    assert_eq!(c.get(Outcome::Ok), c.total(), "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_hangups_are_outcomes() {
    let (url, _) = raw_server(Mode::Garbage).await;
    let c = load(&url, vec![], 1, 200).await;
    assert!(
        c.get(Outcome::Other) > 0 && c.get(Outcome::Other) == c.total(),
        "{c:?}"
    );
    let (url, _) = raw_server(Mode::Hangup).await;
    let c = load(&url, vec![], 1, 200).await;
    assert!(
        c.get(Outcome::Reset) > 0 && c.get(Outcome::Reset) == c.total(),
        "{c:?}"
    );
}
