//! L7 faults on plain HTTP/1.1: finding request boundaries in the client-to-server byte
//! stream (heads, Content-Length and chunked bodies), matching requests, and building
//! the answer `http.abort` sends in place of the upstream.

use bytes::{Bytes, BytesMut};

/// Request heads larger than this are not parsed: the stream passes through untouched.
const MAX_HEAD: usize = 64 * 1024;

/// Which requests an HTTP toxic acts on, and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpMatch {
    /// Exact method (`GET`); empty = any.
    pub method: String,
    /// Prefix of the request target (`/api/orders`); empty = any.
    pub path_prefix: String,
    /// `Name: value` (value compared exactly, name case-insensitively) or `Name`
    /// (present with any value); empty = any.
    pub header: String,
    /// Share of matching requests acted on, 0.0 to 1.0.
    pub rate: f64,
    /// Act only on the first N matching requests through the proxy (all connections);
    /// 0 = no limit.
    pub first: u64,
}

impl Default for HttpMatch {
    fn default() -> HttpMatch {
        HttpMatch {
            method: String::new(),
            path_prefix: String::new(),
            header: String::new(),
            rate: 1.0,
            first: 0,
        }
    }
}

impl HttpMatch {
    pub(crate) fn matches(&self, head: &RequestHead) -> bool {
        if !self.method.is_empty() && head.method != self.method {
            return false;
        }
        if !self.path_prefix.is_empty() && !head.path.starts_with(&self.path_prefix) {
            return false;
        }
        if !self.header.is_empty() {
            let (name, value) = match self.header.split_once(':') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (self.header.trim(), None),
            };
            let found = head.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case(name) && value.is_none_or(|want| v.trim() == want)
            });
            if !found {
                return false;
            }
        }
        true
    }
}

/// A parsed request head, with its raw bytes to pass on unchanged.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) raw: Bytes,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    /// The client asked to close after this request (HTTP/1.0 or `Connection: close`).
    pub(crate) close: bool,
}

/// What the parser found at the front of the bytes it was given.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// A complete request head.
    Head(RequestHead),
    /// Body (or unparsed) bytes of the current request.
    Body(Bytes),
    /// Everything given was buffered as part of an incomplete head.
    NeedMore,
}

#[derive(Debug)]
enum State {
    Head,
    /// `n` body bytes remain.
    Body(u64),
    /// Chunked body: inside a chunk-size line (buffered in `line`).
    ChunkSize,
    /// Chunked body: `n` bytes of chunk data, then its CRLF.
    ChunkData(u64),
    /// Chunked body: trailer lines until an empty one.
    Trailer,
    /// Not HTTP we understand (oversized head, upgrade, CONNECT): pass everything.
    Opaque,
}

/// Splits one direction's byte stream into request heads and bodies.
#[derive(Debug)]
pub(crate) struct RequestParser {
    state: State,
    head: BytesMut,
    line: Vec<u8>,
}

impl Default for RequestParser {
    fn default() -> RequestParser {
        RequestParser {
            state: State::Head,
            head: BytesMut::new(),
            line: Vec::new(),
        }
    }
}

impl RequestParser {
    /// Bytes held back as an incomplete head; to be passed on if the toxic goes away.
    pub(crate) fn take_buffered(&mut self) -> Bytes {
        std::mem::take(&mut self.head).freeze()
    }

