//! Test support: a small HTTP/1.1 keep-alive server the fuzzer tests aim at.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Header names lower-cased, in the order sent.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers: a status, after a wait, with a body of a content type.
pub struct Reply {
    pub status: u16,
    pub wait: Duration,
    pub content_type: &'static str,
    pub body: String,
}

/// Serves HTTP/1.1 with keep-alive; `answer` gives, from each request's method and path,
/// its status and how long to wait before answering (a two-byte `ok` body).
pub async fn serve(listener: TcpListener, answer: fn(&str, &str) -> (u16, Duration)) {
    serve_with(listener, move |seen: &Seen| {
        let (status, wait) = answer(&seen.method, &seen.path);
        Reply {
            status,
            wait,
            content_type: "text/plain",
            body: "ok".into(),
        }
    })
    .await
}

/// Serves HTTP/1.1 with keep-alive, answering each request as `answer` says from all
/// of it but its body (which it reads and drops).
pub async fn serve_with(
    listener: TcpListener,
    answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) {
    let answer = std::sync::Arc::new(answer);
    while let Ok((mut sock, _)) = listener.accept().await {
        let answer = answer.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let headers: Vec<(String, String)> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    })
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..head_end + length);
                let mut words = head.split_whitespace();
                let seen = Seen {
                    method: words.next().unwrap_or("").to_owned(),
                    path: words.next().unwrap_or("").to_owned(),
                    headers,
                };
                let reply = answer(&seen);
                if !reply.wait.is_zero() {
                    tokio::time::sleep(reply.wait).await;
                }
                let out = format!(
                    "HTTP/1.1 {} X\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n{}",
                    reply.status,
                    reply.content_type,
                    reply.body.len(),
                    reply.body
                );
                if sock.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}
