//! Campaign behaviour: reproducible seeds, the rate cap, hostile answers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use livefire_fuzz::{FuzzConfig, Rule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::rules::{campaign, spec_file};
use crate::target::{self, Mode};

async fn request_log(seed: u64) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let t = target::start(Mode::Correct, None, "127.0.0.1:0").await;
    t.stats.log_requests.store(true, Ordering::Relaxed);
    let config = FuzzConfig {
        spec: spec_file(&dir),
        base_url: t.base_url(),
        duration: Duration::from_secs(60),
        max_requests: Some(400),
        concurrency: 1,
        seed,
        // Timer-driven auth probes and latency confirmations depend on the clock.
        checks: vec![
            Rule::ServerError,
            Rule::StatusConformance,
            Rule::ResponseSchema,
            Rule::NegativeAccepted,
            Rule::Injection,
        ],
        ..FuzzConfig::default()
    };
    let (summary, _) = campaign(config, |_| false).await;
    assert_eq!(summary.stopped_by, "max_requests");

    t.stats.log.lock().unwrap().clone()
}

#[tokio::test]
async fn same_seed_sends_the_same_requests() {
    let a = request_log(42).await;
    let b = request_log(42).await;
    let c = request_log(43).await;
    assert!(a.len() >= 400, "{}", a.len());
    let first_difference = |x: &[String], y: &[String]| {
        x.iter()
            .zip(y)
            .position(|(p, q)| p != q)
            .map(|i| format!("request {i}: {:?} vs {:?}", x[i], y[i]))
    };
    assert_eq!(
        first_difference(&a, &b),
        None,
        "same seed, different requests"
    );
    assert_eq!(a.len(), b.len());
    assert!(
        first_difference(&a, &c).is_some(),
        "different seeds, same requests"
    );
}

#[tokio::test]
async fn rate_cap_holds() {
    let dir = tempfile::tempdir().unwrap();
    let t = target::start(Mode::Correct, None, "127.0.0.1:0").await;
    let config = FuzzConfig {
        spec: spec_file(&dir),
        base_url: t.base_url(),
        duration: Duration::from_secs(2),
        rate: Some(50.0),
        ..FuzzConfig::default()
    };
    let (summary, _) = campaign(config, |_| false).await;
    let served = t.stats.requests.load(Ordering::Relaxed);
    assert!(served >= 40, "{served} requests in 2 s at 50/s");
    assert!(
        served <= 120,
        "{served} requests in 2 s at 50/s: the cap did not hold ({summary:?})"
    );
}

/// A server that answers every request with `answer(n)` and then closes.
async fn hostile(kind: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = s.read(&mut buf).await;
                match kind {
                    "garbage" => {
                        let _ = s
                            .write_all(b"\x00\xffNOT HTTP AT ALL\r\n\r\n\x01\x02")
                            .await;
                    }
                    "huge" => {
                        let _ = s.write_all(b"HTTP/1.1 500 Oops\r\ncontent-type: text/plain\r\ncontent-length: 50000000\r\n\r\n").await;
                        let chunk = vec![b'x'; 1 << 16];
                        for _ in 0..800 {
                            if s.write_all(&chunk).await.is_err() {
                                break;
                            }
                        }
                    }
                    _ => {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
                            .await;
                        for _ in 0..1000 {
                            if s.write_all(b"x").await.is_err() {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_end_as_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["garbage", "huge", "drip"] {
        let config = FuzzConfig {
            spec: spec_file(&dir),
            base_url: hostile(kind).await,
            duration: Duration::from_millis(1500),
            timeout: Duration::from_millis(400),
            max_body: 64 * 1024,
            ..FuzzConfig::default()
        };
        let started = Instant::now();
        let (summary, findings) = campaign(config, |_| false).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{kind}: the campaign overran its budget"
        );
        assert!(summary.requests > 0, "{kind}: {summary:?}");
        assert!(
            findings.iter().all(|f| f.response.body.len() < 4096),
            "{kind}: bodies are capped in findings"
        );
        if kind != "huge" {
            assert!(!summary.failures.is_empty(), "{kind}: {summary:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_token_is_used_and_fetched_again_on_401() {
    use livefire_fuzz::{AuthConfig, LoginRequest};
    let dir = tempfile::tempdir().unwrap();
    let t = target::start(Mode::Correct, None, "127.0.0.1:0").await;
    let login = |password: &str| AuthConfig::Login {
        login: LoginRequest {
            method: "POST".into(),
            url: "/login".into(),
            json: Some(serde_json::json!({ "user": "alice", "password": password })),
            token: "$.data.token".into(),
        },
        header: "Authorization".into(),
        format: "Bearer {token}".into(),
    };
    let config = FuzzConfig {
        spec: spec_file(&dir),
        base_url: t.base_url(),
        duration: Duration::from_millis(2500),
        auth: Some(login("wonderland")),
        ..FuzzConfig::default()
    };
    let (_, findings) = campaign(config.clone(), |_| false).await;
    assert!(findings.is_empty(), "{findings:#?}");
    // Sessions expire after SESSION_USES requests: more authorized requests than one
    // session allows means the token was fetched again after a 401.
    let logins = t.stats.logins.load(Ordering::Relaxed);
    let authorized = t.stats.authorized.load(Ordering::Relaxed);
    assert!(logins >= 2, "{logins} logins");
    assert!(
        authorized > u64::from(target::SESSION_USES),
        "{authorized} authorized requests"
    );

    let bad = FuzzConfig {
        auth: Some(login("wrong")),
        ..config.clone()
    };
    let err = livefire_fuzz::run(bad, livefire_fuzz::CancellationToken::new(), |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("login failed: the login request answered 401"),
        "{err}"
    );

    // A malformed token path says what is wrong with it, not just "no token".
    let mut auth = login("wonderland");
    if let AuthConfig::Login { login, .. } = &mut auth {
        login.token = "data.token".into();
    }
    let bad_path = FuzzConfig {
        auth: Some(auth),
        ..config
    };
    let err = livefire_fuzz::run(bad_path, livefire_fuzz::CancellationToken::new(), |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad JSON path `data.token`: it must start with `$`"),
        "{err}"
    );
}
