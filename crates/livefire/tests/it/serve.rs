//! `livefire serve` over real sockets: tokens and roles, located experiment errors, runs
//! as child `livefire run`s that pause a real process, STOP through the control socket,
//! 409 on a held target, cut-off bodies, a server killed mid-run, and the API fuzzed by
//! livefire's own fuzzer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// A `livefire serve` on an ephemeral port with its own home and data folder; killed
/// (and its runs with it, by process group) when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub home: Home,
    stderr: PathBuf,
}

impl Server {
    pub fn start() -> Server {
        Self::start_in(Home::new())
    }

    pub fn start_in(home: Home) -> Server {
        Self::start_with(home, &[])
    }

    /// With more flags (`--tls-cert`, ...).
    pub fn start_with(home: Home, flags: &[&str]) -> Server {
        let stderr = home
            .path()
            .join(format!("serve-{}.err", std::process::id()));
        let mut cmd = home.livefire();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(home.path().join("data"))
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        // Its own process group, so a test can kill the server and its runs at once.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("livefire serve starts");
        let mut out = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| {
                panic!(
                    "no URL in `{line}`; stderr: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                )
            })
            .trim_end_matches('/')
            .to_owned();
        Server {
            child,
            url,
            home,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// `livefire serve token create --role ROLE --name NAME [--expires E]` on this data folder.
    pub fn token(&self, role: &str, name: &str, expires: Option<&str>) -> String {
        let mut cmd = self.home.livefire();
        cmd.args(["serve", "--data"])
            .arg(self.home.path().join("data"))
            .args(["token", "create", "--role", role, "--name", name]);
        if let Some(e) = expires {
            cmd.args(["--expires", e]);
        }
        let (code, out, err) = run(&mut cmd);
        assert_eq!(code, 0, "{err}");
        out.trim().to_owned()
    }

    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// One request; returns (status, headers, body).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, String, String) {
        http(&self.addr(), method, path, token, body)
    }

    pub fn json(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string().into_bytes());
        let (status, _, text) = self.call(method, path, Some(token), body.as_deref());
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// `PUT /api/experiments/NAME` with `text`: (status, body).
    pub fn put_experiment(&self, token: &str, name: &str, text: &str) -> (u16, String) {
        let path = format!("/api/experiments/{name}");
        let (status, _, body) = self.call("PUT", &path, Some(token), Some(text.as_bytes()));
        (status, body)
    }

    /// `POST /api/runs` of the stored experiment `name`: (status, answer).
    pub fn start_run(&self, token: &str, name: &str) -> (u16, Value) {
        self.json(
            "POST",
            "/api/runs",
            token,
            Some(json!({ "experiment": name })),
        )
    }

    /// Uploads [`pause_with_probe`] of `victim` as `pause`, starts it as `token` and waits
    /// until the victim is paused; returns the run's id.
    pub fn pause_run(&self, token: &str, victim: &Victim) -> String {
        let (status, body) =
            self.put_experiment(token, "pause", &pause_with_probe(victim.pid(), 120));
        assert_eq!(status, 201, "{body}");
        let (status, run) = self.start_run(token, "pause");
        assert_eq!(status, 201, "{run}");
        assert!(victim.wait_state('T'), "the run paused the victim");
        run["id"].as_str().unwrap().to_owned()
    }

    /// Run `id`'s journal as served to `token`, one record a line.
    pub fn journal(&self, token: &str, id: &str) -> Vec<Value> {
        let path = format!("/api/runs/{id}/files/journal.jsonl");
        let (status, _, text) = self.call("GET", &path, Some(token), None);
        assert_eq!(status, 200, "{text}");
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Kills the server and every run it started (its process group), as a crash would.
    pub fn kill_all(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: the server halts its runs (they roll back), then exits.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_all();
    }
}

/// A plain HTTP/1.1 request with `Connection: close`, as `token` when given.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, String, String) {
    let auth: Vec<String> = token
        .map(|t| format!("Authorization: Bearer {t}"))
        .into_iter()
        .collect();
    http_exchange(
        addr,
        method,
        path,
        &auth,
        body.unwrap_or_default(),
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// An experiment that pauses `pid` for `secs` while a probe is sampled every 300 ms.
pub fn pause_with_probe(pid: u32, secs: u32) -> String {
    format!(
        "version: 1\ntitle: pause the victim\ntargets:\n  victim: {{ process: {{ pid: {pid} }} }}\nhypothesis:\n  - name: shell answers\n    probe: {{ command: {{ run: \"true\" }} }}\n    expect: {{ exit_code: 0 }}\n    every: 300ms\ntimeline:\n  - at: 0s\n    for: {secs}s\n    name: victim paused\n    fault: {{ process.pause: {{ target: victim }} }}\n"
    )
}

/// Polls `GET /api/runs/ID` until `done` says so (up to 60 s); returns the last answer.
pub fn wait_run(server: &Server, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = server.json("GET", &format!("/api/runs/{id}"), token, None);
        assert_eq!(status, 200, "{v}");
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (token, method, path, body, status, words the answer must hold)
type Case<'a> = (Option<&'a str>, &'a str, &'a str, &'a str, u16, &'a str);

#[test]
fn every_change_needs_a_token_of_a_role_high_enough() {
    let server = Server::start();
    let admin = server.token("admin", "root", None);
    let operator = server.token("operator", "alice", None);
    let viewer = server.token("viewer", "bob", Some("30d"));
    let expired = server.token("operator", "old", Some("1s"));
    let revoked = server.token("operator", "gone", None);
    let (status, _) = server.json("DELETE", "/api/tokens/gone", &admin, None);
    assert_eq!(status, 200);
    // Let the one-second token run out.
    std::thread::sleep(Duration::from_millis(2100));
    let exp = "version: 1\ntitle: nothing\ntimeline:\n  - { at: 0s, for: 1s, fault: { command: { apply: \"true\" } } }\n";
    let cases: &[Case] = &[
        (None, "GET", "/api/runs", "", 401, "no token"),
        (None, "PUT", "/api/experiments/e", exp, 401, "no token"),
        (
            Some("lf_wrong"),
            "GET",
            "/api/runs",
            "",
            401,
            "unknown token",
        ),
        (
            Some(&expired),
            "GET",
            "/api/runs",
            "",
            401,
            "`old` has expired",
        ),
        (
            Some(&revoked),
            "GET",
            "/api/runs",
            "",
            401,
            "`gone` was revoked",
        ),
        (Some(&viewer), "GET", "/api/runs", "", 200, "["),
        (
            Some(&viewer),
            "PUT",
            "/api/experiments/e",
            exp,
            403,
            "needs the operator role",
        ),
        (
            Some(&viewer),
            "POST",
            "/api/runs",
            "{\"experiment\":\"e\"}",
            403,
            "operator",
        ),
        (
            Some(&viewer),
            "POST",
            "/api/runs/x/stop",
            "",
            403,
            "operator",
        ),
        (
            Some(&operator),
            "PUT",
            "/api/experiments/e",
            exp,
            201,
            "\"valid\":true",
        ),
        (
            Some(&operator),
            "PUT",
            "/api/experiments/e",
            exp,
            200,
            "\"valid\":true",
        ),
        (
            Some(&operator),
            "GET",
            "/api/tokens",
            "",
            403,
            "needs the admin role",
        ),
        (Some(&admin), "GET", "/api/tokens", "", 200, "\"alice\""),
        (
            Some(&operator),
            "POST",
            "/api/tokens",
            r#"{"role": "admin", "name": "mine"}"#,
            403,
            "needs the admin role",
        ),
        (
            Some(&admin),
            "POST",
            "/api/tokens",
            r#"{"role": "viewer", "name": "carol", "expire": "1d"}"#,
            400,
            "unknown field `expire`",
        ),
        (
            Some(&admin),
            "POST",
            "/api/tokens",
            r#"{"role": "boss", "name": "carol"}"#,
            400,
            "send {",
        ),
        (
            Some(&viewer),
            "GET",
            "/api/experiments/e",
            "",
            200,
            "title: nothing",
        ),
        (
            Some(&viewer),
            "GET",
            "/api/audit",
            "",
            200,
            "alice (operator)",
        ),
    ];
    for (token, method, path, body, want, words) in cases {
        let (status, _, answer) = server.call(method, path, *token, Some(body.as_bytes()));
        assert_eq!(status, *want, "{method} {path} with {token:?}: {answer}");
        assert!(
            answer.contains(words),
            "{method} {path}: `{words}` not in {answer}"
        );
    }
    // An admin makes a token through the API: shown once, and it works for its role.
    let (status, made) = server.json(
        "POST",
        "/api/tokens",
        &admin,
        Some(json!({"role": "viewer", "name": "carol", "expires": "1d"})),
    );
    assert_eq!(status, 201, "{made}");
    let carol = made["token"].as_str().expect("the token").to_owned();
    let (status, _) = server.json("GET", "/api/runs", &carol, None);
    assert_eq!(status, 200);
    let (status, answer) = server.start_run(&carol, "e");
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = server.json(
        "POST",
        "/api/tokens",
        &admin,
        Some(json!({"role": "viewer", "name": "carol"})),
    );
    assert_eq!(status, 409, "a name is one token: {answer}");
    // The store keeps hashes: no token appears in it.
    let db = std::fs::read(server.home.path().join("data/serve.db")).unwrap();
    let db = String::from_utf8_lossy(&db);
    for t in [&admin, &operator, &viewer, &carol] {
        assert!(!db.contains(t.as_str()), "a token is stored in clear");
    }
}

#[test]
fn a_malformed_experiment_is_400_with_file_line_and_column_and_is_not_stored() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let text = "version: 1\ntitle: typo\ntimeline:\n  - at: 0s\n    for: 1s\n    fault: { process.pause: { target: nobody } }\n";
    let (status, v) = server.json("PUT", "/api/experiments/typo", &operator, Some(Value::Null));
    // A JSON null is not an experiment either: located at line 1.
    assert_eq!(status, 400, "{v}");
    let (status, body) = server.put_experiment(&operator, "typo", text);
    assert_eq!(status, 400, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let d = &v["diagnostics"][0];
    assert_eq!(d["file"], "typo.yaml", "{v}");
    assert_eq!(d["line"], 6, "{v}");
    assert_eq!(d["column"], 39, "{v}");
    assert!(d["message"].as_str().unwrap().contains("nobody"), "{v}");
    let (status, _) = server.json("GET", "/api/experiments/typo", &operator, None);
    assert_eq!(status, 404, "an invalid experiment is not stored");
    // The same text, validated without storing, says the same.
    let (status, _, body) = server.call(
        "POST",
        "/api/validate?name=typo",
        Some(&operator),
        Some(text.as_bytes()),
    );
    assert_eq!(status, 400);
    assert!(body.contains("typo.yaml:6:39"), "{body}");
}

#[test]
fn a_run_pauses_a_process_stop_rolls_it_back_and_a_second_run_on_it_is_409() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let viewer = server.token("viewer", "bob", None);
    let victim = Victim::start();
    let (status, body) =
        server.put_experiment(&operator, "pause", &pause_with_probe(victim.pid(), 120));
    assert_eq!(status, 201, "{body}");
    let (status, plan) = server.json("GET", "/api/experiments/pause/plan", &viewer, None);
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["activities"][0]["name"], "victim paused");
    assert_eq!(plan["activities"][0]["duration_ms"], 120_000);
    let (status, run) = server.start_run(&operator, "pause");
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    assert!(victim.wait_state('T'), "the run paused the victim");
    // The target is held: a second run is refused, naming the first.
    let (status, again) = server.start_run(&operator, "pause");
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["run"], id.as_str(), "{again}");
    assert_eq!(again["target"], "victim");
    // `livefire runs --active` (same home) sees the server's run.
    let (_, active, _) = run_cmd(server.home.livefire().args(["runs", "--active"]));
    assert!(active.contains(&id), "{active}");
    // A viewer cannot stop it; an operator can.
    let (status, _) = server.json("POST", &format!("/api/runs/{id}/stop"), &viewer, None);
    assert_eq!(status, 403);
    let (status, stop) = server.json("POST", &format!("/api/runs/{id}/stop"), &operator, None);
    assert_eq!(status, 202, "{stop}");
    let ended = wait_run(&server, &viewer, &id, |v| v["run"]["state"] == "ended");
    assert_eq!(ended["run"]["verdict"], "aborted", "{ended}");
    assert_eq!(ended["pending_undo"], json!([]), "{ended}");
    assert_eq!(ended["run"]["stopped_by"], "alice (operator)");
    // The run's own record says who stopped it, not `livefire halt`.
    assert_eq!(
        ended["summary"]["abort_reason"], "stopped from the console by alice",
        "{ended}"
    );
    assert!(victim.running(), "the victim runs again after STOP");
    // The audit log says who started and stopped it, in the store and in the journal.
    let actions: Vec<(String, String)> = ended["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().into(),
                a["who"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("start".into(), "alice (operator)".into())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("stop".into(), "alice (operator)".into())),
        "{actions:?}"
    );
    let audits: Vec<Value> = server
        .journal(&viewer, &id)
        .into_iter()
        .filter(|v| v["type"] == "audit")
        .collect();
    assert_eq!(audits.len(), 2, "{audits:?}");
    assert_eq!(audits[1]["action"], "stop");
    // The run list shows the verdict; the report is served.
    let (_, runs) = server.json("GET", "/api/runs", &viewer, None);
    assert_eq!(runs[0]["verdict"], "aborted", "{runs}");
    let (status, _, report) = server.call(
        "GET",
        &format!("/api/runs/{id}/files/report.html"),
        Some(&viewer),
        None,
    );
    assert_eq!(status, 200);
    assert!(
        report.contains("victim paused"),
        "the report names the fault"
    );
    // Once the ledger is clear the target is free again.
    let (status, second) = server.start_run(&operator, "pause");
    assert_eq!(status, 201, "{second}");
    let second_id = second["id"].as_str().unwrap();
    assert!(victim.wait_state('T'));
    let (status, _) = server.json(
        "POST",
        &format!("/api/runs/{second_id}/stop"),
        &operator,
        None,
    );
    assert_eq!(status, 202);
    wait_run(&server, &viewer, second_id, |v| {
        v["run"]["state"] == "ended"
    });
    assert!(victim.running());
}

