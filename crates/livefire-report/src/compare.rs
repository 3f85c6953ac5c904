//! `livefire compare RUN_A RUN_B`: the same drill run twice, side by side: verdicts,
//! time to impact and to recover per fault (matched by activity name), condition
//! results, load throughput, percentiles and error rates, findings new and fixed, with
//! deltas; as text or HTML.

use std::fmt::Write as _;
use std::path::Path;

use crate::summary::{Summary, dur, num, secs, verdict_word};
use crate::{ReportError, escape, read_journal, summarize};

/// One table of the comparison: the same rows feed the text and the HTML.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Two runs side by side.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub a: Summary,
    pub b: Summary,
    pub sections: Vec<Section>,
}

/// Reads both runs' journals and compares them.
pub fn compare_dirs(a: &Path, b: &Path) -> Result<Comparison, ReportError> {
    Ok(compare(&load(a)?, &load(b)?))
}

fn load(dir: &Path) -> Result<Summary, ReportError> {
    let path = dir.join("journal.jsonl");
    match read_journal(&path) {
        Ok(j) => Ok(summarize(&j)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ReportError::NoJournal(dir.to_path_buf()))
        }
        Err(source) => Err(ReportError::Read { path, source }),
    }
}

/// Compares two summaries. Pure.
pub fn compare(a: &Summary, b: &Summary) -> Comparison {
    let mut sections = Vec::new();
    let verdict = |s: &Summary| {
        format!(
            "{}{}",
            verdict_word(s.verdict),
            s.exit_code
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default()
        )
    };
    let mut run_rows = vec![
        vec![
            "run".into(),
            a.run_id.clone(),
            b.run_id.clone(),
            String::new(),
        ],
        vec![
            "started".into(),
            a.wall_start.clone(),
            b.wall_start.clone(),
            String::new(),
        ],
        vec![
            "verdict".into(),
            verdict(a),
            verdict(b),
            if a.verdict == b.verdict {
                "same".into()
            } else {
                "changed".into()
            },
        ],
        vec![
            "duration".into(),
            secs(a.duration_ms),
            secs(b.duration_ms),
            delta_ms(Some(a.duration_ms), Some(b.duration_ms), None),
        ],
    ];
    if a.title != b.title {
        run_rows.insert(
            1,
            vec![
                "title".into(),
                a.title.clone(),
                b.title.clone(),
                "different drills?".into(),
            ],
        );
    }
    for (s, side) in [(a, "A"), (b, "B")] {
        if let Some(stopped) = &s.journal_stopped {
            run_rows.push(vec![
                format!("journal {side}"),
                stopped.clone(),
                String::new(),
                String::new(),
            ]);
        }
    }
    sections.push(Section {
        title: "runs".into(),
        header: vec![String::new(), "A".into(), "B".into(), "change".into()],
        rows: run_rows,
    });

    // Faults, matched by activity name (and occurrence, for a name used twice).
    let mut rows = Vec::new();
    let keyed = |s: &Summary| -> Vec<(String, usize)> {
        let mut seen: Vec<(String, usize)> = Vec::new();
        for f in &s.faults {
            let n = seen.iter().filter(|(a, _)| *a == f.activity).count();
            seen.push((f.activity.clone(), n));
        }
        seen
    };
    let (ka, kb) = (keyed(a), keyed(b));
    let mut keys: Vec<(String, usize)> = ka.clone();
    keys.extend(kb.iter().filter(|k| !ka.contains(k)).cloned());
    for key in keys {
        let fa = ka.iter().position(|k| *k == key).map(|i| &a.faults[i]);
        let fb = kb.iter().position(|k| *k == key).map(|i| &b.faults[i]);
        let name = if key.1 == 0 {
            key.0.clone()
        } else {
            format!("{} (#{})", key.0, key.1 + 1)
        };
        let ms = |v: Option<u64>| v.map(dur).unwrap_or_else(|| "-".into());
        let missing =
            |f: Option<&crate::FaultSummary>| if f.is_none() { "not in this run" } else { "" };
        rows.push(vec![
            name.clone(),
            "time to impact".into(),
            if fa.is_none() {
                missing(fa).into()
            } else {
                ms(fa.and_then(|f| f.time_to_impact_ms))
            },
            if fb.is_none() {
                missing(fb).into()
            } else {
                ms(fb.and_then(|f| f.time_to_impact_ms))
            },
            delta_ms(
                fa.and_then(|f| f.time_to_impact_ms),
                fb.and_then(|f| f.time_to_impact_ms),
                None,
            ),
        ]);
        rows.push(vec![
            String::new(),
            "time to recover".into(),
            if fa.is_none() {
                missing(fa).into()
            } else {
                ms(fa.and_then(|f| f.time_to_recover_ms))
            },
            if fb.is_none() {
                missing(fb).into()
            } else {
                ms(fb.and_then(|f| f.time_to_recover_ms))
            },
            delta_ms(
                fa.and_then(|f| f.time_to_recover_ms),
                fb.and_then(|f| f.time_to_recover_ms),
                Some(Better::Lower),
            ),
        ]);
    }
    if !rows.is_empty() {
        sections.push(Section {
            title: "faults (matched by activity name)".into(),
            header: vec![
                "activity".into(),
                String::new(),
                "A".into(),
                "B".into(),
                "change".into(),
            ],
            rows,
        });
    }

    // Conditions, by name.
    let mut names: Vec<&str> = a.conditions.iter().map(|c| c.name.as_str()).collect();
    for c in &b.conditions {
        if !names.contains(&c.name.as_str()) {
            names.push(&c.name);
        }
    }
    let word = |s: &Summary, name: &str| -> (String, Option<bool>) {
        match s.conditions.iter().find(|c| c.name == name) {
            None => ("not judged".into(), None),
            Some(c) => {
                let result = match (c.held, c.role) {
                    (true, _) => "held",
                    (false, livefire_core::events::Role::Hypothesis) => "deviated",
                    (false, livefire_core::events::Role::Guardrail) => "tripped",
                };
                (
                    format!("{result} ({}/{} failing)", c.failures, c.samples),
                    Some(c.held),
                )
            }
        }
    };
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|n| {
            let ((wa, ha), (wb, hb)) = (word(a, n), word(b, n));
            let change = match (ha, hb) {
                (Some(true), Some(false)) => "regressed",
                (Some(false), Some(true)) => "fixed",
                (Some(x), Some(y)) if x == y => "same",
                _ => "",
            };
            vec![(*n).to_owned(), wa, wb, change.into()]
        })
        .collect();
    if !rows.is_empty() {
        sections.push(Section {
            title: "hypothesis and guardrails".into(),
            header: vec!["condition".into(), "A".into(), "B".into(), "change".into()],
            rows,
        });
    }

    // Loads, by name.
    let mut rows = Vec::new();
    let mut loads: Vec<&str> = a.loads.iter().map(|l| l.name.as_str()).collect();
    for l in &b.loads {
        if !loads.contains(&l.name.as_str()) {
            loads.push(&l.name);
        }
    }
    for name in loads {
        let (la, lb) = (
            a.loads.iter().find(|l| l.name == name),
            b.loads.iter().find(|l| l.name == name),
        );
        type Pick = fn(&crate::LoadSummary) -> Option<f64>;
        let metrics: [(&str, Pick, &str, Option<Better>); 6] = [
            ("rps", |l| Some(l.rps), "/s", None),
            (
                "p50",
                |l| l.latency_ms.as_ref().map(|p| p.p50),
                " ms",
                Some(Better::Lower),
            ),
            (
                "p90",
                |l| l.latency_ms.as_ref().map(|p| p.p90),
                " ms",
                Some(Better::Lower),
            ),
            (
                "p99",
                |l| l.latency_ms.as_ref().map(|p| p.p99),
                " ms",
                Some(Better::Lower),
            ),
            (
                "error rate",
                |l| l.error_rate.map(|e| e * 100.0),
                "%",
                Some(Better::Lower),
            ),
            (
                "dropped",
                |l| Some(l.dropped as f64),
                "",
                Some(Better::Lower),
            ),
        ];
        for (i, (metric, pick, unit, better)) in metrics.iter().enumerate() {
            let (va, vb) = (la.and_then(pick), lb.and_then(pick));
            let show = |v: Option<f64>| {
                v.map(|v| format!("{}{unit}", num(v)))
                    .unwrap_or_else(|| "-".into())
            };
            rows.push(vec![
                if i == 0 {
                    name.to_owned()
                } else {
                    String::new()
                },
                (*metric).into(),
                show(va),
                show(vb),
                delta(va, vb, unit, *better),
            ]);
        }
    }
    if !rows.is_empty() {
        sections.push(Section {
            title: "loads".into(),
            header: vec![
                "load".into(),
                String::new(),
                "A".into(),
                "B".into(),
                "change".into(),
            ],
            rows,
        });
    }
    // Findings, by campaign, rule, operation and what was wrong: new, fixed, still there.
    type Key = (String, String, String, String);
    let key = |f: &crate::FindingSummary| -> Key {
        (
            f.campaign.clone(),
            f.rule.clone(),
            f.operation.clone(),
            f.title.clone(),
        )
    };
    let mut keys: Vec<(Key, &str)> = Vec::new();
    for f in a.findings.iter().chain(&b.findings) {
        if !keys.iter().any(|(k, _)| *k == key(f)) {
            keys.push((key(f), f.severity.as_str()));
        }
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|(k, severity)| {
            let (in_a, in_b) = (
                a.findings.iter().any(|f| key(f) == *k),
                b.findings.iter().any(|f| key(f) == *k),
            );
            let mark = |x: bool| if x { "found" } else { "-" }.to_owned();
            vec![
                format!("{} {} {}: {}", severity, k.1, k.2, k.3),
                mark(in_a),
                mark(in_b),
                match (in_a, in_b) {
                    (false, true) => "new",
                    (true, false) => "fixed",
                    _ => "still there",
                }
                .into(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        sections.push(Section {
            title: "findings".into(),
            header: vec!["finding".into(), "A".into(), "B".into(), "change".into()],
            rows,
        });
    }
    Comparison {
        a: a.clone(),
        b: b.clone(),
        sections,
    }
}

#[derive(Debug, Clone, Copy)]
enum Better {
    Lower,
}

fn delta_ms(a: Option<u64>, b: Option<u64>, better: Option<Better>) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return String::new();
    };
    let d = b as i64 - a as i64;
    let sign = if d > 0 {
        "+"
    } else if d < 0 {
        "-"
    } else {
        "±"
    };
    format!("{sign}{}{}", dur(d.unsigned_abs()), judge(d as f64, better))
}

