//! The HTTP client: HTTP/1.1 with one kept-alive connection per worker, HTTP/2 (h2c or
//! TLS with ALPN) with one multiplexed connection per target shared by the workers, and
//! the mapping of every failure to an `Outcome` (a refused connection is a measurement).

use std::collections::HashMap;
use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use livefire_core::window::Outcome;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

use crate::config::HttpVersion;
use crate::h1;

/// Where a request goes: one connection (HTTP/1.1) or one multiplexed stream set
/// (HTTP/2) per key.
/// Why a URL cannot be sent to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("scheme `{0}` is not supported; use http:// or https://")]
    Scheme(String),
    #[error("the URL has no scheme; write it like http://127.0.0.1:8080/path")]
    NoScheme,
    #[error("the URL has no host; write it like http://127.0.0.1:8080/path")]
    NoHost,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

impl Key {
    /// The scheme, host and port of an absolute `http://` or `https://` URI.
    pub fn of(uri: &http::Uri) -> Result<Key, UrlError> {
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(UrlError::Scheme(other.to_owned())),
            None => return Err(UrlError::NoScheme),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(UrlError::NoHost)?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Key { https, host, port })
    }
}

/// A request ready to send: `uri` is absolute.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub key: Arc<Key>,
    pub method: http::Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The body, when the caller asked for it (checks need it).
    pub body: Bytes,
}

/// Shared by all workers of a load.
pub struct Client {
    version: HttpVersion,
    tls: Option<TlsConnector>,
    h2: Mutex<HashMap<Key, http2::SendRequest<Full<Bytes>>>>,
    /// Held while opening an HTTP/2 connection, so workers starting together share one.
    h2_connecting: tokio::sync::Mutex<()>,
    /// Local addresses new connections are opened from, in turn (empty: the kernel picks).
    sources: Vec<IpAddr>,
    /// How many connections were opened from `sources`: the next one takes the next.
    opened: AtomicUsize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("version", &self.version)
            .finish()
    }
}

/// A worker's own HTTP/1.1 connections.
#[derive(Default)]
pub struct Conns {
    h1: Vec<(Arc<Key>, h1::Conn)>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Conns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conns").field("h1", &self.h1.len()).finish()
    }
}

impl Conns {
    /// Forgets the connection to `key` (after a timeout or error its state is unknown).
    pub fn forget(&mut self, key: &Key) {
        self.h1.retain(|(k, _)| **k != *key);
    }
}

