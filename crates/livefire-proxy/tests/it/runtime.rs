//! Changing a proxy while connections are open: the point of the library.

use std::time::Duration;

use livefire_proxy::{Proxy, ProxyConfig, ProxyError, Stream, Toxic, ToxicKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_toxics_reach_connections_already_open() {
    let p = proxy_to(echo_server().await).await;
    let mut s = connect(&p).await;
    round_trip(&mut s, b"before").await;
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::Latency {
            latency: 300,
            jitter: 0,
        },
    ))
    .unwrap();
    let after = round_trip(&mut s, b"after").await;
    assert!(
        after >= Duration::from_millis(300),
        "the open connection took {after:?}"
    );
}

/// An hour of latency: a reply that arrives at all was released by the removal, not by
/// the toxic's own clock, so nothing here depends on how fast the machine is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_toxic_under_traffic_takes_effect_at_once() {
    let p = proxy_to(echo_server().await).await;
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::Latency {
            latency: 3_600_000,
            jitter: 0,
        },
    ))
    .unwrap();
    let mut s = connect(&p).await;
    s.write_all(b"held back").await.unwrap();
    let mut back = [0u8; 9];
    let held = tokio::time::timeout(Duration::from_millis(200), s.read_exact(&mut back)).await;
    assert!(held.is_err(), "the reply passed an hour of latency");
    p.remove_toxic("latency_downstream").unwrap();
    tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut back))
        .await
        .expect("the queued reply must be released when the toxic goes")
        .unwrap();
    assert_eq!(&back, b"held back");
    // And the connection carries new traffic with no toxic.
    round_trip(&mut s, b"again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_a_toxic_keeps_its_place_and_changes_its_effect() {
    let p = proxy_to(echo_server().await).await;
    p.add_toxic(Toxic::new(
        Stream::Downstream,
        ToxicKind::Latency {
            latency: 50,
            jitter: 0,
        },
    ))
    .unwrap();
    let mut s = connect(&p).await;
    assert!(round_trip(&mut s, b"a").await >= Duration::from_millis(50));
    let t = p
        .update_toxic("latency_downstream", |t| {
            Ok(Toxic {
                kind: ToxicKind::Latency {
                    latency: 400,
                    jitter: 0,
                },
                ..t.clone()
            })
        })
        .unwrap();
    assert_eq!(t.name, "latency_downstream");
    assert!(round_trip(&mut s, b"b").await >= Duration::from_millis(400));
    assert_eq!(p.toxics().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_missing_toxics_are_errors() {
    let p = proxy_to(echo_server().await).await;
    let t = Toxic::new(Stream::Upstream, ToxicKind::Bandwidth { rate: 1 });
    p.add_toxic(t.clone()).unwrap();
    assert!(matches!(p.add_toxic(t), Err(ProxyError::ToxicExists(_))));
    assert!(matches!(
        p.remove_toxic("nope"),
        Err(ProxyError::ToxicNotFound(_))
    ));
    p.reset_toxics();
    assert!(p.toxics().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_proxy_refuses_new_and_cuts_open_connections() {
    let p = proxy_to(echo_server().await).await;
    let listen = p.listen();
    let mut s = connect(&p).await;
    round_trip(&mut s, b"up").await;
    p.set_enabled(false).unwrap();
    assert!(!p.enabled());
    let (got, _) = read_to_end(&mut s).await;
    assert!(got.is_empty(), "the open connection must be cut");
    let err = TcpStream::connect(&listen)
        .await
        .expect_err("a disabled proxy must refuse");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    // Enabled again: same address, traffic flows.
    p.set_enabled(true).unwrap();
    assert_eq!(p.listen(), listen);
    let mut s = connect(&p).await;
    round_trip(&mut s, b"back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_the_proxy() {
    let p = proxy_to(echo_server().await).await;
    let listen = p.listen();
    let mut s = connect(&p).await;
    round_trip(&mut s, b"x").await;
    drop(p);
    let (got, _) = read_to_end(&mut s).await;
    assert!(got.is_empty());
    // The listener goes away with the handle.
    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(&listen).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the listener outlived its handle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occupied_listen_port_is_a_listen_error() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let err = Proxy::start(ProxyConfig::new("x", addr.clone(), "127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::Listen { .. }), "{err}");
    assert!(err.to_string().contains(&addr), "{err}");
    let err = Proxy::start(ProxyConfig::new("x", "127.0.0.1:0", "no-port"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::BadAddress { .. }), "{err}");
}
