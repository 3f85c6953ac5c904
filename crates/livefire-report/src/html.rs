//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network;
//! a Content-Security-Policy forbids any fetch) with a timeline where fault windows,
//! guardrail trips and aborts are shaded across aligned charts, the verdict, each
//! condition with its result, each fault's time to impact and to recover, and the
//! experiment as run.

use std::fmt::Write as _;

use livefire_core::events::{Event, Phase, Role, Verdict};

use crate::escape;
use crate::journal::{Journal, Plan};
use crate::series::{self, LoadSeries, MAX_POINTS, ProbeSeries};
use crate::summary::{Summary, dur, num, phase_name, secs, verdict_word};

/// Width of every chart, in SVG units; the plot starts at `LEFT`.
const W: f64 = 1000.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 16.0;
const PALETTE: [&str; 6] = [
    "#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d",
];

/// Renders the report page.
pub fn render(journal: &Journal, summary: &Summary) -> String {
    let dur = summary.duration_ms.max(1);
    let plan = journal.plan();
    let probes = series::probe_series(journal, dur, MAX_POINTS);
    let loads = series::load_series(journal);
    let marks = Marks::from(journal, summary);
    let mut h = String::with_capacity(64 * 1024);
    let verdict_class = match summary.verdict {
        Some(Verdict::Held) => "held",
        Some(Verdict::Deviated) => "deviated",
        Some(Verdict::Failed) => "failed",
        Some(Verdict::Aborted) => "aborted",
        Some(Verdict::Invalid) => "invalid",
        Some(Verdict::RollbackIncomplete) => "rollback-incomplete",
        None => "unknown",
    };
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title} — livefire report</title>
<style>{CSS}</style></head><body>
<header><h1>{title}</h1>
<p class="verdict-line">verdict: <span id="verdict" class="verdict {verdict_class}">{verdict}</span>{exit}</p>
<dl class="meta"><dt>run</dt><dd>{run_id}</dd><dt>started</dt><dd>{start}</dd><dt>duration</dt><dd>{duration}</dd><dt>seed</dt><dd>{seed}</dd><dt>livefire</dt><dd>{version}</dd>{environment}</dl>
</header>
"#,
        title = escape(if summary.title.is_empty() {
            "untitled run"
        } else {
            &summary.title
        }),
        verdict = escape(verdict_word(summary.verdict)),
        exit = summary
            .exit_code
            .map(|c| format!(" <span class=\"exit\">(exit {c})</span>"))
            .unwrap_or_default(),
        run_id = escape(&summary.run_id),
        start = escape(&summary.wall_start),
        duration = secs(summary.duration_ms),
        seed = summary.seed,
        version = escape(&summary.livefire),
        environment = summary
            .environment
            .as_ref()
            .map(|e| format!(
                "<dt>environment</dt><dd id=\"environment\">{}{}</dd>",
                escape(e),
                if summary.production {
                    " (production)"
                } else {
                    ""
                }
            ))
            .unwrap_or_default(),
    );
    // What the reader must know before the charts: why the verdict is what it is.
    if !summary.reasons.is_empty() {
        let items: String = summary
            .reasons
            .iter()
            .map(|r| format!("<li>{}</li>", escape(r)))
            .collect();
        let _ = writeln!(h, r#"<ul class="reasons" id="reasons">{items}</ul>"#);
    }
    if let Some(stopped) = &summary.journal_stopped {
        let _ = writeln!(
            h,
            r#"<p class="banner warn" id="journal-stopped"><strong>incomplete journal:</strong> {}. This report shows what is there, up to that point.</p>"#,
            escape(stopped)
        );
    }
    if let Some(reason) = &summary.abort_reason {
        let _ = writeln!(
            h,
            r#"<p class="banner bad" id="aborted"><strong>aborted:</strong> {}</p>"#,
            escape(reason)
        );
    }
    if summary.ledger_left > 0 {
        let _ = writeln!(
            h,
            r#"<p class="banner bad"><strong>rollback incomplete:</strong> {} undo record(s) stay in the ledger: run <code>livefire recover</code></p>"#,
            summary.ledger_left
        );
    }
    for f in &summary.forgotten {
        let _ = writeln!(
            h,
            r#"<p class="banner warn"><strong>undo forgotten by hand:</strong> <code>{}</code> ({}) would have run: {}; dropped from the ledger by {} at {}: {}</p>"#,
            escape(&f.activity),
            escape(&f.kind),
            escape(&f.undo),
            escape(&f.user),
            escape(&f.at),
            escape(&f.reason)
        );
    }
    if !summary.unknown_events.is_empty() {
        let list: Vec<String> = summary
            .unknown_events
            .iter()
            .map(|(k, n)| format!("{} × {n}", escape(k)))
            .collect();
        let _ = writeln!(
            h,
            r#"<p class="banner warn">events this livefire does not know were skipped ({}): a newer livefire may show more</p>"#,
            list.join(", ")
        );
    }

    let _ = writeln!(h, "<section><h2>Timeline</h2>");
    let _ = writeln!(
        h,
        r#"<p class="legend"><span class="sw fault"></span>fault active <span class="sw trip"></span>guardrail trip / abort <span class="sw dev"></span>deviation <span class="sw okc"></span>sample ok <span class="sw failc"></span>sample failing</p>"#
    );
    events_chart(&mut h, summary, &marks, dur);
    probe_lanes(&mut h, &probes, &marks, dur);
    probe_latency(&mut h, &probes, &marks, dur);
    if loads.is_empty() {
        let _ = writeln!(
            h,
            r#"<p class="note">no load metric windows in the journal: throughput, latency and error-rate charts appear for runs with a <code>load:</code> activity</p>"#
        );
    } else {
        load_charts(&mut h, &loads, &marks, dur);
    }
    let _ = writeln!(h, "</section>");
    h.push_str(&crate::gameday::html_section(journal, summary));

    conditions_table(&mut h, summary, plan.as_ref());
    faults_table(&mut h, summary, plan.as_ref());
    findings_table(&mut h, summary);
    loads_table(&mut h, summary);
    writes_table(&mut h, summary);
    failover_table(&mut h, summary);
    h.push_str(&crate::segments::html_section(&summary.segments));
    detectors_table(&mut h, summary);
    if !summary.rollback_steps.is_empty() {
        let _ = writeln!(
            h,
            "<section><h2>Rollback steps</h2><table><tr><th>step</th><th>result</th><th>detail</th></tr>"
        );
        for s in &summary.rollback_steps {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"{}\">{}</td><td>{}</td></tr>",
                escape(&s.step),
                if s.ok { "good" } else { "bad" },
                if s.ok { "ok" } else { "failed" },
                escape(&s.detail)
            );
        }
        let _ = writeln!(h, "</table></section>");
    }
    if !summary.warnings.is_empty() {
        let _ = writeln!(h, "<section><h2>Warnings</h2><ul>");
        for w in &summary.warnings {
            let _ = writeln!(h, "<li>{}</li>", escape(w));
        }
        let _ = writeln!(h, "</ul></section>");
    }
    let _ = writeln!(h, "<section><h2>Experiment as run</h2>");
    match &plan {
        Some(p) => {
            let _ = writeln!(
                h,
                r#"<p class="note">resolved (variables and defaults filled in, secrets shown as <code>${{env:NAME}}</code>), from the journal's plan event</p><pre id="experiment">{}</pre>"#,
                escape(&serde_json::to_string_pretty(&p.experiment).unwrap_or_default())
            );
        }
        None => {
            let _ = writeln!(
                h,
                r#"<p class="note">this journal has no plan event (livefire before 0.1.0 did not record the experiment in the journal): see experiment.yaml in the run folder</p>"#
            );
        }
    }
    let _ = writeln!(
        h,
        "</section>\n<footer>rebuilt from journal.jsonl ({} events{}) by <code>livefire report</code></footer>\n</body></html>",
        journal.records.len(),
        if journal.window_count() == 0 {
            String::new()
        } else {
            format!(", {} metric windows", journal.window_count())
        }
    );
    h
}

