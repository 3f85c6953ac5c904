//! The io_uring data plane: connections with no toxic leave the tokio path for it, and
//! come back (mid-stream, nothing lost) when a toxic arrives.

use std::time::Duration;

use livefire_proxy::{IoUringUnavailable, Stream, Toxic, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// Connections io_uring forwarded so far, or `None` when this process forwards on the
/// epoll path; then the test is skipped, saying which step of starting io_uring failed.
/// A kernel that refuses io_uring is not a failure under CI (`.ci/run` cannot turn a
/// kernel feature on, and the epoll path is tested by
/// `the_epoll_path_passes_the_same_tests`); a ring that was set up and then failed is.
fn uring_or_skip() -> Option<u64> {
    let n = livefire_proxy::io_uring_connections();
    if n.is_none() {
        let why = livefire_proxy::io_uring_unavailable();
        if let Some(IoUringUnavailable::Failed(e)) = &why
            && livefire_testkit::in_ci()
        {
            panic!("io_uring was set up and then failed: {e}");
        }
        let why = why.map_or("no reason recorded".to_owned(), |w| w.to_string());
        livefire_testkit::skip_unsupported(&format!(
            "the proxy forwards on its epoll path here, not io_uring: {why}"
        ));
    }
    n
}

fn payload(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

/// Writes `data` (then half-closes) while reading the echo to the end; with `pace`,
/// in 32 KiB pieces that far apart.
async fn echo_paced(s: &mut tokio::net::TcpStream, data: &[u8], pace: Option<Duration>) -> Vec<u8> {
    let (mut r, mut w) = s.split();
    let send = async {
        match pace {
            None => w.write_all(data).await.unwrap(),
            Some(gap) => {
                for piece in data.chunks(32 * 1024) {
                    w.write_all(piece).await.unwrap();
                    tokio::time::sleep(gap).await;
                }
            }
        }
        w.shutdown().await.unwrap();
    };
    let recv = async {
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut got))
            .await
            .expect("echo did not end within 60s")
            .unwrap();
        got
    };
    let ((), got) = tokio::join!(send, recv);
    got
}

