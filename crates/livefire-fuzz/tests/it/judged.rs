//! What is and is not a finding, on tiny real targets. `status_conformance`: an
//! undeclared success status for valid input is reported; an undeclared 4xx for input
//! the spec rules out (the service rejecting it) and an undeclared 404 for a path naming
//! nothing, which OpenAPI does not ask a document to list, are not. `slow`: an answer
//! that takes the time the request asked for (httpbin's `/delay`) is not slow; one that
//! did not ask is.

use std::time::Duration;

use livefire_fuzz::{FuzzConfig, Rule};
use tokio::net::TcpListener;

use crate::http1;

const SPEC: &str = r#"
openapi: 3.0.3
info: {title: statuses, version: '1'}
paths:
  /things/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: integer, minimum: 1, maximum: 9}}]
      responses: {'200': {description: ok}}
"#;

/// `/things/{id}` answers 201 (undeclared) to an id from 1 to 5, 404 (undeclared: no
/// such thing) from 6 to 9 and 422 (undeclared) to anything else; other paths 404.
fn things(path: &str) -> (u16, Duration) {
    let path = path.split('?').next().unwrap_or("");
    let status = match path.strip_prefix("/things/") {
        Some(id) => match id.parse::<u32>() {
            Ok(1..=5) => 201,
            Ok(6..=9) => 404,
            _ => 422,
        },
        None => 404,
    };
    (status, Duration::ZERO)
}

#[tokio::test]
async fn undeclared_success_is_reported_and_rejection_or_not_found_is_not() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http1::serve(listener, |_, path| things(path)));
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("openapi.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let config = FuzzConfig {
        spec: spec.to_string_lossy().into_owned(),
        base_url: format!("http://{addr}"),
        duration: Duration::from_secs(2),
        seed: 11,
        checks: vec![Rule::StatusConformance],
        ..FuzzConfig::default()
    };
    let (summary, found) = crate::rules::campaign(config, |_| false).await;
    // Both kinds of answer were seen, so both were judged.
    assert!(summary.statuses.get(&201).copied().unwrap_or(0) > 0);
    assert!(summary.statuses.get(&422).copied().unwrap_or(0) > 0);
    assert!(summary.statuses.get(&404).copied().unwrap_or(0) > 0);
    let lines: Vec<String> = found
        .iter()
        .map(|f| format!("{} {} {} {}", f.rule, f.operation, f.signature, f.input))
        .collect();
    assert!(
        found
            .iter()
            .any(|f| f.rule == Rule::StatusConformance && f.signature == "201"),
        "{lines:#?}"
    );
    assert!(
        !found.iter().any(|f| f.signature == "422"),
        "a 422 to input the spec rules out was reported: {lines:#?}"
    );
    assert!(
        !found.iter().any(|f| f.signature == "404"),
        "a 404 for a thing that does not exist was reported: {lines:#?}"
    );
}

/// Twenty fast operations (so the latency baseline is fast before anything slow is
/// sent), `/delay/{delay}` and `/report?format=`.
fn timed_spec() -> String {
    let mut spec = String::from(
        r#"
openapi: 3.0.3
info: {title: timed, version: '1'}
paths:
  /delay/{delay}:
    get:
      parameters: [{name: delay, in: path, required: true, schema: {type: integer, minimum: 0, maximum: 1}}]
      responses: {'200': {description: ok}}
  /report:
    get:
      parameters: [{name: format, in: query, required: true, schema: {type: string, enum: [json, csv]}}]
      responses: {'200': {description: ok}}
"#,
    );
    for i in 0..20 {
        spec.push_str(&format!(
            "  /fast{i}:\n    get:\n      parameters: [{{name: n, in: query, schema: \
             {{type: integer, minimum: 0, maximum: 9}}}}]\n      \
             responses: {{'200': {{description: ok}}}}\n"
        ));
    }
    spec
}

/// `/delay/{n}` waits n seconds (at most 2), as it was asked; `/report?format=csv`
/// waits 1.2 s without being asked; everything else answers at once.
fn timed(path: &str) -> (u16, Duration) {
    if let Some(n) = path.strip_prefix("/delay/") {
        let secs = n.parse::<u64>().map_or(0, |n| n.min(2));
        return (200, Duration::from_secs(secs));
    }
    if path.starts_with("/report") && path.contains("format=csv") {
        return (200, Duration::from_millis(1200));
    }
    (200, Duration::ZERO)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_as_slow_as_it_was_asked_to_be_is_not_slow() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http1::serve(listener, |_, path| timed(path)));
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("openapi.yaml");
    std::fs::write(&spec, timed_spec()).unwrap();
    let config = FuzzConfig {
        spec: spec.to_string_lossy().into_owned(),
        base_url: format!("http://{addr}"),
        duration: Duration::from_secs(6),
        seed: 5,
        checks: vec![Rule::Slow, Rule::Crash],
        ..FuzzConfig::default()
    };
    let (summary, found) = crate::rules::campaign(config, |_| false).await;
    let lines: Vec<String> = found
        .iter()
        .map(|f| format!("{} {} {}", f.rule, f.operation, f.title))
        .collect();
    assert!(summary.requests > 20, "{} requests", summary.requests);
    // The server was asked for its second, and took it.
    assert!(
        summary
            .long_exchanges
            .iter()
            .any(|e| e.operation == "GET /delay/{delay}"),
        "{:#?}",
        summary.long_exchanges
    );
    // The unasked-for 1.2 s is found, so slowness was judged at all...
    assert!(
        found
            .iter()
            .any(|f| f.rule == Rule::Slow && f.operation == "GET /report"),
        "{lines:#?}"
    );
    // ...and the asked-for second is not.
    assert!(
        !found.iter().any(|f| f.operation == "GET /delay/{delay}"),
        "{lines:#?}"
    );
}
