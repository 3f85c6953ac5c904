//! `livefire compare RUN_A RUN_B`: the same drill run twice, side by side: verdicts,
//! time to impact and to recover per fault (matched by activity name), conditions
//! (matched by role, name and what they sample; the rest listed as only in A or B),
//! load throughput, percentiles and error rates, findings new and fixed, with deltas;
//! for two game days of one scenario, time to detect, mitigate and recover per
//! curveball; as text or HTML.
//!
//! A difference is called better or worse only when it is larger than the runs' own
//! noise: for a load metric, the larger of the two runs' standard deviations of that
//! metric's per-second values (each run's windows, at least 3 seconds each); for a
//! time to recover, the larger of the two runs' probe sampling intervals (the times are
//! measured by those samples). Anything smaller is shown as "within noise".

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use livefire_core::events::{Event, Role};
use livefire_core::window::Window;

use crate::journal::Journal;
use crate::summary::{Summary, dur, error_rate, num, secs, verdict_word};
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

/// One run as `compare` reads it from its journal: the summary, what each condition
/// samples, and the run's own noise.
#[derive(Debug, Clone)]
pub struct Side {
    pub summary: Summary,
    /// Condition name -> what it samples: `tcp probe`, `metric browse.error_rate`, or
    /// only `probe` / `metric` when the journal does not say more.
    samples: BTreeMap<String, String>,
    /// Load -> metric -> spread of its per-second values.
    spread: BTreeMap<String, BTreeMap<&'static str, Spread>>,
    /// The median gap between two samples of one hypothesis probe, in milliseconds.
    probe_every_ms: Option<u64>,
}

/// The spread of one metric's per-second values within one run.
#[derive(Debug, Clone, Copy)]
struct Spread {
    seconds: usize,
    /// Sample standard deviation.
    sd: f64,
}

/// The per-second metrics whose spread is measured, as the load rows name them.
const PER_SECOND: [&str; 6] = ["rps", "p50", "p90", "p99", "error rate", "dropped"];

impl Side {
    /// Reads what `compare` needs from a journal.
    pub fn from_journal(journal: &Journal) -> Side {
        let summary = summarize(journal);
        let mut samples = BTreeMap::new();
        let mut probe_times: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for r in &journal.records {
            match &r.event {
                Event::Probe {
                    condition, role, ..
                } => {
                    samples
                        .entry(condition.clone())
                        .or_insert_with(|| "probe".to_owned());
                    if *role == Role::Hypothesis {
                        probe_times.entry(condition).or_default().push(r.t);
                    }
                }
                Event::Metric {
                    condition, metric, ..
                } => {
                    samples.entry(condition.clone()).or_insert_with(|| {
                        if metric.is_empty() {
                            "metric".to_owned()
                        } else {
                            format!("metric {metric}")
                        }
                    });
                }
                _ => {}
            }
        }
        // The plan says what every condition samples, judged or not.
        if let Some(plan) = journal.plan() {
            for c in plan.conditions {
                let what = if c.kind == "metric" {
                    format!("metric {}", c.subject)
                } else {
                    c.kind
                };
                samples.insert(c.name, what);
            }
        }
        let mut gaps: Vec<u64> = probe_times
            .values()
            .flat_map(|t| t.windows(2).map(|w| w[1].saturating_sub(w[0])))
            .collect();
        gaps.sort_unstable();
        let probe_every_ms = gaps.get(gaps.len() / 2).copied();
        // Each per-second value's spread, merged while the journal was read.
        let mut spread = BTreeMap::new();
        for load in &journal.metrics.loads {
            let spreads = PER_SECOND
                .iter()
                .zip(load.spread)
                .filter_map(|(&k, running)| {
                    let (seconds, sd) = running.sd()?;
                    let mut s = Spread { seconds, sd };
                    if k == "dropped" {
                        // The row shows the run's total: the spread of a sum of n
                        // seconds is sqrt(n) times that of one.
                        s.sd *= (s.seconds as f64).sqrt();
                    }
                    Some((k, s))
                })
                .collect();
            spread.insert(load.name.clone(), spreads);
        }
        Side {
            summary,
            samples,
            spread,
            probe_every_ms,
        }
    }

