//! `livefire run FILE --segments N --dry-run`: how the file splits, for people. Each
//! load and fuzz campaign, and each segment's share of it: its sends and rate (open
//! model), its virtual users (closed model), the data rows its sends use, and its fuzz
//! operations and rate cap; computed by the same rules the agents follow
//! (`Segment::owns`, `Segment::share_of`, `agent::share_of_operations`).

use std::fmt::Write;

use livefire_load::{Executor, Segment};
use livefire_spec::values::Duration as Written;

use crate::plan::{Body, Plan};

/// Data rows named one by one before `…`.
const ROWS_SHOWN: u64 = 3;
/// Fuzz operations named one by one before `…`.
const OPERATIONS_SHOWN: usize = 4;

/// The split of every load and campaign of `plan` over `count` segments. Fuzz specs
/// that are files are read to count their operations; a spec at a URL is not fetched.
pub async fn render(plan: &Plan, count: u32) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "split over {count} segment(s): each runs its share of every load and campaign below; faults, conditions and the journal stay with this coordinator"
    );
    let segments: Vec<Segment> = (0..count).map(|index| Segment { index, count }).collect();
    let mut any = false;
    for a in &plan.activities {
        match &a.body {
            Body::Fault(_) => {}
            Body::Load(c) => {
                any = true;
                load(&mut out, &a.name, c, &segments);
            }
            Body::Fuzz { config, .. } => {
                any = true;
                fuzz(&mut out, &a.name, config, &segments).await;
            }
        }
    }
    if !any {
        let _ = writeln!(
            out,
            "  nothing to split: the file has no load or fuzz campaign, so every segment would idle"
        );
    }
    out
}

fn load(out: &mut String, name: &str, c: &livefire_load::LoadConfig, segments: &[Segment]) {
    let n = segments.len() as u64;
    let rows = c.data.as_ref().map(|d| d.rows.len() as u64).unwrap_or(0);
    match &c.executor {
        Executor::Rate { rate, stages } => {
            let total =
                livefire_load::schedule::RateSchedule::new(*rate, stages, c.duration).total();
            let _ = writeln!(
                out,
                "  {name}: {} for {}, {total} sends; send k goes to segment k mod {n} + 1",
                rate_shape(*rate, stages),
                Written(c.duration)
            );
            for s in segments {
                let sends = s.share_of(total);
                let _ = writeln!(
                    out,
                    "    segment {}/{n}: {} sends, {}{}",
                    s.index + 1,
                    sends,
                    rate_shape(rate / n as f64, &divided(stages, n as f64)),
                    data_rows(*s, sends, rows)
                );
            }
        }
        Executor::Vus { vus, stages, think } => {
            let sched = livefire_load::schedule::VuSchedule::new(*vus, stages, c.duration);
            let max = sched.max_vus();
            let _ = writeln!(
                out,
                "  {name}: {vus} VUs{} for {}, think {}; VU k goes to segment k mod {n} + 1",
                vu_stages(stages, None),
                Written(c.duration),
                Written(*think)
            );
            for s in segments {
                let _ = writeln!(
                    out,
                    "    segment {}/{n}: {} VUs{} (at most {}){}",
                    s.index + 1,
                    s.share_of(u64::from(*vus)),
                    vu_stages(stages, Some(*s)),
                    s.share_of(max),
                    // A VU's sends are numbered k mod N = i as well: rows follow them.
                    data_rows(*s, u64::MAX, rows)
                );
            }
        }
    }
}