/// What every chart shades: fault windows, trips and aborts, deviations, phases.
struct Marks {
    faults: Vec<(String, u64, Option<u64>)>,
    /// Guardrail trips and aborts: (t, label).
    stops: Vec<(u64, String)>,
    deviations: Vec<(u64, String)>,
    phases: Vec<(Phase, u64)>,
}

impl Marks {
    fn from(journal: &Journal, summary: &Summary) -> Marks {
        let mut m = Marks {
            faults: summary
                .faults
                .iter()
                .map(|f| (f.activity.clone(), f.applied_ms, f.rolled_back_ms))
                .collect(),
            stops: Vec::new(),
            deviations: Vec::new(),
            phases: Vec::new(),
        };
        for r in &journal.records {
            match &r.event {
                Event::GuardrailTripped { condition, detail } => m
                    .stops
                    .push((r.t, format!("guardrail `{condition}` tripped: {detail}"))),
                Event::Aborted { cause } => m
                    .stops
                    .push((r.t, format!("aborted: {}", cause.describe()))),
                Event::Deviation {
                    condition, detail, ..
                } => m
                    .deviations
                    .push((r.t, format!("`{condition}` deviated: {detail}"))),
                Event::PhaseStarted { phase } => m.phases.push((*phase, r.t)),
                _ => {}
            }
        }
        m
    }
}

fn x(t_ms: u64, dur: u64) -> f64 {
    LEFT + (t_ms.min(dur) as f64 / dur as f64) * (W - LEFT - RIGHT)
}

