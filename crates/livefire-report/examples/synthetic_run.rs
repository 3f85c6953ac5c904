//! Writes the journal of a long synthetic run (a load at a fixed rate with a latency
//! histogram per second, two probes, a fault in the middle) into a folder, for the
//! report benchmark (bench/report.sh) and the long-run test.
//!
//! cargo run --release -p livefire-report --example synthetic_run -- DIR [SECONDS] [RPS] [--report]
//!
//! With `--report` it then writes the run's outputs (what `livefire report DIR` does)
//! and prints how long that took.

use std::io::Write;
use std::path::Path;

use livefire_core::events::{Event, Phase, Record, Role, Verdict};
use livefire_core::window::{Outcome, Window};

/// Writes `DIR/journal.jsonl` for a run of `seconds` at `rps` requests per second.
pub fn write_journal(dir: &Path, seconds: u64, rps: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("journal.jsonl"))?);
    let mut seq = 0;
    fn emit(out: &mut dyn Write, seq: &mut u64, t: u64, event: Event) -> std::io::Result<()> {
        let line = serde_json::to_string(&Record {
            v: 1,
            seq: *seq,
            t,
            event,
        })
        .map_err(std::io::Error::other)?;
        *seq += 1;
        writeln!(out, "{line}")
    }
    let end = seconds * 1000;
    let (fault_from, fault_to) = (end / 2, end / 2 + 60_000.min(end / 4));
    emit(
        &mut out,
        &mut seq,
        0,
        Event::RunStarted {
            run_id: "synthetic".into(),
            title: format!("synthetic run: {seconds} s at {rps}/s"),
            wall_start: "2026-01-01T00:00:00.000Z".into(),
            seed: 1,
            livefire: "bench".into(),
            planned_ms: end,
            open_files: None,
        },
    )?;
    emit(
        &mut out,
        &mut seq,
        1,
        Event::PhaseStarted {
            phase: Phase::During,
        },
    )?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for s in 0..seconds {
        let t = s * 1000;
        if t == fault_from {
            emit(
                &mut out,
                &mut seq,
                t,
                Event::FaultApplied {
                    activity: "db paused".into(),
                    kind: "process.pause".into(),
                    target: "db".into(),
                    detail: String::new(),
                    applying_ms: Some(t),
                },
            )?;
        }
        if t == fault_to {
            emit(
                &mut out,
                &mut seq,
                t,
                Event::FaultRolledBack {
                    activity: "db paused".into(),
                    kind: "process.pause".into(),
                    ok: true,
                    detail: String::new(),
                    by: "engine".into(),
                },
            )?;
        }
        let faulty = t >= fault_from && t < fault_to;
        for (name, role) in [
            ("health answers", Role::Hypothesis),
            ("port open", Role::Guardrail),
        ] {
            emit(
                &mut out,
                &mut seq,
                t + 5,
                Event::Probe {
                    condition: name.into(),
                    role,
                    phase: Phase::During,
                    ok: !(faulty && role == Role::Hypothesis),
                    detail: "status 200".into(),
                    latency_ms: if faulty { 500.0 } else { 1.5 },
                },
            )?;
        }
        // A window with a spread of latencies, as a real load at this rate has.
        let mut w = Window {
            intended: rps,
            sent: rps,
            ..Default::default()
        };
        let base = if faulty { 200_000 } else { 2_000 };
        let mut left = rps;
        while left > 0 {
            let n = (rps / 300).max(1).min(left);
            let us = base + rand() % (base * 4) + rand() % 100_000 * u64::from(rand() % 50 == 0);
            let outcome = if faulty && rand() % 10 == 0 {
                Outcome::Timeout
            } else {
                Outcome::Ok
            };
            w.counts.add(outcome, n);
            w.latency.record_us_n(us, n);
            left -= n;
        }
        for series in ["browse", "browse.search"] {
            let line = serde_json::json!({
                "v": 1, "seq": seq, "t": t + 1000, "type": "window",
                "series": series, "second": s, "window": w,
            });
            writeln!(out, "{line}")?;
            seq += 1;
        }
    }
    emit(
        &mut out,
        &mut seq,
        end + 10,
        Event::RunEnded {
            verdict: Verdict::Deviated,
            exit_code: Verdict::Deviated.exit_code(),
            ledger_left: 0,
        },
    )?;
    out.flush()
}

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: synthetic_run DIR [SECONDS] [RPS]");
        std::process::exit(livefire_core::exit::Exit::Invalid.code().into());
    };
    let seconds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3600);
    let rps = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    if let Err(e) = write_journal(Path::new(dir), seconds, rps) {
        eprintln!("synthetic_run: {e}");
        std::process::exit(livefire_core::exit::Exit::Invalid.code().into());
    }
    if args.iter().any(|a| a == "--report") {
        let start = std::time::Instant::now();
        match livefire_report::write_outputs(Path::new(dir)) {
            Ok(_) => println!("report written in {:.2} s", start.elapsed().as_secs_f64()),
            Err(e) => {
                eprintln!("synthetic_run: {e}");
                std::process::exit(livefire_core::exit::Exit::Invalid.code().into());
            }
        }
    }
}