    /// A side with nothing but a summary: no noise is known, so no difference is
    /// called better or worse.
    pub fn from_summary(summary: Summary) -> Side {
        Side {
            samples: summary
                .conditions
                .iter()
                .map(|c| (c.name.clone(), c.kind.clone()))
                .collect(),
            summary,
            spread: BTreeMap::new(),
            probe_every_ms: None,
        }
    }

    fn what(&self, condition: &str) -> &str {
        self.samples.get(condition).map_or("", String::as_str)
    }

    fn noise(&self, load: &str, metric: &str) -> Option<Spread> {
        self.spread.get(load)?.get(metric).copied()
    }
}

/// One second's values of [`PER_SECOND`], in that order (`None` where the second has
/// none: no latency without a completed request).
pub(crate) fn per_second(w: &Window) -> [Option<f64>; 6] {
    let ms = |q: f64| w.latency.quantile_us(q).map(|v| v as f64 / 1e3);
    [
        Some(w.counts.completed() as f64),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        error_rate(w).map(|e| e * 100.0),
        Some(w.counts.get(livefire_core::window::Outcome::Dropped) as f64),
    ]
}

/// Whether two conditions sample the same kind of thing: the same class (`probe`,
/// `metric`) and, when both journals say it, the same probe kind or metric.
fn same_kind(a: &str, b: &str) -> bool {
    fn split(s: &str) -> (&str, &str) {
        if let Some(rest) = s.strip_prefix("metric") {
            ("metric", rest.trim())
        } else if let Some(rest) = s.strip_suffix("probe") {
            ("probe", rest.trim())
        } else {
            (s, "")
        }
    }
    let ((ca, da), (cb, db)) = (split(a), split(b));
    ca == cb && (da.is_empty() || db.is_empty() || da == db)
}

/// Reads both runs' journals and compares them. Two game days must be of the same
/// scenario (and a game day is not compared with a run that is none).
pub fn compare_dirs(a: &Path, b: &Path) -> Result<Comparison, ReportError> {
    let (side_a, side_b) = (load(a)?, load(b)?);
    same_scenario(&side_a.summary, &side_b.summary)?;
    Ok(compare(&side_a, &side_b))
}

/// Whether two runs can be compared as game days: both without a scenario, or both with
/// the same `scenario:` section (the seeds may differ: then the draws do, and only
/// curveballs of the same number and kind are matched).
pub fn same_scenario(a: &Summary, b: &Summary) -> Result<(), ReportError> {
    let why = match (&a.gameday, &b.gameday) {
        (None, None) => return Ok(()),
        (Some(ga), Some(gb)) if ga.scenario == gb.scenario => return Ok(()),
        (Some(_), Some(_)) => {
            "their `scenario:` sections differ (pool, draw, window, duration or hidden)".to_owned()
        }
        (Some(_), None) => format!("A ({}) is a game day and B ({}) is not", a.run_id, b.run_id),
        (None, Some(_)) => format!("B ({}) is a game day and A ({}) is not", b.run_id, a.run_id),
    };
    Err(ReportError::NotSameScenario(why))
}

fn load(dir: &Path) -> Result<Side, ReportError> {
    let path = dir.join("journal.jsonl");
    match read_journal(&path) {
        Ok(j) => Ok(Side::from_journal(&j)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ReportError::NoJournal(dir.to_path_buf()))
        }
        Err(source) => Err(ReportError::Read { path, source }),
    }
}

