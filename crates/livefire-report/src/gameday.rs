//! Game days: per curveball, how long the responders took to detect it (their first
//! `detected` mark, and separately the hypothesis's first deviation), to mitigate it and
//! to get the steady state back, measured from the journal alone; and the after-action
//! review (`review.md`) and the report's game-day section made from them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use livefire_core::events::{Event, Phase, Role};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::journal::Journal;
use crate::summary::{FaultSummary, Summary, dur, secs, sent_at};

/// The start of a curveball's activity id: `scenario.pool[i]`, its entry in the pool.
pub const CURVEBALL_ID: &str = "scenario.pool[";

/// A game day's measures (`summary.json`'s `gameday`): present when the run drew
/// curveballs from a `scenario:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GameDaySummary {
    /// The seed the curveballs were drawn with: the same seed replays the same game day.
    pub seed: u64,
    /// Whether responders were kept from seeing what was injected (`hidden: true`).
    pub hidden: bool,
    /// The `scenario:` section as run; two game days are of the same scenario when it is
    /// the same.
    #[serde(default)]
    pub scenario: serde_json::Value,
    /// Every curveball applied, by number.
    pub curveballs: Vec<CurveballSummary>,
    /// Every responder's mark, in order.
    pub marks: Vec<MarkSummary>,
}

/// One curveball and how the responders fared. Times are in milliseconds since the start
/// of the run; every `time_to_*` counts from `applied_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CurveballSummary {
    /// N of `curveball N`, in the order they were drawn to start.
    pub number: u32,
    /// Its activity name, `curveball 1: process.pause worker`.
    pub name: String,
    /// Its entry in the pool, `scenario.pool[2]`.
    pub pool: String,
    pub kind: String,
    pub target: String,
    pub applied_ms: u64,
    /// When it was rolled back, and by whom (`engine` at its drawn end, `facilitator`
    /// when ended early, `halt`...).
    pub ended_ms: Option<u64>,
    pub ended_by: Option<String>,
    /// Whether the hypothesis failed while it was active.
    pub impacted: bool,
    /// Applied -> the first `detected` mark that counts for it.
    pub time_to_detect_ms: Option<u64>,
    pub detected_by: Option<String>,
    /// Applied -> the referee's first deviation of the hypothesis for it (a failing
    /// streak that began while it was active and outlasted its `tolerate`).
    pub time_to_deviation_ms: Option<u64>,
    /// The condition that deviated first.
    pub deviation: Option<String>,
    /// Applied -> the first `mitigated` mark that counts for it.
    pub time_to_mitigate_ms: Option<u64>,
    pub mitigated_by: Option<String>,
    /// Applied -> the first `resolved` mark that counts for it.
    pub time_to_resolve_ms: Option<u64>,
    /// Applied -> the steady state again: the hypothesis holds again after the failures
    /// it caused (before its end, if the responders fixed it, or after). `None` when it
    /// had no impact or the hypothesis never held again.
    pub time_to_recover_ms: Option<u64>,
}

/// A responder's mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MarkSummary {
    pub at_ms: u64,
    /// `detected`, `mitigated` or `resolved`.
    pub mark: String,
    pub responder: String,
    #[serde(default)]
    pub note: Option<String>,
    /// `cli`, `page` or `http`.
    pub via: String,
}

/// One hypothesis sample: when it was sent and answered, its condition and result.
struct Sample<'a> {
    sent: u64,
    done: u64,
    cond: &'a str,
    ok: bool,
}

