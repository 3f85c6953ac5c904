//! Open and closed executors against a real server.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use livefire_core::metrics::MetricSource;
use livefire_core::window::{Outcome, WindowStore};
use livefire_load::{Executor, LoadConfig, Segment, run};
use tokio_util::sync::CancellationToken;

use crate::server::{Opts, start};

fn rate(r: f64) -> Executor {
    Executor::Rate {
        rate: r,
        stages: vec![],
    }
}

async fn go(cfg: LoadConfig) -> (livefire_load::LoadReport, Arc<WindowStore>) {
    let store = Arc::new(WindowStore::new());
    let report = run(cfg, Instant::now(), CancellationToken::new(), store.clone())
        .await
        .expect("valid config");
    (report, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_rate_sends_the_same_number_every_run_and_feeds_the_store() {
    let srv = start(Opts::default()).await;
    for _ in 0..2 {
        let cfg = LoadConfig::get(
            "browse",
            &srv.url("/ok"),
            rate(200.0),
            Duration::from_millis(1500),
        );
        let (rep, store) = go(cfg).await;
        assert_eq!(rep.intended, 300);
        assert_eq!(rep.total.sent, 300);
        assert_eq!(rep.total.counts.get(Outcome::Ok), 300);
        assert_eq!(rep.rate_achieved(), Some(1.0));
        assert!(
            // Never faster than asked; slower only on a very busy machine.
            rep.rps() <= 200.0 + 1e-9 && rep.rps() > 120.0,
            "{} req/s over {} s",
            rep.rps(),
            rep.duration_secs
        );
        // The live store saw the same requests, per second.
        assert_eq!(store.value("browse.requests", 0, 10_000), Some(300.0));
        assert_eq!(store.value("browse.rate_achieved", 0, 10_000), Some(1.0));
        assert_eq!(store.value("browse.error_rate", 0, 10_000), Some(0.0));
        let rps0 = store.value("browse.rps", 0, 1000).unwrap();
        assert!(
            (150.0..=200.0).contains(&rps0),
            "first second had {rps0} req/s"
        );
        assert!(store.value("browse.latency.p99", 0, 10_000).unwrap() < 1.0);
        assert!(
            store.value("browse.get.requests", 0, 10_000).is_some(),
            "per-request series"
        );
    }
    // A fast local server needs few connections at 200/s: they are reused.
    let conns = srv.conns.load(Ordering::SeqCst);
    assert!(
        conns <= 40,
        "{conns} connections for 600 requests: keep-alive not reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_take_disjoint_shares_that_add_up() {
    let srv = start(Opts::default()).await;
    let mut total = 0;
    for i in 0..3 {
        let mut cfg = LoadConfig::get(
            "s",
            &srv.url("/ok?s=${seq}"),
            rate(100.0),
            Duration::from_secs(1),
        );
        cfg.segment = Segment { index: i, count: 3 };
        let (rep, _) = go(cfg).await;
        total += rep.total.sent;
        assert_eq!(rep.total.sent, rep.intended);
    }
    assert_eq!(total, 100);
    let seqs: BTreeSet<u64> = srv
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|l| {
            l.split("s=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(
        seqs,
        (0..100).collect(),
        "each send index exactly once across segments"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_beyond_max_in_flight_are_dropped_and_still_measured() {
    let srv = start(Opts::default()).await;
    let mut cfg = LoadConfig::get("d", &srv.url("/slow"), rate(50.0), Duration::from_secs(1));
    cfg.max_in_flight = 2;
    cfg.timeout = Duration::from_millis(300);
    let (rep, store) = go(cfg).await;
    let c = &rep.total.counts;
    assert_eq!(rep.intended, 50);
    assert!(c.get(Outcome::Dropped) > 0, "no drops: {c:?}");
    assert!(c.get(Outcome::Timeout) > 0, "no timeouts: {c:?}");
    // Every intended send is accounted for: sent ones ended somehow, the rest dropped.
    assert_eq!(c.total(), 50);
    assert_eq!(rep.total.sent + c.get(Outcome::Dropped), 50);
    // The lateness of the drops is in the histogram (at least the timeout).
    assert_eq!(rep.total.latency.len(), 50);
    assert!(rep.total.latency.max_us().unwrap() >= 300_000);
    assert_eq!(
        store.value("d.dropped", 0, 10_000),
        Some(c.get(Outcome::Dropped) as f64)
    );
    assert!(store.value("d.rate_achieved", 0, 10_000).unwrap() < 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_reuses_one_connection_per_vu() {
    let srv = start(Opts::default()).await;
    let vus = Executor::Vus {
        vus: 4,
        stages: vec![],
        think: Duration::from_millis(10),
    };
    let cfg = LoadConfig::get("c", &srv.url("/ok"), vus, Duration::from_millis(800));
    let (rep, _) = go(cfg).await;
    let ok = rep.total.counts.get(Outcome::Ok);
    // 4 VUs thinking 10 ms each for 0.8 s: at most ~320, surely more than 40.
    assert!(ok > 8 && ok <= 4 * 81, "{ok} ok");
    assert_eq!(rep.total.sent, ok);
    assert_eq!(
        srv.conns.load(Ordering::SeqCst),
        4,
        "one kept-alive connection per VU"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramping_rate_follows_the_stages() {
    let srv = start(Opts::default()).await;
    let ex = Executor::Rate {
        rate: 0.0,
        stages: vec![livefire_load::Stage {
            to: 200.0,
            over: Duration::from_secs(1),
        }],
    };
    let cfg = LoadConfig::get("ramp", &srv.url("/ok"), ex, Duration::from_secs(2));
    let (rep, store) = go(cfg).await;
    // 0 -> 200/s over 1 s is 100 sends, then 200 more at 200/s.
    assert_eq!(rep.intended, 300);
    assert_eq!(rep.total.counts.get(Outcome::Ok), 300);
    let first = store.value("ramp.requests", 0, 1000).unwrap();
    // Due in the first second: 100; a slow machine finishes some of them in the next.
    assert!((70.0..=100.0).contains(&first), "first second {first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_load_promptly() {
    let srv = start(Opts::default()).await;
    let cfg = LoadConfig::get("x", &srv.url("/ok"), rate(100.0), Duration::from_secs(60));
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let began = Instant::now();
    let rep = run(cfg, Instant::now(), cancel, Arc::new(WindowStore::new()))
        .await
        .unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "took {:?}",
        began.elapsed()
    );
    assert!(rep.total.sent >= 10, "sent {}", rep.total.sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configs_are_refused_before_sending() {
    let cases: Vec<(LoadConfig, &str)> = vec![
        (
            LoadConfig::get("a", "ftp://x/", rate(1.0), Duration::from_secs(1)),
            "scheme",
        ),
        (
            LoadConfig::get(
                "a",
                "http://127.0.0.1:1/${nope}",
                rate(1.0),
                Duration::from_secs(1),
            ),
            "unknown template",
        ),
        (
            LoadConfig::get(
                "a",
                "http://127.0.0.1:1/",
                rate(0.0),
                Duration::from_secs(1),
            ),
            "rate",
        ),
        (
            LoadConfig::get("a", "http://127.0.0.1:1/", rate(1.0), Duration::ZERO),
            "duration",
        ),
        (
            LoadConfig::get(
                "a",
                "http://127.0.0.1:1/",
                Executor::Vus {
                    vus: 0,
                    stages: vec![],
                    think: Duration::ZERO,
                },
                Duration::from_secs(1),
            ),
            "virtual users",
        ),
        // The VU limit is per process: 300,001 over three segments leaves 100,001 to
        // the first, one too many.
        (
            {
                let mut c = LoadConfig::get(
                    "a",
                    "http://127.0.0.1:1/",
                    Executor::Vus {
                        vus: 300_001,
                        stages: vec![],
                        think: Duration::ZERO,
                    },
                    Duration::from_secs(1),
                );
                c.segment = livefire_load::Segment::parse("1/3").unwrap();
                c
            },
            "100001 virtual users in one process is more than 100000",
        ),
    ];
    for (cfg, want) in cases {
        let err = run(
            cfg,
            Instant::now(),
            CancellationToken::new(),
            Arc::new(WindowStore::new()),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains(want),
            "{err} should mention {want}"
        );
    }
}