async fn echo_all(s: &mut tokio::net::TcpStream, data: &[u8]) -> Vec<u8> {
    echo_paced(s, data, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_toxics_are_forwarded_by_io_uring() {
    let Some(before) = uring_or_skip() else {
        return;
    };
    let p = proxy_to(echo_server().await).await;
    let mut s = connect(&p).await;
    round_trip(&mut s, b"hello").await;
    let after = livefire_proxy::io_uring_connections().unwrap();
    assert!(after > before, "the connection stayed on the epoll path");
    let data = payload(3_000_000, 7);
    let got = echo_all(&mut s, &data).await;
    assert!(got == data, "echoed {} bytes of {}", got.len(), data.len());
    let st = p.stats();
    assert_eq!(st.upstream.sent_bytes, data.len() as u64 + 5);
    assert_eq!(st.downstream.received_bytes, data.len() as u64 + 5);
}

/// More connections moving bulk data at once than the plane has buffers for: receives
/// run out of buffers and must resume as buffers come back, with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_bulk_connections_at_once_keep_every_byte() {
    if uring_or_skip().is_none() {
        return;
    }
    let p = proxy_to(echo_server().await).await;
    let mut tasks = Vec::new();
    for i in 0..48u32 {
        let mut s = connect(&p).await;
        tasks.push(tokio::spawn(async move {
            let data = payload(1_000_000, i);
            let got = echo_all(&mut s, &data).await;
            assert!(
                got == data,
                "connection {i}: echoed {} bytes of {}",
                got.len(),
                data.len()
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(p.stats().downstream.sent_bytes, 48 * 1_000_000);
}

/// A toxic added while bulk data flows takes the connection off the plane mid-stream;
/// removing it later leaves the connection on the tokio path. Every byte arrives once,
/// in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxics_added_and_removed_mid_stream_lose_nothing() {
    if uring_or_skip().is_none() {
        return;
    }
    let p = proxy_to(echo_server().await).await;
    let mut s = connect(&p).await;
    // 4 MB in 32 KiB pieces 2 ms apart: the stream lasts over 250 ms, the toxic
    // changes below happen in the middle of it.
    let data = payload(4_000_000, 3);
    let changes = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(15)).await;
            let t = p
                .add_toxic(Toxic::new(
                    Stream::Downstream,
                    ToxicKind::Latency {
                        latency: 5,
                        jitter: 0,
                    },
                ))
                .unwrap();
            tokio::time::sleep(Duration::from_millis(15)).await;
            p.remove_toxic(&t.name).unwrap();
        }
    };
    let (got, ()) = tokio::join!(
        echo_paced(&mut s, &data, Some(Duration::from_millis(2))),
        changes
    );
    assert!(got == data, "echoed {} bytes of {}", got.len(), data.len());
}

/// An upstream that stops reading (a paused process, the classic drill) must not hold
/// the plane's shared buffers hostage: connections of other proxies keep flowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_do_not_starve_the_others() {
    if uring_or_skip().is_none() {
        return;
    }
    // Accepts and holds every connection, never reads; a small receive buffer so the
    // stall reaches the proxy quickly.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = sock.listen(1024).unwrap();
    let stalled_addr = l.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let stalled = proxy_to(stalled_addr).await;
    // More stalled connections than the plane has buffers, each with more to send than
    // the kernel's socket buffers hold.
    let mut writers = Vec::new();
    for _ in 0..300 {
        let mut s = connect(&stalled).await;
        writers.push(tokio::spawn(async move {
            let _ = s.write_all(&vec![7u8; 4 << 20]).await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let p = proxy_to(echo_server().await).await;
    let mut s = connect(&p).await;
    let data = payload(500_000, 11);
    let got = tokio::time::timeout(Duration::from_secs(15), echo_all(&mut s, &data))
        .await
        .expect("a healthy connection stalled behind the stuck ones");
    assert!(got == data, "echoed {} bytes of {}", got.len(), data.len());
    for w in writers {
        w.abort();
    }
    holder.abort();
}

/// Bulk transfers on other connections, more than the plane has buffers for, must not
/// hold up a connection that carries a byte at a time. Regression: a receive that found
/// the ring empty was retried behind the bulk connections' receives, which took every
/// buffer each time the ring was refilled, so the small connection waited for as long
/// as the bulk lasted (CI: "the upstream's bytes did not flow" while the stalled
/// connections of the test above filled the plane).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_is_not_held_up_behind_bulk_transfers() {
    if uring_or_skip().is_none() {
        return;
    }
    // One per ring buffer: enough that their receives empty the ring each time it is
    // refilled (64 did not starve the old plane here, 128 did).
    const BULK_CONNS: usize = 256;
    let (sink, _ends) = sink_server().await;
    let bulk = proxy_to(sink).await;
    let piece = std::sync::Arc::new(vec![7u8; 64 * 1024]);
    let mut writers = Vec::new();
    for _ in 0..BULK_CONNS {
        let mut s = connect(&bulk).await;
        let piece = piece.clone();
        writers.push(tokio::spawn(async move {
            while s.write_all(&piece).await.is_ok() {}
        }));
    }
    let forwarded = || bulk.stats().upstream.sent_bytes;
    let mut waits = 0;
    while forwarded() < 32 << 20 {
        waits += 1;
        assert!(waits < 1200, "the bulk transfers did not get going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = forwarded();
    let p = proxy_to(echo_server().await).await;
    let mut s = connect(&p).await;
    for i in 0..20u8 {
        s.write_all(&[i]).await.unwrap();
        let mut back = [0u8; 1];
        let echoed = tokio::time::timeout(Duration::from_secs(20), s.read_exact(&mut back)).await;
        assert!(
            matches!(echoed, Ok(Ok(_))) && back == [i],
            "round trip {i} of one byte did not come back within 20s beside the bulk"
        );
    }
    // The bulk was still flowing all along: the trickle did not merely outlast it.
    assert!(
        forwarded() > before,
        "the bulk transfers stopped during the trickle"
    );
    for w in writers {
        w.abort();
    }
}

/// An upstream that stopped reading (paused) while it still sends: a toxic added then
/// must reach the connection at once (not after the stuck bytes drain, which is never),
/// and the other direction must keep flowing meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxics_reach_a_connection_whose_upstream_stopped_reading() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    if uring_or_skip().is_none() {
        return;
    }
    // Never reads; sends one byte every 20 ms.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut beats = Vec::new();
        while let Ok((mut s, _)) = l.accept().await {
            beats.push(tokio::spawn(async move {
                while s.write_all(b"h").await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
    });
    let p = proxy_to(addr).await;
    let (mut r, mut w) = connect(&p).await.into_split();
    let got = Arc::new(AtomicUsize::new(0));
    let counter = got.clone();
    let reader = tokio::spawn(async move {
        let mut b = [0u8; 1024];
        while let Ok(n @ 1..) = r.read(&mut b).await {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    });
    // Far more than the socket buffers hold: the upload gets stuck in the proxy.
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&vec![7u8; 64 << 20]).await;
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Five more of the upstream's bytes arrive (within a generous bound, so a busy
    // machine does not decide the outcome; the upstream sends one every 20 ms).
    let flows = || {
        let got = got.clone();
        async move {
            let a = got.load(Ordering::Relaxed);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while got.load(Ordering::Relaxed) - a < 5 && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            got.load(Ordering::Relaxed) - a >= 5
        }
    };
    assert!(flows().await, "the upstream's bytes did not flow");
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::Latency {
            latency: 1,
            jitter: 0,
        },
    ))
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        flows().await,
        "after a toxic was added, the upstream's bytes stopped"
    );
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::ResetPeer { timeout: 0 },
    ))
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("reset_peer did not reach the stuck connection")
        .unwrap();
    writer.abort();
    server.abort();
}

/// The epoll path (kernels without io_uring, `LIVEFIRE_PROXY_IO=epoll`) stays tested:
/// this binary runs its toxic, runtime and HTTP fault tests again in a child with
/// io_uring turned off.
#[test]
fn the_epoll_path_passes_the_same_tests() {
    if std::env::var_os("LIVEFIRE_PROXY_IO").is_some() {
        livefire_testkit::skip_unsupported(
            "LIVEFIRE_PROXY_IO is set: this whole run already uses the path it names",
        );
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["toxics::", "runtime::", "http_faults::", "--test-threads=2"])
        .env("LIVEFIRE_PROXY_IO", "epoll")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "on the epoll path:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passed: usize = stdout
        .split("test result: ok. ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= 25,
        "only {passed} tests ran on the epoll path:\n{stdout}"
    );
}