/// The game day in a journal, or `None` when the run drew no curveball. `faults` are the
/// summary's (the curveballs are faults too, with their rollback times).
pub(crate) fn measure(
    journal: &Journal,
    seed: u64,
    faults: &[FaultSummary],
) -> Option<GameDaySummary> {
    let plan = journal.plan();
    let scenario = plan
        .as_ref()
        .and_then(|p| p.experiment.get("scenario").cloned())
        .filter(|s| !s.is_null());
    // The curveballs are the activities whose id is a pool entry.
    let mut pool_of: BTreeMap<String, String> = BTreeMap::new();
    for r in &journal.records {
        if let Event::ActivityStarted { activity, id, .. } = &r.event
            && id.starts_with(CURVEBALL_ID)
        {
            pool_of.insert(activity.clone(), id.clone());
        }
    }
    for a in plan.iter().flat_map(|p| &p.activities) {
        if a.id.starts_with(CURVEBALL_ID) {
            pool_of
                .entry(a.name.clone())
                .or_insert_with(|| a.id.clone());
        }
    }
    if scenario.is_none() && pool_of.is_empty() {
        return None;
    }
    let hidden = scenario
        .as_ref()
        .and_then(|s| s.get("hidden"))
        .and_then(|h| h.as_bool())
        .unwrap_or(false);

    let mut marks = Vec::new();
    let mut samples = Vec::new();
    // (t, condition, when its failing streak began)
    let mut deviations: Vec<(u64, &str, u64)> = Vec::new();
    let mut settled_at = None;
    for r in &journal.records {
        match &r.event {
            Event::Mark {
                mark,
                responder,
                note,
                via,
            } => marks.push(MarkSummary {
                at_ms: r.t,
                mark: mark.label().to_owned(),
                responder: responder.clone(),
                note: note.clone(),
                via: via.clone(),
            }),
            Event::Probe {
                condition,
                role: Role::Hypothesis,
                ok,
                latency_ms,
                ..
            } => samples.push(Sample {
                sent: sent_at(r.t, *latency_ms),
                done: r.t,
                cond: condition,
                ok: *ok,
            }),
            Event::Metric {
                condition,
                role: Role::Hypothesis,
                ok,
                ..
            } => samples.push(Sample {
                sent: r.t,
                done: r.t,
                cond: condition,
                ok: *ok,
            }),
            Event::Deviation {
                condition,
                phase: Phase::During,
                streak,
                ..
            } => deviations.push((
                r.t,
                condition,
                r.t.saturating_sub(streak.map_or(0, |s| s.failing_ms)),
            )),
            Event::Settled { ok: true, .. } => settled_at = Some(r.t),
            _ => {}
        }
    }
    samples.sort_by_key(|s| s.done);

    let mut curveballs: Vec<CurveballSummary> = faults
        .iter()
        .filter_map(|f| {
            let pool = pool_of.get(&f.activity)?.clone();
            let number = number_of(&f.activity)?;
            let ended = f.rolled_back_ms;
            let end = ended.unwrap_or(u64::MAX);
            let recovered = recovered_at(&samples, f.applied_ms, ended, settled_at);
            let deviation = deviations
                .iter()
                .find(|(t, _, began)| *t >= f.applied_ms && (f.applied_ms..=end).contains(began));
            Some(CurveballSummary {
                number,
                name: f.activity.clone(),
                pool,
                kind: f.kind.clone(),
                target: f.target.clone(),
                applied_ms: f.applied_ms,
                ended_ms: ended,
                ended_by: f.rolled_back_by.clone(),
                impacted: recovered.is_some(),
                time_to_detect_ms: None,
                detected_by: None,
                time_to_deviation_ms: deviation.map(|(t, _, _)| t - f.applied_ms),
                deviation: deviation.map(|(_, c, _)| (*c).to_owned()),
                time_to_mitigate_ms: None,
                mitigated_by: None,
                time_to_resolve_ms: None,
                time_to_recover_ms: recovered.flatten().map(|at| at - f.applied_ms),
            })
        })
        .collect();
    curveballs.sort_by_key(|c| (c.number, c.applied_ms));
    credit_marks(&mut curveballs, &marks);
    Some(GameDaySummary {
        seed,
        hidden,
        scenario: scenario.unwrap_or_default(),
        curveballs,
        marks,
    })
}