/// Opens a chart: figure, caption, svg.
fn open_chart(h: &mut String, id: &str, caption: &str, height: f64) {
    let _ = write!(
        h,
        r#"<figure class="chart" data-chart="{id}"><figcaption>{}</figcaption><svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(caption),
        escape(caption)
    );
}

/// Closes a chart: the shading of faults, stops and deviations over the plot area
/// `[top, bottom]` (on top of the data, see-through), then the time axis.
fn close_chart(h: &mut String, top: f64, bottom: f64, marks: &Marks, dur: u64) {
    for (name, from, to) in &marks.faults {
        let (x0, x1) = (x(*from, dur), x(to.unwrap_or(dur), dur));
        let _ = write!(
            h,
            r#"<rect class="fault" x="{x0:.1}" y="{top}" width="{:.1}" height="{}"><title>fault `{}`: {} → {}</title></rect>"#,
            (x1 - x0).max(1.0),
            bottom - top,
            escape(name),
            secs(*from),
            to.map(secs).unwrap_or_else(|| "not rolled back".into())
        );
    }
    for (t, label) in &marks.stops {
        let x0 = x(*t, dur);
        let _ = write!(
            h,
            r#"<rect class="trip" x="{x0:.1}" y="{top}" width="{:.1}" height="{}"/><line class="trip" x1="{x0:.1}" x2="{x0:.1}" y1="{top}" y2="{bottom}"><title>{} at {}</title></line>"#,
            (W - RIGHT - x0).max(0.0),
            bottom - top,
            escape(label),
            secs(*t)
        );
    }
    for (t, label) in &marks.deviations {
        let x0 = x(*t, dur);
        let _ = write!(
            h,
            r#"<line class="dev" x1="{x0:.1}" x2="{x0:.1}" y1="{top}" y2="{bottom}"><title>{} at {}</title></line>"#,
            escape(label),
            secs(*t)
        );
    }
    time_axis(h, bottom, dur);
    let _ = writeln!(h, "</svg></figure>");
}

/// Ticks at a readable step under the plot.
fn time_axis(h: &mut String, y: f64, dur: u64) {
    const STEPS_S: [u64; 14] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
    ];
    let step_ms = STEPS_S
        .iter()
        .map(|s| s * 1000)
        .find(|s| dur / s <= 10)
        .unwrap_or(dur.div_ceil(10).max(1));
    let _ = write!(
        h,
        r#"<line class="axis" x1="{LEFT}" x2="{}" y1="{y}" y2="{y}"/>"#,
        W - RIGHT
    );
    let mut t = 0;
    while t <= dur {
        let x0 = x(t, dur);
        let _ = write!(
            h,
            r#"<line class="axis" x1="{x0:.1}" x2="{x0:.1}" y1="{y}" y2="{}"/><text class="tick" x="{x0:.1}" y="{}" text-anchor="middle">{}</text>"#,
            y + 4.0,
            y + 15.0,
            clock(t)
        );
        let Some(next) = t.checked_add(step_ms) else {
            break;
        };
        t = next;
    }
}

