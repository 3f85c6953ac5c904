//! `livefire serve` beyond one run: a target of any kind still held in the ledger is
//! 409 naming the run that holds it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::serve::Server;
use crate::support::*;

/// Polls `path` until it holds `what` (up to 60 s).
fn wait_file(path: &Path, what: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(what)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The one folder in `dir`.
fn only_folder(dir: &Path) -> std::path::PathBuf {
    let all: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

/// (kind, the target as YAML with `{}` for a per-case value, the fault on it)
type HeldCase = (&'static str, String, &'static str);

#[test]
fn a_target_of_any_kind_a_crashed_run_left_in_the_ledger_is_409_naming_that_run() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let scratch = tempfile::tempdir().unwrap();
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = free_port();
    let mut cases: Vec<HeldCase> = vec![
        (
            "path",
            format!("{{ path: {:?} }}", scratch.path().display().to_string()),
            "disk.fill: { target: T, size: 1MiB }",
        ),
        (
            "host",
            "{ host: {} }".into(),
            "cpu.stress: { target: T, cores: 1, load: 5% }",
        ),
        (
            "proxy",
            format!(
                "{{ proxy: {{ listen: \"127.0.0.1:{proxy_port}\", upstream: \"{}\" }} }}",
                upstream.local_addr().unwrap()
            ),
            "proxy.down: { target: T }",
        ),
    ];
    let netns = format!("lf-held-{}", std::process::id());
    let have_netns = nix::unistd::geteuid().is_root()
        && std::process::Command::new("nft").arg("-V").output().is_ok()
        && run(std::process::Command::new("ip").args(["netns", "add", &netns])).0 == 0;
    if have_netns {
        cases.push((
            "netns",
            format!("{{ netns: {netns} }}"),
            "net.partition: { target: T }",
        ));
    } else {
        livefire_testkit::skip_missing(
            "root, nft and `ip netns`, for the netns case",
            "run the tests as root with nftables and iproute2",
        );
    }
    for (kind, target, fault) in &cases {
        // A run from a shell, with the server's home, killed -9 with its fault applied:
        // its undo record stays in the ledger. Its target is called `held`.
        let exp = |name: &str, title: &str| {
            format!(
                "version: 1\ntitle: {title}\ntargets:\n  {name}: {target}\ntimeline:\n  - at: 0s\n    for: 120s\n    fault: {{ {} }}\n",
                fault.replace("target: T", &format!("target: {name}"))
            )
        };
        let out = server.home.path().join(format!("runs-{kind}"));
        let file = write(
            server.home.path(),
            &format!("{kind}.yaml"),
            &exp("held", "held"),
        );
        let mut child = server
            .home
            .livefire()
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !out.is_dir() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let dir = only_folder(&out);
        assert!(
            wait_file(&dir.join("journal.jsonl"), "\"fault_applied\""),
            "{kind}: the shell run applied its fault: {}",
            std::fs::read_to_string(dir.join("journal.jsonl")).unwrap_or_default()
        );
        child.kill().unwrap();
        let _ = child.wait();
        let crashed = dir.file_name().unwrap().to_string_lossy().into_owned();
        // The same resource under another name, started from the console.
        let name = format!("same-{kind}");
        let (status, _, body) = server.call(
            "PUT",
            &format!("/api/experiments/{name}"),
            Some(&operator),
            Some(exp("same", &name).as_bytes()),
        );
        assert_eq!(status, 201, "{kind}: {body}");
        let (status, v) = server.json(
            "POST",
            "/api/runs",
            &operator,
            Some(json!({ "experiment": name })),
        );
        assert_eq!(status, 409, "{kind}: {v}");
        assert_eq!(v["run"], crashed.as_str(), "{kind}: {v}");
        assert_eq!(v["target"], "same", "{kind}: {v}");
        let message = v["error"].as_str().unwrap();
        assert!(message.contains("still in the ledger"), "{kind}: {message}");
        // `livefire recover` frees it.
        let (code, _, err) = run(server.home.livefire().arg("recover"));
        assert_eq!(code, 0, "{kind}: {err}");
    }
    let (_, runs) = server.json("GET", "/api/runs", &operator, None);
    assert_eq!(runs, json!([]), "a refused run is not recorded as a run");
    if have_netns {
        let _ = run(std::process::Command::new("ip").args(["netns", "del", &netns]));
    }
}
