//! Every rule finds its planted defect in the defective target, and the correct target
//! yields no finding at all, even while its auth dependency is down.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livefire_fuzz::{AuthConfig, CancellationToken, Finding, FuzzConfig, Rule};

use crate::target::{self, AuthDep, Mode};

pub fn spec_file(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("openapi.yaml");
    std::fs::write(&path, target::SPEC_YAML).unwrap();
    path.to_string_lossy().into_owned()
}

pub fn bearer(token: &str) -> AuthConfig {
    AuthConfig::Header {
        header: "Authorization".into(),
        value: format!("Bearer {token}"),
    }
}

/// Runs a campaign; stops early once `stop_when` holds for the findings so far.
pub async fn campaign(
    config: FuzzConfig,
    stop_when: impl Fn(&[Finding]) -> bool + Send + 'static,
) -> (livefire_fuzz::Summary, Vec<Finding>) {
    let found: Arc<Mutex<Vec<Finding>>> = Arc::default();
    let cancel = CancellationToken::new();
    let sink = found.clone();
    let stopper = cancel.clone();
    let summary = livefire_fuzz::run(config, cancel, move |f| {
        let mut all = sink.lock().unwrap();
        all.push(f);
        if stop_when(&all) {
            stopper.cancel();
        }
    })
    .await
    .expect("campaign runs");
    let found = found.lock().unwrap().clone();
    (summary, found)
}

/// The planted defects the full campaign must find. The time-based injection is proven
/// by its own test: its confirmation needs a quiet target (a benign control answered fast),
/// which a campaign running every rule at full concurrency on a busy 2-core CI machine
/// does not always give.
fn expected() -> BTreeSet<(String, String)> {
    target::DEFECTS
        .iter()
        .filter(|d| **d != TIME_BASED)
        .map(|(r, o)| (r.to_string(), o.to_string()))
        .collect()
}

const TIME_BASED: (&str, &str) = ("injection", "GET /reports/{name}");