/// `1m30s`, `45s`, `1h02m`.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 if s.is_multiple_of(60) => format!("{}m", s / 60),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The top lane: phases, each fault as a labelled bar, trips and deviations.
fn events_chart(h: &mut String, summary: &Summary, marks: &Marks, dur: u64) {
    let finding_row = usize::from(!summary.findings.is_empty());
    let rows = (summary.faults.len() + finding_row).max(1) as f64;
    let bottom = 26.0 + rows * 20.0;
    let height = bottom + 20.0;
    open_chart(h, "events", "phases and faults", height);
    let top = 4.0;
    for (i, (phase, t)) in marks.phases.iter().enumerate() {
        let end = marks.phases.get(i + 1).map(|p| p.1).unwrap_or(dur);
        let (x0, x1) = (x(*t, dur), x(end, dur));
        let _ = write!(
            h,
            r#"<rect class="phase {p}" x="{x0:.1}" y="4" width="{:.1}" height="16"><title>{p}: {} → {}</title></rect>"#,
            (x1 - x0).max(0.0),
            secs(*t),
            secs(end),
            p = phase_name(*phase)
        );
        if x1 - x0 > 40.0 {
            let _ = write!(
                h,
                r#"<text class="phase-label" x="{:.1}" y="16">{}</text>"#,
                x0 + 3.0,
                phase_name(*phase)
            );
        }
    }
    let _ = write!(h, r#"<text class="label" x="4" y="16">phases</text>"#);
    for (i, f) in summary.faults.iter().enumerate() {
        let y = 26.0 + i as f64 * 20.0;
        let (x0, x1) = (
            x(f.applied_ms, dur),
            x(f.rolled_back_ms.unwrap_or(dur), dur),
        );
        let _ = write!(
            h,
            r#"<text class="label" x="4" y="{:.1}">{}</text><rect class="fault-bar{}" x="{x0:.1}" y="{y}" width="{:.1}" height="14"><title>{} ({} on {}): applied {}, rolled back {}</title></rect>"#,
            y + 11.0,
            escape(&truncate(&f.activity, 24)),
            if f.rollback_ok == Some(false) || f.rolled_back_ms.is_none() {
                " not-undone"
            } else {
                ""
            },
            (x1 - x0).max(2.0),
            escape(&f.activity),
            escape(&f.kind),
            escape(&f.target),
            secs(f.applied_ms),
            f.rolled_back_ms.map(secs).unwrap_or_else(|| "never".into()),
        );
    }
    if !summary.findings.is_empty() {
        let y = 26.0 + summary.faults.len() as f64 * 20.0;
        let _ = write!(
            h,
            r#"<text class="label" x="4" y="{:.1}">findings</text>"#,
            y + 11.0
        );
        for f in &summary.findings {
            let _ = write!(
                h,
                r#"<rect class="finding sev-{}" x="{:.1}" y="{y}" width="4" height="14"><title>{} at {}: {} {}: {}</title></rect>"#,
                escape(&f.severity),
                x(f.at_ms, dur) - 2.0,
                escape(&f.severity),
                secs(f.at_ms),
                escape(&f.rule),
                escape(&f.operation),
                escape(&f.title)
            );
        }
    }
    close_chart(h, top, bottom, marks, dur);
}

/// One lane per condition: a cell per bin, green when every sample held, red otherwise.
fn probe_lanes(h: &mut String, probes: &[ProbeSeries], marks: &Marks, dur: u64) {
    if probes.is_empty() {
        let _ = writeln!(h, r#"<p class="note">no condition was sampled</p>"#);
        return;
    }
    let bottom = 6.0 + probes.len() as f64 * 22.0;
    open_chart(
        h,
        "conditions",
        "condition samples (ok / failing)",
        bottom + 20.0,
    );
    let top = 2.0;
    for (i, p) in probes.iter().enumerate() {
        let y = 6.0 + i as f64 * 22.0;
        let _ = write!(
            h,
            r#"<text class="label" x="4" y="{:.1}">{}<title>{} ({})</title></text>"#,
            y + 12.0,
            escape(&truncate(&p.name, 24)),
            escape(&p.name),
            p.role.label()
        );
        // A sample's state holds until the next one (capped, so a long gap between
        // phases shows as a gap).
        let mut gaps: Vec<u64> = p
            .bins
            .windows(2)
            .map(|w| w[1].from_ms - w[0].from_ms)
            .collect();
        gaps.sort_unstable();
        let cap = gaps.get(gaps.len() / 2).copied().unwrap_or(1000).max(1) * 3;
        for (j, b) in p.bins.iter().enumerate() {
            let next = p
                .bins
                .get(j + 1)
                .map(|n| n.from_ms)
                .unwrap_or(b.from_ms + cap);
            let end = next.min(b.from_ms + cap).max(b.to_ms);
            let (x0, x1) = (x(b.from_ms, dur), x(end, dur));
            let _ = write!(
                h,
                r#"<rect class="{}" x="{x0:.1}" y="{y}" width="{:.1}" height="16"><title>{}–{}: {} ok, {} failing</title></rect>"#,
                if b.failed > 0 { "failc" } else { "okc" },
                (x1 - x0).max(1.5),
                secs(b.from_ms),
                secs(b.to_ms),
                b.ok,
                b.failed
            );
        }
    }
    close_chart(h, top, bottom, marks, dur);
}

/// A line chart of several series over the shared time axis.
struct Line<'a> {
    name: String,
    color: &'a str,
    points: Vec<(u64, f64)>,
}

fn line_chart(
    h: &mut String,
    id: &str,
    caption: &str,
    unit: &str,
    lines: &[Line<'_>],
    marks: &Marks,
    dur: u64,
) {
    let (top, bottom) = (10.0, 170.0);
    let max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let ymax = nice_ceiling(max);
    open_chart(h, id, caption, bottom + 20.0);
    let y = |v: f64| bottom - (v / ymax).clamp(0.0, 1.0) * (bottom - top);
    for i in 0..=4 {
        let v = ymax * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = write!(
            h,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}{unit}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            num(v)
        );
    }
    for (i, l) in lines.iter().enumerate() {
        let mut d = String::new();
        for (j, (t, v)) in l.points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if j == 0 { "M" } else { " L" },
                x(*t, dur),
                y(*v)
            );
        }
        if l.points.len() == 1 {
            let (t, v) = l.points[0];
            let _ = write!(
                h,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"/>"#,
                x(t, dur),
                y(v),
                l.color
            );
        }
        let _ = write!(
            h,
            r#"<path class="series" d="{d}" stroke="{}"><title>{}</title></path>"#,
            l.color,
            escape(&l.name)
        );
        let _ = write!(
            h,
            r#"<text class="key" x="4" y="{:.1}" fill="{}">{}</text>"#,
            top + 12.0 + i as f64 * 14.0,
            l.color,
            escape(&truncate(&l.name, 24))
        );
    }
    close_chart(h, top, bottom, marks, dur);
}