#[test]
fn a_server_killed_mid_run_rolls_back_at_its_next_start_and_says_so() {
    let mut server = Server::start();
    let operator = server.token("operator", "alice", None);
    let victim = Victim::start();
    let id = server.pause_run(&operator, &victim);
    // The server and its run die at once (kill -9 of the process group).
    server.kill_all();
    assert_eq!(victim.state(), 'T', "nobody rolled back yet");
    let home = std::mem::replace(&mut server.home, Home::new());
    drop(server);
    let again = Server::start_in(home);
    let said = again.stderr();
    assert!(
        said.contains(&format!("the previous server stopped while run {id}")),
        "{said}"
    );
    assert!(said.contains("rolled back from the ledger"), "{said}");
    assert!(said.contains("the ledger is empty"), "{said}");
    assert!(victim.running(), "the next start rolled the pause back");
    let (_, v) = again.json("GET", &format!("/api/runs/{id}"), &operator, None);
    assert_eq!(v["run"]["state"], "ended", "{v}");
    assert_eq!(v["run"]["verdict"], "aborted", "{v}");
}

/// A run whose control socket is gone cannot be halted from the console: STOP says so
/// (503), and the audit log has the attempt and why it failed.
#[test]
fn a_stop_the_runs_control_socket_does_not_take_is_503_and_audited() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let victim = Victim::start();
    let id = server.pause_run(&operator, &victim);
    let socket = server.home.path().join(format!("home/active/{id}.sock"));
    std::fs::remove_file(&socket).unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
    let (status, answer) = server.json("POST", &format!("/api/runs/{id}/stop"), &operator, None);
    assert_eq!(status, 503, "{answer}");
    assert!(answer.to_string().contains(&id), "{answer}");
    let (_, detail) = server.json("GET", &format!("/api/runs/{id}"), &operator, None);
    let actions: Vec<&str> = detail["audit"]
        .as_array()
        .expect("the run's audit lines")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"stop") && actions.contains(&"stop_failed"),
        "{detail}"
    );
    assert_eq!(victim.state(), 'T', "nothing was rolled back");
    // Without its socket only the ledger can undo it: kill everything, then recover.
    let mut server = server;
    server.kill_all();
    let (code, _, err) = run(server.home.livefire().arg("recover"));
    assert_eq!(code, 0, "{err}");
    assert!(victim.running(), "recover rolled the pause back");
}

