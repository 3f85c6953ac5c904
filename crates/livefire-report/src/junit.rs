//! `junit.xml`: each hypothesis condition and guardrail is a test case (failures carry
//! the detail), plus one for the rollback and one for the run itself, so CI systems that
//! read JUnit show a drill like a test suite.

use std::fmt::Write as _;

use livefire_core::events::Role;

use crate::escape;
use crate::journal::Plan;
use crate::summary::{ConditionSummary, Summary, secs, verdict_word};

/// One test case.
struct Case {
    classname: &'static str,
    name: String,
    outcome: CaseOutcome,
    out: String,
}

enum CaseOutcome {
    Passed,
    Failed { message: String, detail: String },
    Error { message: String, detail: String },
    Skipped { message: String },
}

/// Renders `junit.xml`. `plan` (the journal's `plan` event) names conditions that were
/// declared but never judged; they become skipped test cases.
pub fn render(summary: &Summary, plan: Option<&Plan>) -> String {
    let mut cases: Vec<Case> = Vec::new();
    for c in &summary.conditions {
        cases.push(condition_case(c));
    }
    for (role, name) in plan
        .iter()
        .flat_map(|p| &p.conditions)
        .map(|c| (c.role, c.name.clone()))
    {
        if summary.conditions.iter().any(|c| c.name == name) {
            continue;
        }
        cases.push(Case {
            classname: classname(role),
            name,
            outcome: CaseOutcome::Skipped {
                message: "never judged: no sample was taken (the run ended first, or the metric had no data)".into(),
            },
            out: String::new(),
        });
    }
    // A case per campaign and rule: failing when a finding fails the run.
    let mut rules: Vec<(&str, &str)> = summary
        .findings
        .iter()
        .map(|f| (f.campaign.as_str(), f.rule.as_str()))
        .collect();
    rules.sort_unstable();
    rules.dedup();
    for (campaign, rule) in rules {
        let found: Vec<&crate::FindingSummary> = summary
            .findings
            .iter()
            .filter(|f| f.campaign == campaign && f.rule == rule)
            .collect();
        let lines: Vec<String> = found
            .iter()
            .map(|f| {
                format!(
                    "{} at {}: {}: {} (faults active: {})\n  {}",
                    f.severity,
                    secs(f.at_ms),
                    f.operation,
                    f.title,
                    if f.active_faults.is_empty() {
                        "none".to_owned()
                    } else {
                        f.active_faults.join(", ")
                    },
                    f.reproducer
                )
            })
            .collect();
        let failing = found.iter().filter(|f| f.fails).count();
        cases.push(Case {
            classname: "livefire.finding",
            name: format!("{campaign}: {rule}"),
            outcome: if failing > 0 {
                CaseOutcome::Failed {
                    message: format!("{failing} finding(s) at or above settings.fail_on"),
                    detail: lines.join("\n"),
                }
            } else {
                CaseOutcome::Passed
            },
            out: if failing > 0 {
                String::new()
            } else {
                lines.join("\n")
            },
        });
    }
    for w in &summary.writes {
        let n = |k: &str| w.counts.get(k).copied().unwrap_or(0);
        let counts = w
            .counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        cases.push(Case {
            classname: "livefire.writes",
            name: format!("{}: no acknowledged write lost", w.load),
            outcome: if n("lost") > 0 {
                CaseOutcome::Failed {
                    message: format!("{} acknowledged write(s) lost", n("lost")),
                    detail: counts.clone(),
                }
            } else {
                CaseOutcome::Passed
            },
            out: counts,
        });
    }
    let failed_rollbacks: Vec<String> = summary
        .faults
        .iter()
        .filter(|f| f.rollback_ok == Some(false) || f.rolled_back_ms.is_none())
        .map(|f| {
            format!(
                "`{}` ({} on {}): {}",
                f.activity,
                f.kind,
                f.target,
                if f.rolled_back_ms.is_none() {
                    "no rollback in the journal"
                } else {
                    "rollback failed"
                }
            )
        })
        .chain(
            summary
                .rollback_steps
                .iter()
                .filter(|s| !s.ok)
                .map(|s| format!("rollback step `{}` failed: {}", s.step, s.detail)),
        )
        .collect();
    cases.push(Case {
        classname: "livefire.run",
        name: "every fault rolled back".into(),
        outcome: if summary.ledger_left > 0 || !failed_rollbacks.is_empty() {
            CaseOutcome::Failed {
                message: format!(
                    "{} undo record(s) left in the ledger: run `livefire recover`",
                    summary.ledger_left
                ),
                detail: failed_rollbacks.join("\n"),
            }
        } else {
            CaseOutcome::Passed
        },
        out: summary
            .faults
            .iter()
            .map(|f| {
                format!(
                    "{}: applied at {}, rolled back at {}",
                    f.activity,
                    secs(f.applied_ms),
                    f.rolled_back_ms.map(secs).unwrap_or_else(|| "-".into())
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
    });
    let run_outcome = if let Some(stopped) = &summary.journal_stopped {
        CaseOutcome::Error {
            message: "the journal is incomplete".into(),
            detail: stopped.clone(),
        }
    } else if summary.verdict.is_none() {
        CaseOutcome::Error {
            message: "the journal ends before the run did".into(),
            detail: String::new(),
        }
    } else if let Some(reason) = &summary.abort_reason {
        CaseOutcome::Error {
            message: format!("aborted: {reason}"),
            detail: String::new(),
        }
    } else {
        CaseOutcome::Passed
    };
    cases.push(Case {
        classname: "livefire.run",
        name: "run completed".into(),
        outcome: run_outcome,
        out: format!("verdict: {}", verdict_word(summary.verdict)),
    });

    let count = |f: fn(&CaseOutcome) -> bool| cases.iter().filter(|c| f(&c.outcome)).count();
    let failures = count(|o| matches!(o, CaseOutcome::Failed { .. }));
    let errors = count(|o| matches!(o, CaseOutcome::Error { .. }));
    let skipped = count(|o| matches!(o, CaseOutcome::Skipped { .. }));
    let time = summary.duration_ms as f64 / 1e3;
    let mut x = String::new();
    let _ = writeln!(x, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        x,
        r#"<testsuites name="livefire" tests="{}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{time:.3}">"#,
        cases.len()
    );
    let _ = writeln!(
        x,
        r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="{errors}" skipped="{skipped}" time="{time:.3}" timestamp="{}">"#,
        escape(&summary.title),
        cases.len(),
        escape(summary.wall_start.trim_end_matches('Z')),
    );
    let _ = writeln!(x, "    <properties>");
    for (k, v) in [
        ("run_id", summary.run_id.clone()),
        ("verdict", verdict_word(summary.verdict).to_owned()),
        (
            "exit_code",
            summary.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        ),
        ("seed", summary.seed.to_string()),
        ("livefire", summary.livefire.clone()),
    ] {
        let _ = writeln!(x, r#"      <property name="{k}" value="{}"/>"#, escape(&v));
    }
    let _ = writeln!(x, "    </properties>");
    for c in &cases {
        let _ = write!(
            x,
            r#"    <testcase classname="{}" name="{}""#,
            c.classname,
            escape(&c.name)
        );
        let _ = writeln!(x, ">");
        match &c.outcome {
            CaseOutcome::Passed => {}
            CaseOutcome::Failed { message, detail } => {
                let _ = writeln!(
                    x,
                    r#"      <failure message="{}" type="deviation">{}</failure>"#,
                    escape(message),
                    escape(detail)
                );
            }
            CaseOutcome::Error { message, detail } => {
                let _ = writeln!(
                    x,
                    r#"      <error message="{}" type="incomplete">{}</error>"#,
                    escape(message),
                    escape(detail)
                );
            }
            CaseOutcome::Skipped { message } => {
                let _ = writeln!(x, r#"      <skipped message="{}"/>"#, escape(message));
            }
        }
        if !c.out.is_empty() {
            let _ = writeln!(x, "      <system-out>{}</system-out>", escape(&c.out));
        }
        let _ = writeln!(x, "    </testcase>");
    }
    let _ = writeln!(x, "  </testsuite>");
    let _ = writeln!(x, "</testsuites>");
    x
}

fn classname(role: Role) -> &'static str {
    match role {
        Role::Hypothesis => "livefire.hypothesis",
        Role::Guardrail => "livefire.guardrail",
    }
}

fn condition_case(c: &ConditionSummary) -> Case {
    let mut out = format!("{} sample(s), {} failing", c.samples, c.failures);
    if let (Some(v), Some(b)) = (c.worst_value, c.bound) {
        let _ = write!(
            out,
            "; worst value {} against bound {}",
            crate::summary::num(v),
            crate::summary::num(b)
        );
    }
    if let Some(ms) = c.max_latency_ms {
        let _ = write!(out, "; slowest answer {} ms", crate::summary::num(ms));
    }
    if c.held && c.failures > 0 {
        out.push_str(" (within tolerance)");
    }
    for d in &c.failure_details {
        let _ = write!(out, "\n{d}");
    }
    let outcome = if c.held {
        CaseOutcome::Passed
    } else {
        let message = match c.role {
            Role::Hypothesis => format!("`{}` did not hold", c.name),
            Role::Guardrail => format!("guardrail `{}` tripped and aborted the run", c.name),
        };
        let mut detail = c.deviations.join("\n");
        if !c.failure_details.is_empty() {
            detail.push_str("\nfailing samples:\n");
            detail.push_str(&c.failure_details.join("\n"));
        }
        CaseOutcome::Failed { message, detail }
    };
    Case {
        classname: classname(c.role),
        name: c.name.clone(),
        outcome,
        out,
    }
}