enum Sender {
    H1(h1::Conn),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Client {
    /// A client for `version`; `insecure` accepts any TLS certificate.
    pub fn new(version: HttpVersion, insecure: bool, needs_tls: bool) -> Client {
        let tls = needs_tls.then(|| TlsConnector::from(Arc::new(tls_config(version, insecure))));
        Client {
            version,
            tls,
            h2: Mutex::new(HashMap::new()),
            h2_connecting: tokio::sync::Mutex::new(()),
            sources: Vec::new(),
            opened: AtomicUsize::new(0),
        }
    }

    /// Opens each new connection from the next of `sources` in turn, so a load can hold
    /// more connections to one ip:port than one source address has ephemeral ports.
    pub fn with_source_addresses(mut self, sources: Vec<IpAddr>) -> Client {
        self.sources = sources;
        self
    }

    /// Sends one request on a kept-alive connection (opening one if needed) and reads the
    /// whole response; `want_body` keeps the body for checks. Every failure is an outcome.
    pub async fn send(
        &self,
        conns: &mut Conns,
        req: Outgoing,
        want_body: bool,
    ) -> Result<Answer, Outcome> {
        let key = req.key.clone();
        if self.version == HttpVersion::Http1 {
            let pq = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let host = req.uri.authority().map(|a| a.as_str()).unwrap_or("");
            let mut body = std::mem::take(&mut conns.body);
            let mut attempt = 0;
            let result = loop {
                attempt += 1;
                let (conn, reused) = self.h1_conn(conns, &key).await?;
                let r = conn
                    .round_trip(
                        &req.method,
                        pq,
                        host,
                        &req.headers,
                        &req.body,
                        want_body,
                        &mut body,
                    )
                    .await;
                let (closed, stale) = (conn.closed, conn.stale);
                if closed {
                    conns.forget(&key);
                }
                // A kept-alive connection the server closed while idle fails before any
                // byte of the answer: the request never arrived, so it goes out once more
                // on a fresh connection rather than counting as a reset.
                if r.is_err() && reused && stale && attempt == 1 {
                    continue;
                }
                break r;
            };
            let answer = result.map(|status| Answer {
                status,
                body: if want_body {
                    Bytes::copy_from_slice(&body)
                } else {
                    Bytes::new()
                },
            });
            conns.body = body;
            return answer;
        }
        let resp = {
            let mut s = self.h2_sender(&key).await?;
            let mut r = http::Request::builder()
                .method(req.method)
                .uri(req.uri)
                .body(Full::new(req.body))
                .map_err(|_| Outcome::Other)?;
            *r.headers_mut() = req.headers;
            r.headers_mut().remove(http::header::HOST);
            let res = s.send_request(r).await;
            if res.is_err() {
                self.h2
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&key);
            }
            res.map_err(|e| classify(&e))?
        };
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut buf = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                conns.forget(&key);
                classify(&e)
            })?;
            if want_body && let Some(d) = frame.data_ref() {
                buf.extend_from_slice(d);
            }
        }
        Ok(Answer {
            status,
            body: buf.freeze(),
        })
    }

    async fn h2_sender(&self, key: &Arc<Key>) -> Result<http2::SendRequest<Full<Bytes>>, Outcome> {
        let existing = self
            .h2
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&**key)
            .cloned();
        if let Some(mut s) = existing {
            if s.ready().await.is_ok() {
                return Ok(s);
            }
            self.h2
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&**key);
        }
        let _connecting = self.h2_connecting.lock().await;
        let fresh = self
            .h2
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&**key)
            .cloned();
        if let Some(mut s) = fresh
            && s.ready().await.is_ok()
        {
            return Ok(s);
        }
        match self.connect(key).await? {
            Sender::H2(h) => {
                self.h2
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((**key).clone(), h.clone());
                Ok(h)
            }
            // The server refused h2 over ALPN: an HTTP/2 load cannot fall back silently.
            Sender::H1(_) => Err(Outcome::Other),
        }
    }

    async fn h1_conn<'c>(
        &self,
        conns: &'c mut Conns,
        key: &Arc<Key>,
    ) -> Result<(&'c mut h1::Conn, bool), Outcome> {
        if let Some(pos) = conns.h1.iter().position(|(k, c)| **k == **key && !c.closed) {
            return Ok((&mut conns.h1[pos].1, true));
        }
        conns.forget(key);
        // Boxed: connecting (name lookup, TCP, a TLS handshake) happens once per
        // connection, and inline its future would sit in every request's future, which
        // each of 100,000 VUs holds for its whole life.
        match Box::pin(self.connect(key)).await? {
            Sender::H1(c) => {
                conns.h1.push((key.clone(), c));
                let last = conns.h1.len() - 1;
                Ok((&mut conns.h1[last].1, false))
            }
            Sender::H2(_) => Err(Outcome::Other),
        }
    }

    async fn connect(&self, key: &Key) -> Result<Sender, Outcome> {
        let source = (!self.sources.is_empty()).then(|| {
            let n = self.opened.fetch_add(1, Ordering::Relaxed);
            self.sources[n % self.sources.len()]
        });
        // With a source address, the target's address of the same family (a name such
        // as `localhost` may resolve to both).
        let addr = tokio::net::lookup_host((key.host.as_str(), key.port))
            .await
            .map_err(|_| Outcome::Other)?
            .find(|a| source.is_none_or(|s| s.is_ipv4() == a.is_ipv4()))
            .ok_or(Outcome::Other)?;
        let tcp = match source {
            None => TcpStream::connect(addr).await,
            Some(source) => connect_from(source, addr).await,
        }
        .map_err(|e| classify_io(&e))?;
        let _ = tcp.set_nodelay(true);
        if key.https {
            let tls = self.tls.as_ref().ok_or(Outcome::Tls)?;
            let name = ServerName::try_from(key.host.clone()).map_err(|_| Outcome::Tls)?;
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|e| match classify_io(&e) {
                    Outcome::Other => Outcome::Tls,
                    o => o,
                })?;
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                handshake_h2(stream).await
            } else {
                Ok(Sender::H1(h1::Conn::new(h1::Io::Other(Box::new(stream)))))
            }
        } else if self.version == HttpVersion::Http2 {
            handshake_h2(tcp).await
        } else {
            Ok(Sender::H1(h1::Conn::new(h1::Io::Tcp(tcp))))
        }
    }
}