fn probe_latency(h: &mut String, probes: &[ProbeSeries], marks: &Marks, dur: u64) {
    let lines: Vec<Line<'_>> = probes
        .iter()
        .filter(|p| !p.metric)
        .enumerate()
        .map(|(i, p)| Line {
            name: p.name.clone(),
            color: PALETTE[i % PALETTE.len()],
            points: p
                .bins
                .iter()
                .filter_map(|b| b.max_latency_ms.map(|l| ((b.from_ms + b.to_ms) / 2, l)))
                .collect(),
        })
        .collect();
    if lines.iter().any(|l| !l.points.is_empty()) {
        line_chart(
            h,
            "probe-latency",
            "probe answer time (slowest per interval)",
            " ms",
            &lines,
            marks,
            dur,
        );
    }
}

fn load_charts(h: &mut String, loads: &[LoadSeries], marks: &Marks, dur: u64) {
    let color = |i: usize| PALETTE[i % PALETTE.len()];
    let rps: Vec<Line<'_>> = loads
        .iter()
        .enumerate()
        .map(|(i, l)| Line {
            name: l.name.clone(),
            color: color(i),
            points: l.points.iter().map(|p| (p.t_ms, p.rps)).collect(),
        })
        .collect();
    line_chart(
        h,
        "throughput",
        "throughput (completed requests per second)",
        "/s",
        &rps,
        marks,
        dur,
    );
    for l in loads {
        let pick = |f: fn(&series::LoadPoint) -> Option<f64>| -> Vec<(u64, f64)> {
            l.points
                .iter()
                .filter_map(|p| f(p).map(|v| (p.t_ms, v)))
                .collect()
        };
        let lines = [
            Line {
                name: "p50".into(),
                color: "#93c5fd",
                points: pick(|p| p.p50_ms),
            },
            Line {
                name: "p90".into(),
                color: "#3b82f6",
                points: pick(|p| p.p90_ms),
            },
            Line {
                name: "p99".into(),
                color: "#1e3a8a",
                points: pick(|p| p.p99_ms),
            },
        ];
        line_chart(
            h,
            "latency",
            &format!("{}: latency p50 / p90 / p99", l.name),
            " ms",
            &lines,
            marks,
            dur,
        );
    }
    let errors: Vec<Line<'_>> = loads
        .iter()
        .enumerate()
        .map(|(i, l)| Line {
            name: l.name.clone(),
            color: color(i),
            points: l
                .points
                .iter()
                .filter_map(|p| p.error_rate.map(|e| (p.t_ms, e * 100.0)))
                .collect(),
        })
        .collect();
    line_chart(
        h,
        "error-rate",
        "error rate (errors / completed)",
        "%",
        &errors,
        marks,
        dur,
    );
    // Errors by kind, per load: a line per kind that occurred (0 where it did not).
    for l in loads {
        let mut kinds: Vec<&str> = l
            .points
            .iter()
            .flat_map(|p| p.errors.iter().map(|e| e.0))
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        if kinds.is_empty() {
            continue;
        }
        let lines: Vec<Line<'_>> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| Line {
                name: (*kind).to_owned(),
                color: PALETTE[(i + 3) % PALETTE.len()],
                points: l
                    .points
                    .iter()
                    .map(|p| {
                        let v = p.errors.iter().find(|e| e.0 == *kind).map_or(0.0, |e| e.1);
                        (p.t_ms, v)
                    })
                    .collect(),
            })
            .collect();
        line_chart(
            h,
            "errors-by-kind",
            &format!("{}: errors by kind (per second)", l.name),
            "/s",
            &lines,
            marks,
            dur,
        );
    }
    if loads
        .iter()
        .any(|l| l.points.iter().any(|p| p.dropped > 0.0))
    {
        let dropped: Vec<Line<'_>> = loads
            .iter()
            .enumerate()
            .map(|(i, l)| Line {
                name: l.name.clone(),
                color: color(i),
                points: l.points.iter().map(|p| (p.t_ms, p.dropped)).collect(),
            })
            .collect();
        line_chart(
            h,
            "dropped",
            "dropped sends per second (in-flight cap reached)",
            "/s",
            &dropped,
            marks,
            dur,
        );
    }
}