/// Compares two runs. Pure.
pub fn compare(side_a: &Side, side_b: &Side) -> Comparison {
    let (a, b) = (&side_a.summary, &side_b.summary);
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
            delta_ms(Some(a.duration_ms), Some(b.duration_ms), None, None),
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
                side_a
                    .probe_every_ms
                    .zip(side_b.probe_every_ms)
                    .map(|(x, y)| x.max(y)),
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

    if let (Some(ga), Some(gb)) = (&a.gameday, &b.gameday) {
        sections.push(gameday_section(ga, gb, side_a, side_b));
    }

    // Conditions, by role, name and what they sample: `guardrails[0]` of one drill may
    // be a TCP probe and of the other an error-rate bound.
    let result = |c: &crate::ConditionSummary| {
        let word = match (c.held, c.role) {
            (true, _) => "held",
            (false, Role::Hypothesis) => "deviated",
            (false, Role::Guardrail) => "tripped",
        };
        format!("{word} ({}/{} failing)", c.failures, c.samples)
    };
    let label = |side: &Side, c: &crate::ConditionSummary| match side.what(&c.name) {
        "" => c.name.clone(),
        what => format!("{} · {what}", c.name),
    };
    let mut rows = Vec::new();
    let mut matched_b = vec![false; b.conditions.len()];
    let mut only_a = Vec::new();
    for ca in &a.conditions {
        let found = b.conditions.iter().enumerate().find(|(i, cb)| {
            !matched_b[*i]
                && cb.role == ca.role
                && cb.name == ca.name
                && same_kind(side_a.what(&ca.name), side_b.what(&cb.name))
        });
        match found {
            Some((i, cb)) => {
                matched_b[i] = true;
                let change = match (ca.held, cb.held) {
                    (true, false) => "regressed",
                    (false, true) => "fixed",
                    _ => "same",
                };
                rows.push(vec![
                    label(side_a, ca),
                    result(ca),
                    result(cb),
                    change.into(),
                ]);
            }
            None => only_a.push(vec![
                label(side_a, ca),
                result(ca),
                "-".into(),
                "only in A".into(),
            ]),
        }
    }
    rows.extend(only_a);
    for (cb, _) in b.conditions.iter().zip(&matched_b).filter(|(_, m)| !**m) {
        rows.push(vec![
            label(side_b, cb),
            "-".into(),
            result(cb),
            "only in B".into(),
        ]);
    }
    if !rows.is_empty() {
        sections.push(Section {
            title: "hypothesis and guardrails (matched by role, name and kind)".into(),
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
        // The same names as `PER_SECOND`, whose spread is the noise.
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
                delta(
                    va,
                    vb,
                    unit,
                    *better,
                    noise(side_a.noise(name, metric), side_b.noise(name, metric)),
                ),
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

/// Two game days of one scenario: time to detect, mitigate and recover per curveball,
/// matched by number and kind (the same seed draws the same curveballs). A mark is a
/// person's click, exact to the millisecond, so any difference in it counts; a
/// deviation and a recovery are seen through probe samples, so a difference under the
/// sampling interval is noise.
fn gameday_section(
    ga: &crate::gameday::GameDaySummary,
    gb: &crate::gameday::GameDaySummary,
    side_a: &Side,
    side_b: &Side,
) -> Section {
    use crate::gameday::CurveballSummary as C;
    let probe_noise = side_a
        .probe_every_ms
        .zip(side_b.probe_every_ms)
        .map(|(x, y)| x.max(y));
    let key = |c: &C| (c.number, c.kind.clone());
    let mut keys: Vec<(u32, String)> = ga.curveballs.iter().map(key).collect();
    for c in &gb.curveballs {
        if !keys.contains(&key(c)) {
            keys.push(key(c));
        }
    }
    keys.sort();
    type Pick = fn(&C) -> Option<u64>;
    // Whether the measure is exact (a mark) or seen through probe samples.
    let measures: [(&str, Pick, bool); 4] = [
        ("time to detect (mark)", |c| c.time_to_detect_ms, true),
        (
            "time to detect (hypothesis)",
            |c| c.time_to_deviation_ms,
            false,
        ),
        ("time to mitigate", |c| c.time_to_mitigate_ms, true),
        ("time to recover", |c| c.time_to_recover_ms, false),
    ];
    let mut rows = Vec::new();
    for k in keys {
        let (ca, cb) = (
            ga.curveballs.iter().find(|c| key(c) == k),
            gb.curveballs.iter().find(|c| key(c) == k),
        );
        let name = ca.or(cb).map(|c| c.name.clone()).unwrap_or_default();
        let cell = |c: Option<&C>, pick: Pick| match c {
            None => "not in this run".to_owned(),
            Some(c) => pick(c).map(dur).unwrap_or_else(|| "-".into()),
        };
        for (i, (label, pick, exact)) in measures.iter().enumerate() {
            let (va, vb) = (ca.and_then(pick), cb.and_then(pick));
            let change = if *exact {
                exact_delta_ms(va, vb)
            } else {
                delta_ms(va, vb, Some(Better::Lower), probe_noise)
            };
            rows.push(vec![
                if i == 0 { name.clone() } else { String::new() },
                (*label).into(),
                cell(ca, *pick),
                cell(cb, *pick),
                change,
            ]);
        }
    }
    Section {
        title: if ga.seed == gb.seed {
            format!(
                "game day (seed {}): curveballs matched by number and kind",
                ga.seed
            )
        } else {
            format!(
                "game day (seeds {} and {}: different draws): curveballs matched by number and kind",
                ga.seed, gb.seed
            )
        },
        header: vec![
            "curveball".into(),
            String::new(),
            "A".into(),
            "B".into(),
            "change".into(),
        ],
        rows,
    }
}

/// The change of a measure with no noise (a person's mark, to the millisecond): any
/// difference is better or worse.
fn exact_delta_ms(a: Option<u64>, b: Option<u64>) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return String::new();
    };
    let d = b as i64 - a as i64;
    let word = match d.signum() {
        -1 => " better (exact)",
        1 => " worse (exact)",
        _ => " same",
    };
    format!("{}{}{word}", sign(d as f64), dur(d.unsigned_abs()))
}

#[derive(Debug, Clone, Copy)]
enum Better {
    Lower,
}

/// The noise two runs share for one metric: the larger spread, when both runs have one.
fn noise(a: Option<Spread>, b: Option<Spread>) -> Option<f64> {
    let (a, b) = (a?, b?);
    debug_assert!(a.seconds >= 3 && b.seconds >= 3);
    Some(a.sd.max(b.sd))
}

fn sign(d: f64) -> &'static str {
    if d > 0.0 {
        "+"
    } else if d < 0.0 {
        "-"
    } else {
        "±"
    }
}

fn delta_ms(
    a: Option<u64>,
    b: Option<u64>,
    better: Option<Better>,
    noise_ms: Option<u64>,
) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return String::new();
    };
    let d = b as i64 - a as i64;
    format!(
        "{}{}{}",
        sign(d as f64),
        dur(d.unsigned_abs()),
        judge(d as f64, better, noise_ms.map(|n| n as f64), |n| dur(
            n as u64
        ))
    )
}

fn delta(
    a: Option<f64>,
    b: Option<f64>,
    unit: &str,
    better: Option<Better>,
    noise: Option<f64>,
) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return String::new();
    };
    let d = b - a;
    format!(
        "{}{}{unit}{}",
        sign(d),
        num(d.abs()),
        judge(d, better, noise, |n| format!("{}{unit}", num(n)))
    )
}

/// ` worse (noise ±3 ms)`, ` within noise (±3 ms)`, or nothing when the metric has no
/// better side or the noise is not known.
fn judge(
    d: f64,
    better: Option<Better>,
    noise: Option<f64>,
    show: impl Fn(f64) -> String,
) -> String {
    let (Some(Better::Lower), Some(noise)) = (better, noise) else {
        return String::new();
    };
    if d.abs() <= noise {
        format!(" within noise (±{})", show(noise))
    } else if d < 0.0 {
        format!(" better (noise ±{})", show(noise))
    } else {
        format!(" worse (noise ±{})", show(noise))
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
                    let class = if c.contains(" worse (")
                        || c == "regressed"
                        || c == "changed"
                        || c == "new"
                    {
                        " class=\"bad\""
                    } else if c.contains(" better (") || c == "fixed" {
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
