//! Findings a person reads as one defect are one finding: a tiny target with a path
//! that fails on every method and an echo endpoint (`/status/{code}`), fuzzed for real;
//! and `slow` bursts grouped from findings as a campaign reports them.

use std::time::Duration;

use livefire_fuzz::finding::{Instance, RequestRecord, ResponseRecord};
use livefire_fuzz::{Finding, FuzzConfig, Rule};
use tokio::net::TcpListener;

use crate::http1;

const SPEC: &str = r#"
swagger: '2.0'
info: {title: grouping target, version: '1'}
paths:
  /boom:
    get: {responses: {'200': {description: ok}, '500': {description: failed}}}
    post: {responses: {'200': {description: ok}, '500': {description: failed}}}
    put: {responses: {'200': {description: ok}, '500': {description: failed}}}
    delete: {responses: {'200': {description: ok}, '500': {description: failed}}}
  /status/{code}:
    get:
      parameters: [{name: code, in: path, required: true, type: integer, enum: [200, 500]}]
      responses: {'200': {description: ok}, '400': {description: bad}, '500': {description: asked}}
"#;

/// `/boom` answers 500 to its four methods; `/status/{code}` answers the 200 or 500
/// asked for (400 otherwise); anything else is 405 or 404.
fn answer(method: &str, path: &str) -> u16 {
    if path == "/boom" {
        return if ["GET", "POST", "PUT", "DELETE"].contains(&method) {
            500
        } else {
            405
        };
    }
    if let Some(code) = path.strip_prefix("/status/") {
        if method != "GET" {
            return 405;
        }
        return match code.split('?').next() {
            Some("200") => 200,
            Some("500") => 500,
            _ => 400,
        };
    }
    404
}

#[tokio::test]
async fn one_defect_on_four_methods_is_one_finding_and_an_asked_for_500_is_none() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http1::serve(listener, |method, path| {
        (answer(method, path), Duration::ZERO)
    }));
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("swagger.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let config = FuzzConfig {
        spec: spec.to_string_lossy().into_owned(),
        base_url: format!("http://{addr}"),
        duration: Duration::from_secs(3),
        seed: 7,
        ..FuzzConfig::default()
    };
    let (summary, found) = crate::rules::campaign(config, |_| false).await;
    // The campaign did ask for a 500 and got it: that is not a defect.
    assert!(summary.statuses.get(&500).copied().unwrap_or(0) > 4);
    let grouped = livefire_fuzz::group::group(found, &summary.long_exchanges);
    let lines: Vec<String> = grouped
        .iter()
        .map(|f| format!("{} {} {}", f.rule, f.operation, f.title))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let f = &grouped[0];
    assert_eq!(f.rule, Rule::ServerError);
    assert!(f.operation.ends_with(" /boom"), "{lines:?}");
    let mut methods: Vec<&str> = f
        .instances
        .iter()
        .map(|i| i.operation.split(' ').next().unwrap())
        .collect();
    methods.sort_unstable();
    assert_eq!(methods, ["DELETE", "GET", "POST", "PUT"]);
    assert!(f.title.starts_with("server error 500 (on "), "{}", f.title);
    // One reproducer: the first instance's.
    assert!(f.curl.contains(&f.instances[0].url), "{}", f.curl);
    let rendered = livefire_fuzz::cli::render_finding(f);
    assert_eq!(rendered.matches("instance: ").count(), 4, "{rendered}");
    let sarif = livefire_fuzz::sarif::to_sarif(&grouped, "swagger.yaml", Some(SPEC));
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0]["properties"]["instances"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

fn slow(operation: &str, sent_ms: u64) -> Finding {
    let path = operation.split(' ').nth(1).unwrap();
    Finding {
        rule: Rule::Slow,
        severity: Rule::Slow.severity(),
        operation: operation.into(),
        signature: "latency".into(),
        title: "answered in 2000 ms".into(),
        input: "valid request".into(),
        request: RequestRecord {
            method: operation.split(' ').next().unwrap().into(),
            url: format!("http://127.0.0.1:1{path}"),
            headers: Vec::new(),
            body: String::new(),
            body_bytes: 0,
        },
        response: ResponseRecord {
            status: Some(200),
            content_type: None,
            body: String::new(),
            latency_ms: 2000.0,
            error: None,
        },
        curl: format!("curl -sS -i 'http://127.0.0.1:1{path}'"),
        minimized: false,
        at_ms: sent_ms + 2000,
        sent_ms,
        unix_ms: 0,
        instances: Vec::new(),
        active_faults: Vec::new(),
    }
}

#[test]
fn slow_on_many_operations_at_once_is_one_slowdown_naming_what_was_in_flight() {
    let delay = Instance {
        operation: "GET /delay/{delay}".into(),
        input: "valid request".into(),
        url: "http://127.0.0.1:1/delay/10".into(),
        status: Some(200),
        sent_ms: 9_000,
        at_ms: 19_000,
    };
    // (findings by operation and send time, long exchanges, what a user reads)
    let cases: Vec<(Vec<Finding>, Vec<Instance>, Vec<&str>)> = vec![
        (
            vec![
                slow("GET /ip", 10_000),
                slow("GET /uuid", 10_100),
                slow("POST /anything", 10_400),
                slow("GET /headers", 30_000),
            ],
            vec![delay.clone()],
            vec![
                "the target: the target slowed down: 3 operations answered slowly within 2.0 s, the first GET /ip (http://127.0.0.1:1/ip); in flight just before: GET /delay/{delay} (http://127.0.0.1:1/delay/10)",
                "GET /headers: answered in 2000 ms",
            ],
        ),
        (
            // Two operations, or far apart: each its own finding.
            vec![
                slow("GET /ip", 10_000),
                slow("GET /uuid", 10_100),
                slow("GET /headers", 15_000),
            ],
            vec![delay],
            vec![
                "GET /ip: answered in 2000 ms",
                "GET /uuid: answered in 2000 ms",
                "GET /headers: answered in 2000 ms",
            ],
        ),
    ];
    for (findings, long, want) in cases {
        let grouped = livefire_fuzz::group::group(findings, &long);
        let got: Vec<String> = grouped
            .iter()
            .map(|f| format!("{}: {}", f.operation, f.title))
            .collect();
        assert_eq!(got, want);
        if let Some(burst) = grouped.iter().find(|f| f.operation == "the target") {
            assert_eq!(burst.rule, Rule::Slow);
            // Three slow answers and the request in flight before them.
            assert_eq!(burst.instances.len(), 4);
            assert!(burst.curl.ends_with("/ip'"), "{}", burst.curl);
        }
    }
}