    /// Consumes a prefix of `data` and says what it was.
    pub(crate) fn next(&mut self, data: &mut Bytes) -> Parsed {
        match self.state {
            State::Opaque => Parsed::Body(std::mem::take(data)),
            State::Body(n) => {
                let take = (data.len() as u64).min(n) as usize;
                self.state = if n - take as u64 == 0 {
                    State::Head
                } else {
                    State::Body(n - take as u64)
                };
                Parsed::Body(data.split_to(take))
            }
            State::ChunkData(n) => {
                // Chunk data plus its CRLF (counted in n by `chunk_line`).
                let take = (data.len() as u64).min(n) as usize;
                self.state = if n - take as u64 == 0 {
                    State::ChunkSize
                } else {
                    State::ChunkData(n - take as u64)
                };
                Parsed::Body(data.split_to(take))
            }
            State::ChunkSize | State::Trailer => {
                let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                    self.line.extend_from_slice(data);
                    if self.line.len() > MAX_HEAD {
                        self.state = State::Opaque;
                    }
                    return Parsed::Body(std::mem::take(data));
                };
                let part = data.split_to(nl + 1);
                self.line.extend_from_slice(&part);
                let line = std::mem::take(&mut self.line);
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\r', '\n']);
                self.state = match self.state {
                    State::Trailer if text.is_empty() => State::Head,
                    State::Trailer => State::Trailer,
                    _ => {
                        let hex = text.split(';').next().unwrap_or("").trim();
                        match u64::from_str_radix(hex, 16) {
                            Ok(0) => State::Trailer,
                            Ok(n) => State::ChunkData(n.saturating_add(2)),
                            Err(_) => State::Opaque,
                        }
                    }
                };
                Parsed::Body(part)
            }
            State::Head => self.head(data),
        }
    }

    fn head(&mut self, data: &mut Bytes) -> Parsed {
        // Look for the end of the head across what is buffered and what arrived.
        let start = self.head.len().saturating_sub(3);
        self.head.extend_from_slice(data);
        let end = self.head[start..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| start + i + 4);
        let Some(end) = end else {
            data.clear();
            if self.head.len() > MAX_HEAD {
                self.state = State::Opaque;
                return Parsed::Body(self.head.split().freeze());
            }
            return Parsed::NeedMore;
        };
        // Give back what followed the head.
        let extra = self.head.len() - end;
        *data = data.slice(data.len() - extra..);
        let raw = self.head.split_to(end).freeze();
        self.head.clear();

        let mut headers = [httparse::EMPTY_HEADER; 96];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&raw) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => {
                self.state = State::Opaque;
                return Parsed::Body(raw);
            }
        }
        let method = req.method.unwrap_or("").to_string();
        let path = req.path.unwrap_or("").to_string();
        let version = req.version.unwrap_or(1);
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let chunked =
            get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = get("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        let conn = get("connection")
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let close = conn.contains("close") || (version == 0 && !conn.contains("keep-alive"));
        self.state = if method == "CONNECT" || get("upgrade").is_some() {
            State::Opaque
        } else if chunked {
            State::ChunkSize
        } else {
            match length {
                Some(n) if n > 0 => State::Body(n),
                _ => State::Head,
            }
        };
        Parsed::Head(RequestHead {
            raw,
            method,
            path,
            headers,
            close,
        })
    }
}

/// The response `http.abort` sends instead of the upstream's.
pub(crate) fn abort_response(status: u16, body: &str, close: bool) -> Bytes {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Fault");
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nx-livefire-fault: http.abort\r\n",
        body.len()
    );
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    Bytes::from(out)
}

/// Drains everything a parser would produce from `data`, for tests.
#[cfg(test)]
fn parse_all(p: &mut RequestParser, mut data: Bytes) -> Vec<String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        match p.next(&mut data) {
            Parsed::Head(h) => out.push(format!("HEAD {} {}", h.method, h.path)),
            Parsed::Body(b) => out.push(format!("BODY {}", String::from_utf8_lossy(&b))),
            Parsed::NeedMore => out.push("MORE".into()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_heads_bodies_and_chunks_split_anywhere() {
        let stream = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /d HTTP/1.1\r\n\r\n";
        let whole = {
            let mut p = RequestParser::default();
            parse_all(&mut p, Bytes::from_static(stream))
        };
        let heads: Vec<_> = whole
            .iter()
            .filter(|l| l.starts_with("HEAD"))
            .cloned()
            .collect();
        assert_eq!(
            heads,
            ["HEAD POST /a", "HEAD GET /b", "HEAD POST /c", "HEAD GET /d"]
        );
        // The same stream cut at every byte gives the same heads.
        for cut in 1..stream.len() {
            let mut p = RequestParser::default();
            let mut got = parse_all(&mut p, Bytes::copy_from_slice(&stream[..cut]));
            got.extend(parse_all(&mut p, Bytes::copy_from_slice(&stream[cut..])));
            let h: Vec<_> = got
                .iter()
                .filter(|l| l.starts_with("HEAD"))
                .cloned()
                .collect();
            assert_eq!(h, heads, "cut at {cut}");
        }
    }

    #[test]
    fn matching_by_method_path_and_header() {
        let mut p = RequestParser::default();
        let mut data = Bytes::from_static(b"GET /api/x HTTP/1.1\r\nX-Tenant: blue\r\n\r\n");
        let Parsed::Head(h) = p.next(&mut data) else {
            panic!("no head")
        };
        let m = |method: &str, path: &str, header: &str| HttpMatch {
            method: method.into(),
            path_prefix: path.into(),
            header: header.into(),
            ..HttpMatch::default()
        };
        assert!(m("", "", "").matches(&h));
        assert!(m("GET", "/api", "x-tenant: blue").matches(&h));
        assert!(m("", "", "X-Tenant").matches(&h));
        assert!(!m("POST", "", "").matches(&h));
        assert!(!m("", "/other", "").matches(&h));
        assert!(!m("", "", "X-Tenant: red").matches(&h));
    }

    #[test]
    fn garbage_and_huge_heads_pass_through() {
        let mut p = RequestParser::default();
        let out = parse_all(&mut p, Bytes::from_static(b"\x00\x01 not http\r\n\r\nmore"));
        assert_eq!(
            out.concat().replace("BODY ", ""),
            "\u{0}\u{1} not http\r\n\r\nmore"
        );
        let mut p = RequestParser::default();
        let big = vec![b'a'; MAX_HEAD + 10];
        let out = parse_all(&mut p, Bytes::from(big));
        assert!(out.iter().all(|l| l.starts_with("BODY")));
    }
}
