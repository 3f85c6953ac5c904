//! Each toxic measured through a real proxied connection. Lower bounds are strict,
//! upper bounds generous: a busy machine is slow, never fast.

use std::time::{Duration, Instant};

use livefire_proxy::{Stream, Toxic, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_never_below_the_setting() {
    let p = proxy_to(echo_server().await).await;
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::Latency {
            latency: 150,
            jitter: 0,
        },
    ))
    .unwrap();
    p.add_toxic(Toxic::new(
        Stream::Upstream,
        ToxicKind::Latency {
            latency: 50,
            jitter: 0,
        },
    ))
    .unwrap();
    let mut s = connect(&p).await;
    for i in 0..5u8 {
        let took = round_trip(&mut s, &[i; 100]).await;
        assert!(
            took >= Duration::from_millis(200),
            "round trip {i} took {took:?}"
        );
        assert!(
            took < Duration::from_secs(5),
            "round trip {i} took {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_jitter_stays_within_bounds() {
    let p = proxy_to(echo_server().await).await;
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::Latency {
            latency: 100,
            jitter: 50,
        },
    ))
    .unwrap();
    let mut s = connect(&p).await;
    for i in 0..5u8 {
        let took = round_trip(&mut s, &[i; 10]).await;
        assert!(
            took >= Duration::from_millis(50),
            "round trip {i} took {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_is_never_above_the_rate() {
    let payload: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
    let p = proxy_to(source_server(payload.clone()).await).await;
    // 20 KB/s = 20,000 bytes/s; the proxy releases 50 ms (1,000 bytes) at a time.
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::Bandwidth { rate: 20 },
    ))
    .unwrap();
    // Start the clock before connecting: the proxy may release the first piece before
    // this task runs again after connect() (a loaded machine), never before connect().
    let t = Instant::now();
    let mut s = connect(&p).await;
    let (got, r) = read_to_end(&mut s).await;
    let took = t.elapsed();
    r.unwrap();
    assert_eq!(got, payload, "bytes must arrive intact");
    let floor = Duration::from_secs_f64((30_000.0 - 1_000.0) / 20_000.0);
    assert!(
        took >= floor,
        "30 kB at 20 KB/s took {took:?}, less than {floor:?}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_drops_data_then_closes_after_the_timeout() {
    let (up, mut totals) = sink_server().await;
    let p = proxy_to(up).await;
    p.add_toxic(Toxic::new(
        Stream::Upstream,
        ToxicKind::Timeout { timeout: 300 },
    ))
    .unwrap();
    let t = Instant::now();
    let mut s = connect(&p).await;
    s.write_all(b"this never reaches the server").await.unwrap();
    let (got, _) = read_to_end(&mut s).await;
    let took = t.elapsed();
    assert!(got.is_empty());
    assert!(took >= Duration::from_millis(300), "closed after {took:?}");
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
    let total = tokio::time::timeout(Duration::from_secs(10), totals.recv())
        .await
        .unwrap();
    assert_eq!(total, Some(0), "the upstream must receive nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_zero_holds_the_connection_open() {
    let p = proxy_to(echo_server().await).await;
    p.add_toxic(Toxic::new(
        Stream::Upstream,
        ToxicKind::Timeout { timeout: 0 },
    ))
    .unwrap();
    let mut s = connect(&p).await;
    s.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_millis(700), s.read(&mut buf)).await;
    assert!(
        r.is_err(),
        "nothing may come back and the connection must stay open: {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_peer_resets_after_the_timeout() {
    let p = proxy_to(echo_server().await).await;
    p.add_toxic(Toxic::new(
        Stream::Upstream,
        ToxicKind::ResetPeer { timeout: 200 },
    ))
    .unwrap();
    let t = Instant::now();
    let mut s = connect(&p).await;
    s.write_all(b"ping").await.unwrap();
    let (got, r) = read_to_end(&mut s).await;
    let took = t.elapsed();
    assert!(got.is_empty());
    let err = r.expect_err("a reset connection must fail the read, not end cleanly");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert!(took >= Duration::from_millis(200), "reset after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_data_closes_after_exactly_the_limit() {
    let payload = vec![7u8; 10_000];
    let p = proxy_to(source_server(payload).await).await;
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::LimitData { bytes: 1234 },
    ))
    .unwrap();
    let mut s = connect(&p).await;
    let (got, _) = read_to_end(&mut s).await;
    assert_eq!(got.len(), 1234);
    // A new connection gets its own allowance.
    let mut s = connect(&p).await;
    let (got, _) = read_to_end(&mut s).await;
    assert_eq!(got.len(), 1234);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slicer_cuts_into_small_delayed_pieces() {
    let payload: Vec<u8> = (0..200u8).collect();
    let p = proxy_to(source_server(payload.clone()).await).await;
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::Slicer {
            average_size: 10,
            size_variation: 3,
            delay: 20_000,
        },
    ))
    .unwrap();
    let t = Instant::now();
    let mut s = connect(&p).await;
    let mut got = Vec::new();
    let mut reads = 0;
    let mut buf = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(n <= 200);
        reads += 1;
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, payload);
    // 200 bytes in pieces of 7..=13 bytes: at least 15 pieces, 20 ms apart.
    assert!(reads >= 5, "only {reads} reads: the data was not sliced");
    assert!(
        t.elapsed() >= Duration::from_millis(14 * 20),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_close_delays_the_close() {
    let p = proxy_to(source_server(b"bye".to_vec()).await).await;
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::SlowClose { delay: 400 },
    ))
    .unwrap();
    let t = Instant::now();
    let mut s = connect(&p).await;
    let (got, r) = read_to_end(&mut s).await;
    r.unwrap();
    assert_eq!(got, b"bye");
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "closed after {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxicity_zero_never_acts() {
    let p = proxy_to(echo_server().await).await;
    p.add_toxic(
        Toxic::new(
            Stream::Downstream,
            ToxicKind::Latency {
                latency: 3_600_000,
                jitter: 0,
            },
        )
        .with_toxicity(0.0),
    )
    .unwrap();
    // An hour of latency: a round trip that completes at all was not delayed.
    for _ in 0..5 {
        let mut s = connect(&p).await;
        round_trip(&mut s, b"quick").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_rate_one_drops_everything() {
    let (up, mut totals) = sink_server().await;
    let p = proxy_to(up).await;
    p.add_toxic(Toxic::new(Stream::Upstream, ToxicKind::Drop { rate: 1.0 }))
        .unwrap();
    let mut s = connect(&p).await;
    s.write_all(&[1u8; 5000]).await.unwrap();
    s.shutdown().await.unwrap();
    let total = tokio::time::timeout(Duration::from_secs(10), totals.recv())
        .await
        .unwrap();
    assert_eq!(total, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rate_one_changes_every_chunk_and_is_seeded() {
    let payload = vec![0u8; 4000];
    let up = source_server(payload.clone()).await;
    let p = proxy_to(up).await;
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::Corrupt {
            rate: 1.0,
            seed: 42,
        },
    ))
    .unwrap();
    let mut s = connect(&p).await;
    let (got, _) = read_to_end(&mut s).await;
    assert_ne!(got, payload, "rate 1.0 must change the bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_path_keeps_bulk_data_intact_and_passes_half_close() {
    let p = proxy_to(echo_server().await).await;
    let mut s = connect(&p).await;
    let payload: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(&payload).await.unwrap();
        // Half-close: the echo server sees EOF, finishes echoing and closes its side.
        w.shutdown().await.unwrap();
    };
    let recv = async {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        got
    };
    let ((), got) = tokio::join!(send, recv);
    assert!(
        got == payload,
        "echoed {} bytes of {}",
        got.len(),
        payload.len()
    );
    let st = p.stats();
    assert_eq!(st.upstream.sent_bytes, payload.len() as u64);
    assert_eq!(st.downstream.sent_bytes, payload.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_closes_the_client_and_counts_it() {
    // A port nothing listens on: bind, note it, close.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p = proxy_to(dead).await;
    let mut s = connect(&p).await;
    let (got, _) = read_to_end(&mut s).await;
    assert!(got.is_empty());
    assert_eq!(p.stats().upstream_errors, 1);
}