/// N of `curveball N: ...`.
fn number_of(activity: &str) -> Option<u32> {
    activity
        .strip_prefix("curveball ")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// When the steady state came back after a curveball applied at `applied` and ended at
/// `ended`: `None` when the hypothesis did not fail while it was active (no impact);
/// `Some(None)` when it failed and never held again; `Some(Some(t))` when every
/// hypothesis condition's latest sample was ok again at `t` and stayed so until the
/// curveball ended (a fix by the responders counts before the end), or, after the end,
/// the first time they all held again.
fn recovered_at(
    samples: &[Sample],
    applied: u64,
    ended: Option<u64>,
    settled: Option<u64>,
) -> Option<Option<u64>> {
    let end = ended.unwrap_or(u64::MAX);
    // Each condition's latest result, starting from what it was before the curveball.
    let mut latest: BTreeMap<&str, bool> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.done < applied) {
        latest.insert(s.cond, s.ok);
    }
    let mut impacted = false;
    let mut healthy_since: Option<u64> = None;
    for s in samples.iter().filter(|s| s.done >= applied) {
        latest.insert(s.cond, s.ok);
        if !s.ok {
            if s.sent <= end {
                impacted = true;
            } else if !impacted {
                // A failure that began after it ended is someone else's.
                return None;
            }
            healthy_since = None;
        } else if healthy_since.is_none() && latest.values().all(|ok| *ok) {
            healthy_since = Some(s.done);
        }
        if s.done >= end && healthy_since.is_some() {
            break;
        }
    }
    if !impacted {
        return None;
    }
    Some(healthy_since.or(settled.filter(|t| *t >= end && ended.is_some())))
}

/// Credits each curveball with the first `detected`, `mitigated` and `resolved` marks
/// made while it was open. A curveball is open from when it was applied until the first
/// `resolved` mark after that; one that had ended with the steady state back (or no
/// impact) closes early when the next curveball starts, so a mark is credited to what the
/// responders are looking at, not to an incident that is over.
fn credit_marks(curveballs: &mut [CurveballSummary], marks: &[MarkSummary]) {
    let starts: Vec<u64> = curveballs.iter().map(|c| c.applied_ms).collect();
    for c in curveballs.iter_mut() {
        let over = c.ended_ms.map(|end| {
            c.time_to_recover_ms
                .map_or(end, |r| end.max(c.applied_ms + r))
        });
        let next = over.and_then(|over| starts.iter().copied().filter(|s| *s > over).min());
        let resolved = marks
            .iter()
            .find(|m| m.mark == "resolved" && m.at_ms >= c.applied_ms)
            .map(|m| m.at_ms);
        let until = match (next, resolved) {
            (Some(n), Some(r)) => n.min(r),
            (n, r) => n.or(r).unwrap_or(u64::MAX),
        };
        let first = |kind: &str| {
            marks
                .iter()
                .find(|m| m.mark == kind && m.at_ms >= c.applied_ms && m.at_ms <= until)
                .map(|m| (m.at_ms - c.applied_ms, m.responder.clone()))
        };
        (c.time_to_detect_ms, c.detected_by) = first("detected").unzip();
        (c.time_to_mitigate_ms, c.mitigated_by) = first("mitigated").unzip();
        c.time_to_resolve_ms = first("resolved").map(|(t, _)| t);
    }
}

/// A measure for people: `2.40s`, `-` when not measured.
fn show(ms: Option<u64>) -> String {
    ms.map(dur).unwrap_or_else(|| "-".into())
}

/// The table of measures, one row per curveball: the same cells feed `review.md`,
/// `report.html` and `livefire compare`.
pub fn measures_rows(g: &GameDaySummary) -> Vec<[String; 6]> {
    g.curveballs
        .iter()
        .map(|c| {
            let by = |t: Option<u64>, who: &Option<String>| match (t, who) {
                (Some(t), Some(w)) => format!("{} ({w})", dur(t)),
                (t, _) => show(t),
            };
            [
                c.name.clone(),
                by(c.time_to_detect_ms, &c.detected_by),
                match (&c.time_to_deviation_ms, &c.deviation) {
                    (Some(t), Some(d)) => format!("{} (`{d}`)", dur(*t)),
                    (t, _) => show(*t),
                },
                by(c.time_to_mitigate_ms, &c.mitigated_by),
                if c.impacted {
                    c.time_to_recover_ms
                        .map(dur)
                        .unwrap_or_else(|| "never".into())
                } else {
                    "no impact".into()
                },
                format!(
                    "{} → {}{}",
                    secs(c.applied_ms),
                    c.ended_ms.map(secs).unwrap_or_else(|| "?".into()),
                    c.ended_by
                        .as_deref()
                        .filter(|b| *b != "engine")
                        .map(|b| format!(" ({b})"))
                        .unwrap_or_default()
                ),
            ]
        })
        .collect()
}