fn delta(a: Option<f64>, b: Option<f64>, unit: &str, better: Option<Better>) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return String::new();
    };
    let d = b - a;
    let sign = if d > 0.0 {
        "+"
    } else if d < 0.0 {
        "-"
    } else {
        "±"
    };
    format!("{sign}{}{unit}{}", num(d.abs()), judge(d, better))
}

fn judge(d: f64, better: Option<Better>) -> &'static str {
    match (better, d.partial_cmp(&0.0)) {
        (Some(Better::Lower), Some(std::cmp::Ordering::Less)) => " better",
        (Some(Better::Lower), Some(std::cmp::Ordering::Greater)) => " worse",
        _ => "",
    }
}

impl Comparison {
    /// Plain text, one aligned table per section.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "A: {}\nB: {}\n",
            if self.a.title.is_empty() {
                "untitled run"
            } else {
                &self.a.title
            },
            if self.b.title.is_empty() {
                "untitled run"
            } else {
                &self.b.title
            }
        );
        for s in &self.sections {
            let _ = writeln!(out, "\n{}", s.title);
            let cols = s.header.len();
            let mut width = vec![0; cols];
            for row in std::iter::once(&s.header).chain(&s.rows) {
                for (i, cell) in row.iter().enumerate() {
                    width[i] = width[i].max(cell.chars().count());
                }
            }
            for row in std::iter::once(&s.header).chain(&s.rows) {
                let mut line = String::from("  ");
                for (i, cell) in row.iter().enumerate() {
                    let pad = width[i] - cell.chars().count();
                    line.push_str(cell);
                    if i + 1 < cols {
                        line.push_str(&" ".repeat(pad + 3));
                    }
                }
                let _ = writeln!(out, "{}", line.trim_end());
            }
        }
        out
    }

    /// A self-contained HTML page with the same tables.
    pub fn to_html(&self) -> String {
        let mut h = format!(
            r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<link rel="icon" href="data:,">
<title>livefire compare</title>
<style>{}</style></head><body>
<h1>{}</h1><p class="note">A: {} — B: {}</p>
"#,
            crate::html::CSS,
            escape(if self.a.title == self.b.title {
                &self.a.title
            } else {
                "two runs"
            }),
            escape(&self.a.run_id),
            escape(&self.b.run_id),
        );
        for s in &self.sections {
            let _ = write!(h, "<section><h2>{}</h2><table><tr>", escape(&s.title));
            for c in &s.header {
                let _ = write!(h, "<th>{}</th>", escape(c));
            }
            let _ = writeln!(h, "</tr>");
            for row in &s.rows {
                let _ = write!(h, "<tr>");
                for c in row {
                    let class = if c.ends_with(" worse")
                        || c == "regressed"
                        || c == "changed"
                        || c == "new"
                    {
                        " class=\"bad\""
                    } else if c.ends_with(" better") || c == "fixed" {
                        " class=\"good\""
                    } else {
                        ""
                    };
                    let _ = write!(h, "<td{class}>{}</td>", escape(c));
                }
                let _ = writeln!(h, "</tr>");
            }
            let _ = writeln!(h, "</table></section>");
        }
        h.push_str("<footer>from the two runs' journal.jsonl by <code>livefire compare</code></footer></body></html>\n");
        h
    }
}
