//! The plan: what a run will do and when, checked against what this build can run.
//! `--dry-run` prints it; nothing here changes the world.

use std::fmt::Write;

use livefire_spec::{Experiment, Probe};

/// The default cap on a run: timeline end + 5 minutes.
pub fn max_duration(exp: &Experiment) -> std::time::Duration {
    exp.settings
        .max_duration
        .map(|d| d.0)
        .unwrap_or_else(|| timeline_end(exp) + std::time::Duration::from_secs(300))
}

pub fn timeline_end(exp: &Experiment) -> std::time::Duration {
    exp.timeline
        .iter()
        .map(|a| a.at.0 + a.for_.0)
        .max()
        .unwrap_or_default()
}

/// The activity's name: its `name`, else `timeline[i]`.
pub fn activity_name(exp: &Experiment, i: usize) -> String {
    exp.timeline[i]
        .name
        .clone()
        .unwrap_or_else(|| format!("timeline[{i}]"))
}

/// What this build can run, for validation to refuse the rest where it is written.
pub fn built() -> livefire_spec::Built {
    livefire_spec::Built {
        faults: livefire_faults::BUILT,
        probes: crate::probe::BUILT,
        https_probes: false,
        scenario: false,
    }
}

/// What the file asks for that this build cannot run yet. `run` refuses with exit 3.
pub fn not_built(exp: &Experiment) -> Vec<String> {
    let mut missing = Vec::new();
    for (i, a) in exp.timeline.iter().enumerate() {
        let name = activity_name(exp, i);
        if let Some(f) = &a.fault
            && !livefire_faults::is_built(f)
        {
            missing.push(format!("fault `{}` (activity `{name}`)", f.kind()));
        }
    }
    for c in exp.hypothesis.iter().chain(&exp.guardrails) {
        if let Some(p) = &c.probe {
            if !crate::probe::BUILT.contains(&p.kind()) {
                missing.push(format!("`{}` probes", p.kind()));
            }
            if let Probe::Http(h) = p
                && h.url.starts_with("https://")
            {
                missing.push(format!("https probes ({})", h.url));
            }
        }
    }
    if exp.scenario.is_some() {
        missing.push("`scenario` (game days)".into());
    }
    missing.sort();
    missing.dedup();
    missing
}

/// The plan as a timeline table: when each activity starts and stops, what it targets.
/// No times or paths that change between runs.
pub fn render(exp: &Experiment) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "plan: {}", exp.title);
    for s in &exp.setup {
        let _ = writeln!(out, "setup   {:<20} {}", s.name, s.command);
    }
    let _ = writeln!(
        out,
        "{:>8} {:>8}  {:<24} {:<18} target",
        "start", "stop", "activity", "kind"
    );
    let mut rows: Vec<(usize, &livefire_spec::Activity)> =
        exp.timeline.iter().enumerate().collect();
    rows.sort_by_key(|(i, a)| (a.at, *i));
    for (i, a) in rows {
        let (kind, target) = if let Some(f) = &a.fault {
            (
                f.kind().to_string(),
                f.target()
                    .map(|(t, _)| t.to_string())
                    .unwrap_or_else(|| "(commands)".into()),
            )
        } else if let Some(l) = &a.load {
            let what = l
                .rate
                .map(|r| r.to_string())
                .or(l.vus.map(|v| format!("{v} VUs")))
                .unwrap_or_else(|| "stages".into());
            ("load".to_string(), what)
        } else if let Some(f) = &a.fuzz {
            ("fuzz".to_string(), f.openapi.clone())
        } else {
            ("?".into(), String::new())
        };
        let _ = writeln!(
            out,
            "{:>8} {:>8}  {:<24} {:<18} {}",
            a.at.to_string(),
            livefire_spec::values::Duration(a.at.0 + a.for_.0).to_string(),
            activity_name(exp, i),
            kind,
            target
        );
    }
    let _ = writeln!(
        out,
        "hypothesis: {} condition(s) checked before, during and after; guardrails: {}",
        exp.hypothesis.len(),
        exp.guardrails.len()
    );
    for c in &exp.hypothesis {
        let _ = writeln!(out, "  - {}", c.name.as_deref().unwrap_or("?"));
    }
    let _ = writeln!(
        out,
        "max duration: {}",
        livefire_spec::values::Duration(max_duration(exp))
    );
    let _ = writeln!(
        out,
        "rollback: every applied fault, newest first, then {} rollback step(s)",
        exp.rollbacks.len()
    );
    out
}