/// Stopping the service (`systemctl stop`: SIGTERM) halts the runs it has going: they
/// roll back and are recorded as aborted before it exits, so its next start finds
/// nothing to recover.
#[test]
fn a_server_stopped_with_sigterm_halts_its_runs_and_they_roll_back_first() {
    let mut server = Server::start();
    let operator = server.token("operator", "alice", None);
    let victim = Victim::start();
    let id = server.pause_run(&operator, &victim);
    let _ = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    let exited = loop {
        match server.child.try_wait() {
            Ok(Some(status)) => break Some(status),
            _ if Instant::now() > deadline => break None,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let exited = exited.unwrap_or_else(|| panic!("still running: {}", server.stderr()));
    assert!(exited.success(), "{exited}: {}", server.stderr());
    assert!(
        victim.running(),
        "the run rolled its pause back before the server exited"
    );
    // The same data folder again: the run is over, aborted, and nothing is left to do.
    let home = std::mem::replace(&mut server.home, Home::new());
    // (Its process is gone and reaped: no signal for the pid on drop.)
    std::mem::forget(server);
    let again = Server::start_in(home);
    let said = again.stderr();
    assert!(
        !said.contains("the previous server stopped while run"),
        "{said}"
    );
    let (_, v) = again.json("GET", &format!("/api/runs/{id}"), &operator, None);
    assert_eq!(v["run"]["state"], "ended", "{v}");
    assert_eq!(v["run"]["verdict"], "aborted", "{v}");
    let journal = again.journal(&operator, &id);
    assert!(
        journal
            .iter()
            .any(|e| e.to_string().contains("the console, which is stopping")),
        "{journal:?}"
    );
}

#[test]
fn a_target_a_crashed_run_left_in_the_ledger_is_409_naming_that_run_until_recovered() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let victim = Victim::start();
    let text = pause_with_probe(victim.pid(), 120);
    // A run from a shell, with the same home, killed -9 with its pause applied.
    let file = server.home.file(&text);
    let mut child = server
        .home
        .run(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(victim.wait_state('T'));
    child.kill().unwrap();
    let _ = child.wait();
    let crashed = server
        .home
        .run_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (status, body) = server.put_experiment(&operator, "pause", &text);
    assert_eq!(status, 201, "{body}");
    let start = || server.start_run(&operator, "pause");
    let (status, v) = start();
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["run"], crashed.as_str(), "{v}");
    let message = v["error"].as_str().unwrap();
    assert!(message.contains("still in the ledger"), "{message}");
    assert!(message.contains("livefire recover"), "{message}");
    assert_eq!(victim.state(), 'T', "a refused run changes nothing");
    let (code, _, err) = run(server.home.livefire().arg("recover"));
    assert_eq!(code, 0, "{err}");
    assert!(victim.running());
    let (status, v) = start();
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    let (status, _) = server.json("POST", &format!("/api/runs/{id}/stop"), &operator, None);
    assert_eq!(status, 202);
    wait_run(&server, &operator, id, |v| v["run"]["state"] == "ended");
    assert!(victim.running());
}

#[test]
fn with_a_certificate_it_serves_https_and_off_loopback_it_refuses_plain_http() {
    let fixtures = repo().join("crates/livefire-load/tests/fixtures");
    let cert = fixtures.join("cert.pem").display().to_string();
    let key = fixtures.join("key.pem").display().to_string();
    let server = Server::start_with(Home::new(), &["--tls-cert", &cert, "--tls-key", &key]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    // livefire's own load client over TLS: the page and the API answer.
    let (code, out, err) = run(server.home.livefire().args([
        "load",
        &format!("{}/api/openapi.yaml", server.url),
        "-r",
        "20/s",
        "-d",
        "1s",
        "--insecure",
        "--json",
    ]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let ok = v["outcomes"]["ok"].as_u64().unwrap_or(0);
    assert!(ok >= 10, "requests answered over TLS: {out}");
    // Off loopback without TLS: refused, saying what to do.
    let home = Home::new();
    let (code, _, err) = run(home
        .livefire()
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(home.path().join("data")));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("--tls-cert and --tls-key"), "{err}");
}

/// Login and logout carry no token a forger lacks, so another site's page must not be
/// able to log a visitor in (as the forger) or out: a browser's `Origin` must be the
/// console. The console's own page, and clients that send no `Origin`, log in.
#[test]
fn a_login_or_logout_from_another_sites_page_is_refused() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let host = server.addr().to_string();
    // `origin`: the header lines a browser would add (`Origin: ...`), or none.
    let post = |path: &str, origin: Option<&str>, body: &str| {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let origin = origin.map(|o| format!("{o}\r\n")).unwrap_or_default();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        read_answer(&mut s)
    };
    let login = format!("{{\"token\": \"{operator}\"}}");
    for path in ["/api/login", "/api/logout"] {
        for origin in [
            "Origin: http://evil.example".to_owned(),
            "Origin: null".to_owned(),
            format!("Origin: http://{host}.evil.example"),
            // What a browser says of another site's page, which it cannot change.
            "Origin: null\r\nSec-Fetch-Site: cross-site".to_owned(),
        ] {
            let origin = origin.as_str();
            let (status, head, body) = post(path, Some(origin), &login);
            assert_eq!(status, 403, "{path} from {origin}: {body}");
            assert!(body.contains("another site"), "{body}");
            assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{head}");
        }
    }
    let own = format!("Origin: http://{host}");
    // The console's own page: its origin, or `null` (a `no-referrer` page in some
    // browsers) with the browser's word that it is the same origin; and no browser.
    let same = "Origin: null\r\nSec-Fetch-Site: same-origin";
    for origin in [Some(own.as_str()), Some(same), None] {
        let (status, head, body) = post("/api/login", origin, &login);
        assert_eq!(status, 200, "from {origin:?}: {body}");
        assert!(head.to_ascii_lowercase().contains("set-cookie"), "{head}");
        let (status, _, body) = post("/api/logout", origin, "");
        assert_eq!(status, 200, "from {origin:?}: {body}");
    }
}

#[test]
fn bodies_too_large_or_too_slow_are_cut_off_with_a_status_that_says_so() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let big = vec![b'#'; 2 * 1024 * 1024];
    let (status, _, body) = server.call("PUT", "/api/experiments/big", Some(&operator), Some(&big));
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("larger than 1024 KiB"), "{body}");
    let open = || {
        let s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s
    };
    // Three at once, so the test waits out the 10 s limit once: a body announced as 100
    // bytes of which 10 come; headers that stop half way; a connection that sends nothing.
    let mut slow_body = open();
    write!(
        slow_body,
        "PUT /api/experiments/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {operator}\r\nContent-Length: 100\r\n\r\nversion: 1"
    )
    .unwrap();
    let mut slow_head = open();
    write!(
        slow_head,
        "GET /api/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bear"
    )
    .unwrap();
    let mut idle = open();
    let (status, _, body) = read_answer(&mut slow_body);
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("did not arrive within"), "{body}");
    let (status, head, body) = read_answer(&mut slow_head);
    assert_eq!(status, 408, "{head}{body}");
    assert!(body.contains("headers did not arrive within 10s"), "{body}");
    // An idle connection (a browser's keep-alive) is closed without an answer it did
    // not ask for.
    let (status, head, _) = read_answer(&mut idle);
    assert_eq!((status, head.as_str()), (0, ""));
}

