//! Hammers the admin API's request handling with malformed and mutated bodies on every
//! route; the contract is: an answer with a 2xx/4xx/5xx status, never a panic.

use http::Method;
use livefire_proxy::api::Registry;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEEDS: &[&str] = &[
    r#"{"type": "latency", "stream": "upstream", "toxicity": 0.5, "attributes": {"latency": 10, "jitter": 2}}"#,
    r#"{"type": "slicer", "attributes": {"average_size": 1, "size_variation": 9, "delay": 1}}"#,
    r#"{"type": "corrupt", "attributes": {"rate": 0.5, "seed": 7}}"#,
    r#"{"type": "http.abort", "attributes": {"status": 503, "body": "x", "first": 2, "method": "GET", "path_prefix": "/a", "header": "X: y", "rate": 0.5}}"#,
    r#"{"type": "http.delay", "stream": "upstream", "attributes": {"delay": 5, "header": null}}"#,
    r#"{"attributes": {"rate": 1e308}, "toxicity": -1}"#,
    r#"{"name": "p", "upstream": "127.0.0.1:9", "enabled": false}"#,
    r#"[{"name": "q", "upstream": "127.0.0.1:9", "enabled": false}]"#,
    r#"{"enabled": true}"#,
    r#"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#,
    "\u{feff}{}",
    "",
    "null",
    "\"\"",
    "1e999999",
    "{\"type\": \"\\ud800\"}",
];

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/proxies"),
    ("POST", "/populate"),
    ("POST", "/proxies/p"),
    ("PATCH", "/proxies/p"),
    ("POST", "/proxies/p/toxics"),
    ("POST", "/proxies/p/toxics/latency_downstream"),
    ("PATCH", "/proxies/p/toxics/latency_downstream"),
    ("DELETE", "/proxies/p/toxics/latency_downstream"),
    ("GET", "/proxies/p/toxics/%2e%2e"),
    ("GET", "//proxies///"),
];

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.random_range(1..6) {
        match rng.random_range(0..5) {
            0 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] = rng.random();
            }
            1 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v.truncate(i);
            }
            2 => {
                let i = rng.random_range(0..=v.len());
                let junk: &[u8] = [
                    &b"{"[..],
                    b"}",
                    b"\"",
                    b",",
                    b":",
                    b"-1",
                    b"null",
                    b"[",
                    b"\\u0000",
                    b"9999999999999999999999",
                ][rng.random_range(0..10)];
                v.splice(i..i, junk.iter().copied());
            }
            3 if v.len() > 1 => {
                let a = rng.random_range(0..v.len());
                let b = rng.random_range(0..v.len());
                v.swap(a, b);
            }
            _ => v.push(rng.random()),
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_never_panic() {
    let reg = Registry::new();
    // A proxy to aim the per-proxy routes at; disabled so the fuzz binds nothing.
    let (st, _) = reg
        .handle(
            &Method::POST,
            "/proxies",
            br#"{"name": "p", "upstream": "127.0.0.1:9", "enabled": false}"#,
        )
        .unwrap();
    assert_eq!(st.as_u16(), 201);
    reg.handle(
        &Method::POST,
        "/proxies/p/toxics",
        br#"{"type": "latency"}"#,
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(0x11fe);
    let mut answered = 0;
    for i in 0..20_000 {
        let seed = SEEDS[i % SEEDS.len()].as_bytes();
        let body = if i % 7 == 0 {
            (0..rng.random_range(0..64)).map(|_| rng.random()).collect()
        } else {
            mutate(&mut rng, seed)
        };
        // Keep the fuzz from binding ports: it may create proxies, never enabled ones
        // on addresses it chose.
        if body.windows(6).any(|w| w == b"listen") {
            continue;
        }
        let (m, path) = ROUTES[rng.random_range(0..ROUTES.len())];
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        let r = reg.handle(&method, path, &body);
        let status = match &r {
            Ok((s, _)) => *s,
            Err(e) => e.status,
        };
        assert!(status.as_u16() >= 200 && status.as_u16() < 600);
        if let Err(e) = &r {
            assert!(!e.message.is_empty());
            let v = e.to_json();
            assert_eq!(v["status"], status.as_u16());
        }
        answered += 1;
    }
    assert!(answered > 15_000);
}
