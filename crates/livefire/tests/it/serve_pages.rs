//! `livefire serve` beyond one run: a target of any kind still held in the ledger is
//! 409 naming the run that holds it; the Trends API over an experiment's ended runs; a
//! game day started from the console, with livefire-gameday's responders' page and the
//! facilitator's board mounted behind the console's tokens (operators mark and end
//! curveballs, viewers only see).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::{Server, http, wait_run};
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
        let (status, body) = server.put_experiment(&operator, &name, &exp("same", &name));
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

/// `livefire sandbox http` on a free port, killed when dropped.
pub(crate) struct Web {
    pub(crate) child: std::process::Child,
    pub(crate) port: u16,
}

impl Web {
    pub(crate) fn start() -> Web {
        let port = free_port();
        let child = livefire()
            .args(["sandbox", "http", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the sandbox server listens");
            std::thread::sleep(Duration::from_millis(50));
        }
        Web { child, port }
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Load on the sandbox server while it is paused for 2 s, with a p99 bound the pause
/// breaks: every run has a time to recover and a negative margin.
pub(crate) fn trend_experiment(pid: u32, port: u16) -> String {
    [
        "version: 1",
        "title: trend drill",
        "targets:",
        &format!("  server: {{ process: {{ pid: {pid} }} }}"),
        &format!("  api: {{ http: \"http://127.0.0.1:{port}\" }}"),
        "hypothesis:",
        "  - name: shell answers",
        "    probe: { command: { run: \"true\" } }",
        "    expect: { exit_code: 0 }",
        "    every: 300ms",
        "  - name: p99 under 500ms",
        "    metric: browse.latency.p99",
        "    below: 500ms",
        "timeline:",
        "  - at: 0s",
        "    for: 6s",
        &format!("    load: {{ name: browse, rate: 50/s, timeout: 5s, requests: [ {{ name: health, url: \"http://127.0.0.1:{port}/health\" }} ] }}"),
        "  - at: 1s",
        "    for: 2s",
        "    name: server paused",
        "    fault: { process.pause: { target: server } }",
        "",
    ]
    .join("\n")
}

#[test]
fn trends_give_each_ended_run_of_an_experiment_its_recovery_margins_and_findings() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let viewer = server.token("viewer", "bob", None);
    let web = Web::start();
    let (status, body) = server.put_experiment(
        &operator,
        "drill",
        &trend_experiment(web.child.id(), web.port),
    );
    assert_eq!(status, 201, "{body}");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, run) = server.json(
            "POST",
            "/api/runs",
            &operator,
            Some(json!({"experiment": "drill"})),
        );
        assert_eq!(status, 201, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        let ended = wait_run(&server, &viewer, &id, |v| v["run"]["state"] == "ended");
        assert_eq!(ended["run"]["state"], "ended", "{ended}");
        ids.push(id);
    }
    let (status, t) = server.json("GET", "/api/experiments/drill/trends", &viewer, None);
    assert_eq!(status, 200, "{t}");
    let runs = t["runs"].as_array().unwrap();
    let got: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids, "oldest first: {t}");
    assert_eq!(t["faults"], json!(["server paused"]), "{t}");
    assert_eq!(
        t["conditions"],
        json!(["shell answers", "p99 under 500ms"]),
        "{t}"
    );
    for (r, id) in runs.iter().zip(&ids) {
        // The same numbers summary.json holds for that run.
        let (_, detail) = server.json("GET", &format!("/api/runs/{id}"), &viewer, None);
        let s = &detail["summary"];
        assert!(r["faults"][0]["time_to_recover_ms"].is_u64(), "{r}");
        assert_eq!(
            r["faults"][0]["time_to_recover_ms"], s["faults"][0]["time_to_recover_ms"],
            "{r}"
        );
        let findings = s["findings"].as_array().unwrap();
        assert_eq!(r["findings"], findings.len(), "{r}");
        let failing = findings.iter().filter(|f| f["fails"] == true).count();
        assert_eq!(r["failing_findings"], failing, "{r}");
        let margin = r["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "p99 under 500ms")
            .unwrap();
        assert_eq!(margin["role"], "hypothesis");
        assert_eq!(margin["held"], false, "{margin}");
        assert_eq!(margin["bound"], 0.5, "{margin}");
        // Requests waited out the 2 s pause: the worst p99 is over the bound, so the
        // margin is below 0, by as much as the worst value says.
        let worst = margin["worst"].as_f64().unwrap();
        assert!(worst > 0.5, "{margin}");
        let pct = margin["margin_pct"].as_f64().unwrap();
        assert!((pct - (0.5 - worst) / 0.5 * 100.0).abs() < 1e-6, "{margin}");
        let shell = r["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "shell answers")
            .unwrap();
        assert_eq!(shell["failing_pct"], 0.0, "{shell}");
        assert!(shell["samples"].as_u64().unwrap() >= 3, "{shell}");
    }
    // The page that draws it is in the binary; an unknown experiment is 404.
    let (status, _, js) = server.call("GET", "/assets/trends.js", None, None);
    assert_eq!(status, 200);
    assert!(js.contains("/trends"), "trends.js asks the API");
    let (status, v) = server.json("GET", "/api/experiments/nope/trends", &viewer, None);
    assert_eq!(status, 404, "{v}");
}

/// A game day that draws one curveball, a pause of `pid` for 60 s from t = 1 s, with
/// responders alice and bob.
pub(crate) fn gameday_experiment(pid: u32) -> String {
    [
        "version: 1",
        "title: console game day",
        "targets:",
        &format!("  victim: {{ process: {{ pid: {pid} }} }}"),
        "hypothesis:",
        "  - name: shell answers",
        "    probe: { command: { run: \"true\" } }",
        "    expect: { exit_code: 0 }",
        "    every: 500ms",
        "timeline: []",
        "scenario:",
        "  draw: 1",
        "  window: [1s, 62s]",
        "  duration: [60s, 60s]",
        "  hidden: true",
        "  responders: [alice, bob]",
        "  pool:",
        "    - { name: victim frozen, fault: { process.pause: { target: victim } } }",
        "",
    ]
    .join("\n")
}

#[test]
fn a_game_day_from_the_console_has_its_pages_and_operators_mark_and_end_curveballs() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let viewer = server.token("viewer", "carol", None);
    let victim = Victim::start();
    let (status, body) = server.put_experiment(&operator, "gd", &gameday_experiment(victim.pid()));
    assert_eq!(status, 201, "{body}");
    let (status, run) = server.json(
        "POST",
        "/api/runs",
        &operator,
        Some(json!({"experiment": "gd"})),
    );
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    assert!(victim.wait_state('T'), "the curveball paused the victim");
    let base = format!("/api/runs/{id}/gameday");
    let (_, detail) = server.json("GET", &format!("/api/runs/{id}"), &viewer, None);
    assert_eq!(detail["gameday"], true, "{detail}");
    // The responders' page, for anyone logged in; without a token, nothing.
    let (status, _, html) = server.call("GET", &format!("{base}/"), Some(&viewer), None);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Detected"), "livefire-gameday's page: {html}");
    assert!(
        html.contains("<section class=\"marking\" hidden"),
        "no mark buttons for a viewer"
    );
    let (status, _, html) = server.call("GET", &format!("{base}/"), Some(&operator), None);
    assert_eq!(status, 200);
    assert!(
        !html.contains("class=\"marking\" hidden"),
        "an operator marks"
    );
    assert!(html.contains("name=\"csrf-token\""), "{html}");
    let (status, _, _) = server.call("GET", &format!("{base}/"), None, None);
    assert_eq!(status, 401);
    let (status, _, page_js) = server.call("GET", &format!("{base}/page.js"), Some(&viewer), None);
    assert_eq!(status, 200);
    assert!(page_js.contains("api/marks"));
    // The responders see a symptom, not the hidden curveball.
    let (status, state) = server.json("GET", &format!("{base}/api/state"), &viewer, None);
    assert_eq!(status, 200, "{state}");
    assert!(
        !state.to_string().contains("victim frozen"),
        "hidden: {state}"
    );
    // Marks: a viewer is refused; an operator marks as a declared responder; a name
    // the scenario does not list is refused by the game day itself.
    let mark = |token: &str, responder: &str| {
        let body = json!({"mark": "detected", "responder": responder, "via": "page"}).to_string();
        let addr = server.addr();
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        use std::io::{Read, Write};
        write!(
            s,
            "POST {base}/api/marks HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (
            status,
            serde_json::from_str::<Value>(body).unwrap_or(Value::Null),
        )
    };
    let (status, v) = mark(&viewer, "bob");
    assert_eq!(status, 403, "{v}");
    let (status, v) = mark(&operator, "bob");
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["responder"], "bob");
    let (status, v) = mark(&operator, "mallory");
    assert_eq!(status, 422, "{v}");
    // The facilitator's board: operators only, with the curveball's kind and target.
    let (status, _) = server.json("GET", &format!("{base}/facilitator"), &viewer, None);
    assert_eq!(status, 403);
    let (status, board) = server.json("GET", &format!("{base}/facilitator"), &operator, None);
    assert_eq!(status, 200, "{board}");
    let ball = &board["curveballs"][0];
    assert_eq!(ball["kind"], "process.pause", "{board}");
    assert_eq!(ball["target"], "victim", "{board}");
    assert_eq!(ball["active"], true, "{board}");
    let events = board["events"].to_string();
    assert!(events.contains("bob marked detected"), "{board}");
    // Ending the curveball early rolls it back; the run goes on.
    let (status, _) = server.json("POST", &format!("{base}/end/1"), &viewer, None);
    assert_eq!(status, 403);
    let (status, said) = server.json("POST", &format!("{base}/end/1"), &operator, None);
    assert_eq!(status, 202, "{said}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !victim.running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(victim.running(), "ending the curveball resumed the victim");
    let (_, board) = server.json("GET", &format!("{base}/facilitator"), &operator, None);
    assert_eq!(board["curveballs"][0]["state"], "ended early", "{board}");
    // The audit log says who marked and who ended what.
    let (_, audit) = server.json("GET", "/api/audit", &viewer, None);
    let audit = audit.to_string();
    assert!(audit.contains("detected as bob"), "{audit}");
    assert!(audit.contains("end curveball"), "{audit}");
    // A run that is no game day has no such pages.
    let (status, _) = server.json("POST", &format!("/api/runs/{id}/stop"), &operator, None);
    assert_eq!(status, 202);
    let ended = wait_run(&server, &viewer, &id, |v| v["run"]["state"] == "ended");
    assert_eq!(ended["run"]["verdict"], "aborted", "{ended}");
    // The run's own journal has them too: the mark as the game day's event, and who
    // did what in the console as `audit` events.
    let events = server.journal(&viewer, &id);
    let audits: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "audit")
        .map(|e| e.to_string())
        .collect();
    for words in ["detected as bob", "end curveball", "\"stop\""] {
        assert!(
            audits.iter().any(|a| a.contains(words)),
            "`{words}` in the journal's audit events: {audits:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e.to_string().contains("\"bob\"") && e["type"] != "audit"),
        "the mark itself in the journal: {events:?}"
    );
    let (status, _, _) = http(
        &server.addr(),
        "GET",
        "/api/runs/nope/gameday/",
        Some(&viewer),
        None,
    );
    assert_eq!(status, 404);
}
