//! `livefire run --dry-run`: the plan for people. Display names, kinds, targets, start
//! and stop offsets, the conditions and the settings that matter; no wall-clock times,
//! no paths, and no seed unless the file fixed it, so the same file prints the same text.
//! A value from `${env:NAME}` shows as that, on every line, as everywhere the run writes.

use std::fmt::Write;

use livefire_core::events::Role;
use livefire_spec::values::Duration as Written;

use super::{Body, Check, Plan};

/// The plan as text, its secrets masked.
pub fn render(plan: &Plan) -> String {
    super::Secret::mask_all(&plan.secrets, unmasked(plan))
}

/// The plan as text, with whatever values the environment gave.
fn unmasked(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "plan: {}", plan.title);
    if let Some(env) = &plan.environment {
        let production = if env.production { " (production)" } else { "" };
        let _ = writeln!(out, "environment: {}{production}", env.name);
    }
    // Columns as wide as their widest cell (at least as wide as they always were), so a
    // long name pushes the next columns out instead of out of line.
    let width = |min: usize, cells: &mut dyn Iterator<Item = &str>| {
        cells.map(|c| c.chars().count()).fold(min, usize::max)
    };
    let setup = width(20, &mut plan.setup.iter().map(|s| s.name.as_str()));
    for s in &plan.setup {
        let _ = writeln!(out, "setup   {:<setup$} {}", s.name, s.command);
    }
    let mut rows: Vec<(usize, &super::Activity)> = plan.activities.iter().enumerate().collect();
    rows.sort_by_key(|(i, a)| (a.start, *i));
    let rows: Vec<[String; 5]> = rows
        .into_iter()
        .map(|(_, a)| {
            let target = match &a.body {
                Body::Fault(_) => match a.noticed_within {
                    Some(d) => format!("{} (must be noticed within {})", a.target, Written(d)),
                    None => a.target.clone(),
                },
                Body::Load(c) => format!("{} ({})", a.target, load_shape(c)),
                Body::Fuzz { config, .. } => format!("{} ({})", a.target, config.base_url),
            };
            [
                Written(a.start).to_string(),
                Written(a.start + a.duration).to_string(),
                a.name.clone(),
                a.kind.to_string(),
                target,
            ]
        })
        .collect();
    let start = width(8, &mut rows.iter().map(|r| r[0].as_str()));
    let stop = width(8, &mut rows.iter().map(|r| r[1].as_str()));
    let name = width(28, &mut rows.iter().map(|r| r[2].as_str()));
    let kind = width(18, &mut rows.iter().map(|r| r[3].as_str()));
    let _ = writeln!(
        out,
        "{:>start$} {:>stop$}  {:<name$} {:<kind$} target",
        "start", "stop", "activity", "kind"
    );
    for [a, b, n, k, t] in &rows {
        let _ = writeln!(out, "{a:>start$} {b:>stop$}  {n:<name$} {k:<kind$} {t}");
    }
    conditions(&mut out, plan);
    watches(&mut out, plan);
    settings(&mut out, plan);
    out
}

/// The team's own alert checks, one line each.
fn watches(out: &mut String, plan: &Plan) {
    for w in &plan.watches {
        let fires = match &w.fires_on_stdout {
            Some(text) => format!("its output contains {text:?}"),
            None => "it exits non-zero".to_owned(),
        };
        let _ = writeln!(
            out,
            "watch   {}: `{}` every {}, fires when {fires}",
            w.name,
            w.command,
            Written(w.every)
        );
    }
}

/// `200/s`, `50 VUs`, `stages`.
fn load_shape(c: &livefire_load::LoadConfig) -> String {
    match &c.executor {
        livefire_load::Executor::Rate { rate, stages } if *rate > 0.0 || stages.is_empty() => {
            format!("{rate}/s")
        }
        livefire_load::Executor::Rate { .. } => "stages".into(),
        livefire_load::Executor::Vus { vus, .. } => format!("{vus} VUs"),
    }
}

fn conditions(out: &mut String, plan: &Plan) {
    let count = |role| plan.conditions.iter().filter(|c| c.role == role).count();
    let _ = writeln!(
        out,
        "hypothesis: {} condition(s) checked before, during and after; guardrails: {}",
        count(Role::Hypothesis),
        count(Role::Guardrail)
    );
    for c in &plan.conditions {
        let what = match &c.check {
            Check::Probe { probe, .. } => format!("{} probe", probe.kind()),
            Check::Metric {
                metric,
                comparison,
                bound,
                ..
            } => format!("{metric} {} {bound}", comparison.name()),
        };
        let role = match c.role {
            Role::Hypothesis => "  -",
            Role::Guardrail => "  ! guardrail",
        };
        let _ = writeln!(out, "{role} {}: {what}", c.name);
    }
}

fn settings(out: &mut String, plan: &Plan) {
    let s = &plan.settings;
    let _ = writeln!(out, "max duration: {}", Written(s.max_duration));
    let _ = writeln!(
        out,
        "settle: {}; probes every {}; findings fail at: {}",
        Written(s.settle),
        Written(s.probe_every),
        serde_json::to_value(s.fail_on)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    );
    if !s.seed_drawn {
        let _ = writeln!(out, "seed: {}", s.seed);
    }
    let _ = writeln!(
        out,
        "rollback: every applied fault, newest first, then {} rollback step(s)",
        plan.rollbacks.len()
    );
}
