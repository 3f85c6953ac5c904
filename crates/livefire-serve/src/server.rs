//! The listener: plain HTTP/1.1 on loopback by default, TLS (rustls) when given a
//! certificate; slow headers and slow or large bodies are cut off with a status that
//! says so (408, 413; a slow head's 408 is written by `conn`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};

/// The body of every answer: whole (JSON, pages) or streamed (Server-Sent Events).
pub type Body = BoxBody<Bytes, Infallible>;

/// The largest request body taken (an experiment file is a few KiB).
pub const MAX_BODY: usize = 1024 * 1024;
/// How long a client may take to send its headers, and then its body.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("--listen {addr}: {source}: pick a free address")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "--listen {0}: not a loopback address, and without TLS tokens would cross the network in clear: pass --tls-cert and --tls-key (or --allow-plain-http on a network you trust)"
    )]
    PlainOffLoopback(String),
    #[error("--listen {0}: write an address and port, e.g. 127.0.0.1:7878")]
    Address(String),
    #[error("--tls-cert {}: {why}", path.display())]
    Cert { path: PathBuf, why: String },
    #[error("--tls-key {}: {why}", path.display())]
    Key { path: PathBuf, why: String },
    #[error("--tls-cert/--tls-key: {0}: check the key belongs to the certificate")]
    Tls(rustls::Error),
}

/// A whole body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// Reads the TLS certificate chain and key (PEM) into a rustls acceptor.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, ListenError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ListenError::Cert {
            path: cert.to_owned(),
            why: format!("{e}: give a PEM certificate (chain) file"),
        })?;
    if certs.is_empty() {
        return Err(ListenError::Cert {
            path: cert.to_owned(),
            why: "no certificate in it: give a PEM file with `BEGIN CERTIFICATE`".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ListenError::Key {
        path: key.to_owned(),
        why: format!("{e}: give a PEM private key (PKCS#8, PKCS#1 or SEC1)"),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(ListenError::Tls)?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(ListenError::Tls)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Parses `--listen` and refuses a plain listener off loopback unless allowed.
pub fn listen_addr(text: &str, tls: bool, allow_plain: bool) -> Result<SocketAddr, ListenError> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| ListenError::Address(text.to_owned()))?;
    if !tls && !allow_plain && !addr.ip().is_loopback() {
        return Err(ListenError::PlainOffLoopback(text.to_owned()));
    }
    Ok(addr)
}

/// Accepts connections until `shutdown` resolves; each is served by `app` on a task.
pub async fn serve<F, Fut>(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: F,
    shutdown: impl std::future::Future<Output = ()>,
) where
    F: Fn(http::Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<Body>> + Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app(req).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            // The stream stays shared with this task, so a head that times out can
            // still be answered 408 here (hyper only closes it).
            let timed_out = |r: Result<(), hyper::Error>| matches!(r, Err(e) if e.is_timeout());
            match tls {
                None => {
                    let shared = crate::conn::Shared::new(stream);
                    let r = builder
                        .serve_connection(TokioIo::new(shared.clone()), service)
                        .await;
                    if timed_out(r) {
                        shared.request_timeout(HEADER_TIMEOUT.as_secs()).await;
                    }
                }
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let shared = crate::conn::Shared::new(stream);
                    let r = builder
                        .serve_connection(TokioIo::new(shared.clone()), service)
                        .await;
                    if timed_out(r) {
                        shared.request_timeout(HEADER_TIMEOUT.as_secs()).await;
                    }
                }
            }
        });
    }
}

/// Why a request body was not read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    TooSlow,
    Broken,
}

/// Reads a request body, at most [`MAX_BODY`] bytes within [`BODY_TIMEOUT`].
pub async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Broken),
    }
}
