//! Write tracking over HTTP: acknowledged keys read back after the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use livefire_core::metrics::MetricSource;
use livefire_core::window::{Outcome, WindowStore};
use livefire_load::{Check, Executor, LoadConfig, TrackWrite, WriteCounts, run, verify_writes};
use tokio_util::sync::CancellationToken;

use crate::server::{Opts, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_writes_are_read_back_and_losses_counted() {
    // The only test using /create, so the server's counter starts at 0 for it.
    let srv = start(Opts::default()).await;
    let mut cfg = LoadConfig::get(
        "orders",
        &srv.url("/create"),
        Executor::Rate {
            rate: 200.0,
            stages: vec![],
        },
        Duration::from_millis(500),
    );
    cfg.requests[0].method = http::Method::POST;
    cfg.requests[0].checks = vec![Check::Status(201)];
    cfg.requests[0].track_write = Some(TrackWrite {
        key: "$.id".into(),
        read: srv.url("/item/{key}"),
    });
    let store = Arc::new(WindowStore::new());
    let report = run(
        cfg.clone(),
        Instant::now(),
        CancellationToken::new(),
        store.clone(),
    )
    .await
    .unwrap();
    assert_eq!(report.total.counts.get(Outcome::Ok), 100);
    let counts = verify_writes(&cfg, &report, &store, 4).await.unwrap();
    // 100 creates, ids 0..99 except 25/50/75 answered as 24/49/74 (3 duplicates); of the
    // 97 distinct ids, the multiples of 10 but 50 are missing (9 lost).
    assert_eq!(
        counts,
        WriteCounts {
            acked: 100,
            lost: 9,
            phantom: 0,
            duplicated: 3,
            unverified: 0
        }
    );
    assert_eq!(store.value("orders.writes.lost", 0, 1), Some(9.0));
    assert_eq!(store.value("orders.writes.acked", 0, 1), Some(100.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_url_without_key_is_refused() {
    let mut cfg = LoadConfig::get(
        "o",
        "http://127.0.0.1:9/",
        Executor::Rate {
            rate: 1.0,
            stages: vec![],
        },
        Duration::from_secs(1),
    );
    cfg.requests[0].track_write = Some(TrackWrite {
        key: "$.id".into(),
        read: "http://127.0.0.1:9/item".into(),
    });
    let err = run(
        cfg,
        Instant::now(),
        CancellationToken::new(),
        Arc::new(WindowStore::new()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("{key}"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_in_acknowledged_writes_is_the_write_gap() {
    // Every request arriving between 0.3 s and 1.0 s waits until 1.0 s: no write is
    // acknowledged for about 0.7 s.
    let srv = start(Opts {
        stall: Some((Duration::from_millis(300), Duration::from_millis(1000))),
        ..Default::default()
    })
    .await;
    let mut cfg = LoadConfig::get(
        "w",
        &srv.url("/json"),
        Executor::Rate {
            rate: 50.0,
            stages: vec![],
        },
        Duration::from_millis(1500),
    );
    cfg.requests[0].track_write = Some(TrackWrite {
        key: "$.id".into(),
        read: srv.url("/item/{key}"),
    });
    let store = Arc::new(WindowStore::new());
    let report = run(cfg, Instant::now(), CancellationToken::new(), store.clone())
        .await
        .unwrap();
    let gap = report.write_gap_secs.unwrap();
    assert!((0.55..1.3).contains(&gap), "write gap {gap} s");
    assert_eq!(store.value("w.writes.gap", 0, 1), Some(gap));
    assert_eq!(store.value("failover.write_gap", 0, 1), Some(gap));
}

/// The keys a split run's segment streams: `keys_since` hands each key out once, in
/// batches of at most `max` (acknowledged first, then unknown), and the counts of
/// acknowledged writes without a key once; `add_keys` on the other side adds them up.
#[test]
fn keys_travel_in_batches_each_once() {
    use livefire_load::{KeysRead, WriteKeys, WriteLog};
    let pairs = |from: u32, to: u32| -> Vec<(usize, String)> {
        (from..to).map(|k| (0, k.to_string())).collect()
    };
    let log = WriteLog::new(Instant::now());
    log.add_keys(WriteKeys {
        acked: pairs(0, 25),
        acked_without_key: 3,
        unknown: pairs(100, 104),
    });
    let mut read = KeysRead::default();
    let sizes: Vec<(usize, u64, usize)> = std::iter::from_fn(|| {
        let keys = log.keys_since(&mut read, 10);
        let sizes = (keys.acked.len(), keys.acked_without_key, keys.unknown.len());
        (!keys.is_empty()).then_some(sizes)
    })
    .collect();
    assert_eq!(sizes, [(10, 3, 0), (10, 0, 0), (5, 0, 4)]);
    // Keys recorded later come out next time, and only they.
    log.add_keys(WriteKeys {
        acked: pairs(25, 27),
        ..Default::default()
    });
    let next = log.keys_since(&mut read, 10);
    assert_eq!(next.acked, pairs(25, 27));
    assert!(log.keys_since(&mut read, 10).is_empty());
    assert_eq!(log.acked_count(), 27 + 3);
}
