//! Coordinated omission: with one request in flight, sends due while the server stalls
//! start late, and their latency counts from when they were due (like wrk2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use livefire_core::window::{Outcome, WindowStore};
use livefire_load::{Executor, LoadConfig, run};
use tokio_util::sync::CancellationToken;

use crate::server::{Opts, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrected_latency_shows_a_one_second_stall() {
    // The server stalls every request arriving between 1.0 s and 2.0 s until 2.0 s.
    let srv = start(Opts {
        stall: Some((Duration::from_millis(1000), Duration::from_millis(2000))),
        ..Default::default()
    })
    .await;
    let mut cfg = LoadConfig::get(
        "co",
        &srv.url("/ok"),
        Executor::Rate {
            rate: 100.0,
            stages: vec![],
        },
        Duration::from_secs(3),
    );
    cfg.max_in_flight = 1;
    let store = Arc::new(WindowStore::new());
    // The server's clock and the load's start together.
    let rep = run(cfg, Instant::now(), CancellationToken::new(), store.clone())
        .await
        .unwrap();
    assert_eq!(
        rep.total.counts.get(Outcome::Ok),
        300,
        "{:?}",
        rep.total.counts
    );
    let lat = &rep.total.latency;
    // About 100 sends were due during the stall; from their due time they waited
    // between 0 and 1 s, so the 90th percentile is far above a fast server's.
    let p90 = lat.quantile_us(0.90).unwrap();
    let p99 = lat.quantile_us(0.99).unwrap();
    assert!(p90 >= 150_000, "p90 {p90} us hides the stall");
    assert!(p99 >= 700_000, "p99 {p99} us hides the stall");
    assert!(lat.max_us().unwrap() >= 900_000);
    // An uncorrected tool would see one slow request of 300 (p99 ~ a millisecond).
    let p50 = lat.quantile_us(0.50).unwrap();
    assert!(
        p50 < 100_000,
        "p50 {p50} us: the stall should not shift the median"
    );
}
