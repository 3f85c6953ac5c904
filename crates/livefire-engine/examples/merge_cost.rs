//! What merging a long split run costs the coordinator: replays the windows one real
//! segment recorded (`segments/<i>/stream.jsonl` of a run folder) as if `SEGMENTS`
//! segments had each sent them for `SECONDS` seconds, through the coordinator's own
//! path (read each window line, merge per second, release on watermarks, publish
//! into the referee's store), and prints the CPU time and peak memory it took.
//!
//! `cargo run --release -p livefire-engine --example merge_cost -- STREAM [SEGMENTS] [SECONDS]`

use std::time::Instant;

use livefire_core::window::WindowStore;
use livefire_engine::segments::merge::{Merger, WireWindow};
use livefire_engine::segments::protocol::Line;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(stream) = args.next() else {
        eprintln!("usage: merge_cost STREAM.jsonl [SEGMENTS=100] [SECONDS=3600]");
        std::process::exit(3);
    };
    let segments: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3600);
    let text = std::fs::read_to_string(&stream).unwrap_or_else(|e| {
        eprintln!("cannot read {stream}: {e}");
        std::process::exit(3);
    });
    // The recorded window lines, by the second they covered: each simulated second
    // replays one recorded second (in turn), every series of it.
    let mut by_second: std::collections::BTreeMap<u64, Vec<(String, String)>> = Default::default();
    for line in text.lines() {
        if let Ok(Line::Window { series, second, .. }) = serde_json::from_str::<Line>(line) {
            let marker = format!("\"second\":{second},");
            by_second
                .entry(second)
                .or_default()
                .push((series, line.replacen(&marker, "\"second\":{S},", 1)));
        }
    }
    // Only seconds with traffic (a load's first and last are partial).
    let recorded: Vec<Vec<(String, String)>> = by_second.into_values().collect();
    if recorded.is_empty() {
        eprintln!("{stream} holds no window lines");
        std::process::exit(3);
    }
    let lines_per_second = recorded.iter().map(Vec::len).max().unwrap_or(0);
    // Per line (a second has one line per series).
    let bytes: usize = recorded
        .iter()
        .flatten()
        .map(|(_, l)| l.len())
        .sum::<usize>()
        / recorded.iter().map(Vec::len).sum::<usize>();

    let cpu0 = cpu_seconds();
    let wall = Instant::now();
    let store = WindowStore::new();
    let mut merger = Merger::new(segments);
    let mut windows = 0u64;
    for s in 0..seconds {
        let lines = &recorded[(s as usize) % recorded.len()];
        for seg in 0..segments {
            for (_, template) in lines {
                // A fresh line each time, as a back end hands the coordinator.
                let line = template.replacen("{S}", &s.to_string(), 1);
                let Some(wire) = WireWindow::parse(&line) else {
                    panic!("a recorded line no longer parses: {line}");
                };
                windows += 1;
                match merger.wire(seg, &wire) {
                    Ok(Some((sec, name, w))) => store.publish_packed(&name, sec, w),
                    Ok(None) => {}
                    Err(e) => panic!("a recorded window no longer decodes: {e}"),
                }
            }
            merger.watermark(seg, s + 1);
        }
        for (sec, name, w) in merger.ready() {
            store.publish_packed(&name, sec, w);
        }
    }
    let cpu = cpu_seconds() - cpu0;
    let wall = wall.elapsed().as_secs_f64();
    // Before the check below: it decodes a stored second at a time, which is not the
    // merge's cost.
    let peak = peak_rss_kib() as f64 / 1024.0;
    let series = store.series();
    let (_, stored) = store
        .merged(&series[0], 0, seconds * 1000)
        .unwrap_or_default();
    println!(
        "segments={segments} seconds={seconds} windows={windows} ({lines_per_second} series/s, ~{bytes} bytes/line) cpu_s={cpu:.2} wall_s={wall:.2} peak_rss_mib={peak:.1} stored_seconds={stored}"
    );
}

/// This process's user + system CPU time, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the comm field.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory (VmHWM) in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