fn got(findings: &[Finding]) -> BTreeSet<(String, String)> {
    findings
        .iter()
        .map(|f| (f.rule.name().to_string(), f.operation.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_finds_its_planted_defect() {
    let dir = tempfile::tempdir().unwrap();
    let mut dep = AuthDep::start().await;
    let t = target::start(Mode::Defective, Some(dep.addr), "127.0.0.1:0").await;
    // The auth dependency goes down 1.5 s in: only then does GET /account fail open.
    let outage = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        dep.stop();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(dep);
    });
    let config = FuzzConfig {
        spec: spec_file(&dir),
        base_url: t.base_url(),
        duration: Duration::from_secs(30),
        seed: 1,
        auth: Some(bearer(target::ALICE_TOKEN)),
        second_identity: Some(bearer(target::BOB_TOKEN)),
        ..FuzzConfig::default()
    };
    let want = expected();
    let (summary, findings) = campaign(config, move |f| expected().is_subset(&got(f))).await;
    outage.abort();
    let have = got(&findings);
    let missing: Vec<_> = want.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "not found: {missing:?}\nsummary: {summary:?}\nfound: {:#?}",
        got(&findings)
    );

    for f in &findings {
        eprintln!(
            "{:>6} ms {:<18} {:<24} {:<8} {} [{}]",
            f.at_ms,
            f.rule.name(),
            f.operation,
            f.severity.name(),
            f.title.lines().next().unwrap_or(""),
            f.minimized
        );
    }
    eprintln!("{summary:?}");
    let fail_open = findings
        .iter()
        .find(|f| f.operation == "GET /account")
        .unwrap();
    assert!(
        fail_open.at_ms >= 1400,
        "fail-open reported before the outage: {} ms",
        fail_open.at_ms
    );
    assert_eq!(fail_open.severity, livefire_fuzz::Severity::Critical);
    let boundary = findings
        .iter()
        .find(|f| f.rule == Rule::ServerError && f.operation == "GET /items")
        .unwrap();
    assert!(
        boundary.request.url.contains("limit=0"),
        "{:?}",
        boundary.request
    );
    assert!(
        boundary.curl.starts_with("curl ") && boundary.curl.contains("limit=0"),
        "{}",
        boundary.curl
    );
    let injection = |op: &str| {
        findings
            .iter()
            .find(|f| f.rule == Rule::Injection && f.operation == op)
            .unwrap()
    };
    assert_eq!(injection("GET /search").signature, "sql:postgres");
    let negative = findings
        .iter()
        .find(|f| f.rule == Rule::NegativeAccepted)
        .unwrap();
    assert_eq!(negative.input, "required body property name missing");
    // Deduplicated: one finding per (operation, rule, signature).
    let keys: BTreeSet<_> = findings.iter().map(Finding::key).collect();
    assert_eq!(keys.len(), findings.len());
    assert!(t.stats.requests.load(std::sync::atomic::Ordering::Relaxed) > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_based_injection_is_confirmed_against_a_benign_control() {
    let dir = tempfile::tempdir().unwrap();
    let t = target::start(Mode::Defective, None, "127.0.0.1:0").await;
    let config = FuzzConfig {
        spec: spec_file(&dir),
        base_url: t.base_url(),
        duration: Duration::from_secs(40),
        seed: 1,
        checks: vec![Rule::Injection],
        // A quiet target keeps the latency baseline low, as the rule needs: on a loaded
        // one it raises its bar on purpose (no false alarms from a degraded service).
        rate: Some(100.0),
        concurrency: 2,
        auth: Some(bearer(target::ALICE_TOKEN)),
        ..FuzzConfig::default()
    };
    let is_delay = |f: &Finding| {
        f.rule == Rule::Injection && f.operation == TIME_BASED.1 && f.signature.ends_with(":delay")
    };
    let (summary, findings) = campaign(config, move |all| all.iter().any(is_delay)).await;
    // Confirmed against a benign control: the payload slept >= 2 s, the control did not.
    let delay = findings
        .iter()
        .find(|f| is_delay(f))
        .unwrap_or_else(|| panic!("not found: {summary:?}"));
    assert!(delay.response.latency_ms >= 1800.0, "{delay:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_service_yields_no_finding() {
    let dir = tempfile::tempdir().unwrap();
    let mut dep = AuthDep::start().await;
    let t = target::start(Mode::Correct, Some(dep.addr), "127.0.0.1:0").await;
    let outage = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        dep.stop();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(dep);
    });
    let config = FuzzConfig {
        spec: spec_file(&dir),
        base_url: t.base_url(),
        duration: Duration::from_secs(4),
        seed: 2,
        auth: Some(bearer(target::ALICE_TOKEN)),
        second_identity: Some(bearer(target::BOB_TOKEN)),
        ..FuzzConfig::default()
    };
    let (summary, findings) = campaign(config, |_| false).await;
    outage.abort();
    assert!(findings.is_empty(), "false alarms: {findings:#?}");
    // It did exercise the target: undeclared TRACE got its 501, the dependency
    // outage its 503s, and create -> get -> delete sequences reached real items.
    assert!(summary.requests > 500, "{summary:?}");
    assert!(summary.statuses.contains_key(&501), "{summary:?}");
    assert!(summary.statuses.contains_key(&503), "{summary:?}");
    assert!(
        t.stats
            .deleted_created
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "no created item was deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_window_is_bounded_by_the_outage() {
    let dir = tempfile::tempdir().unwrap();
    let mut dep = AuthDep::start().await;
    let t = target::start(Mode::Defective, Some(dep.addr), "127.0.0.1:0").await;
    // When the dependency was back, measured rather than assumed: on a busy machine the
    // outage's own sleeps may end late.
    let restarted: Arc<Mutex<Option<Instant>>> = Arc::default();
    let restarted_at = restarted.clone();
    let outage = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        dep.stop();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        dep.restart().await;
        *restarted_at.lock().unwrap() = Some(Instant::now());
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(dep);
    });
    let config = FuzzConfig {
        spec: spec_file(&dir),
        base_url: t.base_url(),
        duration: Duration::from_secs(5),
        checks: vec![Rule::AuthEnforced],
        auth: Some(bearer(target::ALICE_TOKEN)),
        rate: Some(200.0),
        ..FuzzConfig::default()
    };
    let began = Instant::now();
    let (summary, findings) = campaign(config, |_| false).await;
    outage.abort();
    let back_ms = restarted
        .lock()
        .unwrap()
        .expect("the dependency came back during the campaign")
        .duration_since(began)
        .as_millis() as u64;
    let account: Vec<_> = findings
        .iter()
        .filter(|f| f.operation == "GET /account")
        .collect();
    assert_eq!(account.len(), 1, "{findings:#?}");
    let s = summary
        .sightings
        .iter()
        .find(|s| s.operation == "GET /account")
        .unwrap();
    assert!(s.first_ms >= 900, "seen before the outage: {s:?}");
    // Sightings are stamped when the answer is handled (after it was sent), on a clock
    // that started after `began`: 2 s covers answers in flight when it came back.
    assert!(
        s.last_ms < back_ms + 2000,
        "still seen long after the dependency came back at {back_ms} ms: {s:?}"
    );
    assert!(s.count >= 2, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_correct_service_yields_no_slow_or_injection_finding() {
    let dir = tempfile::tempdir().unwrap();
    let t = target::start(Mode::Correct, None, "127.0.0.1:0").await;
    // Every answer 20 ms late, every tenth 400 ms: a target under a latency fault.
    t.stats
        .degraded_ms
        .store(20, std::sync::atomic::Ordering::Relaxed);
    let config = FuzzConfig {
        spec: spec_file(&dir),
        base_url: t.base_url(),
        duration: Duration::from_secs(4),
        seed: 4,
        concurrency: 32,
        auth: Some(bearer(target::ALICE_TOKEN)),
        ..FuzzConfig::default()
    };
    let (summary, findings) = campaign(config, |_| false).await;
    assert!(
        findings.is_empty(),
        "false alarms under degradation: {findings:#?}"
    );
    assert!(summary.requests > 200, "{summary:?}");
}