/// Opens a TCP connection from `source` to `addr`. The source port is chosen at connect
/// time (`IP_BIND_ADDRESS_NO_PORT`), so it only has to be unique for this destination: a
/// plain bind to port 0 would reserve it towards every destination, and one source
/// address would hold at most one connection per ephemeral port in all.
async fn connect_from(source: IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Best effort: without it (an old kernel), bind still works, with fewer ports.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::IpBindAddressNoPort,
        &true,
    );
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// Checks, before a load sends anything, that its source addresses can be used here:
/// one address family for all, the family of every target given as an IP address, and
/// each one an address of this machine.
pub fn check_source_addresses(sources: &[IpAddr], targets: &[&Key]) -> Result<(), String> {
    let Some(first) = sources.first() else {
        return Ok(());
    };
    if let Some(other) = sources.iter().find(|s| s.is_ipv4() != first.is_ipv4()) {
        return Err(format!(
            "source addresses {first} and {other} are of different families: give only IPv4 or only IPv6 ones"
        ));
    }
    for key in targets {
        if let Ok(ip) = key.host.parse::<IpAddr>()
            && ip.is_ipv4() != first.is_ipv4()
        {
            return Err(format!(
                "source address {first} cannot reach {ip}: give source addresses of the target's family"
            ));
        }
    }
    for s in sources {
        if let Err(e) = std::net::UdpSocket::bind(SocketAddr::new(*s, 0)) {
            return Err(format!(
                "source address {s} is not an address of this machine ({e}): add it (`ip addr add {s} dev lo`) or leave it out"
            ));
        }
    }
    Ok(())
}

async fn handshake_h2<T>(io: T) -> Result<Sender, Outcome>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (s, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|e| classify(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Sender::H2(s))
}

/// Maps a hyper error (or anything wrapping an I/O error) to an outcome.
pub fn classify(e: &(dyn StdError + 'static)) -> Outcome {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return classify_io(io);
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return Outcome::Timeout;
            }
            if h.source().is_none()
                && (h.is_incomplete_message() || h.is_canceled() || h.is_closed())
            {
                return Outcome::Reset;
            }
        }
        cur = err.source();
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>()
        && (h.is_incomplete_message() || h.is_canceled() || h.is_closed())
    {
        return Outcome::Reset;
    }
    Outcome::Other
}

/// Maps an I/O error to an outcome.
pub fn classify_io(e: &io::Error) -> Outcome {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => Outcome::ConnectRefused,
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
            Outcome::Reset
        }
        TimedOut => Outcome::Timeout,
        _ => {
            if e.get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                Outcome::Tls
            } else {
                Outcome::Other
            }
        }
    }
}

fn tls_config(version: HttpVersion, insecure: bool) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(rustls::DEFAULT_VERSIONS)
                .expect("ring supports the default versions")
        });
    let mut cfg = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    cfg.alpn_protocols = match version {
        HttpVersion::Http2 => vec![b"h2".to_vec()],
        HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
    };
    cfg
}

/// `--insecure`: accepts any certificate, still checking the handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
