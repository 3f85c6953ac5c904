//! A small HTTP/1.1 client over hyper's connection API: one keep-alive connection per
//! worker, every exchange bounded in time and body size, so garbage, huge or slow-drip
//! answers end as an `Outcome` and never hurt the fuzzer.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Where requests go: `http://host:port/base`.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// The `Host` header value.
    pub authority: String,
    /// Path prefix from the base URL, without a trailing slash (`""` or `/api`).
    pub base_path: String,
    /// Values that reproducers name by environment variable instead of printing them
    /// (`FuzzConfig::secrets`).
    pub secrets: Vec<(String, String)>,
}

/// A base URL the fuzzer cannot send to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    #[error(
        "base URL {0:?} must start with http:// (https is not supported yet); write it like http://127.0.0.1:8080"
    )]
    NotHttp(String),
    #[error("base URL {0:?} has no host; write it like http://127.0.0.1:8080")]
    NoHost(String),
    #[error("bad IPv6 host in {0:?}")]
    Ipv6(String),
    #[error("bad port in base URL {0:?}")]
    Port(String),
}

impl Target {
    /// Parses `http://host[:port][/base]`; only plain HTTP is supported.
    pub fn from_base_url(url: &str) -> Result<Target, BaseUrlError> {
        let Some(rest) = url.strip_prefix("http://") else {
            return Err(BaseUrlError::NotHttp(url.to_owned()));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.starts_with(':') {
            return Err(BaseUrlError::NoHost(url.to_owned()));
        }
        let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
            let (h, p) = stripped
                .split_once(']')
                .ok_or_else(|| BaseUrlError::Ipv6(url.to_owned()))?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (authority.to_string(), ""),
            }
        };
        let port = if port.is_empty() {
            80
        } else {
            port.parse()
                .map_err(|_| BaseUrlError::Port(url.to_owned()))?
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        Ok(Target {
            host,
            port,
            authority: authority.to_string(),
            base_path: path.trim_end_matches('/').to_string(),
            secrets: Vec::new(),
        })
    }

    /// `http://authority` + base path, for reproducers.
    pub fn url_prefix(&self) -> String {
        format!("http://{}{}", self.authority, self.base_path)
    }
}

/// A request ready to send; `path_and_query` already includes the base path.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub method: http::Method,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// An answer, with its body cut at the size cap.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub truncated: bool,
    pub latency: Duration,
}

impl Response {
    pub fn content_type(&self) -> Option<String> {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why an exchange produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// Nothing listens (connection refused).
    Refused,
    /// The connection was reset or closed before a complete answer.
    Closed,
    /// No complete answer within the response timeout.
    Timeout,
    /// The bytes that came back are not HTTP.
    Protocol,
    /// Any other I/O error.
    Io,
}

impl fmt::Display for FailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailKind::Refused => "connection refused",
            FailKind::Closed => "connection closed before a complete answer",
            FailKind::Timeout => "no complete answer within the response timeout",
            FailKind::Protocol => "the answer is not valid HTTP",
            FailKind::Io => "I/O error",
        })
    }
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Response(Response),
    Failed { error: FailKind, latency: Duration },
}

impl Outcome {
    pub fn latency(&self) -> Duration {
        match self {
            Outcome::Response(r) => r.latency,
            Outcome::Failed { latency, .. } => *latency,
        }
    }
}

/// One keep-alive connection to the target, reopened as needed.
pub struct Client {
    target: Target,
    timeout: Duration,
    max_body: usize,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .finish()
    }
}

impl Client {
    pub fn new(target: Target, timeout: Duration, max_body: usize) -> Client {
        Client {
            target,
            timeout,
            max_body,
            conn: None,
        }
    }

    /// Drops the current connection so the next request opens a fresh one.
    pub fn reset(&mut self) {
        self.conn = None;
    }

    pub async fn send(&mut self, req: &Prepared) -> Outcome {
        let start = Instant::now();
        let result = tokio::time::timeout(self.timeout, self.exchange(req, start)).await;
        match result {
            Ok(Ok(resp)) => Outcome::Response(resp),
            Ok(Err(error)) => {
                self.conn = None;
                Outcome::Failed {
                    error,
                    latency: start.elapsed(),
                }
            }
            Err(_) => {
                self.conn = None;
                Outcome::Failed {
                    error: FailKind::Timeout,
                    latency: start.elapsed(),
                }
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, FailKind> {
        let stream = tokio::net::TcpStream::connect((self.target.host.as_str(), self.target.port))
            .await
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::ConnectionRefused {
                    FailKind::Refused
                } else {
                    FailKind::Io
                }
            })?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| FailKind::Io)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn exchange(&mut self, req: &Prepared, start: Instant) -> Result<Response, FailKind> {
        let mut sender = match self.conn.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.connect().await?,
        };
        if sender.ready().await.is_err() {
            sender = self.connect().await?;
            sender.ready().await.map_err(|_| FailKind::Closed)?;
        }
        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(req.path_and_query.as_str());
        builder = builder.header(http::header::HOST, self.target.authority.as_str());
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|_| FailKind::Io)?;
        let response = sender.send_request(request).await.map_err(classify)?;
        let (parts, mut body) = response.into_parts();
        let mut buf = BytesMut::new();
        let mut truncated = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(classify)?;
            if let Ok(data) = frame.into_data() {
                let room = self.max_body.saturating_sub(buf.len());
                if data.len() > room {
                    buf.extend_from_slice(&data[..room]);
                    truncated = true;
                    break;
                }
                buf.extend_from_slice(&data);
            }
        }
        if !truncated {
            self.conn = Some(sender);
        }
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: buf.freeze(),
            truncated,
            latency: start.elapsed(),
        })
    }
}

fn classify(e: hyper::Error) -> FailKind {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        return FailKind::Protocol;
    }
    if e.is_timeout() {
        return FailKind::Timeout;
    }
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return FailKind::Closed;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => FailKind::Closed,
                _ => FailKind::Io,
            };
        }
        source = s.source();
    }
    FailKind::Io
}
