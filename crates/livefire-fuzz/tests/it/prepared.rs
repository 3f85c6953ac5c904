//! How requests are prepared, on tiny real targets: an operation's boundary and
//! invalid cases are prepared when the campaign reaches it (so they carry the ids the
//! requests before them created), and optional headers ride on few requests, with the
//! value their schema declares (a service that checks such a header, as Prefect checks
//! `x-prefect-api-version`, would otherwise refuse most requests at the door).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use livefire_fuzz::FuzzConfig;
use tokio::net::TcpListener;

use crate::http1::{self, Reply, Seen};

/// Starts a server answering with `answer`; returns its base URL and every request it saw.
async fn server(
    answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(http1::serve_with(listener, move |s: &Seen| {
        log.lock().unwrap().push(s.clone());
        answer(s)
    }));
    (format!("http://{addr}"), seen)
}

fn json(status: u16, body: &str) -> Reply {
    Reply {
        status,
        wait: Duration::ZERO,
        content_type: "application/json",
        body: body.into(),
    }
}

async fn fuzz(spec_text: &str, base_url: String, requests: u64, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("openapi.yaml");
    std::fs::write(&spec, spec_text).unwrap();
    let config = FuzzConfig {
        spec: spec.to_string_lossy().into_owned(),
        base_url,
        duration: Duration::from_secs(60),
        max_requests: Some(requests),
        concurrency: 1,
        seed,
        ..FuzzConfig::default()
    };
    let (summary, _) = crate::rules::campaign(config, |_| false).await;
    assert_eq!(summary.stopped_by, "max_requests");
}

const THINGS: &str = r#"
openapi: 3.0.3
info: {title: things, version: '1'}
paths:
  /things:
    post:
      requestBody:
        required: true
        content: {application/json: {schema: {type: object, required: [name], properties: {name: {type: string}}}}}
      responses:
        '201':
          description: created
          content: {application/json: {schema: {type: object, properties: {id: {type: string}}}}}
  /things/{thingId}:
    get:
      parameters:
        - {name: thingId, in: path, required: true, schema: {type: string}}
        - {name: limit, in: query, required: true, schema: {type: integer, minimum: 1, maximum: 10}}
      responses: {'200': {description: ok}}
"#;

/// The `limit` of a request, when it is a number from 1 to 10 (a conforming request).
fn conforming_limit(path: &str) -> bool {
    let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("limit="))
        .any(|v| v.parse::<i64>().is_ok_and(|n| (1..=10).contains(&n)))
}

#[tokio::test]
async fn edge_cases_are_prepared_when_reached_and_carry_ids_created_before() {
    let (base, seen) = server(|s: &Seen| match (s.method.as_str(), s.path.as_str()) {
        ("POST", "/things") => json(201, r#"{"id":"thing-7f3a"}"#),
        ("GET", p) if p.starts_with("/things/thing-7f3a?") => json(200, "{}"),
        _ => json(404, "{}"),
    })
    .await;
    fuzz(THINGS, base, 60, 5).await;
    let seen = seen.lock().unwrap();
    // The GETs whose `limit` is not a conforming one: the boundary and invalid cases
    // of `limit`, each in an otherwise conforming request.
    let edges: Vec<&str> = seen
        .iter()
        .filter(|s| s.method == "GET" && !conforming_limit(&s.path))
        .map(|s| s.path.as_str())
        .collect();
    let with_created = edges
        .iter()
        .filter(|p| p.starts_with("/things/thing-7f3a?"))
        .count();
    assert!(edges.len() >= 4, "too few edge cases of limit: {edges:#?}");
    // The POST was answered before the GET's edge cases were prepared, so most of them
    // (a path id is taken from the ids seen four times in five) name the thing it
    // created; prepared before the first request, none could.
    assert!(
        with_created * 2 >= edges.len(),
        "{with_created} of {} edge cases name the created thing: {edges:#?}",
        edges.len()
    );
}

const VERSIONED: &str = r#"
openapi: 3.0.3
info: {title: versioned, version: '1'}
paths:
  /things:
    get:
      parameters:
        - {name: limit, in: query, required: true, schema: {type: integer, minimum: 1, maximum: 10}}
        - {name: x-api-version, in: header, required: false, schema: {type: string, default: '2'}}
      responses: {'200': {description: ok}}
    post:
      parameters:
        - {name: x-trace, in: header, required: false, schema: {type: string}}
      requestBody:
        required: true
        content: {application/json: {schema: {type: object, required: [name], properties: {name: {type: string}}}}}
      responses: {'201': {description: created}}
"#;

#[tokio::test]
async fn optional_headers_ride_on_few_requests_with_their_declared_value() {
    // As Prefect does with its version header: any value but a known version is refused.
    let (base, seen) = server(|s: &Seen| {
        if s.header("x-api-version").is_some_and(|v| v != "2") {
            return json(400, r#"{"detail":"unknown api version"}"#);
        }
        match (s.method.as_str(), s.path.split('?').next().unwrap_or("")) {
            ("GET", "/things") => json(200, "[]"),
            ("POST", "/things") => json(201, "{}"),
            _ => json(404, "{}"),
        }
    })
    .await;
    fuzz(VERSIONED, base, 300, 3).await;
    let seen = seen.lock().unwrap();
    // (method, header): each optional header on the operation that declares it.
    for (method, header) in [("GET", "x-api-version"), ("POST", "x-trace")] {
        let to_op: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.method == method && s.path.starts_with("/things"))
            .collect();
        let values: Vec<&str> = to_op.iter().filter_map(|s| s.header(header)).collect();
        let share = values.len() as f64 / to_op.len().max(1) as f64;
        assert!(to_op.len() >= 50, "{method}: only {} requests", to_op.len());
        // Still tested (its own boundary and injection cases, some conforming
        // requests), but on a minority of requests, not on every one.
        assert!(!values.is_empty(), "{method} never sent {header}");
        assert!(
            share < 0.4,
            "{header} on {} of {} {method} requests",
            values.len(),
            to_op.len()
        );
    }
    // The conforming requests that carry the version header send the declared default,
    // so it is the value sent most often.
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for v in seen.iter().filter_map(|s| s.header("x-api-version")) {
        *counts.entry(v).or_default() += 1;
    }
    let most = counts.iter().max_by_key(|(_, n)| **n).map(|(v, _)| *v);
    assert_eq!(most, Some("2"), "{counts:#?}");
    // Most GETs reach the handler, not refused at the door for a header they need not
    // send (the refused ones test the header itself).
    let refused = seen
        .iter()
        .filter(|s| s.method == "GET" && s.header("x-api-version").is_some_and(|v| v != "2"))
        .count();
    let gets = seen.iter().filter(|s| s.method == "GET").count();
    assert!(
        refused * 2 < gets,
        "{refused} of {gets} GETs refused for the version header"
    );
}