async fn fuzz(
    out: &mut String,
    name: &str,
    config: &livefire_fuzz::FuzzConfig,
    segments: &[Segment],
) {
    let n = segments.len();
    let remote = config.spec.starts_with("http://") || config.spec.starts_with("https://");
    let loaded = if remote {
        Err("its spec is read from its URL when the campaign starts".to_owned())
    } else {
        livefire_fuzz::spec::load(&config.spec)
            .await
            .map_err(|e| format!("its spec does not load here ({e})"))
    };
    let spec = match loaded {
        Ok(spec) => spec,
        Err(why) => {
            fuzz_unread(out, name, config, segments, &why);
            return;
        }
    };
    let total = spec.operations.len();
    let _ = writeln!(
        out,
        "  {name}: {total} operation(s){}; operation k goes to segment k mod {n} + 1",
        cap(config.rate)
    );
    for s in segments {
        let mine = super::agent::share_of_operations(spec.clone(), *s).operations;
        let mut names: Vec<&str> = mine
            .iter()
            .take(OPERATIONS_SHOWN)
            .map(|o| o.name.as_str())
            .collect();
        if mine.len() > OPERATIONS_SHOWN {
            names.push("…");
        }
        let what = if mine.is_empty() {
            "no operation (fewer operations than segments): it idles".to_owned()
        } else {
            format!("{} operation(s): {}", mine.len(), names.join(", "))
        };
        let _ = writeln!(
            out,
            "    segment {}/{n}: {what}{}",
            s.index + 1,
            if mine.is_empty() {
                String::new()
            } else {
                cap(config.rate.map(|r| r / n as f64))
            }
        );
    }
}

/// A campaign whose operations are not known here: the rule, not the names.
fn fuzz_unread(
    out: &mut String,
    name: &str,
    config: &livefire_fuzz::FuzzConfig,
    segments: &[Segment],
    why: &str,
) {
    let n = segments.len();
    let _ = writeln!(
        out,
        "  {name}: operation k of the spec goes to segment k mod {n} + 1{}; {why}",
        cap(config.rate)
    );
    for s in segments {
        let _ = writeln!(
            out,
            "    segment {}/{n}: operations k mod {n} = {}{}",
            s.index + 1,
            s.index,
            cap(config.rate.map(|r| r / n as f64))
        );
    }
}

/// `, at most 10/s` for a rate cap.
fn cap(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!(", at most {}/s", trim(r)),
        None => String::new(),
    }
}

/// `500/s`, or `0/s, then 250/s over 30s`.
fn rate_shape(rate: f64, stages: &[livefire_load::Stage]) -> String {
    let mut s = format!("{}/s", trim(rate));
    for st in stages {
        let _ = write!(s, ", then {}/s over {}", trim(st.to), Written(st.over));
    }
    s
}

fn divided(stages: &[livefire_load::Stage], n: f64) -> Vec<livefire_load::Stage> {
    stages
        .iter()
        .map(|s| livefire_load::Stage {
            to: s.to / n,
            over: s.over,
        })
        .collect()
}

/// `, then 20 over 30s`, whole (`segment` None) or this segment's share.
fn vu_stages(stages: &[livefire_load::Stage], segment: Option<Segment>) -> String {
    let mut s = String::new();
    for st in stages {
        let to = st.to.round().max(0.0) as u64;
        let to = segment.map(|seg| seg.share_of(to)).unwrap_or(to);
        let _ = write!(s, ", then {to} over {}", Written(st.over));
    }
    s
}

/// `; data rows 1, 5, 9, … (25 of 100)`: the rows this segment's sends use (send k
/// uses row k mod rows), 1-based as in the file; empty without data.
fn data_rows(s: Segment, sends: u64, rows: u64) -> String {
    if rows == 0 {
        return String::new();
    }
    let n = u64::from(s.count);
    let i = u64::from(s.index);
    // Sends i, i+N, i+2N, ... cycle through rows / gcd(rows, N) distinct rows.
    let distinct = (rows / gcd(rows, n)).min(sends);
    if distinct == 0 {
        return "; no data row (no send)".to_owned();
    }
    let mut shown: Vec<String> = (0..distinct.min(ROWS_SHOWN))
        .map(|j| ((i + j * n) % rows + 1).to_string())
        .collect();
    if distinct > ROWS_SHOWN {
        shown.push("…".into());
    }
    format!("; data rows {} ({distinct} of {rows})", shown.join(", "))
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `12.5` and `500`, not `500.0`.
fn trim(x: f64) -> String {
    let r = (x * 1000.0).round() / 1000.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}
