//! What is sent: weighted request lists, templates, data rows, JSON bodies, headers, HTTP/2.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use livefire_core::metrics::MetricSource;
use livefire_core::window::{Outcome, WindowStore};
use livefire_load::{Body, DataSet, Executor, HttpVersion, LoadConfig, RequestSpec, run};
use tokio_util::sync::CancellationToken;

use crate::server::{Opts, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_templated_requests_with_data_and_json() {
    let srv = start(Opts::default()).await;
    let data = DataSet::from_csv("user,city\nann,oslo\nbob,\"rio \"\"de\"\" janeiro\"\n").unwrap();
    let mut search = RequestSpec::get(
        "search",
        &srv.url("/q?u=${data.user}&n=${random.int(1,9)}&w=${random.word}"),
    );
    search.weight = 3;
    let mut create = RequestSpec::get("create", &srv.url("/echo"));
    create.method = http::Method::POST;
    create.headers = vec![("x-seq".into(), "${seq}".into())];
    create.body =
        Body::Json(serde_json::json!({"city": "${data.city}", "id": "${random.uuid}", "qty": 2}));
    let mut cfg = LoadConfig::get(
        "mix",
        "http://unused/",
        Executor::Rate {
            rate: 400.0,
            stages: vec![],
        },
        Duration::from_secs(1),
    );
    cfg.requests = vec![search, create];
    cfg.data = Some(data);
    let store = Arc::new(WindowStore::new());
    let rep = run(cfg, Instant::now(), CancellationToken::new(), store.clone())
        .await
        .unwrap();
    assert_eq!(rep.total.counts.get(Outcome::Ok), 400);
    let searches = rep.requests["search"].counts.get(Outcome::Ok);
    assert!(
        (240..=360).contains(&searches),
        "weight 3:1 gave {searches} of 400 searches"
    );
    assert_eq!(
        store.value("mix.search.requests", 0, 5000),
        Some(searches as f64)
    );

    let seen = srv.seen.lock().unwrap().clone();
    let mut users = BTreeSet::new();
    let mut seqs = BTreeSet::new();
    for line in &seen {
        if let Some(rest) = line.strip_prefix("GET /q?u=") {
            users.insert(rest.split('&').next().unwrap().to_string());
            let n: u32 = rest
                .split("n=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=9).contains(&n));
        } else {
            let body = line.strip_prefix("POST /echo ").expect(line);
            let v: serde_json::Value = serde_json::from_str(body).expect(body);
            assert!(
                v["city"] == "oslo" || v["city"] == "rio \"de\" janeiro",
                "{v}"
            );
            assert_eq!(v["id"].as_str().unwrap().len(), 36);
            assert_eq!(v["qty"], 2);
            seqs.insert(v.to_string());
        }
    }
    assert_eq!(users, ["ann".to_string(), "bob".to_string()].into());
    assert_eq!(
        seqs.len(),
        400 - searches as usize,
        "each create has its own uuid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_cleartext_multiplexes_on_one_connection() {
    let srv = start(Opts {
        h2: true,
        ..Default::default()
    })
    .await;
    let mut cfg = LoadConfig::get(
        "h2",
        &srv.url("/ok"),
        Executor::Vus {
            vus: 8,
            stages: vec![],
            think: Duration::ZERO,
        },
        Duration::from_millis(500),
    );
    cfg.http_version = HttpVersion::Http2;
    let rep = run(
        cfg,
        Instant::now(),
        CancellationToken::new(),
        Arc::new(WindowStore::new()),
    )
    .await
    .unwrap();
    let ok = rep.total.counts.get(Outcome::Ok);
    assert!(ok > 50, "{:?}", rep.total.counts);
    assert_eq!(ok, rep.total.counts.total());
    assert_eq!(srv.conns.load(std::sync::atomic::Ordering::SeqCst), 1);
}
