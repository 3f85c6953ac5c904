//! Split runs on local segments (`livefire run --segments N --on local`): real agent
//! processes against a real local target. The whole load adds up whatever N is, the
//! merged percentiles are those of every sample, a killed segment is reported (and
//! judged by `settings.segments.min_alive`), a guardrail stops every segment, and bad
//! input is refused before anything runs.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use livefire_core::window::Latency;
use livefire_load::LoadReport;

use crate::support::*;

/// A split-run experiment: `livefire sandbox http` as the target, a load of `rate` for
/// `secs`, plus `extra` top-level sections (before `timeline:`) and timeline entries.
fn experiment(port: u16, rate: u32, secs: u32, extra: &str, entries: &str) -> String {
    format!(
        "version: 1\ntitle: split\nsetup:\n  - {{ name: app, command: \"livefire sandbox http --listen 127.0.0.1:{port}\", ready: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }} }}\n{extra}timeline:\n  - {{ at: 0s, for: {secs}s, load: {{ name: browse, rate: {rate}/s, timeout: 300ms, requests: [ {{ name: health, url: \"http://127.0.0.1:{port}/health\" }} ] }} }}\n{entries}"
    )
}

/// The journal of the run going in `home` so far (its last line may be half written:
/// left out); empty before the run folder exists.
fn live_events(home: &Home) -> Vec<serde_json::Value> {
    let Some(dir) = std::fs::read_dir(home.path().join("runs"))
        .ok()
        .and_then(|mut d| d.next())
        .and_then(Result::ok)
    else {
        return Vec::new();
    };
    std::fs::read_to_string(dir.path().join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn events(journal: &str) -> Vec<serde_json::Value> {
    journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_type<'a>(events: &'a [serde_json::Value], t: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

/// The one `load_ended` report of the journal.
fn load_report(events: &[serde_json::Value]) -> LoadReport {
    let ended = of_type(events, "load_ended");
    assert_eq!(
        ended.len(),
        1,
        "one load_ended for the whole load: {ended:?}"
    );
    serde_json::from_value(ended[0]["report"]["report"].clone()).unwrap()
}

/// Each segment's own `load_ended` report, from `segments/<i>/stream.jsonl`.
fn segment_reports(run_dir: &Path, n: u32) -> Vec<LoadReport> {
    (1..=n)
        .map(|i| {
            let stream =
                std::fs::read_to_string(run_dir.join(format!("segments/{i}/stream.jsonl")))
                    .unwrap();
            let line = stream
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|v| v["type"] == "load_ended")
                .unwrap_or_else(|| panic!("segment {i} reported its load: {stream}"));
            serde_json::from_value(line["report"].clone()).unwrap()
        })
        .collect()
}

/// The pids of the segments, from their `started` events.
fn segment_pids(events: &[serde_json::Value]) -> Vec<(String, u32)> {
    of_type(events, "segment")
        .into_iter()
        .filter(|e| e["state"] == "started")
        .map(|e| {
            let detail = e["detail"].as_str().unwrap();
            let pid = detail
                .strip_prefix("pid ")
                .and_then(|d| d.split(',').next())
                .unwrap()
                .parse()
                .unwrap();
            (e["segment"].as_str().unwrap().to_owned(), pid)
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie is gone for our purpose: it makes no load.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

const QUANTILES: [f64; 5] = [0.5, 0.9, 0.99, 0.999, 1.0];

#[test]
fn one_segment_and_four_give_the_same_load_and_exact_percentiles() {
    let mut totals = Vec::new();
    for n in [1u32, 4] {
        let home = Home::new();
        let port = free_port();
        let file = home.file(&experiment(port, 200, 3, "", ""));
        let (code, out, err) =
            run(home
                .run(&file)
                .args(["--segments", &n.to_string(), "--on", "local", "-q"]));
        assert_eq!(code, 0, "N={n}: {err}");
        let run_dir = home.run_dir();
        let events = events(&home.journal());
        let merged = load_report(&events);

        // Every segment ran, got ready and said it was done.
        let segs = of_type(&events, "segment");
        for state in ["started", "ready", "done"] {
            let count = segs.iter().filter(|e| e["state"] == state).count();
            assert_eq!(count, n as usize, "N={n}: {state}: {segs:?}");
        }
        // The segments' shares are disjoint and add up to the schedule exactly.
        let parts = segment_reports(&run_dir, n);
        assert_eq!(parts.iter().map(|r| r.intended).sum::<u64>(), 600, "N={n}");
        assert_eq!(merged.intended, 600, "N={n}");
        // The merged percentiles are those of every sample of every segment ...
        let mut all = Latency::new();
        for p in &parts {
            all.merge(&p.total.latency);
        }
        assert_eq!(all.len(), merged.total.latency.len(), "N={n}");
        for q in QUANTILES {
            assert_eq!(
                merged.total.latency.quantile_us(q),
                all.quantile_us(q),
                "N={n}: quantile {q}"
            );
        }
        // ... and of every window the journal holds (the path the referee reads).
        let mut windows = Latency::new();
        let mut requests = 0;
        for w in of_type(&events, "window") {
            if w["series"] == "browse" {
                let w: livefire_core::window::Window =
                    serde_json::from_value(w["window"].clone()).unwrap();
                requests += w.counts.completed();
                windows.merge(&w.latency);
            }
        }
        assert_eq!(requests, merged.total.counts.completed(), "N={n}");
        for q in QUANTILES {
            assert_eq!(
                windows.quantile_us(q),
                merged.total.latency.quantile_us(q),
                "N={n}: quantile {q} from the journal's windows"
            );
        }
        // The load has one request: segments send its windows once, as the load's, and
        // the journal still has the request's series, each second the load's with
        // nothing intended.
        for i in 1..=n {
            let stream =
                std::fs::read_to_string(run_dir.join(format!("segments/{i}/stream.jsonl")))
                    .unwrap();
            assert!(stream.contains(r#""series":"browse","#), "N={n}");
            assert!(!stream.contains(r#""series":"browse.health""#), "N={n}");
        }
        let series = |name: &str| -> Vec<(u64, livefire_core::window::Window)> {
            of_type(&events, "window")
                .into_iter()
                .filter(|w| w["series"] == name)
                .map(|w| {
                    (
                        w["second"].as_u64().unwrap(),
                        serde_json::from_value(w["window"].clone()).unwrap(),
                    )
                })
                .collect()
        };
        let (load, request) = (series("browse"), series("browse.health"));
        assert_eq!(load.len(), request.len(), "N={n}");
        for ((s, l), (rs, r)) in load.iter().zip(&request) {
            assert_eq!(s, rs, "N={n}");
            assert_eq!(
                (&l.counts, l.sent, &l.latency),
                (&r.counts, r.sent, &r.latency)
            );
            assert_eq!(r.intended, 0, "N={n}");
        }
        let summary = home.summary();
        // The summary names every segment: done, its share of the requests (adding up
        // to the whole load), its clock against the coordinator's.
        let segs = summary["segments"].as_array().unwrap();
        assert_eq!(segs.len(), n as usize, "N={n}: {segs:?}");
        let mut requests = 0;
        let mut share = 0.0;
        for (i, s) in segs.iter().enumerate() {
            assert_eq!(s["segment"], format!("{}/{n}", i + 1), "N={n}");
            assert_eq!(s["state"], "done", "N={n}: {s}");
            assert!(s["clock_offset_ms"].is_i64(), "N={n}: {s}");
            requests += s["requests"].as_u64().unwrap();
            share += s["requests_share"].as_f64().unwrap();
        }
        assert_eq!(requests, merged.total.counts.completed(), "N={n}");
        assert!(
            (share - 1.0).abs() < 1e-9,
            "N={n}: shares add up to {share}"
        );
        // ... and so do the last lines of the run and the report.
        assert!(
            out.contains(&format!("segments: {n} ran, 0 lost; clock offsets")),
            "N={n}: {out}"
        );
        assert!(
            out.contains(&format!("segment {n}/{n}: done, ")),
            "N={n}: {out}"
        );
        let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
        assert!(html.contains(r#"<table id="segments">"#), "N={n}");
        assert!(html.contains(&format!("<td>{n}/{n}</td>")), "N={n}");
        totals.push((n, merged.total.counts.completed(), summary));
    }
    // The same load, whatever N: each completed at least 95% of what it intended, and
    // the two agree within that tolerance.
    for (n, completed, _) in &totals {
        assert!(*completed >= 570, "N={n}: {completed} of 600 completed");
    }
    let (a, b) = (totals[0].1 as f64, totals[1].1 as f64);
    assert!((a - b).abs() <= 0.05 * a, "N=1 {a} vs N=4 {b}");
}

/// A local HTTP server that answers every request `delay` after it arrived (200, keep
/// alive), each connection on its own thread; its address.
fn slow_server(delay: Duration) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut out = conn.try_clone().unwrap();
                let mut lines = BufReader::new(conn);
                let mut line = String::new();
                loop {
                    // A request: lines up to the empty one (the load's GETs have no body).
                    line.clear();
                    match lines.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line.trim().is_empty() => {}
                        Ok(_) => continue,
                    }
                    std::thread::sleep(delay);
                    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if out.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// Regression: segments were asked to stop 4 s after the timeline's end, whatever the
/// loads' request timeout, so requests still allowed to answer were dropped from the
/// totals (and a segment slow to stop was killed); a run on one machine cancelled its
/// loads at the timeline's end, dropping the answers still in flight. Now both give
/// requests the longest timeout plus `END_MARGIN` to end on their own.
#[test]
fn a_slow_target_within_the_timeout_is_counted_whole() {
    for split in [false, true] {
        let home = Home::new();
        // Answers 5 s late: later than the old 4 s, within the load's 8 s timeout.
        let addr = slow_server(Duration::from_secs(5));
        let file = home.file(&format!(
            "version: 1\ntitle: slow\ntimeline:\n  - {{ at: 0s, for: 2s, load: {{ name: browse, rate: 5/s, timeout: 8s, requests: [ {{ url: \"http://{addr}/\" }} ] }} }}\n"
        ));
        let mut cmd = home.run(&file);
        cmd.arg("-q");
        if split {
            cmd.args(["--segments", "2", "--on", "local"]);
        }
        let (code, _, err) = run(&mut cmd);
        let how = if split { "2 segments" } else { "one machine" };
        assert_eq!(code, 0, "{how}: {err}");
        let events = events(&home.journal());
        // Every request the schedule meant was answered, slowly, and counted.
        let merged = load_report(&events);
        assert_eq!(merged.intended, 10, "{how}");
        assert_eq!(merged.total.counts.completed(), 10, "{how}: {merged:?}");
        assert_eq!(merged.total.counts.errors(), 0, "{how}: {merged:?}");
        assert!(
            merged.total.latency.quantile_us(0.0).unwrap_or(0) >= 4_990_000,
            "{how}: every answer took the server's 5 s (to the histogram's 0.1%): {merged:?}"
        );
        if !split {
            continue;
        }
        // Every segment ended on its own, its loads run to their end: `done`, never
        // lost, and each said `ok` (not `stopped`: nobody had to ask it).
        let segs = of_type(&events, "segment");
        let mut done: Vec<&str> = segs
            .iter()
            .filter(|e| e["state"] == "done")
            .map(|e| e["segment"].as_str().unwrap())
            .collect();
        done.sort();
        assert_eq!(done, ["1/2", "2/2"], "{segs:?}");
        assert!(segs.iter().all(|e| e["state"] != "lost"), "{segs:?}");
        for i in 1..=2 {
            let stream =
                std::fs::read_to_string(home.run_dir().join(format!("segments/{i}/stream.jsonl")))
                    .unwrap();
            let last: serde_json::Value =
                serde_json::from_str(stream.lines().last().unwrap()).unwrap();
            assert_eq!(last["type"], "done", "segment {i}: {stream}");
            assert_eq!(last["status"], "ok", "segment {i}: {stream}");
        }
    }
}

/// `cmd` under an open-files limit of `soft` (hard limit `hard`), through `prlimit`.
fn with_nofile(cmd: &std::process::Command, soft: u64, hard: u64) -> std::process::Command {
    let mut limited = std::process::Command::new("prlimit");
    limited
        .arg(format!("--nofile={soft}:{hard}"))
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => limited.env(k, v),
            None => limited.env_remove(k),
        };
    }
    limited
}

#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit_and_virtual_users_beyond_it_are_refused() {
    let home = Home::new();
    let port = free_port();
    // Started under a soft limit of 256 with a hard limit of 4096 (a login shell's usual
    // pair is 1024 and more), nobody running `ulimit -n`.
    let (soft, hard) = (256, 4096);
    let file = home.file(&experiment(port, 10, 1, "", ""));
    let start = livefire_engine::clock::rfc3339(SystemTime::now() + Duration::from_secs(3));
    let mut agent = home.livefire();
    agent
        .args(["agent", "--segment", "1/1", "--start-at", &start])
        .arg(&file);
    let (code, out, err) = run(&mut with_nofile(&agent, soft, hard));
    assert_eq!(code, 0, "{err}");
    let ready: serde_json::Value = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["type"] == "ready")
        .unwrap_or_else(|| panic!("a ready line: {out}"));
    assert_eq!(ready["open_files"], hard, "{ready}");
    assert_eq!(ready["open_files_was"], soft, "{ready}");
    // A run says it in its journal, and so does each segment's `ready` event.
    let mut split_one = home.run(&file);
    split_one.args(["--segments", "1", "-q"]);
    let (code, _, err) = run(&mut with_nofile(&split_one, soft, hard));
    assert_eq!(code, 0, "{err}");
    let events = events(&home.journal());
    assert_eq!(of_type(&events, "run_started")[0]["open_files"], hard);
    let ready = of_type(&events, "segment")
        .into_iter()
        .find(|e| e["state"] == "ready")
        .unwrap()
        .clone();
    assert!(
        ready["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("open files {hard}")),
        "{ready}"
    );

    // 5,000 virtual users in one process need 5,000 connections: more than 4,096 files.
    let users = |vus: u32| {
        write(
            home.path(),
            &format!("users-{vus}.yaml"),
            &format!(
                "version: 1\ntitle: users\ntimeline:\n  - {{ at: 0s, for: 1s, load: {{ name: users, vus: {vus}, think: 1s, requests: [ {{ url: \"http://127.0.0.1:{port}/\" }} ] }} }}\n"
            ),
        )
    };
    let whole = users(5000);
    let mut agent = home.livefire();
    agent
        .args(["agent", "--segment", "1/2", "--start-at", &start])
        .arg(users(10_000));
    let mut load = home.livefire();
    load.args([
        "load",
        &format!("http://127.0.0.1:{port}/"),
        "-c",
        "5000",
        "-d",
        "1s",
    ]);
    let split = users(10_000);
    let mut split_run = home.run(&split);
    split_run.args(["--segments", "2", "-q"]);
    // (what, command, exit)
    let cases = [
        ("a run on one machine", home.run(&whole), 3),
        ("segment 1/2 of 10,000", agent, 3),
        ("livefire load", load, 3),
        // Each segment refuses its share: the run stops at the ready barrier.
        ("a split run of 10,000 over 2", split_run, 2),
    ];
    for (what, cmd, want) in cases {
        let (code, out, err) = run(&mut with_nofile(&cmd, soft, hard));
        assert_eq!(code, want, "{what}: {out}{err}");
        let said = format!("{out}{err}");
        for part in [
            "5000 virtual users in this process need 5000 connections",
            "the open-files limit is 4096 (hard limit 4096)",
            "split the load over more segments",
        ] {
            assert!(said.contains(part), "{what}: `{part}` in {said}");
        }
    }
    assert_eq!(
        std::fs::read_dir(home.path().join("runs")).unwrap().count(),
        2,
        "the refused single run made no run folder"
    );
}

/// Runs a 6 s split load, SIGKILLs segment 2/3 once it has sent for a second, and
/// returns (exit, stderr, journal events, segment pids).
fn run_and_kill_segment_2(
    min_alive: &str,
) -> (
    i32,
    String,
    Vec<serde_json::Value>,
    Vec<(String, u32)>,
    serde_json::Value,
) {
    let home = Home::new();
    let port = free_port();
    let file = home.file(&experiment(port, 60, 6, min_alive, ""));
    let (code, err) = run_and_kill(&home, &file, 3, "2/3");
    let events = events(&home.journal());
    let pids = segment_pids(&events);
    (code, err, events, pids, home.summary())
}

/// Runs `file` split into `n` segments, SIGKILLs `victim` once the journal holds two
/// windows, and returns (exit, stderr).
fn run_and_kill(home: &Home, file: &Path, n: u32, victim: &str) -> (i32, String) {
    let child = home
        .run(file)
        .args(["--segments", &n.to_string(), "-q"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the run folder's journal to show the load running on every segment.
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        assert!(Instant::now() < deadline, "the split load never started");
        std::thread::sleep(Duration::from_millis(200));
        let evs = live_events(home);
        let windows = evs.iter().filter(|e| e["type"] == "window").count();
        if windows >= 2 {
            break segment_pids(&evs)
                .into_iter()
                .find(|(s, _)| s == victim)
                .unwrap()
                .1;
        }
    };
    let status = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (code, _, err) = finish(child);
    (code, err)
}

#[test]
fn a_killed_segment_is_reported_and_judged_by_min_alive() {
    // (settings, exit, whether the run was aborted)
    let cases = [
        ("settings: { segments: { min_alive: 2 } }\n", 0, false),
        ("", 2, true),
    ];
    for (settings, want, aborted) in cases {
        let (code, err, events, pids, summary) = run_and_kill_segment_2(settings);
        assert_eq!(code, want, "{settings:?}: {err}");
        let lost: Vec<_> = of_type(&events, "segment")
            .into_iter()
            .filter(|e| e["state"] == "lost")
            .collect();
        assert_eq!(lost.len(), 1, "{settings:?}: {lost:?}");
        assert_eq!(lost[0]["segment"], "2/3");
        let detail = lost[0]["detail"].as_str().unwrap();
        assert!(detail.contains("killed by SIGKILL"), "{detail}");
        assert!(detail.contains("2 of 3 segments left"), "{detail}");
        let abort = of_type(&events, "aborted");
        assert_eq!(!abort.is_empty(), aborted, "{settings:?}: {abort:?}");
        if aborted {
            let message = abort[0]["cause"]["message"].as_str().unwrap();
            assert!(message.contains("segment 2/3 was lost"), "{message}");
        }
        // Every segment ended with the run, one way or the other.
        for (seg, pid) in pids {
            assert!(!alive(pid), "segment {seg} (pid {pid}) outlived the run");
        }
        // The survivors' load still adds up into one report.
        assert_eq!(of_type(&events, "load_ended").len(), 1);
        // The summary says which segment was lost, when and why; what it sent before
        // it died counts.
        let segs = summary["segments"].as_array().unwrap();
        let states: Vec<&str> = segs.iter().map(|s| s["state"].as_str().unwrap()).collect();
        assert_eq!(states, ["done", "lost", "done"], "{settings:?}: {segs:?}");
        assert_eq!(segs[1]["lost_ms"], lost[0]["t"], "{settings:?}");
        assert!(
            segs[1]["lost_why"]
                .as_str()
                .unwrap()
                .contains("killed by SIGKILL"),
            "{settings:?}: {segs:?}"
        );
        assert!(
            segs[1]["requests"].as_u64().unwrap() > 0,
            "{settings:?}: {segs:?}"
        );
    }
}

#[test]
fn a_guardrail_trip_stops_every_segment() {
    let home = Home::new();
    let port = free_port();
    // The target freezes at 1 s: every request times out, the guardrail trips.
    let file = home.file(&experiment(
        port,
        50,
        30,
        "guardrails:\n  - { name: errors, metric: browse.error_rate, below: 50%, for: 1s }\n",
        "  - { at: 1s, for: 25s, name: freeze, fault: { process.pause: { target: app } } }\n",
    ));
    let (code, _, err) = run(home.run(&file).args(["--segments", "2", "-q"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("guardrail `errors` tripped"), "{err}");
    let events = events(&home.journal());
    // Stopped well before the timeline's 30 s: the trip reached every segment.
    let aborted = of_type(&events, "aborted");
    assert_eq!(aborted.len(), 1);
    assert!(aborted[0]["t"].as_u64().unwrap() < 25_000, "{aborted:?}");
    let mut ended: Vec<_> = of_type(&events, "segment")
        .into_iter()
        .filter(|e| e["state"] == "done")
        .map(|e| e["segment"].as_str().unwrap().to_owned())
        .collect();
    ended.sort();
    assert_eq!(ended, ["1/2", "2/2"], "each segment stopped and said so");
    for (seg, pid) in segment_pids(&events) {
        assert!(!alive(pid), "segment {seg} (pid {pid}) outlived the run");
    }
    // The fault the coordinator applied was rolled back, as in any run.
    assert_eq!(home.summary()["faults"][0]["rollback_ok"], true);
}

#[test]
fn bad_split_input_is_refused_before_anything_runs() {
    let home = Home::new();
    let port = free_port();
    let file = home.file(&experiment(port, 10, 1, "", ""));
    let few = write(
        home.path(),
        "few.yaml",
        &experiment(
            port,
            10,
            1,
            "settings: { segments: { min_alive: 3 } }\n",
            "",
        ),
    );
    // (file, flags, message)
    let cases: [(&Path, &[&str], &str); 3] = [
        (&file, &["--segments", "0"], "needs at least one segment"),
        (&file, &["--on", "local"], "--segments"),
        (
            &few,
            &["--segments", "2"],
            "min_alive is 3 but --segments 2",
        ),
    ];
    for (f, flags, message) in cases {
        let (code, _, err) = run(home.run(f).args(flags));
        assert_eq!(code, 3, "{flags:?}: {err}");
        assert!(err.contains(message), "{flags:?}: {err}");
    }
    assert!(
        !home.path().join("runs").exists(),
        "no run folder, nothing started"
    );
}

#[test]
fn an_agent_refuses_a_start_in_the_past_or_a_share_out_of_range() {
    let home = Home::new();
    let port = free_port();
    let file = home.file(&experiment(port, 10, 1, "", ""));
    let soon = "2999-01-01T00:00:00Z";
    // (share flags, start, message); `--segment-index K --segments N` is how an
    // Indexed Job's pod names its share.
    let cases: [(&[&str], &str, &str); 6] = [
        (&["--segment", "1/2"], "2020-01-01T00:00:00Z", "in the past"),
        (&["--segment", "3/2"], soon, "bad segment `3/2`"),
        (&["--segment", "0/2"], soon, "bad segment `0/2`"),
        (
            &["--segment-index", "2", "--segments", "2"],
            soon,
            "bad segment `3/2`",
        ),
        (
            &["--segment-index", "0", "--segments", "0"],
            soon,
            "bad segment `1/0`",
        ),
        (&["--segment", "1/2"], "tomorrow", "--start-at `tomorrow`"),
    ];
    for (share, start, message) in cases {
        let segment = share.join(" ");
        let (code, out, err) = run(home.livefire().arg("agent").args(share).args([
            "--start-at",
            start,
            file.to_str().unwrap(),
        ]));
        assert_eq!(code, 3, "{segment} {start}: {err}");
        assert!(err.contains(message), "{segment} {start}: {err}");
        // Its stdout is the protocol even then: one `done` line saying why.
        let done: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(done["type"], "done");
        assert_eq!(done["status"], "failed");
        assert!(done["message"].as_str().unwrap().contains(message));
    }
}

#[test]
fn dry_run_shows_each_segments_share_of_every_load_and_campaign() {
    let home = Home::new();
    let rows: String = (1..=10).map(|i| format!("{i}\n")).collect();
    write(home.path(), "rows.csv", &format!("id\n{rows}"));
    let paths: String = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|p| {
            format!(
                r#""/{p}": {{ "get": {{ "responses": {{ "200": {{ "description": "ok" }} }} }} }},"#
            )
        })
        .collect();
    write(
        home.path(),
        "spec.json",
        &format!(
            r#"{{ "openapi": "3.0.3", "info": {{ "title": "t", "version": "1" }}, "paths": {{ {} }} }}"#,
            paths.trim_end_matches(',')
        ),
    );
    let file = home.file(
        "version: 1\ntitle: split plan\ntimeline:\n  - { at: 0s, for: 10s, load: { name: browse, rate: 200/s, data: { file: rows.csv }, requests: [ { url: \"http://127.0.0.1:1/items\" } ] } }\n  - { at: 0s, for: 10s, load: { name: users, vus: 10, think: 100ms, requests: [ { url: \"http://127.0.0.1:1/\" } ] } }\n  - { at: 0s, for: 10s, fuzz: { name: api-fuzz, openapi: spec.json, base_url: \"http://127.0.0.1:1\", rate: 40/s } }\n",
    );
    let (code, out, err) = run(home.run(&file).args(["--segments", "4", "--dry-run"]));
    assert_eq!(code, 0, "{err}");
    // (what, a line the split must show)
    let want = [
        ("the whole open load", "browse: 200/s for 10s, 2000 sends"),
        // Sends k mod 4 = 0 use rows k mod 10: 1, 5, 9, 3, 7 (1-based).
        (
            "segment 1's sends, rate and rows",
            "segment 1/4: 500 sends, 50/s; data rows 1, 5, 9, … (5 of 10)",
        ),
        (
            "segment 2's rows",
            "segment 2/4: 500 sends, 50/s; data rows 2, 6, 10, … (5 of 10)",
        ),
        ("the closed load", "users: 10 VUs for 10s"),
        ("VUs 0, 4, 8", "segment 1/4: 3 VUs (at most 3)"),
        ("VUs 3, 7", "segment 4/4: 2 VUs (at most 2)"),
        ("the campaign", "api-fuzz: 5 operation(s), at most 40/s"),
        ("operations 0 and 4", "segment 1/4: 2 operation(s)"),
        ("operation 3", "segment 4/4: 1 operation(s)"),
        ("its rate cap", "at most 10/s"),
    ];
    for (what, line) in want {
        assert!(out.contains(line), "{what}: `{line}` in:\n{out}");
    }
    // Every operation goes to exactly one segment.
    for op in ["GET /a", "GET /b", "GET /c", "GET /d", "GET /e"] {
        assert_eq!(out.matches(op).count(), 1, "{op} in:\n{out}");
    }
    assert!(
        !home.path().join("runs").exists(),
        "a dry run starts nothing and writes no run folder"
    );
}

/// `psql` against the test's server: the rows of `sql`, one a line.
fn psql(pg: &livefire_testkit::pg::Pg, sql: &str) -> String {
    let out = std::process::Command::new(pg.cluster.bin.join("psql"))
        .arg(pg.cluster.admin_dsn())
        .args(["-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The keys of acknowledged writes segment `i` sent, from its `writes` lines.
fn acked_keys(run_dir: &Path, i: u32) -> Vec<u64> {
    let stream =
        std::fs::read_to_string(run_dir.join(format!("segments/{i}/stream.jsonl"))).unwrap();
    let mut keys = Vec::new();
    for line in stream.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] != "writes" {
            continue;
        }
        assert_eq!(v["load"], "orders", "{v}");
        for pair in v["acked"].as_array().into_iter().flatten() {
            keys.push(pair[1].as_str().unwrap().parse().unwrap());
        }
    }
    keys
}

#[test]
fn tracked_writes_of_every_segment_are_read_back_once_and_a_lost_one_fails_the_verdict() {
    let Some(pg) = livefire_testkit::pg::Pg::start() else {
        return;
    };
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.cluster.port);
    // (table, whether the rows with an id divisible by 3 are deleted after the load,
    // before the read-back: acknowledged writes lost)
    for (table, delete) in [("orders_kept", false), ("orders_cut", true)] {
        psql(
            &pg,
            &format!("create table {table}(id bigserial primary key, v text)"),
        );
        let home = Home::new();
        let rollbacks = if delete {
            write(
                home.path(),
                "cut.sh",
                &format!(
                    "exec {} '{}' -v ON_ERROR_STOP=1 -c 'delete from {table} where id % 3 = 0'\n",
                    pg.cluster.bin.join("psql").display(),
                    pg.cluster.admin_dsn()
                ),
            );
            "rollbacks:\n  - command: { run: \"sh cut.sh\" }\n"
        } else {
            ""
        };
        let file = home.file(&format!(
            "version: 1\ntitle: tracked writes, split\nhypothesis:\n  - {{ name: no acknowledged write lost, metric: orders.writes.lost, equals: 0 }}\ntimeline:\n  - at: 0s\n    for: 2s\n    load:\n      name: orders\n      rate: 20/s\n      postgres: {{ dsn: \"{url}\" }}\n      statements:\n        - {{ sql: \"insert into {table}(v) values ($1) returning id\", params: [\"${{seq}}\"], track_write: {{ key: id, read: \"select 1 from {table} where id = $1\" }} }}\n{rollbacks}"
        ));
        let (code, out, err) =
            run(home
                .run(&file)
                .args(["--segments", "2", "--on", "local", "-q"]));
        let run_dir = home.run_dir();
        let keys: Vec<Vec<u64>> = (1..=2).map(|i| acked_keys(&run_dir, i)).collect();
        let all: Vec<u64> = keys.iter().flatten().copied().collect();
        // Both segments wrote, and no key was acknowledged to two of them.
        assert!(keys.iter().all(|k| !k.is_empty()), "{table}: {keys:?}");
        let distinct: std::collections::BTreeSet<u64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "{table}: {keys:?}");
        // Every acknowledged write is in the table: the test reads them itself.
        let rows: std::collections::BTreeSet<u64> = psql(&pg, &format!("select id from {table}"))
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        let cut: u64 = all.iter().filter(|k| *k % 3 == 0).count() as u64;
        let missing = all.iter().filter(|k| !rows.contains(k)).count() as u64;
        assert_eq!(missing, if delete { cut } else { 0 }, "{table}");

        let events = events(&home.journal());
        // One read-back for the whole run, of every segment's keys.
        let writes = of_type(&events, "writes");
        assert_eq!(writes.len(), 1, "{table}: {writes:?}");
        let counts = &writes[0]["counts"];
        assert_eq!(writes[0]["load"], "orders");
        assert_eq!(counts["acked"], all.len() as u64, "{table}: {counts}");
        assert_eq!(counts["unverified"], 0, "{table}: {counts}");
        // The summary tells each segment's share of them.
        let summary = home.summary();
        let segs = summary["segments"].as_array().unwrap();
        for (i, s) in segs.iter().enumerate() {
            assert_eq!(s["writes_acked"], keys[i].len() as u64, "{table}: {s}");
        }
        if delete {
            assert!(cut > 0, "some acknowledged ids are multiples of 3: {all:?}");
            assert_eq!(counts["lost"], cut, "{table}: {counts}");
            assert_eq!(code, 1, "{table}: {out}{err}");
            let deviation = of_type(&events, "deviation")
                .into_iter()
                .find(|d| d["condition"] == "no acknowledged write lost")
                .unwrap_or_else(|| panic!("{table}: a deviation: {events:?}"));
            assert_eq!(
                deviation["detail"],
                format!("orders.writes.lost = {cut}, expected equals 0"),
                "{table}"
            );
        } else {
            assert_eq!(counts["lost"], 0, "{table}: {counts}");
            assert_eq!(code, 0, "{table}: {out}{err}");
        }
    }
}

#[test]
fn a_dead_segments_acknowledged_writes_are_still_read_back() {
    let Some(pg) = livefire_testkit::pg::Pg::start() else {
        return;
    };
    psql(
        &pg,
        "create table orders_dead(id bigserial primary key, v text)",
    );
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.cluster.port);
    let home = Home::new();
    let file = home.file(&format!(
        "version: 1\ntitle: tracked writes, a segment dies\nsettings: {{ segments: {{ min_alive: 1 }} }}\nhypothesis:\n  - {{ name: no acknowledged write lost, metric: orders.writes.lost, equals: 0 }}\ntimeline:\n  - at: 0s\n    for: 6s\n    load:\n      name: orders\n      rate: 20/s\n      postgres: {{ dsn: \"{url}\" }}\n      statements:\n        - {{ sql: \"insert into orders_dead(v) values ($1) returning id\", params: [\"${{seq}}\"], track_write: {{ key: id, read: \"select 1 from orders_dead where id = $1\" }} }}\n"
    ));
    let (code, err) = run_and_kill(&home, &file, 2, "2/2");
    assert_eq!(code, 0, "{err}");
    let run_dir = home.run_dir();
    let keys: Vec<Vec<u64>> = (1..=2).map(|i| acked_keys(&run_dir, i)).collect();
    assert!(
        !keys[1].is_empty(),
        "the dead segment sent keys before it died"
    );
    let summary = home.summary();
    let segs = summary["segments"].as_array().unwrap();
    assert_eq!(segs[1]["state"], "lost", "{segs:?}");
    assert_eq!(segs[1]["writes_acked"], keys[1].len() as u64, "{segs:?}");
    // Its keys were read back with the survivor's: every one found.
    let events = events(&home.journal());
    let writes = of_type(&events, "writes");
    assert_eq!(writes.len(), 1, "{writes:?}");
    let counts = &writes[0]["counts"];
    assert_eq!(
        counts["acked"],
        (keys[0].len() + keys[1].len()) as u64,
        "{counts}"
    );
    assert_eq!(counts["lost"], 0, "{counts}");
    assert_eq!(counts["unverified"], 0, "{counts}");
    // Its write outcomes too: the load's one `write_outcomes` holds the survivor's
    // writes and those the dead segment sent before it died.
    let dead = streamed_outcomes(&run_dir, 2);
    assert!(dead > 0, "the dead segment sent its write outcomes");
    let survivor = segment_reports(&run_dir, 1)[0].total.counts.completed();
    let outcomes = of_type(&events, "write_outcomes");
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let merged: u64 = outcomes[0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .sum();
    assert_eq!(merged, survivor + dead);
}

/// How many tracked writes segment `i` said had ended, from its `write_outcomes` lines
/// (each replaces the runs from its `from` on).
fn streamed_outcomes(run_dir: &Path, i: u32) -> u64 {
    let stream =
        std::fs::read_to_string(run_dir.join(format!("segments/{i}/stream.jsonl"))).unwrap();
    let mut runs: Vec<u64> = Vec::new();
    for line in stream.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] != "write_outcomes" {
            continue;
        }
        runs.truncate(v["from"].as_u64().unwrap() as usize);
        for r in v["runs"].as_array().into_iter().flatten() {
            runs.push(r["n"].as_u64().unwrap());
        }
    }
    runs.iter().sum()
}

/// The failover drill (`examples/db-failover.yaml`: a PostgreSQL primary killed under a
/// stream of tracked writes) split over two local segments measures the failover as a
/// run on one machine does: one `write_outcomes` for the load, merged from both
/// segments' writes, and the unavailability in summary.json.
#[test]
fn a_split_failover_drill_merges_every_segments_write_outcomes() {
    use livefire_core::window::Outcome;
    if !crate::demo::have_postgres() {
        return;
    }
    let home = Home::new();
    // The helper promotes the replica after 2 s without a primary.
    let sb = crate::drill::Sandbox::up(&home, &["--store", "postgres", "--failover-after", "2s"]);
    let record = sb.record();
    let token = crate::drill::token_of(&record, "alice");
    let file = repo().join("examples/db-failover.yaml");
    let (code, out, err) = run(home
        .run(&file)
        .args(["--segments", "2", "--on", "local"])
        .args([
            "--var",
            &format!("api={}", record.api().expect("orders API")),
        ])
        .args(["--var", &format!("sandbox={}", sb.dir.display())])
        .env("LIVEFIRE_DEMO_TOKEN", &token));
    assert_eq!(code, crate::drill::expected_exit(&file), "{out}{err}");

    // What each segment says of its own writes: those acknowledged and those that
    // failed (every tracked write sent and answered, or not, in time).
    let run_dir = home.run_dir();
    let reports = segment_reports(&run_dir, 2);
    let acked: Vec<u64> = reports
        .iter()
        .map(|r| r.total.counts.get(Outcome::Ok))
        .collect();
    let failed: Vec<u64> = reports
        .iter()
        .map(|r| r.total.counts.completed() - r.total.counts.get(Outcome::Ok))
        .collect();
    assert!(
        acked.iter().all(|n| *n > 0),
        "both segments wrote: {acked:?}"
    );
    assert!(
        failed.iter().all(|n| *n > 0),
        "both segments' writes failed while no primary ran: {failed:?}"
    );
    for i in 1..=2 {
        let stream =
            std::fs::read_to_string(run_dir.join(format!("segments/{i}/stream.jsonl"))).unwrap();
        assert!(
            stream.contains(r#""type":"write_outcomes""#),
            "segment {i} streamed its write outcomes"
        );
    }

    let events = events(&home.journal());
    let outcomes = of_type(&events, "write_outcomes");
    assert_eq!(outcomes.len(), 1, "one for the load: {outcomes:?}");
    assert_eq!(outcomes[0]["load"], "orders");
    let runs = outcomes[0]["runs"].as_array().unwrap();
    let sum = |ok: bool| -> u64 {
        runs.iter()
            .filter(|r| r["ok"] == ok)
            .map(|r| r["n"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum(true), acked.iter().sum::<u64>(), "{runs:?}");
    assert_eq!(sum(false), failed.iter().sum::<u64>(), "{runs:?}");
    // Journaled just before the load's `load_ended`, as on one machine.
    let at = |t: &str| events.iter().position(|e| e["type"] == t).unwrap();
    assert_eq!(at("write_outcomes") + 1, at("load_ended"));

    let s = home.summary();
    let f = &s["failovers"][0];
    assert_eq!(f["fault"], "primary killed", "{f}");
    assert_eq!(f["load"], "orders", "{f}");
    assert_eq!(f["interrupted"], true, "{f}");
    let down = f["unavailable_ms"]
        .as_u64()
        .expect("unavailability measured");
    let first = f["first_write_after_ms"]
        .as_u64()
        .expect("writes came back");
    // No write is acknowledged before the replica is promoted (2 s after the helper,
    // polling every 250 ms, last saw a primary), on either segment.
    assert!(first >= 1750, "{f}");
    assert!(down > 0 && down <= first, "{f}");
    assert!(f["failed_writes"].as_u64().unwrap() > 0, "{f}");
    assert_eq!(f["writes_lost"], 0, "{f}");
    // Both segments' writes together: a write every 50 ms around the failover.
    assert!(
        f["resolution_ms"].as_u64().expect("resolution") < 1000,
        "{f}"
    );
    assert!(
        out.contains("failover `primary killed`, load `orders`: writes failed for "),
        "{out}"
    );
}

/// `--var`s reach every local segment, but not on its command line, which every local
/// user reads with `ps` (what `--vars-file` is for): the load's URL needs the variable,
/// and the agents' command lines do not hold it.
#[test]
fn variables_reach_local_segments_but_not_their_command_lines() {
    let home = Home::new();
    let port = free_port();
    let text = experiment(port, 100, 3, "", "")
        .replace("/health\"", "/${where_to}\"")
        .replace(
            "title: split\n",
            "title: split\nvars: { where_to: nowhere }\n",
        );
    let file = home.file(&text);
    let child = home
        .run(&file)
        .args(["--segments", "2", "--on", "local", "-q"])
        .args(["--var", "where_to=health"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Each agent's command line, read while it runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the segments never started: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
        for (segment, pid) in segment_pids(&live_events(&home)) {
            if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                seen.insert(
                    segment,
                    String::from_utf8_lossy(&cmdline).replace('\0', " "),
                );
            }
        }
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for (segment, cmdline) in &seen {
        assert!(cmdline.contains(" agent "), "{segment}: {cmdline}");
        assert!(
            !cmdline.contains("where_to") && !cmdline.contains("health"),
            "segment {segment}'s command line shows the variable: {cmdline}"
        );
    }
    // Every request went where the variable says (the file's own value is a 404).
    let report = load_report(&events(&home.journal()));
    assert!(report.total.counts.completed() > 0);
    assert_eq!(report.total.counts.errors(), 0, "{:?}", report.total.counts);
}