fn conditions_table(h: &mut String, s: &Summary, plan: Option<&Plan>) {
    let _ = writeln!(
        h,
        r#"<section><h2>Hypothesis and guardrails</h2><table id="conditions"><tr><th>condition</th><th>role</th><th>result</th><th>samples</th><th>failing</th><th>margin</th><th>detail</th></tr>"#
    );
    if s.conditions.is_empty() {
        let _ = writeln!(
            h,
            r#"<tr><td colspan="7" class="note">no condition was judged</td></tr>"#
        );
    }
    for c in &s.conditions {
        let (class, word) = match (c.held, c.role) {
            (true, _) if c.failures > 0 => ("good", "held (within tolerance)"),
            (true, _) => ("good", "held"),
            (false, Role::Hypothesis) => ("bad", "deviated"),
            (false, Role::Guardrail) => ("bad", "tripped"),
        };
        let margin = match (c.worst_value, c.bound, c.max_latency_ms) {
            (Some(v), Some(b), _) => match plan.and_then(|p| {
                p.conditions
                    .iter()
                    .find(|d| d.name == c.name && d.kind == "metric" && !d.expect.is_empty())
            }) {
                // In the metric's unit, against the bound as the experiment wrote it.
                Some(d) => format!(
                    "worst {} ({} {})",
                    in_unit(&d.subject, v),
                    d.subject,
                    d.expect
                ),
                None => format!("worst {} vs bound {}", num(v), num(b)),
            },
            (_, _, Some(l)) => format!("slowest answer {} ms", num(l)),
            _ => String::new(),
        };
        let mut detail: Vec<String> = c.deviations.clone();
        detail.extend(c.failure_details.iter().take(3).cloned());
        let _ = writeln!(
            h,
            r#"<tr><td>{}</td><td>{}</td><td class="{class}">{word}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            escape(&c.name),
            c.role.label(),
            c.samples,
            c.failures,
            escape(&margin),
            detail
                .iter()
                .map(|d| escape(d))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    let _ = writeln!(h, "</table></section>");
}

fn faults_table(h: &mut String, s: &Summary, plan: Option<&Plan>) {
    // The plan's display name for people (`process.pause worker` for an unnamed
    // `timeline[0]`); the name the events carry otherwise.
    let display = |activity: &str| -> String {
        plan.and_then(|p| p.activities.iter().find(|a| a.name == activity))
            .map_or_else(|| activity.to_owned(), |a| a.display.clone())
    };
    let _ = writeln!(
        h,
        r#"<section><h2>Faults</h2><table id="faults"><tr><th>activity</th><th>kind</th><th>target</th><th>applied</th><th>rolled back</th><th>time to impact</th><th>time to recover</th></tr>"#
    );
    if s.faults.is_empty() {
        let _ = writeln!(
            h,
            r#"<tr><td colspan="7" class="note">no fault was applied</td></tr>"#
        );
    }
    for f in &s.faults {
        let back = match (f.rolled_back_ms, f.rollback_ok) {
            (Some(t), Some(true)) => format!(
                "{} by {}",
                secs(t),
                escape(f.rolled_back_by.as_deref().unwrap_or("?"))
            ),
            (Some(t), _) => format!(r#"<span class="bad">FAILED at {}</span>"#, secs(t)),
            (None, _) => r#"<span class="bad">not in the journal</span>"#.to_owned(),
        };
        let _ = writeln!(
            h,
            r#"<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{back}</td><td>{}</td><td>{}</td></tr>"#,
            escape(&display(&f.activity)),
            escape(&f.kind),
            escape(&f.target),
            secs(f.applied_ms),
            f.time_to_impact_ms
                .map(dur)
                .unwrap_or_else(|| "no impact seen".into()),
            f.time_to_recover_ms
                .map(dur)
                .unwrap_or_else(|| "not recovered in the journal".into()),
        );
    }
    let _ = writeln!(
        h,
        r#"</table><p class="note">time to impact: fault applied → first failing hypothesis sample while it was active. Time to recover: fault rolled back → every hypothesis probe answers ok again.</p></section>"#
    );
}

fn loads_table(h: &mut String, s: &Summary) {
    if s.loads.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        r#"<section><h2>Loads</h2><table id="loads"><tr><th>load</th><th>completed</th><th>rps</th><th>errors</th><th>error rate</th><th>dropped</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>outcomes</th></tr>"#
    );
    let row = |h: &mut String,
               name: &str,
               completed: u64,
               rps: Option<f64>,
               errors: u64,
               rate: Option<f64>,
               dropped: Option<u64>,
               p: Option<&crate::Percentiles>,
               outcomes: String| {
        let ms = |f: fn(&crate::Percentiles) -> f64| {
            p.map(|p| format!("{} ms", num(f(p)))).unwrap_or_default()
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{completed}</td><td>{}</td><td>{errors}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{outcomes}</td></tr>",
            escape(name),
            rps.map(num).unwrap_or_default(),
            rate.map(|r| format!("{}%", num(r * 100.0)))
                .unwrap_or_default(),
            dropped.map(|d| d.to_string()).unwrap_or_default(),
            ms(|p| p.p50),
            ms(|p| p.p90),
            ms(|p| p.p99),
            ms(|p| p.p999),
            ms(|p| p.max),
        );
    };
    for l in &s.loads {
        let outcomes = l
            .outcomes
            .iter()
            .map(|(k, n)| format!("{} {n}", escape(k)))
            .collect::<Vec<_>>()
            .join(", ");
        row(
            h,
            &l.name,
            l.completed,
            Some(l.rps),
            l.errors,
            l.error_rate,
            Some(l.dropped),
            l.latency_ms.as_ref(),
            outcomes,
        );
        for r in &l.requests {
            row(
                h,
                &format!("{} · {}", l.name, r.name),
                r.completed,
                None,
                r.errors,
                r.error_rate,
                None,
                r.latency_ms.as_ref(),
                String::new(),
            );
        }
    }
    let _ = writeln!(h, "</table></section>");
}

/// A metric's value (canonical units: seconds, fractions, per second) for people.
fn in_unit(metric: &str, v: f64) -> String {
    if metric.contains(".latency.") || metric.ends_with("write_gap") {
        if v < 1.0 {
            format!("{} ms", num(v * 1e3))
        } else {
            format!("{} s", num(v))
        }
    } else if metric.ends_with("error_rate") || metric.ends_with("rate_achieved") {
        format!("{}%", num(v * 100.0))
    } else if metric.ends_with(".rps") {
        format!("{}/s", num(v))
    } else {
        num(v)
    }
}

fn findings_table(h: &mut String, s: &Summary) {
    if s.findings.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        r#"<section><h2>Findings</h2><table id="findings"><tr><th>at</th><th>severity</th><th>campaign</th><th>rule</th><th>operation</th><th>what</th><th>faults active</th><th>reproducer</th></tr>"#
    );
    for f in &s.findings {
        let _ = writeln!(
            h,
            r#"<tr><td>{}</td><td class="sev-{sev}{}">{sev}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td><code class="repro">{}</code></td></tr>"#,
            secs(f.at_ms),
            if f.fails { " bad" } else { "" },
            escape(&f.campaign),
            escape(&f.rule),
            escape(&f.operation),
            escape(&f.title),
            if f.active_faults.is_empty() {
                "none".to_owned()
            } else {
                escape(&f.active_faults.join(", "))
            },
            escape(&f.reproducer),
            sev = escape(&f.severity),
        );
    }
    let failing = s.findings.iter().filter(|f| f.fails).count();
    let _ = writeln!(
        h,
        r#"</table><p class="note">{failing} of {} finding(s) at or above <code>settings.fail_on</code> (they fail the run).</p></section>"#,
        s.findings.len()
    );
}

fn writes_table(h: &mut String, s: &Summary) {
    if s.writes.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        r#"<section><h2>Writes read back after rollback</h2><table id="writes"><tr><th>load</th><th>acknowledged</th><th>lost</th><th>phantom</th><th>duplicated</th><th>unverified</th></tr>"#
    );
    for w in &s.writes {
        let n = |k: &str| w.counts.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            h,
            r#"<tr><td>{}</td><td>{}</td><td class="{}">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            escape(&w.load),
            n("acked"),
            if n("lost") > 0 { "bad" } else { "good" },
            n("lost"),
            n("phantom"),
            n("duplicated"),
            n("unverified"),
        );
    }
    let _ = writeln!(h, "</table></section>");
}