#[test]
fn livefire_fuzz_finds_no_server_error_in_the_api_under_load() {
    let server = Server::start();
    let operator = server.token("operator", "fuzzer", None);
    let victim = Victim::start();
    // Something to find: an experiment and a run, so ids lead somewhere.
    let (status, _) = server.put_experiment(&operator, "pause", &pause_with_probe(victim.pid(), 1));
    assert_eq!(status, 201);
    let spec = repo().join("crates/livefire-serve/openapi.yaml");
    let out = server.home.path().join("fuzz");
    // Under load: people reading the runs list all through the fuzzing, with
    // livefire's own load generator (open model, so a slow answer does not hide).
    let viewer = server.token("viewer", "readers", None);
    let load = server
        .home
        .livefire()
        .arg("load")
        .arg(format!("{}/api/runs", server.url))
        .args([
            "--rate",
            "50/s",
            "--duration",
            "16s",
            "--timeout",
            "30s",
            "--json",
        ])
        .args(["--header", &format!("Authorization: Bearer {viewer}")])
        .args(["--expect-status", "200"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("livefire load starts");
    let (code, stdout, stderr) = run(server
        .home
        .livefire()
        .arg("fuzz")
        .arg(&spec)
        .args([
            "--base-url",
            &server.url,
            "--duration",
            "15s",
            "--seed",
            "7",
        ])
        .args(["--checks", "server_error,crash"])
        .args(["--header", &format!("Authorization: Bearer {operator}")])
        .args(["--fail-on", "low", "--out"])
        .arg(&out));
    assert_eq!(code, 0, "findings:\n{stdout}\n{stderr}");
    let summary_path = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path().join("fuzz-summary.json"))
        .find(|p| p.is_file())
        .expect("a fuzz-summary.json");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(summary_path).unwrap()).unwrap();
    let sent = summary["requests"].as_u64().unwrap_or(0);
    assert!(sent > 100, "the fuzzer sent {sent} requests: {summary}");
    let statuses = summary["statuses"].as_object().expect("statuses by code");
    for (code, n) in statuses {
        assert!(
            !code.starts_with('5'),
            "{n} answers with status {code}: {summary}"
        );
    }
    assert!(
        statuses.contains_key("400") && statuses.contains_key("404"),
        "{summary}"
    );
    // Every reader was answered, and answered 200, while the fuzzer ran.
    let load = load.wait_with_output().expect("livefire load ends");
    let text = String::from_utf8_lossy(&load.stdout);
    assert!(
        load.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let load: Value = serde_json::from_str(&text).expect("load --json prints JSON");
    let requests = load["requests"].as_u64().unwrap_or(0);
    assert!(
        requests > 100,
        "the readers sent {requests} requests: {load}"
    );
    assert_eq!(load["outcomes"]["ok"].as_u64(), Some(requests), "{load}");
    // The server still answers after it.
    let (status, _, _) = server.call("GET", "/api/runs", Some(&operator), None);
    assert_eq!(status, 200);
}

/// `run` from support, for a command built in place.
fn run_cmd(cmd: &mut Command) -> (i32, String, String) {
    run(cmd)
}

/// A console run's variables may be secrets: the child `livefire run` gets them on its
/// stdin, not as arguments that any local user reads in `ps` or /proc/PID/cmdline.
#[test]
fn a_runs_variables_are_not_in_the_child_processs_command_line() {
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let marker = format!("s3cret-marker-{}", std::process::id());
    let said = server.home.path().join("said.txt");
    let text = format!(
        "version: 1\ntitle: a secret in a var\nvars: {{ secret: from-the-file }}\ntimeline:\n  - at: 0s\n    for: 120s\n    name: say the secret\n    fault: {{ command: {{ apply: \"echo ${{secret}} > {}\" }} }}\n",
        said.display()
    );
    let (status, body) = server.put_experiment(&operator, "secret", &text);
    assert_eq!(status, 201, "{body}");
    let (status, run) = server.json(
        "POST",
        "/api/runs",
        &operator,
        Some(json!({ "experiment": "secret", "vars": { "secret": marker } })),
    );
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let pid = run["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("the run's pid: {run}"));
    // The run used the value: its command wrote it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&said).is_ok_and(|s| s.contains(&marker))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(&said).unwrap_or_default().trim(),
        marker,
        "the run's command wrote the console's value, not the file's"
    );
    // While it is live, its command line names the run but holds no value.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the run is live");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains("run") && cmdline.contains("--vars-file -"),
        "{cmdline}"
    );
    assert!(!cmdline.contains(&marker), "{cmdline}");
    let (status, stop) = server.json("POST", &format!("/api/runs/{id}/stop"), &operator, None);
    assert_eq!(status, 202, "{stop}");
    let ended = wait_run(&server, &operator, &id, |v| v["run"]["state"] == "ended");
    assert_eq!(ended["run"]["verdict"], "aborted", "{ended}");
}
