//! `http.abort` and `http.delay` on plain HTTP/1.1 through a real hyper upstream, with
//! keep-alive clients speaking raw HTTP so every byte is under the test's control.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use livefire_proxy::{HttpMatch, Stream, Toxic, ToxicKind};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// An HTTP/1.1 upstream answering `200 <method> <path> <body length>` and counting
/// the requests it saw.
async fn http_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let h = h.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let h = h.clone();
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        let line = format!("{} {}", req.method(), req.uri().path());
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes().len())
                            .unwrap_or(0);
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from(format!("{line} {body}")),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    (addr, hits)
}

/// Reads one response (Content-Length bodies only); `None` at EOF.
async fn read_response(r: &mut BufReader<TcpStream>) -> Option<(u16, String)> {
    let mut status_line = String::new();
    let fut = r.read_line(&mut status_line);
    if tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap()
        .unwrap()
        == 0
    {
        return None;
    }
    let status = status_line.get(9..12)?.parse().ok()?;
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.unwrap();
    Some((status, String::from_utf8(body).unwrap()))
}

async fn request(r: &mut BufReader<TcpStream>, raw: &str) -> (u16, String) {
    r.get_mut().write_all(raw.as_bytes()).await.unwrap();
    read_response(r)
        .await
        .expect("the connection closed instead of answering")
}

async fn client(p: &livefire_proxy::Proxy) -> BufReader<TcpStream> {
    BufReader::new(connect(p).await)
}

