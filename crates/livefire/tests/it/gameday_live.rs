//! `livefire gameday` while it runs: the responders' page, its API and event stream,
//! and marks from a shell and over HTTP, all against a real run. Hidden curveballs stay
//! hidden until they end; marks land in the journal when they were taken; a mark from an
//! unknown responder, or with no game day running, is refused and nothing is recorded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// What the hidden curveball is: nothing a responder reads may contain these before it
/// ends.
const SECRETS: [&str; 2] = ["secretsleeper", "process.pause"];

/// When a game day's curveballs run (from, to) and when its timeline ends, in seconds.
#[derive(Clone, Copy)]
pub struct Timing {
    pub window: (u32, u32),
    pub ends: u32,
}

/// A hidden game day whose curveballs all run from 2 s to 4 s: `process.pause
/// secretsleeper` and whatever `extra_pool` adds, `draw` of them (all, to be sure of
/// them); a command keeps the timeline going to 7 s so their end is seen while the run
/// goes on.
pub fn experiment(
    port: u16,
    draw: usize,
    extra_pool: &str,
    responders: &str,
    scenario_extra: &str,
) -> String {
    let timing = Timing {
        window: (2, 4),
        ends: 7,
    };
    experiment_timed(timing, port, draw, extra_pool, responders, scenario_extra)
}

/// As [`experiment`], with the curveballs lasting all of `timing.window`.
pub fn experiment_timed(
    timing: Timing,
    port: u16,
    draw: usize,
    extra_pool: &str,
    responders: &str,
    scenario_extra: &str,
) -> String {
    let Timing {
        window: (from, to),
        ends,
    } = timing;
    let lasts = to - from;
    format!(
        r#"version: 1
title: responders at work
settings: {{ seed: 1, settle: 5s }}
setup:
  - name: worker
    command: "livefire sandbox http --listen 127.0.0.1:{port}"
    ready: {{ http: {{ url: "http://127.0.0.1:{port}/health" }} }}
  - {{ name: secretsleeper, command: "sleep 600" }}
hypothesis:
  - name: worker answers
    probe: {{ http: {{ url: "http://127.0.0.1:{port}/health", timeout: 2s }} }}
    expect: {{ status: 200 }}
    # A busy test machine is slow, never fast: only a long outage deviates.
    tolerate: 10s
timeline:
  - {{ at: 0s, for: {ends}s, name: steady, fault: {{ command: {{ apply: "true" }} }} }}
scenario:
  draw: {draw}
  window: [{from}s, {to}s]
  duration: [{lasts}s, {lasts}s]
  hidden: true
  responders: {responders}
{scenario_extra}  pool:
    - {{ fault: {{ process.pause: {{ target: secretsleeper }} }} }}
{extra_pool}"#
    )
}

/// A running `livefire gameday` and its page's address.
pub struct Game {
    pub child: Option<Child>,
    pub addr: String,
}

