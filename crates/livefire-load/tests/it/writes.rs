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

/// Runs written as text, one per `;`: `ok 10 0-990 5-999` is 10 acknowledged writes
/// sent from 0 to 990 ms that ended from 5 to 999 ms (`fail` for failed ones).
fn runs(text: &str) -> Vec<livefire_core::events::WriteRun> {
    text.split(';')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let f: Vec<&str> = r.split_whitespace().collect();
            let span = |s: &str| -> (u64, u64) {
                let (a, b) = s.split_once('-').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            };
            let (sent, done) = (span(f[2]), span(f[3]));
            livefire_core::events::WriteRun {
                ok: f[0] == "ok",
                n: f[1].parse().unwrap(),
                first_sent_ms: sent.0,
                last_sent_ms: sent.1,
                first_done_ms: done.0,
                last_done_ms: done.1,
            }
        })
        .collect()
}

fn text(runs: &[livefire_core::events::WriteRun]) -> String {
    runs.iter()
        .map(|r| {
            format!(
                "{} {} {}-{} {}-{}",
                if r.ok { "ok" } else { "fail" },
                r.n,
                r.first_sent_ms,
                r.last_sent_ms,
                r.first_done_ms,
                r.last_done_ms
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Merging segments' runs: one sequence in the order the writes ended, each segment's
/// run whole, neighbours of the same fate coalesced, recording cut where the first
/// segment's stopped.
#[test]
fn segments_runs_merge_in_the_order_writes_ended() {
    // (case, each segment's runs and where its recording stopped, merged, stopped at)
    type Segments = Vec<(&'static str, Option<u64>)>;
    let cases: Vec<(&str, Segments, &str, Option<u64>)> = vec![
        ("no segment", vec![], "", None),
        (
            "segments without writes",
            vec![("", None), ("", None)],
            "",
            None,
        ),
        (
            "one segment's one-second slices coalesce into its runs",
            vec![(
                "ok 20 0-990 5-999; ok 20 1000-1990 1004-1998; fail 3 2000-2100 2010-2500; ok 5 2600-2990 2605-2999",
                None,
            )],
            "ok 40 0-1990 5-1998; fail 3 2000-2100 2010-2500; ok 5 2600-2990 2605-2999",
            None,
        ),
        (
            "a primary killed: both segments fail and recover together",
            vec![
                (
                    "ok 50 0-4980 3-4990; fail 10 5000-6800 5010-7000; ok 30 7020-9980 7025-9990",
                    None,
                ),
                (
                    "ok 50 10-4990 12-5000; fail 11 4995-6900 5003-7010; ok 29 7010-9990 7015-9995",
                    None,
                ),
            ],
            "ok 100 0-4990 3-5000; fail 21 4995-6900 5003-7010; ok 59 7010-9990 7015-9995",
            None,
        ),
        (
            "a failed run overlapping another segment's acknowledged writes: interleaved to their runs",
            vec![
                ("ok 10 0-990 5-999; fail 4 1000-1400 1001-1500", None),
                ("ok 10 500-1480 1002-1998", None),
            ],
            "ok 10 0-990 5-999; fail 4 1000-1400 1001-1500; ok 10 500-1480 1002-1998",
            None,
        ),
        (
            "a run of one segment stays whole: the other's failure lands after it",
            vec![
                ("ok 10 0-990 5-999; fail 4 1000-1400 1001-1500", None),
                ("ok 10 0-1480 3-1998", None),
            ],
            "ok 20 0-1480 3-1998; fail 4 1000-1400 1001-1500",
            None,
        ),
        (
            "writes that ended in the same millisecond keep each segment's order",
            vec![("ok 1 0-0 7-7; fail 1 0-0 7-7; ok 1 1-1 7-7", None)],
            "ok 1 0-0 7-7; fail 1 0-0 7-7; ok 1 1-1 7-7",
            None,
        ),
        (
            "recording stops where the first segment's stopped; runs begun after it are left out",
            vec![
                ("ok 10 0-990 5-999; fail 2 1000-1100 1003-1200", Some(3000)),
                (
                    "ok 30 0-2990 2-2999; fail 1 3000-3000 3001-3001; ok 9 3002-3990 3003-3999",
                    Some(8000),
                ),
            ],
            "ok 40 0-2990 2-2999; fail 2 1000-1100 1003-1200",
            Some(3000),
        ),
    ];
    for (case, parts, merged, stopped) in cases {
        let parts: Vec<_> = parts.iter().map(|(r, t)| (runs(r), *t)).collect();
        let (got, got_stopped) = livefire_load::merge_runs(&parts);
        assert_eq!(text(&got), merged, "{case}");
        assert_eq!(got_stopped, stopped, "{case}");
        // Without a cut, every write of every segment is in the merge once.
        if stopped.is_none() {
            let n = |r: &[livefire_core::events::WriteRun]| r.iter().map(|r| r.n).sum::<u64>();
            let given: u64 = parts.iter().map(|(r, _)| n(r)).sum();
            assert_eq!(n(&got), given, "{case}");
        }
    }
}

/// A split run's segment records its tracked writes sliced at every second and streams
/// them (`runs_since`); the other side rebuilds exactly what was recorded, and two
/// segments' runs of one stall merge into acknowledged, failed, acknowledged again,
/// every write once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_stream_their_runs_and_a_stall_merges_into_one_failure() {
    use livefire_core::events::WriteRun;
    use livefire_load::{RunsRead, RunsUpdate, WriteLog, run_with_writes};
    // Requests arriving between 1.2 s and 2.4 s wait until 2.4 s: those sent before
    // ~2.0 s time out (400 ms), the rest are acknowledged.
    let srv = start(Opts {
        stall: Some((Duration::from_millis(1200), Duration::from_millis(2400))),
        ..Default::default()
    })
    .await;
    let start_at = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..2 {
        let mut cfg = LoadConfig::get(
            "w",
            &srv.url("/json"),
            Executor::Rate {
                rate: 100.0,
                stages: vec![],
            },
            Duration::from_millis(3500),
        );
        cfg.timeout = Duration::from_millis(400);
        cfg.segment = livefire_load::Segment { index, count: 2 };
        cfg.requests[0].track_write = Some(TrackWrite {
            key: "$.id".into(),
            read: srv.url("/item/{key}"),
        });
        let log = Arc::new(WriteLog::sliced(start_at, Duration::from_secs(1)));
        tasks.push(tokio::spawn(async move {
            // The other side: what it holds after each update.
            let (mut held, mut stopped) = (Vec::<WriteRun>::new(), None);
            let mut read = RunsRead::default();
            let load = run_with_writes(
                cfg,
                start_at,
                CancellationToken::new(),
                Arc::new(WindowStore::new()),
                Some(log.clone()),
            );
            tokio::pin!(load);
            let report = loop {
                tokio::select! {
                    r = &mut load => break r.unwrap(),
                    _ = tokio::time::sleep(Duration::from_millis(30)) => {
                        if let Some(u) = log.runs_since(&mut read) {
                            u.apply(0, &mut held, &mut stopped);
                        }
                    }
                }
            };
            if let Some(u) = log.runs_since(&mut read) {
                u.apply(0, &mut held, &mut stopped);
            }
            // Nothing changed: nothing more to send.
            assert_eq!(log.runs_since(&mut read), None);
            (report, log.runs(), held, stopped)
        }));
    }
    let mut parts = Vec::new();
    let mut completed = 0;
    for t in tasks {
        let (report, (recorded, truncated), held, stopped) = t.await.unwrap();
        assert_eq!(held, recorded, "the streamed runs are the recorded ones");
        assert_eq!(stopped, truncated);
        for r in &recorded {
            assert_eq!(
                r.first_done_ms / 1000,
                r.last_done_ms / 1000,
                "a run ends at each second: {r:?}"
            );
        }
        completed += report.total.counts.completed();
        parts.push((held, stopped));
    }
    // Shifted onto another clock, as a coordinator does with a segment's.
    let shifted: Vec<WriteRun> = {
        let mut held = Vec::new();
        let mut stopped = None;
        RunsUpdate {
            from: 0,
            runs: parts[0].0.clone(),
            truncated_ms: None,
        }
        .apply(5000, &mut held, &mut stopped);
        held
    };
    assert_eq!(shifted[0].first_done_ms, parts[0].0[0].first_done_ms + 5000);
    let (merged, stopped) = livefire_load::merge_runs(&parts);
    assert_eq!(stopped, None);
    assert_eq!(
        merged.iter().map(|r| r.n).sum::<u64>(),
        completed,
        "every write that ended is in the merged runs once: {merged:?}"
    );
    let fates: Vec<bool> = merged.iter().map(|r| r.ok).collect();
    assert_eq!(fates.first(), Some(&true), "{merged:?}");
    assert_eq!(fates.last(), Some(&true), "{merged:?}");
    let failed: Vec<&WriteRun> = merged.iter().filter(|r| !r.ok).collect();
    assert!(!failed.is_empty(), "the stall's writes failed: {merged:?}");
    // The failures are the stall's: sent after it began, ended before it was over.
    assert!(
        failed
            .iter()
            .all(|r| r.first_sent_ms >= 1150 && r.last_done_ms < 2900),
        "{merged:?}"
    );
}
