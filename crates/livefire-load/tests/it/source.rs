//! Source addresses: connections opened from the chosen local addresses, in turn, as the
//! server sees them; addresses that cannot be used are refused before anything is sent.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livefire_core::window::{Outcome, WindowStore};
use livefire_load::{Executor, LoadConfig, LoadError, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A keep-alive server on `bind` that counts accepted connections by the peer's address.
async fn counting_server(bind: &str) -> (String, Arc<Mutex<BTreeMap<IpAddr, usize>>>) {
    let l = TcpListener::bind(bind).await.unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let peers = Arc::new(Mutex::new(BTreeMap::new()));
    let seen = peers.clone();
    tokio::spawn(async move {
        while let Ok((mut s, peer)) = l.accept().await {
            *seen.lock().unwrap().entry(peer.ip()).or_insert(0) += 1;
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    buf.drain(..end);
                    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                    if s.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, peers)
}

fn vus(n: u32) -> Executor {
    Executor::Vus {
        vus: n,
        stages: vec![],
        think: Duration::from_millis(20),
    }
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_come_from_the_source_addresses_in_turn() {
    let (url, peers) = counting_server("127.0.0.1:0").await;
    let mut cfg = LoadConfig::get("src", &url, vus(6), Duration::from_millis(400));
    let sources = ips(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    cfg.source_addresses = sources.clone();
    let report = run(
        cfg,
        Instant::now(),
        CancellationToken::new(),
        Arc::new(WindowStore::new()),
    )
    .await
    .unwrap();
    let c = report.total.counts;
    assert!(
        c.get(Outcome::Ok) >= 6 && c.get(Outcome::Ok) == c.total(),
        "{c:?}"
    );
    let seen = peers.lock().unwrap().clone();
    let want: BTreeMap<IpAddr, usize> = sources.into_iter().map(|ip| (ip, 2)).collect();
    assert_eq!(
        seen, want,
        "6 kept-alive connections, two from each source address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_source_addresses_the_kernel_picks_the_target_side() {
    // The default is unchanged: towards 127.0.0.1 the kernel uses 127.0.0.1.
    let (url, peers) = counting_server("127.0.0.1:0").await;
    let cfg = LoadConfig::get("src", &url, vus(2), Duration::from_millis(200));
    run(
        cfg,
        Instant::now(),
        CancellationToken::new(),
        Arc::new(WindowStore::new()),
    )
    .await
    .unwrap();
    let seen = peers.lock().unwrap().clone();
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        ips(&["127.0.0.1"])
    );
}

#[tokio::test]
async fn unusable_source_addresses_are_refused_before_sending() {
    let (url, peers) = counting_server("127.0.0.1:0").await;
    // (source addresses, what the refusal says)
    let cases: &[(&[&str], &str)] = &[
        // TEST-NET-1 (RFC 5737) is on no machine.
        (
            &["192.0.2.7"],
            "source address 192.0.2.7 is not an address of this machine",
        ),
        (&["127.0.0.2", "::1"], "of different families"),
        (&["::1"], "source address ::1 cannot reach 127.0.0.1"),
    ];
    for (sources, want) in cases {
        let mut cfg = LoadConfig::get("src", &url, vus(1), Duration::from_millis(200));
        cfg.source_addresses = ips(sources);
        let err = run(
            cfg,
            Instant::now(),
            CancellationToken::new(),
            Arc::new(WindowStore::new()),
        )
        .await
        .expect_err("refused");
        assert!(
            matches!(&err, LoadError::Config(m) if m.contains(want)),
            "{sources:?}: {err}"
        );
    }
    assert!(peers.lock().unwrap().is_empty(), "nothing was sent");
}