/// The header of [`measures_rows`].
pub const MEASURES_HEADER: [&str; 6] = [
    "curveball",
    "time to detect (mark)",
    "time to detect (hypothesis)",
    "time to mitigate",
    "time to recover",
    "active",
];

/// One line of the game day's timeline: when, what, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at_ms: u64,
    pub what: String,
}

/// The game day's timeline: curveballs applied and ended, marks, deviations, findings,
/// guardrail trips and aborts, in time order.
pub fn timeline(journal: &Journal, s: &Summary, g: &GameDaySummary) -> Vec<TimelineEntry> {
    let mut out = Vec::new();
    for c in &g.curveballs {
        out.push(TimelineEntry {
            at_ms: c.applied_ms,
            what: format!("{} applied", c.name),
        });
        if let Some(end) = c.ended_ms {
            out.push(TimelineEntry {
                at_ms: end,
                what: format!(
                    "{} ended{}",
                    c.name,
                    c.ended_by
                        .as_deref()
                        .filter(|b| *b != "engine")
                        .map(|b| format!(" by {b}"))
                        .unwrap_or_default()
                ),
            });
        }
    }
    for m in &g.marks {
        out.push(TimelineEntry {
            at_ms: m.at_ms,
            what: format!(
                "{} marked {}{}",
                m.responder,
                m.mark,
                m.note
                    .as_deref()
                    .map(|n| format!(": \"{n}\""))
                    .unwrap_or_default()
            ),
        });
    }
    for r in &journal.records {
        let what = match &r.event {
            Event::Deviation {
                condition, detail, ..
            } => format!("hypothesis `{condition}` deviated: {detail}"),
            Event::GuardrailTripped { condition, detail } => {
                format!("guardrail `{condition}` tripped: {detail}")
            }
            Event::Aborted { cause } => format!("aborted: {}", cause.describe()),
            _ => continue,
        };
        out.push(TimelineEntry { at_ms: r.t, what });
    }
    for f in &s.findings {
        out.push(TimelineEntry {
            at_ms: f.at_ms,
            what: format!(
                "finding ({}): {} {} {}",
                f.severity, f.rule, f.operation, f.title
            )
            .trim_end()
            .to_owned(),
        });
    }
    // Stable: what happened at the same millisecond keeps the journal's order.
    out.sort_by_key(|e| e.at_ms);
    out
}

/// The first line of every `review.md` livefire writes; the rest of its first block is
/// the fingerprint of what livefire wrote, so an edited review is told from one that is
/// not.
const REVIEW_MARK: &str = "<!-- livefire review: written by `livefire report`";