impl Game {
    /// Starts `livefire gameday file` in `home` and waits for its page.
    pub fn start(home: &Home, file: &Path) -> Game {
        let child = home
            .livefire()
            .arg("gameday")
            .arg(file)
            .arg("--out")
            .arg(home.path().join("runs"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("livefire gameday starts");
        let active = home.path().join("home/active");
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let record = std::fs::read_dir(&active).ok().and_then(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .find(|p| p.to_string_lossy().ends_with(".gameday.json"))
            });
            if let Some(v) = record
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            {
                break v["url"].as_str().expect("a url").to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no game day record under {} within 60 s",
                active.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let addr = url
            .strip_prefix("http://")
            .and_then(|r| r.strip_suffix('/'))
            .expect("http://ADDR/")
            .to_owned();
        Game {
            child: Some(child),
            addr,
        }
    }

    /// Whether the run still goes on.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Waits for the run to end: (exit code, stdout, stderr).
    pub fn finish(&mut self) -> (i32, String, String) {
        finish(self.child.take().expect("still running"))
    }

    /// `GET path`: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http(&self.addr, "GET", path, None)
    }

    /// The page's state as `GET /api/state` tells it (`query`: `?as=NAME` or nothing).
    pub fn state(&self, query: &str) -> Value {
        let (status, body) = self.get(&format!("/api/state{query}"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("state is JSON")
    }

    /// Polls the state (as `query` asks it) until `pred` holds (60 s at most).
    pub fn wait_for(&self, what: &str, query: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.state(query);
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "no {what} within 60 s: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Game {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One HTTP/1.1 exchange over a fresh connection: (status, body).
pub fn http(addr: &str, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
    try_http(addr, method, path, json).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// One exchange, or why the connection failed (the run ended).
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    json: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let ct: Vec<String> = json
        .map(|_| "Content-Type: application/json".to_owned())
        .into_iter()
        .collect();
    let body = json.unwrap_or("").as_bytes();
    let (status, _, body) = http_exchange(addr, method, path, &ct, body, Duration::from_secs(30))?;
    Ok((status, body))
}

/// Reads `GET /api/events` until the server closes it; returns each event's data.
fn follow_events(addr: String) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).expect("the page answers");
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        write!(
            s,
            "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut all = Vec::new();
        let mut chunk = [0u8; 8192];
        while let Ok(n) = s.read(&mut chunk) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&all)
            .lines()
            .filter_map(|l| l.strip_prefix("data: ").map(str::to_owned))
            .collect()
    })
}

/// Whether a state shows curveball 1 as not ended yet (active, or not shown at all).
fn before_end(state: &Value) -> bool {
    !state["curveballs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["ended_ms"].is_u64())
}

/// `livefire mark ...` in `home`: (exit code, stdout, stderr).
pub fn mark(home: &Home, args: &[&str]) -> (i32, String, String) {
    run(home.livefire().arg("mark").args(args))
}

pub fn journal_events(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn run_dir(home: &Home) -> PathBuf {
    home.run_dir()
}

#[test]
fn marks_land_in_the_journal_when_taken_and_hidden_curveballs_stay_hidden() {
    let home = Home::new();
    // No game day yet: a clear error, exit 3.
    let (code, _, err) = mark(&home, &["detected", "--as", "alice"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no game day is running"), "{err}");

    let file = home.file(&experiment(free_port(), 1, "", "[alice, bob]", ""));
    let mut game = Game::start(&home, &file);
    let events = follow_events(game.addr.clone());
    let (status, html) = game.get("/");
    assert_eq!(status, 200);
    assert!(html.contains("<script src=\"page.js\">"), "{html}");

    // Marks once the timeline runs: from a shell, and over HTTP as a chat bot would.
    let before = game.wait_for("the timeline", "", |s| s["phase"] == "during");
    let t_before = before["t_ms"].as_u64().unwrap();
    let (code, out, err) = mark(
        &home,
        &["detected", "--as", "alice", "--note", "health is slow"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let printed: f64 = out
        .split("recorded at t = ")
        .nth(1)
        .and_then(|r| r.trim().strip_suffix(" s"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no time in {out:?}"));
    let (status, body) = http(
        &game.addr,
        "POST",
        "/api/marks",
        Some(r#"{"mark":"mitigated","responder":"bob"}"#),
    );
    assert_eq!(status, 201, "{body}");
    // Unknown responders are refused, from a shell and over HTTP, and recorded nowhere.
    let (code, _, err) = mark(&home, &["resolved", "--as", "carol"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("unknown responder `carol`") && err.contains("alice, bob"),
        "{err}"
    );
    let (status, body) = http(
        &game.addr,
        "POST",
        "/api/marks",
        Some(r#"{"mark":"resolved","responder":"carol"}"#),
    );
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("unknown responder"), "{body}");

    // Snapshots of the API until the run ends; every one before the curveball ended
    // must not say what it is.
    let mut snapshots = Vec::new();
    while game.running() {
        if let Ok((200, body)) = try_http(&game.addr, "GET", "/api/state", None) {
            snapshots.push(body);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    let (code, out, err) = game.finish();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("responders' page is at http://"), "{err}");
    let streamed = events.join().unwrap();

    for (what, seen) in [("GET /api/state", &snapshots), ("/api/events", &streamed)] {
        let states: Vec<Value> = seen
            .iter()
            .map(|s| serde_json::from_str(s).unwrap())
            .collect();
        let mut hidden_active = 0;
        let mut revealed = 0;
        for (raw, state) in seen.iter().zip(&states) {
            if before_end(state) {
                for secret in SECRETS {
                    assert!(!raw.contains(secret), "{what} leaked `{secret}`: {raw}");
                }
                hidden_active += usize::from(
                    state["curveballs"][0]["name"] == "curveball 1"
                        && state["curveballs"][0]["active"] == true,
                );
            } else if state["curveballs"][0]["name"] == "curveball 1: process.pause secretsleeper" {
                revealed += 1;
            }
        }
        assert!(
            hidden_active > 0,
            "{what} never showed the active curveball"
        );
        assert!(
            revealed > 0,
            "{what} never named the curveball after it ended"
        );
    }
    assert!(!html.contains("secretsleeper") && !html.contains("process.pause"));

    let journal = journal_events(&run_dir(&home));
    let marks: Vec<&Value> = journal.iter().filter(|e| e["type"] == "mark").collect();
    assert_eq!(marks.len(), 2, "{marks:?}");
    let (alice, bob) = (marks[0], marks[1]);
    assert_eq!(
        (
            &alice["mark"],
            &alice["responder"],
            &alice["note"],
            &alice["via"]
        ),
        (
            &"detected".into(),
            &"alice".into(),
            &"health is slow".into(),
            &"cli".into()
        )
    );
    assert_eq!(
        (&bob["mark"], &bob["responder"], &bob["via"]),
        (&"mitigated".into(), &"bob".into(), &"http".into())
    );
    assert!(bob.get("note").is_none(), "{bob}");
    // Timing: on the run's clock, after what the page showed before marking, in the
    // order they were sent, and the time `livefire mark` printed is the journal's.
    let t_alice = alice["t"].as_u64().unwrap();
    assert!(t_alice >= t_before, "{t_alice} < {t_before}");
    assert!(bob["t"].as_u64().unwrap() >= t_alice);
    assert!(
        (printed * 1000.0 - t_alice as f64).abs() <= 50.0,
        "printed {printed} s, journal {t_alice} ms"
    );
    let during = journal
        .iter()
        .find(|e| e["type"] == "phase_started" && e["phase"] == "during")
        .and_then(|e| e["t"].as_u64())
        .unwrap();
    assert!(t_alice >= during);
    assert!(!journal.iter().any(|e| e.to_string().contains("carol")));
    // The record `livefire mark` found is gone with the run.
    let (code, _, err) = mark(&home, &["detected", "--as", "alice"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no game day is running"), "{err}");
}

#[test]
fn an_away_responder_is_told_to_step_out_and_their_marks_are_refused_until_it_ends() {
    let home = Home::new();
    let pool = "    - { fault: { person.away: { responder: alice } } }\n    - { fault: { person.no_access: { responder: bob } } }\n";
    // The hook: a command appending each message, and a webhook (this test's server).
    let (hook_addr, posted) = webhook();
    let notify = format!(
        "  notify: {{ command: \"cat >> notify.jsonl; echo >> notify.jsonl\", url: \"http://{hook_addr}/hook\" }}\n"
    );
    let file = home.file(&experiment(
        free_port(),
        3,
        pool,
        "[alice, bob, dana]",
        &notify,
    ));
    let mut game = Game::start(&home, &file);

    // Alice's view tells her to step out, until the curveball's end.
    let view = game.wait_for("alice away", "?as=alice", |s| s["away"].is_object());
    let away = &view["away"];
    assert!(
        away["curveball"]
            .as_str()
            .unwrap()
            .starts_with("curveball "),
        "{view}"
    );
    assert!(away["until_ms"].as_u64().unwrap() >= 2000, "{view}");
    // Nobody else's view says so, and no view names the hidden curveballs.
    for who in ["", "?as=bob", "?as=dana"] {
        let (_, body) = game.get(&format!("/api/state{who}"));
        let v: Value = serde_json::from_str(&body).unwrap();
        if before_end(&v) {
            assert!(v["away"].is_null(), "{who}: {v}");
            for secret in ["person.", "secretsleeper", "process.pause"] {
                assert!(!body.contains(secret), "{who} leaked `{secret}`: {body}");
            }
        }
    }

    // While it lasts: alice is refused with a message; bob (no access) too; dana marks.
    let (code, out, err) = mark(&home, &["detected", "--as", "alice"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("alice is away") && err.contains("refused until it ends"),
        "{err}"
    );
    let (status, body) = http(
        &game.addr,
        "POST",
        "/api/marks",
        Some(r#"{"mark":"detected","responder":"bob"}"#),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("bob has no access"), "{body}");
    let (code, out, err) = mark(&home, &["detected", "--as", "dana"]);
    assert_eq!(code, 0, "{out}{err}");

    // Once the curveballs ended, alice and bob mark again.
    game.wait_for("the curveballs' end", "", |s| {
        let c = s["curveballs"].as_array().unwrap();
        c.len() == 3 && c.iter().all(|c| c["ended_ms"].is_u64())
    });
    let (_, body) = game.get("/api/state?as=alice");
    assert!(body.contains("\"away\":null"), "{body}");
    let (code, out, err) = mark(&home, &["resolved", "--as", "alice"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = mark(&home, &["resolved", "--as", "bob"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = game.finish();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");

    let journal = journal_events(&run_dir(&home));
    let marks: Vec<(String, String)> = journal
        .iter()
        .filter(|e| e["type"] == "mark")
        .map(|e| {
            (
                e["responder"].as_str().unwrap().to_owned(),
                e["mark"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("dana", "detected"),
        ("alice", "resolved"),
        ("bob", "resolved"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(marks, want);
    // Alice's mark came after her curveball ended, on the run's clock.
    let ended = journal
        .iter()
        .find(|e| {
            e["type"] == "activity_ended"
                && e["activity"]
                    .as_str()
                    .is_some_and(|a| a.ends_with("person.away alice"))
        })
        .and_then(|e| e["t"].as_u64())
        .expect("the away curveball ended");
    let t_alice = journal
        .iter()
        .find(|e| e["type"] == "mark" && e["responder"] == "alice")
        .and_then(|e| e["t"].as_u64())
        .unwrap();
    assert!(t_alice >= ended, "{t_alice} < {ended}");

    // The hook heard every curveball start and end, named (the facilitator's channel),
    // and every mark, in journal order, by command and by webhook alike.
    let told: Vec<Value> = std::fs::read_to_string(home.path().join("notify.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events = |all: &[Value]| -> Vec<String> {
        all.iter()
            .map(|m| m["event"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut kinds = events(&told);
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "curveball_ended",
            "curveball_ended",
            "curveball_ended",
            "curveball_started",
            "curveball_started",
            "curveball_started",
            "mark",
            "mark",
            "mark"
        ],
        "{told:?}"
    );
    let away = told
        .iter()
        .find(|m| m["event"] == "curveball_started" && m["kind"] == "person.away")
        .unwrap();
    assert_eq!(away["responder"], "alice");
    assert!(
        away["text"]
            .as_str()
            .unwrap()
            .contains("alice, step out now"),
        "{away}"
    );
    let ts: Vec<u64> = told.iter().map(|m| m["t_ms"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{ts:?}");
    let posted = posted.lock().unwrap().clone();
    assert_eq!(events(&posted), events(&told), "the webhook heard the same");
    assert!(
        !journal.iter().any(|e| e["type"] == "warning"),
        "no delivery failed: {journal:?}"
    );
}

/// A webhook on a free port answering 200 to every POST; the JSON bodies it got.
fn webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let body = livefire_testkit::http::read_message(&mut s)
                .ok()
                .flatten()
                .map(|(_, body)| body);
            if let Some(v) = body.and_then(|b| serde_json::from_slice(&b).ok()) {
                seen.lock().unwrap().push(v);
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (addr, got)
}

#[test]
fn a_failing_notify_hook_is_a_warning_and_the_game_day_goes_on() {
    let home = Home::new();
    // Nothing listens on the webhook's port, and the command fails.
    let dead = free_port();
    let notify = format!(
        "  notify: {{ command: \"echo no chat today >&2; exit 3\", url: \"http://127.0.0.1:{dead}/hook\", timeout: 2s }}\n"
    );
    let file = home.file(&experiment(free_port(), 1, "", "[alice]", &notify));
    let mut game = Game::start(&home, &file);
    game.wait_for("the timeline", "", |s| s["phase"] == "during");
    let (code, out, err) = mark(&home, &["detected", "--as", "alice"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = game.finish();
    assert_eq!(code, 0, "the run is not aborted by its hook:\n{out}\n{err}");
    let journal = journal_events(&run_dir(&home));
    let warnings: Vec<&str> = journal
        .iter()
        .filter(|e| e["type"] == "warning")
        .filter_map(|e| e["message"].as_str())
        .collect();
    // The curveball's start and end, and the mark: each said it was not told.
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    for w in &warnings {
        assert!(
            w.starts_with("notify: ")
                && w.contains("no chat today")
                && w.contains(&format!("127.0.0.1:{dead}"))
                && w.contains("the game day goes on"),
            "{w}"
        );
    }
    assert!(journal.iter().any(|e| e["type"] == "mark"));
}
