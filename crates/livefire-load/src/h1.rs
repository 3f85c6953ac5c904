//! A lean HTTP/1.1 client connection: one request at a time on a kept-alive stream, the
//! request head written in one call, the response parsed in place with httparse
//! (Content-Length, chunked, or until close). It exists because the benchmark showed
//! hyper's connection task (a second task and two cross-task wake-ups per request)
//! costing a large share of the generator's CPU; HTTP/2 stays on hyper.

use std::io;

use bytes::{Buf, BytesMut};
use livefire_core::window::Outcome;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::client::classify_io;

/// Any byte stream a connection runs on (TCP, TLS over TCP).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The stream under a connection. Plain TCP is kept concrete so the client can tell
/// tokio a drained socket is not readable (see `forget_read_readiness`).
pub enum Io {
    Tcp(tokio::net::TcpStream),
    Other(Box<dyn Stream>),
}

impl Io {
    async fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Io::Tcp(t) => t.write_all(b).await,
            Io::Other(o) => o.write_all(b).await,
        }
    }

    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Io::Tcp(t) => t.read_buf(buf).await,
            Io::Other(o) => o.read_buf(buf).await,
        }
    }

    /// After a short read drained the socket, tokio still holds it as readable, so the
    /// next response would start with a read that fails with WouldBlock: one wasted
    /// system call per request. Clearing the readiness here saves it; tokio only clears
    /// it if no new readiness event arrived since, so no wake-up is lost.
    fn forget_read_readiness(&mut self) {
        if let Io::Tcp(t) = self {
            let _ = t.try_io(tokio::io::Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
    }
}

/// One kept-alive HTTP/1.1 connection.
pub struct Conn {
    io: Io,
    buf: BytesMut,
    /// The last read left room in the buffer: the socket was drained then.
    drained: bool,
    head: Vec<u8>,
    /// The server asked to close, or the response ended with the connection.
    pub closed: bool,
    /// The last request failed before any byte of its answer on a connection that had
    /// already served one: the server closed it while idle.
    pub stale: bool,
    served: u64,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("closed", &self.closed)
            .finish()
    }
}

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

enum BodyLen {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Conn {
    pub fn new(io: Io) -> Conn {
        Conn {
            io,
            drained: false,
            // Allocated by the first read (see `fill`).
            buf: BytesMut::new(),
            head: Vec::with_capacity(512),
            closed: false,
            stale: false,
            served: 0,
        }
    }

