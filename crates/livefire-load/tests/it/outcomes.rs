//! Failures are measurements: each kind lands in its outcome and the run goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use livefire_core::metrics::MetricSource;
use livefire_core::window::{Outcome, WindowStore};
use livefire_load::{Check, Executor, JsonExpect, LoadConfig, run};
use tokio_util::sync::CancellationToken;

use crate::server::{Opts, start};

async fn outcomes(cfg: LoadConfig) -> livefire_core::window::Counts {
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

fn rate(r: f64) -> Executor {
    Executor::Rate {
        rate: r,
        stages: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_port_is_counted_as_connect_refused() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = LoadConfig::get(
        "r",
        &format!("http://127.0.0.1:{port}/"),
        rate(50.0),
        Duration::from_secs(1),
    );
    let store = Arc::new(WindowStore::new());
    let rep = run(cfg, Instant::now(), CancellationToken::new(), store.clone())
        .await
        .unwrap();
    assert_eq!(
        rep.total.counts.get(Outcome::ConnectRefused),
        50,
        "{:?}",
        rep.total.counts
    );
    assert_eq!(store.value("r.error_rate", 0, 5000), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_time_out() {
    let srv = start(Opts::default()).await;
    let mut cfg = LoadConfig::get(
        "t",
        &srv.url("/slow"),
        rate(10.0),
        Duration::from_millis(500),
    );
    cfg.timeout = Duration::from_millis(200);
    let c = outcomes(cfg).await;
    assert_eq!(c.get(Outcome::Timeout), 5, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_and_checks_are_classified() {
    let srv = start(Opts::default()).await;
    let table: Vec<(&str, Vec<Check>, Outcome)> = vec![
        ("/ok", vec![], Outcome::Ok),
        ("/status/404", vec![], Outcome::Http4xx),
        ("/status/503", vec![], Outcome::Http5xx),
        ("/status/404", vec![Check::Status(404)], Outcome::Ok),
        ("/ok", vec![Check::Status(201)], Outcome::CheckFailed),
        (
            "/ok",
            vec![Check::BodyContains("hello".into())],
            Outcome::Ok,
        ),
        (
            "/ok",
            vec![Check::BodyContains("nope".into())],
            Outcome::CheckFailed,
        ),
        (
            "/json",
            vec![Check::Json {
                path: "$.items".into(),
                expect: JsonExpect::Type("array".into()),
            }],
            Outcome::Ok,
        ),
        (
            "/json",
            vec![Check::Json {
                path: "$.id".into(),
                expect: JsonExpect::Equals(7.into()),
            }],
            Outcome::Ok,
        ),
        (
            "/json",
            vec![Check::Json {
                path: "$.id".into(),
                expect: JsonExpect::Equals(8.into()),
            }],
            Outcome::CheckFailed,
        ),
        (
            "/ok",
            vec![Check::Json {
                path: "$.id".into(),
                expect: JsonExpect::Exists,
            }],
            Outcome::CheckFailed,
        ),
    ];
    for (path, checks, want) in table {
        let mut cfg = LoadConfig::get("k", &srv.url(path), rate(20.0), Duration::from_millis(100));
        cfg.requests[0].checks = checks.clone();
        let c = outcomes(cfg).await;
        assert_eq!(c.get(want), 2, "{path} {checks:?}: {c:?}");
        assert_eq!(c.total(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_json_path_is_refused_before_the_run() {
    let mut cfg = LoadConfig::get(
        "k",
        "http://127.0.0.1:9/",
        rate(1.0),
        Duration::from_secs(1),
    );
    cfg.requests[0].checks = vec![Check::Json {
        path: "items".into(),
        expect: JsonExpect::Exists,
    }];
    let err = run(
        cfg,
        Instant::now(),
        CancellationToken::new(),
        Arc::new(WindowStore::new()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("bad JSON path"), "{err}");
}
