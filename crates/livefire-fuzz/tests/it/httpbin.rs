//! httpbin, a real API nobody here wrote, fuzzed from the Swagger 2.0 document it
//! serves: the document loads, and what a reader gets has one finding per defect and
//! no server error for `/status/{codes}` answering the code it was asked for.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use livefire_fuzz::{FuzzConfig, Rule, spec};

/// gunicorn in a process group of its own: SIGKILL to its master alone left its
/// workers running after the test (seen in a clean CI run), so the whole group is
/// asked to stop, then killed.
struct Gunicorn(Child);

impl Drop for Gunicorn {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn httpbin_is_fuzzed_from_its_swagger_2_document() {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/httpbin-venv");
    let gunicorn = venv.join("bin/gunicorn");
    if !gunicorn.exists() {
        livefire_testkit::skip_missing(
            &format!("no {}", gunicorn.display()),
            "python3 -m venv target/httpbin-venv && target/httpbin-venv/bin/pip install httpbin gunicorn flasgger",
        );
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Gunicorn(
        Command::new(&gunicorn)
            .args(["-w", "4", "-b", &format!("127.0.0.1:{port}"), "httpbin:app"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("gunicorn starts"),
    );
    let url = format!("{base}/spec.json");
    let started = Instant::now();
    let loaded = loop {
        match spec::load(&url).await {
            Ok(s) => break s,
            Err(e) if started.elapsed() > Duration::from_secs(30) => {
                panic!("httpbin did not serve its spec within 30 s: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert_eq!(loaded.version, "2.0");
    assert!(loaded.operations.len() > 50, "{}", loaded.operations.len());

    let config = FuzzConfig {
        spec: url,
        base_url: base,
        duration: Duration::from_secs(8),
        seed: 23,
        concurrency: 4,
        ..FuzzConfig::default()
    };
    let (summary, found) = crate::rules::campaign(config, |_| false).await;
    assert!(summary.requests > 20, "{} requests", summary.requests);
    let grouped = livefire_fuzz::group::group(found, &summary.long_exchanges);
    let text: Vec<String> = grouped
        .iter()
        .map(|f| format!("{} {} {}", f.rule, f.operation, f.title))
        .collect();
    assert!(
        !grouped
            .iter()
            .any(|f| f.rule == Rule::ServerError && f.operation.ends_with(" /status/{codes}")),
        "{text:#?}"
    );
    // One finding per (rule, path, signature): never one per method.
    let mut keys = BTreeSet::new();
    for f in &grouped {
        let path = f
            .operation
            .split_once(' ')
            .map_or("", |(_, p)| p)
            .to_string();
        assert!(
            keys.insert((f.rule, path, f.signature.clone())),
            "reported twice: {} {} {}\n{text:#?}",
            f.rule,
            f.operation,
            f.signature
        );
    }
}
