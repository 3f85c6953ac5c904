//! The journal's `plan` event, emitted right after `run_started`: the experiment as it
//! runs, its conditions and activities named as the other events name them, so that a
//! report is a function of the journal alone (it never reads the run folder's files);
//! and the run's line in the home's index of runs.

use livefire_core::events::{Event, PlannedActivity, PlannedCondition, Role};
use livefire_spec::{Condition, Probe};

use crate::plan::{Body, Plan};

/// The `plan` event of a plan (variables and `${env:...}` filled in; the journal masks
/// secrets when it writes the event).
pub fn plan_event(plan: &Plan) -> Event {
    let exp = &plan.experiment;
    let mut conditions = Vec::new();
    for (list, role, key) in [
        (&exp.hypothesis, Role::Hypothesis, "hypothesis"),
        (&exp.guardrails, Role::Guardrail, "guardrails"),
    ] {
        for (i, c) in list.iter().enumerate() {
            conditions.push(condition(c, role, key, i));
        }
    }
    Event::Plan {
        experiment: serde_json::to_value(exp).unwrap_or_default(),
        conditions,
        activities: plan.activities.iter().map(activity).collect(),
        environment: plan.environment.as_ref().map(|e| e.name.clone()),
        production: plan.environment.as_ref().is_some_and(|e| e.production),
    }
}

/// A condition under the name the referee's events carry: its `name:`, else
/// `hypothesis[i]` / `guardrails[i]`.
fn condition(c: &Condition, role: Role, key: &str, i: usize) -> PlannedCondition {
    let name = c.name.clone().unwrap_or_else(|| format!("{key}[{i}]"));
    // The bound or the expectation as written (`below: 5s`), from the condition's own
    // serialisation, so every written form reads back the same.
    let written = serde_json::to_value(c).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    match (&c.probe, &c.metric) {
        (Some(p), _) => {
            let subject = match p {
                Probe::Http(h) => h.url.clone(),
                Probe::Tcp(t) => t.address.clone(),
                Probe::Command(c) => c.run.clone(),
                Probe::Sql(s) => s.query.clone(),
            };
            let expect = written
                .get("expect")
                .and_then(|e| e.as_object())
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| format!("{k} {}", text(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            PlannedCondition {
                name,
                role,
                kind: format!("{} probe", p.kind()),
                subject,
                expect,
            }
        }
        (None, metric) => {
            let expect = ["below", "above", "at_most", "at_least", "equals"]
                .iter()
                .find_map(|k| {
                    let v = written.get(*k)?;
                    Some(format!("{} {}", k.replace('_', " "), text(v)))
                })
                .unwrap_or_default();
            PlannedCondition {
                name,
                role,
                kind: "metric".into(),
                subject: metric.clone().unwrap_or_default(),
                expect,
            }
        }
    }
}

/// Adds the run to the home's index of runs (`livefire runs` lists it wherever its
/// folder is); a failure is a warning in the journal, the run goes on.
pub fn index_run(
    journal: &crate::journal::Journal,
    run_id: &str,
    run_dir: &std::path::Path,
    title: &str,
) {
    let home = crate::home::home();
    if let Err(e) = livefire_report::index::append(
        &home,
        run_id,
        run_dir,
        title,
        livefire_report::index::RunKind::Run,
    ) {
        journal.emit(Event::Warning {
            message: format!(
                "cannot add this run to {}: {e}: `livefire runs` lists it only with `--out {}`",
                home.join(livefire_report::index::INDEX_FILE).display(),
                run_dir.parent().unwrap_or(run_dir).display()
            ),
        });
    }
}

/// An activity: `timeline[i]` for machines, the name the other events carry (a
/// fault's display name; a load's or campaign's metric prefix, which names its series),
/// and its display name for people.
fn activity(a: &crate::plan::Activity) -> PlannedActivity {
    let (name, target) = match &a.body {
        Body::Fault(_) => (a.name.clone(), a.target.clone()),
        Body::Load(config) => (config.name.clone(), config.name.clone()),
        Body::Fuzz {
            metrics, openapi, ..
        } => (metrics.clone(), openapi.clone()),
    };
    PlannedActivity {
        id: a.id.clone(),
        name,
        display: a.name.clone(),
        kind: a.kind.to_owned(),
        target,
        at_ms: a.start.as_millis() as u64,
        for_ms: a.duration.as_millis() as u64,
    }
}