fn abort(status: u16, body: &str, matching: HttpMatch) -> Toxic {
    Toxic::new(
        Stream::Upstream,
        ToxicKind::HttpAbort {
            status,
            body: body.into(),
            matching,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_answers_the_first_n_matching_requests_without_the_upstream() {
    let (up, hits) = http_upstream().await;
    let p = proxy_to(up).await;
    let m = HttpMatch {
        path_prefix: "/api".into(),
        first: 2,
        ..HttpMatch::default()
    };
    p.add_toxic(abort(503, "down for a drill", m)).unwrap();
    let mut c = client(&p).await;
    // Aborted with a body: the body must not leak into the next request.
    let r = request(
        &mut c,
        "POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz",
    )
    .await;
    assert_eq!(r, (503, "down for a drill".into()));
    let r = request(&mut c, "GET /api/b HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(r.0, 503);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "aborted requests must not reach the upstream"
    );
    // The third matching request and a non-matching one go through, same connection.
    let r = request(&mut c, "GET /api/c HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(r, (200, "GET /api/c 0".into()));
    let r = request(
        &mut c,
        "POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcd",
    )
    .await;
    assert_eq!(r, (200, "POST /other 4".into()));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_matches_method_and_header_and_honours_rate() {
    let (up, _) = http_upstream().await;
    let p = proxy_to(up).await;
    let m = HttpMatch {
        method: "POST".into(),
        header: "X-Fault: yes".into(),
        ..HttpMatch::default()
    };
    p.add_toxic(abort(418, "", m).named("teapot")).unwrap();
    let mut c = client(&p).await;
    assert_eq!(
        request(&mut c, "GET / HTTP/1.1\r\nX-Fault: yes\r\n\r\n")
            .await
            .0,
        200
    );
    assert_eq!(
        request(&mut c, "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
            .await
            .0,
        200
    );
    assert_eq!(
        request(
            &mut c,
            "POST / HTTP/1.1\r\nx-fault: yes\r\nContent-Length: 0\r\n\r\n"
        )
        .await
        .0,
        418
    );
    // rate 0 never acts.
    p.update_toxic("teapot", |t| {
        let mut t = t.clone();
        if let ToxicKind::HttpAbort { matching, .. } = &mut t.kind {
            matching.rate = 0.0;
        }
        Ok(t)
    })
    .unwrap();
    for _ in 0..20 {
        assert_eq!(
            request(
                &mut c,
                "POST / HTTP/1.1\r\nX-Fault: yes\r\nContent-Length: 0\r\n\r\n"
            )
            .await
            .0,
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_with_connection_close_closes_after_the_answer() {
    let (up, _) = http_upstream().await;
    let p = proxy_to(up).await;
    p.add_toxic(abort(500, "boom", HttpMatch::default()))
        .unwrap();
    let mut c = client(&p).await;
    let r = request(&mut c, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r, (500, "boom".into()));
    assert!(
        read_response(&mut c).await.is_none(),
        "the proxy must close after the answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_holds_matching_requests_only() {
    let (up, _) = http_upstream().await;
    let p = proxy_to(up).await;
    let m = HttpMatch {
        path_prefix: "/slow".into(),
        ..HttpMatch::default()
    };
    p.add_toxic(Toxic::new(
        Stream::Upstream,
        ToxicKind::HttpDelay {
            delay: 600,
            matching: m,
        },
    ))
    .unwrap();
    let mut c = client(&p).await;
    let t = Instant::now();
    assert_eq!(request(&mut c, "GET /slow/x HTTP/1.1\r\n\r\n").await.0, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    // Now an hour: a matching request stays held while one that does not match is
    // answered, which shows the match without timing the answer.
    let name = p.toxics()[0].name.clone();
    p.update_toxic(&name, |t| {
        Ok(Toxic {
            kind: ToxicKind::HttpDelay {
                delay: 3_600_000,
                matching: HttpMatch {
                    path_prefix: "/slow".into(),
                    ..HttpMatch::default()
                },
            },
            ..t.clone()
        })
    })
    .unwrap();
    let mut held = client(&p).await;
    let slow =
        tokio::spawn(async move { request(&mut held, "GET /slow/y HTTP/1.1\r\n\r\n").await });
    assert_eq!(request(&mut c, "GET /fast HTTP/1.1\r\n\r\n").await.0, 200);
    assert!(
        !slow.is_finished(),
        "a matching request passed an hour's delay"
    );
    slow.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_pass_the_parser_intact() {
    let (up, hits) = http_upstream().await;
    let p = proxy_to(up).await;
    let m = HttpMatch {
        path_prefix: "/never".into(),
        ..HttpMatch::default()
    };
    p.add_toxic(abort(503, "", m)).unwrap();
    let mut c = client(&p).await;
    let req = "POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n";
    assert_eq!(request(&mut c, req).await, (200, "POST /up 9".into()));
    assert_eq!(request(&mut c, "GET /never HTTP/1.1\r\n\r\n").await.0, 503);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_an_http_toxic_releases_a_half_received_head() {
    let (up, _) = http_upstream().await;
    let p = proxy_to(up).await;
    p.add_toxic(abort(
        503,
        "",
        HttpMatch {
            path_prefix: "/x".into(),
            ..HttpMatch::default()
        },
    ))
    .unwrap();
    let mut c = client(&p).await;
    c.get_mut()
        .write_all(b"GET /y HTTP/1.1\r\nHo")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    p.remove_toxic("http.abort_upstream").unwrap();
    let r = request(&mut c, "st: a\r\n\r\n").await;
    assert_eq!(r, (200, "GET /y 0".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_toxics_via_the_api_default_to_upstream() {
    let (api, _stop) = api_server().await;
    let (up, _) = http_upstream().await;
    let (_, b) = http(
        api,
        "POST",
        "/proxies",
        Some(&format!(r#"{{"name": "web", "upstream": "{up}"}}"#)),
    )
    .await;
    let listen = json(&b)["listen"].as_str().unwrap().to_string();
    let (st, b) = http(api, "POST", "/proxies/web/toxics",
        Some(r#"{"type": "http.abort", "attributes": {"status": 502, "body": "bad gateway drill", "first": 1}}"#)).await;
    assert_eq!(st, 200, "{b}");
    let t = json(&b);
    assert_eq!(t["name"], "http.abort_upstream");
    assert_eq!(t["stream"], "upstream");
    assert_eq!(t["attributes"]["status"], 502);
    let mut c = BufReader::new(TcpStream::connect(&listen).await.unwrap());
    assert_eq!(
        request(&mut c, "GET / HTTP/1.1\r\n\r\n").await,
        (502, "bad gateway drill".into())
    );
    assert_eq!(request(&mut c, "GET / HTTP/1.1\r\n\r\n").await.0, 200);
    let (st, b) = http(
        api,
        "POST",
        "/proxies/web/toxics",
        Some(r#"{"type": "http.delay", "stream": "downstream"}"#),
    )
    .await;
    assert_eq!(st, 400, "{b}");
    let (st, _) = http(
        api,
        "POST",
        "/proxies/web/toxics",
        Some(r#"{"type": "http.abort", "name": "x", "attributes": {"status": 99}}"#),
    )
    .await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_n_counts_across_connections() {
    let (up, _) = http_upstream().await;
    let p = proxy_to(up).await;
    p.add_toxic(abort(
        503,
        "",
        HttpMatch {
            first: 1,
            ..HttpMatch::default()
        },
    ))
    .unwrap();
    let mut a = client(&p).await;
    assert_eq!(request(&mut a, "GET / HTTP/1.1\r\n\r\n").await.0, 503);
    // A fresh connection does not get a fresh allowance: "the first N requests fail".
    let mut b = client(&p).await;
    assert_eq!(request(&mut b, "GET / HTTP/1.1\r\n\r\n").await.0, 200);
    assert_eq!(request(&mut a, "GET / HTTP/1.1\r\n\r\n").await.0, 200);
}
