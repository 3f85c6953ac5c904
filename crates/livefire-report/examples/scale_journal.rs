//! Scales the journal of a real run up to a longer, busier one, for the report
//! benchmark (bench/report.sh): the events of the run's `during` phase are repeated
//! end to end until the run lasts SECONDS, and every metric window's counts and
//! latency histogram are multiplied so that the loads add up to RPS requests a second.
//! The latency distribution of each second is the recorded one, bucket by bucket.
//!
//! cargo run --release -p livefire-report --example scale_journal -- IN_DIR OUT_DIR [SECONDS] [RPS]

use std::io::{BufRead, Write};
use std::path::Path;

use livefire_core::window::{Counts, Latency, Window};
use serde_json::Value;

/// What the scaling did, printed for the benchmark's record.
struct Scaled {
    recorded_secs: u64,
    recorded_rps: f64,
    factor: f64,
    copies: u64,
    events: u64,
}

fn scale_window(w: &Window, factor: f64) -> Window {
    let scale = |n: u64| (n as f64 * factor).round() as u64;
    let mut counts = Counts::default();
    for (outcome, n) in w.counts.iter() {
        counts.add(outcome, scale(n));
    }
    let mut latency = Latency::new();
    for v in w.latency.histogram().iter_recorded() {
        latency.record_us_n(v.value_iterated_to(), scale(v.count_at_value()));
    }
    Window {
        counts,
        intended: scale(w.intended),
        sent: scale(w.sent),
        latency,
    }
}

fn phase_started(e: &Value, phase: &str) -> bool {
    e["type"] == "phase_started" && e["phase"] == phase
}

fn scale(input: &Path, output: &Path, seconds: u64, rps: u64) -> Result<Scaled, String> {
    let file = std::fs::File::open(input.join("journal.jsonl"))
        .map_err(|e| format!("cannot read {}/journal.jsonl: {e}", input.display()))?;
    let mut events = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("journal line {}: {e}", i + 1))?;
        let v: Value =
            serde_json::from_str(&line).map_err(|e| format!("journal line {}: {e}", i + 1))?;
        events.push(v);
    }
    let during = events
        .iter()
        .position(|e| phase_started(e, "during"))
        .ok_or("the journal has no during phase: record a run that got past its before-check")?;
    let after_during = events[during + 1..]
        .iter()
        .position(|e| e["type"] == "phase_started")
        .map_or(events.len(), |p| during + 1 + p);
    let t = |e: &Value| e["t"].as_u64().unwrap_or(0);
    let body_ms = t(&events[after_during.min(events.len() - 1)]) - t(&events[during]);
    let period_s = body_ms.div_ceil(1000).max(1);
    let copies = (seconds / period_s).max(1);

    // The loads' names: a load's own series is its name (its requests' are `load.request`).
    let loads: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "load_ended")
        .filter_map(|e| e["load"].as_str())
        .map(str::to_string)
        .collect();
    let mut completed = 0u64;
    let mut busy_seconds = std::collections::BTreeSet::new();
    for e in &events[during..after_during] {
        if e["type"] == "window" && loads.iter().any(|l| e["series"] == l.as_str()) {
            let w: Window = serde_json::from_value(e["window"].clone())
                .map_err(|err| format!("window at t={}: {err}", t(e)))?;
            completed += w.counts.completed();
            busy_seconds.insert(e["second"].as_u64().unwrap_or(0));
        }
    }
    if completed == 0 {
        return Err("the journal's during phase has no load windows to scale".into());
    }
    let recorded_rps = completed as f64 / busy_seconds.len() as f64;
    let factor = rps as f64 / recorded_rps;

    std::fs::create_dir_all(output)
        .map_err(|e| format!("cannot create {}: {e}", output.display()))?;
    let out_file = std::fs::File::create(output.join("journal.jsonl"))
        .map_err(|e| format!("cannot write {}/journal.jsonl: {e}", output.display()))?;
    let mut out = std::io::BufWriter::new(out_file);
    let mut seq = 0u64;
    let mut emit = |mut e: Value, shift_s: u64| -> Result<(), String> {
        let shift_ms = shift_s * 1000;
        e["seq"] = seq.into();
        seq += 1;
        e["t"] = (t(&e) + shift_ms).into();
        match e["type"].as_str() {
            Some("window") => {
                let w: Window = serde_json::from_value(e["window"].clone())
                    .map_err(|err| format!("window: {err}"))?;
                e["window"] = serde_json::to_value(scale_window(&w, factor))
                    .map_err(|err| format!("window: {err}"))?;
                e["second"] = (e["second"].as_u64().unwrap_or(0) + shift_s).into();
            }
            Some("finding_window") => {
                for key in ["first_ms", "last_ms"] {
                    e[key] = (e[key].as_u64().unwrap_or(0) + shift_ms).into();
                }
            }
            Some("run_started") => {
                e["planned_ms"] =
                    (e["planned_ms"].as_u64().unwrap_or(0) + (copies - 1) * period_s * 1000).into();
                let title = e["title"].as_str().unwrap_or("").to_string();
                e["title"] =
                    format!("{title} (scaled: x{copies} in time, x{factor:.2} in rate)").into();
            }
            _ => {}
        }
        let line = serde_json::to_string(&e).map_err(|err| err.to_string())?;
        writeln!(out, "{line}").map_err(|err| err.to_string())
    };
    for e in &events[..during] {
        emit(e.clone(), 0)?;
    }
    for copy in 0..copies {
        for e in &events[during..after_during] {
            // The during phase starts once; its events repeat.
            if copy > 0 && phase_started(e, "during") {
                continue;
            }
            emit(e.clone(), copy * period_s)?;
        }
    }
    for e in &events[after_during..] {
        emit(e.clone(), (copies - 1) * period_s)?;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(Scaled {
        recorded_secs: period_s,
        recorded_rps,
        factor,
        copies,
        events: seq,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: scale_journal IN_DIR OUT_DIR [SECONDS] [RPS]");
        std::process::exit(livefire_core::exit::Exit::Invalid.code().into());
    };
    let seconds = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3600);
    let rps = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    match scale(Path::new(input), Path::new(output), seconds, rps) {
        Ok(s) => println!(
            "scaled: during phase of {} s at {:.0} req/s (loads together), repeated {} times, \
             windows x{:.3}: {} events",
            s.recorded_secs, s.recorded_rps, s.copies, s.factor, s.events
        ),
        Err(e) => {
            eprintln!("scale_journal: {e}");
            std::process::exit(livefire_core::exit::Exit::Invalid.code().into());
        }
    }
}
