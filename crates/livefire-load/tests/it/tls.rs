//! HTTPS: HTTP/1.1 and HTTP/2 over rustls against a local server with a self-signed
//! certificate (tests/fixtures, for 127.0.0.1 and localhost).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use livefire_core::window::{Counts, Outcome, WindowStore};
use livefire_load::{Executor, HttpVersion, LoadConfig, run};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

async fn tls_server() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let cert = CertificateDer::from_pem_file(format!("{dir}/cert.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}/", l.local_addr().unwrap().port());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let svc = service_fn(move |_req| async move {
                    let body = if h2 { "over h2" } else { "over h1" };
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
                });
                let io = TokioIo::new(tls);
                if h2 {
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
    url
}

async fn load(url: &str, version: HttpVersion, insecure: bool, expect: &str) -> Counts {
    let ex = Executor::Vus {
        vus: 2,
        stages: vec![],
        think: Duration::from_millis(10),
    };
    let mut cfg = LoadConfig::get("tls", url, ex, Duration::from_millis(300));
    cfg.http_version = version;
    cfg.insecure = insecure;
    cfg.requests[0].checks = vec![livefire_load::Check::BodyContains(expect.into())];
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
async fn https_with_alpn_for_both_versions() {
    let url = tls_server().await;
    let c = load(&url, HttpVersion::Http1, true, "over h1").await;
    assert!(
        c.get(Outcome::Ok) > 2 && c.get(Outcome::Ok) == c.total(),
        "{c:?}"
    );
    let c = load(&url, HttpVersion::Http2, true, "over h2").await;
    assert!(
        c.get(Outcome::Ok) > 2 && c.get(Outcome::Ok) == c.total(),
        "{c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_tls_outcome() {
    let url = tls_server().await;
    let c = load(&url, HttpVersion::Http1, false, "over h1").await;
    assert!(
        c.get(Outcome::Tls) > 0 && c.get(Outcome::Tls) == c.total(),
        "{c:?}"
    );
}