/// Each kill against each load that tracks writes: how long writes failed.
fn failover_table(h: &mut String, s: &Summary) {
    if s.failovers.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        r#"<section><h2>Failover</h2><table id="failover"><tr><th>fault</th><th>load</th><th>killed at</th><th>writes failed for</th><th>first acknowledged write after the kill</th><th>writes failed</th><th>acknowledged writes lost</th></tr>"#
    );
    let ms = |v: Option<u64>| v.map_or("never".to_owned(), crate::summary::dur);
    for f in &s.failovers {
        let down = match (f.interrupted, f.unavailable_ms) {
            (false, _) => "not interrupted".to_owned(),
            (true, Some(d)) => format!(
                "{}{}",
                crate::summary::dur(d),
                f.resolution_ms
                    .map(|r| format!(" ±{}", crate::summary::dur(r)))
                    .unwrap_or_default()
            ),
            (true, None) => "until the load ended".to_owned(),
        };
        let lost = f
            .writes_lost
            .map_or("not read back".to_owned(), |n| n.to_string());
        let _ = writeln!(
            h,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="{}">{}</td></tr>"#,
            escape(&f.fault),
            escape(&f.load),
            crate::summary::secs(f.killed_ms),
            escape(&down),
            escape(&ms(f.first_write_after_ms)),
            f.failed_writes,
            if f.writes_lost.unwrap_or(0) > 0 {
                "bad"
            } else {
                "good"
            },
            escape(&lost),
        );
    }
    let _ = writeln!(
        h,
        r#"</table><p class="note">Measured from each tracked write's outcome (sent, acknowledged or failed), so to the spacing of writes (±), not to the probe interval.</p></section>"#
    );
}