    /// Sends a request and reads the whole response. Returns the status and, when
    /// `want_body`, the body (de-chunked).
    #[allow(clippy::too_many_arguments)]
    pub async fn round_trip(
        &mut self,
        method: &http::Method,
        path: &str,
        host: &str,
        headers: &http::HeaderMap,
        body: &[u8],
        want_body: bool,
        out_body: &mut Vec<u8>,
    ) -> Result<u16, Outcome> {
        self.stale = false;
        self.head.clear();
        let h = &mut self.head;
        h.extend_from_slice(method.as_str().as_bytes());
        h.push(b' ');
        h.extend_from_slice(path.as_bytes());
        h.extend_from_slice(b" HTTP/1.1\r\n");
        if !headers.contains_key(http::header::HOST) {
            h.extend_from_slice(b"host: ");
            h.extend_from_slice(host.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        for (name, value) in headers {
            h.extend_from_slice(name.as_str().as_bytes());
            h.extend_from_slice(b": ");
            h.extend_from_slice(value.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        if !body.is_empty()
            || method == http::Method::POST
            || method == http::Method::PUT
            || method == http::Method::PATCH
        {
            h.extend_from_slice(b"content-length: ");
            h.extend_from_slice(itoa(body.len()).as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        h.extend_from_slice(b"\r\n");
        if body.len() <= 4096 {
            h.extend_from_slice(body);
            self.io
                .write_all(&self.head)
                .await
                .map_err(|e| self.fail(&e))?;
        } else {
            self.io
                .write_all(&self.head)
                .await
                .map_err(|e| self.fail(&e))?;
            self.io.write_all(body).await.map_err(|e| self.fail(&e))?;
        }
        out_body.clear();
        loop {
            let (status, len, head_len) = self.read_head(method).await?;
            self.buf.advance(head_len);
            if (100..200).contains(&status) && status != 101 {
                continue; // 100 Continue and friends: the real answer follows
            }
            self.read_body(len, want_body, out_body).await?;
            self.served += 1;
            if self.drained && self.buf.is_empty() {
                self.io.forget_read_readiness();
            }
            if self.buf.is_empty() {
                // An idle connection keeps no read buffer: a closed-model VU thinking
                // between requests would hold 8 KiB for nothing, 800 MB for 100,000
                // connections. The next response's first read allocates it again.
                self.buf = BytesMut::new();
            }
            return Ok(status);
        }
    }

    fn fail(&mut self, e: &io::Error) -> Outcome {
        self.closed = true;
        classify_io(e)
    }

    async fn fill(&mut self) -> Result<usize, Outcome> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8 * 1024);
        }
        let room = self.buf.capacity() - self.buf.len();
        let n = match self.io.read_buf(&mut self.buf).await {
            Ok(n) => n,
            Err(e) => return Err(self.fail(&e)),
        };
        self.drained = n < room;
        Ok(n)
    }

    async fn read_head(&mut self, method: &http::Method) -> Result<(u16, BodyLen, usize), Outcome> {
        loop {
            if !self.buf.is_empty() {
                let mut hdrs = [httparse::EMPTY_HEADER; 64];
                let mut resp = httparse::Response::new(&mut hdrs);
                match resp.parse(&self.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let status = resp.code.unwrap_or(0);
                        let mut len = BodyLen::UntilClose;
                        let mut close = resp.version == Some(0);
                        for h in resp.headers.iter() {
                            if h.name.eq_ignore_ascii_case("content-length") {
                                let v = std::str::from_utf8(h.value)
                                    .ok()
                                    .and_then(|s| s.trim().parse().ok());
                                match v {
                                    Some(v) => len = BodyLen::Length(v),
                                    None => {
                                        self.closed = true;
                                        return Err(Outcome::Other);
                                    }
                                }
                            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                                if h.value
                                    .windows(7)
                                    .any(|w| w.eq_ignore_ascii_case(b"chunked"))
                                {
                                    len = BodyLen::Chunked;
                                }
                            } else if h.name.eq_ignore_ascii_case("connection") {
                                if h.value.windows(5).any(|w| w.eq_ignore_ascii_case(b"close")) {
                                    close = true;
                                } else if h
                                    .value
                                    .windows(10)
                                    .any(|w| w.eq_ignore_ascii_case(b"keep-alive"))
                                {
                                    close = false;
                                }
                            }
                        }
                        if *method == http::Method::HEAD
                            || status == 204
                            || status == 304
                            || (100..200).contains(&status)
                        {
                            len = BodyLen::None;
                        }
                        if close || matches!(len, BodyLen::UntilClose) {
                            self.closed = true;
                        }
                        return Ok((status, len, n));
                    }
                    Ok(httparse::Status::Partial) => {
                        if self.buf.len() > MAX_HEAD {
                            self.closed = true;
                            return Err(Outcome::Other);
                        }
                    }
                    Err(_) => {
                        self.closed = true;
                        return Err(Outcome::Other);
                    }
                }
            }
            let got = self.fill().await;
            if matches!(got, Ok(0) | Err(Outcome::Reset)) && self.buf.is_empty() && self.served > 0
            {
                self.stale = true;
            }
            if got? == 0 {
                self.closed = true;
                return Err(Outcome::Reset);
            }
        }
    }

    async fn read_body(
        &mut self,
        len: BodyLen,
        want: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Outcome> {
        match len {
            BodyLen::None => Ok(()),
            BodyLen::Length(left) => self.read_len(left, want, out).await,
            BodyLen::UntilClose => loop {
                if want {
                    out.extend_from_slice(&self.buf);
                }
                self.buf.clear();
                if self.fill().await? == 0 {
                    return Ok(());
                }
            },
            BodyLen::Chunked => loop {
                // chunk-size [; ext] CRLF data CRLF ... 0 CRLF [trailers] CRLF
                let size = loop {
                    if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        let line = &self.buf[..pos];
                        let hex = line.split(|b| *b == b';').next().unwrap_or(b"");
                        let s = std::str::from_utf8(hex).ok().map(str::trim).unwrap_or("");
                        let Ok(size) = u64::from_str_radix(s, 16) else {
                            self.closed = true;
                            return Err(Outcome::Other);
                        };
                        self.buf.advance(pos + 2);
                        break size;
                    }
                    if self.buf.len() > MAX_HEAD {
                        self.closed = true;
                        return Err(Outcome::Other);
                    }
                    if self.fill().await? == 0 {
                        self.closed = true;
                        return Err(Outcome::Reset);
                    }
                };
                if size == 0 {
                    // Trailers, if any, end with an empty line.
                    loop {
                        if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                            let empty = pos == 0;
                            self.buf.advance(pos + 2);
                            if empty {
                                return Ok(());
                            }
                            continue;
                        }
                        if self.fill().await? == 0 {
                            self.closed = true;
                            return Err(Outcome::Reset);
                        }
                    }
                }
                self.read_len(size, want, out).await?;
                while self.buf.len() < 2 {
                    if self.fill().await? == 0 {
                        self.closed = true;
                        return Err(Outcome::Reset);
                    }
                }
                if &self.buf[..2] != b"\r\n" {
                    self.closed = true;
                    return Err(Outcome::Other);
                }
                self.buf.advance(2);
            },
        }
    }
}

impl Conn {
    async fn read_len(
        &mut self,
        mut left: u64,
        want: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Outcome> {
        loop {
            let take = (self.buf.len() as u64).min(left) as usize;
            if want {
                out.extend_from_slice(&self.buf[..take]);
            }
            self.buf.advance(take);
            left -= take as u64;
            if left == 0 {
                return Ok(());
            }
            if self.fill().await? == 0 {
                self.closed = true;
                return Err(Outcome::Reset);
            }
        }
    }
}

fn itoa(n: usize) -> String {
    n.to_string()
}
