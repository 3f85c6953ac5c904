//! The admin API against Toxiproxy's contract: routes, status codes, JSON shapes,
//! defaults and error bodies.

use std::time::Duration;

use serde_json::json;
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_lifecycle_matches_toxiproxy() {
    let (api, _stop) = api_server().await;
    let up = echo_server().await;
    let body = format!(r#"{{"name": "echo", "listen": "127.0.0.1:0", "upstream": "{up}"}}"#);
    let (st, b) = http(api, "POST", "/proxies", Some(&body)).await;
    assert_eq!(st, 201, "{b}");
    let p = json(&b);
    assert_eq!(p["name"], "echo");
    assert_eq!(p["upstream"], up.to_string());
    assert_eq!(p["enabled"], true);
    assert_eq!(p["toxics"], json!([]));
    let listen = p["listen"].as_str().unwrap().to_string();
    assert!(
        !listen.ends_with(":0"),
        "the bound port must be shown: {listen}"
    );

    let (st, b) = http(api, "POST", "/proxies", Some(&body)).await;
    assert_eq!(
        (st, json(&b)),
        (409, json!({"error": "proxy already exists", "status": 409}))
    );
    let (st, b) = http(api, "POST", "/proxies", Some(r#"{"name": "x"}"#)).await;
    assert_eq!(
        (st, json(&b)),
        (
            400,
            json!({"error": "missing required field: upstream", "status": 400})
        )
    );
    let (st, b) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"upstream": "127.0.0.1:1"}"#),
    )
    .await;
    assert_eq!(json(&b)["error"], "missing required field: name");
    assert_eq!(st, 400);
    let (st, b) = http(api, "POST", "/proxies", Some("{nope")).await;
    assert_eq!(st, 400);
    assert!(
        json(&b)["error"]
            .as_str()
            .unwrap()
            .starts_with("bad request body"),
        "{b}"
    );

    let (st, b) = http(api, "GET", "/proxies", None).await;
    assert_eq!(st, 200);
    assert_eq!(json(&b)["echo"]["listen"], listen);
    let (st, b) = http(api, "GET", "/proxies/echo", None).await;
    assert_eq!((st, json(&b)["name"].clone()), (200, json!("echo")));
    let (st, b) = http(api, "GET", "/proxies/missing", None).await;
    assert_eq!(
        (st, json(&b)),
        (404, json!({"error": "proxy not found", "status": 404}))
    );

    // Traffic flows; disabling refuses; enabling (PATCH) brings it back.
    let mut s = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut s, b"hi").await;
    let (st, b) = http(api, "POST", "/proxies/echo", Some(r#"{"enabled": false}"#)).await;
    assert_eq!((st, json(&b)["enabled"].clone()), (200, json!(false)));
    assert!(TcpStream::connect(&listen).await.is_err());
    let (st, b) = http(api, "PATCH", "/proxies/echo", Some(r#"{"enabled": true}"#)).await;
    assert_eq!((st, json(&b)["enabled"].clone()), (200, json!(true)));
    assert_eq!(json(&b)["listen"], listen);
    let mut s = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut s, b"again").await;

    let (st, b) = http(api, "DELETE", "/proxies/echo", None).await;
    assert_eq!((st, b.as_str()), (204, ""));
    let (st, _) = http(api, "DELETE", "/proxies/echo", None).await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxic_lifecycle_matches_toxiproxy() {
    let (api, _stop) = api_server().await;
    let up = echo_server().await;
    let (_, b) = http(
        api,
        "POST",
        "/proxies",
        Some(&format!(r#"{{"name": "e", "upstream": "{up}"}}"#)),
    )
    .await;
    let listen = json(&b)["listen"].as_str().unwrap().to_string();
    assert!(
        listen.starts_with("127.0.0.1:"),
        "default listen stays on loopback: {listen}"
    );

    let (st, b) = http(
        api,
        "POST",
        "/proxies/e/toxics",
        Some(r#"{"type": "latency", "attributes": {"latency": 300}}"#),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        json(&b),
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
        "toxicity": 1.0, "attributes": {"latency": 300, "jitter": 0}})
    );
    let mut s = TcpStream::connect(&listen).await.unwrap();
    assert!(round_trip(&mut s, b"slow").await >= Duration::from_millis(300));

    let (st, b) = http(
        api,
        "POST",
        "/proxies/e/toxics",
        Some(r#"{"type": "latency"}"#),
    )
    .await;
    assert_eq!(st, 409, "{b}");
    assert!(
        json(&b)["error"]
            .as_str()
            .unwrap()
            .starts_with("toxic already exists")
    );
    let (st, b) = http(
        api,
        "POST",
        "/proxies/e/toxics",
        Some(r#"{"type": "bogus"}"#),
    )
    .await;
    assert_eq!(st, 400);
    assert!(
        json(&b)["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid toxic type"),
        "{b}"
    );
    let (st, b) = http(
        api,
        "POST",
        "/proxies/e/toxics",
        Some(r#"{"type": "latency", "stream": "sideways"}"#),
    )
    .await;
    assert_eq!(
        (st, json(&b)["error"].clone()),
        (
            400,
            json!("stream was invalid, can be either upstream or downstream")
        )
    );
    let (st, _) = http(
        api,
        "POST",
        "/proxies/nope/toxics",
        Some(r#"{"type": "latency"}"#),
    )
    .await;
    assert_eq!(st, 404);

    let (st, b) = http(api, "POST", "/proxies/e/toxics", Some(r#"{"name": "cut", "type": "limit_data", "stream": "upstream", "toxicity": 0.5, "attributes": {"bytes": 10}}"#)).await;
    assert_eq!(st, 200);
    assert_eq!(json(&b)["name"], "cut");
    let (st, b) = http(api, "GET", "/proxies/e/toxics", None).await;
    assert_eq!(st, 200);
    let names: Vec<_> = json(&b)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(
        names,
        vec![json!("cut"), json!("latency_downstream")],
        "upstream chain first"
    );
    let (st, b) = http(api, "GET", "/proxies/e/toxics/cut", None).await;
    assert_eq!(
        (st, json(&b)["attributes"]["bytes"].clone()),
        (200, json!(10))
    );
    let (st, b) = http(api, "GET", "/proxies/e/toxics/nope", None).await;
    assert_eq!(
        (st, json(&b)),
        (404, json!({"error": "toxic not found", "status": 404}))
    );

    let (st, b) = http(
        api,
        "PATCH",
        "/proxies/e/toxics/latency_downstream",
        Some(r#"{"attributes": {"jitter": 5}}"#),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(json(&b)["attributes"], json!({"latency": 300, "jitter": 5}));
    let (st, _) = http(
        api,
        "POST",
        "/proxies/e/toxics/nope",
        Some(r#"{"attributes": {}}"#),
    )
    .await;
    assert_eq!(st, 404);

    // An hour of latency: a round trip that completes at all proves the DELETE took the
    // toxic off the open connection.
    let (st, _) = http(
        api,
        "POST",
        "/proxies/e/toxics/latency_downstream",
        Some(r#"{"attributes": {"latency": 3600000}}"#),
    )
    .await;
    assert_eq!(st, 200);
    let (st, b) = http(api, "DELETE", "/proxies/e/toxics/latency_downstream", None).await;
    assert_eq!((st, b.as_str()), (204, ""));
    round_trip(&mut s, b"fast").await;
    let (st, _) = http(api, "DELETE", "/proxies/e/toxics/latency_downstream", None).await;
    assert_eq!(st, 404);

    // Reset: every proxy enabled again, every toxic gone.
    http(api, "POST", "/proxies/e", Some(r#"{"enabled": false}"#)).await;
    let (st, b) = http(api, "POST", "/reset", None).await;
    assert_eq!((st, b.as_str()), (204, ""));
    let (_, b) = http(api, "GET", "/proxies/e", None).await;
    assert_eq!(json(&b)["enabled"], true);
    assert_eq!(json(&b)["toxics"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn populate_creates_keeps_and_replaces() {
    let (api, _stop) = api_server().await;
    let up = echo_server().await;
    let body = format!(
        r#"[{{"name": "a", "upstream": "{up}"}}, {{"name": "b", "upstream": "{up}", "enabled": false}}]"#
    );
    let (st, b) = http(api, "POST", "/populate", Some(&body)).await;
    assert_eq!(st, 201, "{b}");
    let v = json(&b);
    assert_eq!(v["proxies"].as_array().unwrap().len(), 2);
    assert_eq!(v["proxies"][1]["enabled"], false);
    let a_listen = v["proxies"][0]["listen"].clone();
    http(
        api,
        "POST",
        "/proxies/a/toxics",
        Some(r#"{"type": "latency"}"#),
    )
    .await;
    // Same fields again: proxy `a` is kept as is, toxic included.
    let body = format!(r#"[{{"name": "a", "listen": {a_listen}, "upstream": "{up}"}}]"#);
    let (st, b) = http(api, "POST", "/populate", Some(&body)).await;
    assert_eq!(st, 201);
    assert_eq!(
        json(&b)["proxies"][0]["toxics"].as_array().unwrap().len(),
        1
    );
    // A changed upstream replaces it.
    let (st, b) = http(
        api,
        "POST",
        "/populate",
        Some(r#"[{"name": "a", "upstream": "127.0.0.1:9"}]"#),
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(json(&b)["proxies"][0]["toxics"], json!([]));
    let (st, b) = http(
        api,
        "POST",
        "/populate",
        Some(r#"[{"name": "c", "upstream": "127.0.0.1:9"}, {"upstream": "x:1"}]"#),
    )
    .await;
    assert_eq!(
        (st, json(&b)["error"].clone()),
        (400, json!("missing required field: name at proxy 2"))
    );
    let (st, _) = http(api, "GET", "/proxies/c", None).await;
    assert_eq!(st, 404, "nothing is created when any entry is invalid");
    let (st, _) = http(api, "POST", "/populate", Some(r#"{"name": "a"}"#)).await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occupied_port_and_bad_addresses_are_api_errors() {
    let (api, _stop) = api_server().await;
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let body =
        format!(r#"{{"name": "a", "listen": "127.0.0.1:{port}", "upstream": "127.0.0.1:9"}}"#);
    let (st, b) = http(api, "POST", "/proxies", Some(&body)).await;
    assert_eq!(st, 500, "{b}");
    let v = json(&b);
    assert_eq!(v["status"], 500);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("listen tcp 127.0.0.1:{port}")),
        "{b}"
    );
    let (st, _) = http(api, "GET", "/proxies/a", None).await;
    assert_eq!(st, 404, "a proxy that could not listen is not kept");
    let (st, b) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name": "a", "upstream": "no port"}"#),
    )
    .await;
    assert_eq!(st, 400, "{b}");
    let (st, _) = http(
        api,
        "POST",
        "/proxies",
        Some(r#"{"name": 5, "upstream": "x:1"}"#),
    )
    .await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_metrics_and_browser_refusal() {
    let (api, _stop) = api_server().await;
    let (st, b) = http(api, "GET", "/version", None).await;
    assert_eq!(st, 200);
    assert!(
        json(&b)["version"].as_str().unwrap().starts_with("2."),
        "{b}"
    );

    let up = echo_server().await;
    let (_, b) = http(
        api,
        "POST",
        "/proxies",
        Some(&format!(r#"{{"name": "m", "upstream": "{up}"}}"#)),
    )
    .await;
    let mut s = TcpStream::connect(json(&b)["listen"].as_str().unwrap())
        .await
        .unwrap();
    round_trip(&mut s, b"0123456789").await;
    let (st, text) = http(api, "GET", "/metrics", None).await;
    assert_eq!(st, 200);
    assert!(
        text.contains("# TYPE toxiproxy_proxy_sent_bytes_total counter"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("toxiproxy_proxy_sent_bytes_total{direction=\"upstream\"")
                && l.contains("proxy=\"m\"")
        })
        .unwrap_or_else(|| panic!("no upstream sent line: {text}"));
    assert!(line.ends_with(" 10"), "{line}");
    assert!(
        text.contains("livefire_proxy_connections_total{proxy=\"m\"} 1"),
        "{text}"
    );

    let (st, _) = http_with(api, "GET", "/proxies", None, "Mozilla/5.0 (X11)").await;
    assert_eq!(st, 403, "browsers are refused, as Toxiproxy does");
    let (st, b) = http(api, "GET", "/nowhere", None).await;
    assert_eq!((st, json(&b)["status"].clone()), (404, json!(404)));
    let (st, _) = http(api, "PUT", "/proxies", None).await;
    assert_eq!(st, 405);
}