/// The after-action review as Markdown: the timeline, the measures per curveball, and
/// blank sections for the team.
pub fn review_markdown(journal: &Journal, s: &Summary, g: &GameDaySummary) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "# After-action review: {}\n",
        if s.title.is_empty() {
            "untitled game day"
        } else {
            &s.title
        }
    );
    let _ = writeln!(
        body,
        "- run: `{}`, started {}\n- seed: {} (the same seed replays the same game day)\n- curveballs: {}{}\n- verdict: {}\n",
        s.run_id,
        s.wall_start,
        g.seed,
        g.curveballs.len(),
        if g.hidden {
            ", hidden from responders"
        } else {
            ""
        },
        crate::verdict_word(s.verdict)
    );
    let _ = writeln!(body, "## Timeline\n\nTimes since the start of the run.\n");
    let _ = writeln!(body, "| at | what |\n| --- | --- |");
    for e in timeline(journal, s, g) {
        let _ = writeln!(body, "| {} | {} |", secs(e.at_ms), md_cell(&e.what));
    }
    let _ = writeln!(
        body,
        "\n## Time to detect, mitigate and recover\n\nCounted from when each curveball was applied. Detect (mark): the first `detected` mark while it was open; detect (hypothesis): the first deviation the referee called; recover: the hypothesis holding again.\n"
    );
    let _ = writeln!(body, "| {} |", MEASURES_HEADER.join(" | "));
    let _ = writeln!(body, "|{}", " --- |".repeat(MEASURES_HEADER.len()));
    for row in measures_rows(g) {
        let cells: Vec<String> = row.iter().map(|c| md_cell(c)).collect();
        let _ = writeln!(body, "| {} |", cells.join(" | "));
    }
    for section in ["What we learned", "What went well", "What to change"] {
        let _ = writeln!(body, "\n## {section}\n\n_to fill in_");
    }
    format!(
        "{REVIEW_MARK}; edit freely: once edited it is never overwritten (fingerprint {:016x}) -->\n{body}",
        fingerprint(&body)
    )
}

/// What `livefire report` does with `review.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewWrite {
    /// Written to `review.md` (new, or livefire's own untouched one replaced).
    Review,
    /// `review.md` was edited by the team: the fresh one went to `review.new.md`.
    New,
}

/// Where the review goes: `review.md` when there is none or it is livefire's own and
/// untouched (its fingerprint still matches its text), else `review.new.md`, so a
/// review the team edited is never overwritten.
pub fn review_target(existing: Option<&str>) -> ReviewWrite {
    let Some(text) = existing else {
        return ReviewWrite::Review;
    };
    let untouched = text.split_once('\n').is_some_and(|(first, body)| {
        first.starts_with(REVIEW_MARK)
            && first
                .rsplit_once("(fingerprint ")
                .and_then(|(_, f)| f.strip_suffix(") -->"))
                .is_some_and(|f| f == format!("{:016x}", fingerprint(body)))
    });
    if untouched {
        ReviewWrite::Review
    } else {
        ReviewWrite::New
    }
}