/// "See who notices": per fault, each detector and when it first noticed.
fn detectors_table(h: &mut String, s: &Summary) {
    if s.detectors.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        r#"<section><h2>Who noticed</h2><table id="detectors"><tr><th>fault</th><th>detector</th><th>kind</th><th>noticed after</th><th>what it saw</th></tr>"#
    );
    for f in &s.detectors {
        if f.nobody_noticed {
            let _ = writeln!(
                h,
                r#"<tr><td>{}</td><td colspan="4" class="bad">nobody noticed ({} detector{} watched)</td></tr>"#,
                escape(&f.fault),
                f.detectors.len(),
                if f.detectors.len() == 1 { "" } else { "s" }
            );
            continue;
        }
        for d in &f.detectors {
            let _ = writeln!(
                h,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                escape(&f.fault),
                escape(&d.name),
                escape(&d.kind),
                d.noticed_after_ms
                    .map_or("did not notice".to_owned(), crate::summary::dur),
                escape(&truncate(&d.how, 160)),
            );
        }
    }
    let _ = writeln!(
        h,
        r#"</table><p class="note">A detector noticed a fault when it failed (a probe: from the time the failing sample was sent) while the fault was active. Load errors are known to the second, failed tracked writes to the write.</p></section>"#
    );
}

/// The smallest 1/2/5 × 10^n at or above `v` (1 for nothing).
fn nice_ceiling(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

pub(crate) const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111827;margin:0 auto;max-width:1100px;padding:16px 24px;background:#fff}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.verdict-line{font-size:16px;margin:4px 0}.verdict{font-weight:700;padding:2px 10px;border-radius:4px;color:#fff;text-transform:uppercase;letter-spacing:.04em}
.verdict.held{background:#15803d}.verdict.deviated,.verdict.failed{background:#b45309}.verdict.invalid{background:#6b7280}.verdict.aborted,.verdict.rollback-incomplete{background:#b91c1c}.verdict.unknown{background:#6b7280}
.exit{color:#6b7280}.meta{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:8px 0;color:#374151}.meta dt{color:#6b7280}.meta dd{margin:0}
.banner{padding:8px 12px;border-radius:4px;margin:8px 0}.banner.warn{background:#fef3c7;border:1px solid #f59e0b}.banner.bad{background:#fee2e2;border:1px solid #dc2626}
figure.chart{margin:6px 0 10px}figcaption{font-weight:600;color:#374151;margin-bottom:2px}svg.chart{width:100%;height:auto;display:block}
rect.fault{fill:#f59e0b;opacity:.22;pointer-events:none}rect.trip{fill:#dc2626;opacity:.08;pointer-events:none}line.trip{stroke:#dc2626;stroke-width:2;stroke-dasharray:5 3}line.dev{stroke:#b45309;stroke-width:1.5;stroke-dasharray:2 3}
rect.fault-bar{fill:#f59e0b}rect.fault-bar.not-undone{fill:#dc2626}rect.phase{fill:#f3f4f6;stroke:#fff}rect.phase.during{fill:#e0e7ff}rect.phase.after{fill:#dcfce7}rect.phase.before{fill:#fef9c3}
.phase-label{font-size:10px;fill:#4b5563}rect.okc{fill:#22c55e}rect.failc{fill:#dc2626}
.label,.key{font-size:11px;fill:#374151}.key{font-weight:600}.tick{font-size:10px;fill:#6b7280}line.axis{stroke:#9ca3af}line.grid{stroke:#e5e7eb}
path.series{fill:none;stroke-width:1.6}
.legend{color:#4b5563;font-size:12px}.sw{display:inline-block;width:12px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
.sw.fault{background:#fcd34d}.sw.trip{background:#dc2626}.sw.dev{background:#b45309}.sw.okc{background:#22c55e}.sw.failc{background:#dc2626}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top}th{background:#f9fafb}
rect.finding{fill:#7c3aed}rect.finding.sev-critical{fill:#7f1d1d}rect.finding.sev-high{fill:#dc2626}rect.finding.sev-medium{fill:#f97316}rect.finding.sev-low{fill:#a3a3a3}
td.sev-critical,td.sev-high{color:#b91c1c;font-weight:600}code.repro{word-break:break-all}
.good{color:#15803d;font-weight:600}.bad{color:#b91c1c;font-weight:600}.note{color:#6b7280;font-size:12px}
pre{background:#f9fafb;border:1px solid #e5e7eb;padding:10px;overflow:auto;font-size:12px;max-height:600px}code{font-size:12px}
footer{margin:24px 0 8px;color:#9ca3af;font-size:12px}
"#;