/// FNV-1a, 64 bits: enough to tell an edited file from livefire's own, stable forever.
fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Text safe in a Markdown table cell.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The game day's section of `report.html` (empty for other runs): one chart of
/// curveballs, marks, deviations and findings on the run's time axis, and the table of
/// measures per curveball.
pub(crate) fn html_section(journal: &Journal, s: &Summary) -> String {
    use crate::escape;
    let Some(g) = &s.gameday else {
        return String::new();
    };
    const W: f64 = 1000.0;
    const LEFT: f64 = 170.0;
    let span = s.duration_ms.max(1);
    let x = |t: u64| LEFT + t.min(span) as f64 / span as f64 * (W - LEFT - 16.0);
    let lanes = g.curveballs.len() + 3;
    let bottom = 6.0 + lanes as f64 * 20.0;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<section id="gameday"><h2>Game day</h2><p class="note">seed {} · {} curveball{}{} · the after-action review is <code>review.md</code> in the run folder</p><figure class="chart" data-chart="gameday"><figcaption>curveballs, marks, deviations and findings</figcaption><svg class="chart" viewBox="0 0 {W} {}" role="img" aria-label="game day timeline" xmlns="http://www.w3.org/2000/svg">"#,
        g.seed,
        g.curveballs.len(),
        if g.curveballs.len() == 1 { "" } else { "s" },
        if g.hidden {
            ", hidden from responders"
        } else {
            ""
        },
        bottom + 20.0
    );
    let label = |h: &mut String, lane: usize, text: &str| {
        let _ = write!(
            h,
            r#"<text class="label" x="4" y="{:.1}">{}</text>"#,
            6.0 + lane as f64 * 20.0 + 11.0,
            escape(text)
        );
    };
    for (i, c) in g.curveballs.iter().enumerate() {
        let y = 6.0 + i as f64 * 20.0;
        label(&mut h, i, &format!("curveball {}", c.number));
        let (x0, x1) = (x(c.applied_ms), x(c.ended_ms.unwrap_or(span)));
        let _ = write!(
            h,
            r#"<rect class="fault-bar" x="{x0:.1}" y="{y}" width="{:.1}" height="14"><title>{}: {} → {}</title></rect>"#,
            (x1 - x0).max(2.0),
            escape(&c.name),
            secs(c.applied_ms),
            c.ended_ms.map(secs).unwrap_or_else(|| "never".into())
        );
        if let Some(r) = c.time_to_recover_ms {
            let xr = x(c.applied_ms + r);
            let _ = write!(
                h,
                r##"<line x1="{xr:.1}" x2="{xr:.1}" y1="{y}" y2="{:.1}" stroke="#16a34a" stroke-width="3"><title>{}: steady state again after {}</title></line>"##,
                y + 14.0,
                escape(&c.name),
                dur(r)
            );
        }
    }
    let marks_lane = g.curveballs.len();
    label(&mut h, marks_lane, "marks");
    for m in &g.marks {
        let (xm, y) = (x(m.at_ms), 6.0 + marks_lane as f64 * 20.0);
        let fill = match m.mark.as_str() {
            "detected" => "#ea580c",
            "mitigated" => "#2563eb",
            _ => "#16a34a",
        };
        let _ = write!(
            h,
            r#"<circle class="mark {}" cx="{xm:.1}" cy="{:.1}" r="5" fill="{fill}"><title>{} marked {} at {}{}</title></circle>"#,
            escape(&m.mark),
            y + 7.0,
            escape(&m.responder),
            escape(&m.mark),
            secs(m.at_ms),
            m.note
                .as_deref()
                .map(|n| format!(": {}", escape(n)))
                .unwrap_or_default()
        );
    }
    label(&mut h, marks_lane + 1, "deviations");
    label(&mut h, marks_lane + 2, "findings");
    for r in &journal.records {
        if let Event::Deviation {
            condition, detail, ..
        } = &r.event
        {
            let (xd, y) = (x(r.t), 6.0 + (marks_lane + 1) as f64 * 20.0);
            let _ = write!(
                h,
                r#"<rect class="dev" x="{:.1}" y="{y}" width="3" height="14" fill="currentColor"><title>`{}` deviated at {}: {}</title></rect>"#,
                xd - 1.5,
                escape(condition),
                secs(r.t),
                escape(detail)
            );
        }
    }
    for f in &s.findings {
        let y = 6.0 + (marks_lane + 2) as f64 * 20.0;
        let _ = write!(
            h,
            r#"<rect class="finding sev-{}" x="{:.1}" y="{y}" width="4" height="14"><title>{} at {}: {} {}</title></rect>"#,
            escape(&f.severity),
            x(f.at_ms) - 2.0,
            escape(&f.severity),
            secs(f.at_ms),
            escape(&f.rule),
            escape(&f.operation)
        );
    }
    let _ = write!(
        h,
        r#"<line class="axis" x1="{LEFT}" x2="{}" y1="{bottom}" y2="{bottom}"/><text class="tick" x="{LEFT}" y="{}">0s</text><text class="tick" x="{}" y="{}" text-anchor="end">{}</text></svg></figure>"#,
        W - 16.0,
        bottom + 15.0,
        W - 16.0,
        bottom + 15.0,
        secs(span)
    );
    let _ = write!(h, r#"<table id="gameday-measures"><tr>"#);
    for c in MEASURES_HEADER {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    let _ = write!(h, "</tr>");
    for row in measures_rows(g) {
        let _ = write!(h, "<tr>");
        for c in row {
            let _ = write!(h, "<td>{}</td>", escape(&c));
        }
        let _ = write!(h, "</tr>");
    }
    let _ = writeln!(h, "</table></section>");
    h
}
