//! Journal -> [`Summary`], a pure function: the verdict, each condition with its result,
//! each fault with its time to impact and time to recover, each load's totals with
//! exact percentiles (from merged histograms), and what the journal could not tell.

use std::collections::BTreeMap;

use livefire_core::events::{AbortCause, Event, Phase, Role, Verdict};
use livefire_core::window::{Outcome, Window};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::journal::Journal;
use crate::schema;

/// What `summary.json` holds. Its JSON Schema is `schema/summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub run_id: String,
    pub title: String,
    /// Wall-clock start, RFC 3339 UTC.
    pub wall_start: String,
    pub seed: u64,
    /// The livefire version that ran the experiment.
    #[serde(default)]
    pub livefire: String,
    /// Planned end of the timeline, in milliseconds.
    #[serde(default)]
    pub planned_ms: u64,
    /// The environment the run was planned for (`--env NAME`), if any.
    #[serde(default)]
    pub environment: Option<String>,
    /// Whether that environment is marked `production: true`.
    #[serde(default)]
    pub production: bool,
    /// `None` when the journal ends before the run did.
    #[schemars(with = "Option<schema::Verdict>")]
    pub verdict: Option<Verdict>,
    pub exit_code: Option<i32>,
    /// Time of the last event, in milliseconds since the start.
    pub duration_ms: u64,
    #[schemars(with = "Option<schema::AbortCause>")]
    pub aborted: Option<AbortCause>,
    /// Why the run was aborted, in words.
    #[serde(default)]
    pub abort_reason: Option<String>,
    /// Why the verdict is not "held", one line per cause in the experiment's own words
    /// (empty when it held): the deviations, the failing findings, the abort, the setup
    /// error, the rollbacks that failed.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Every hypothesis condition and guardrail that was judged, in order of first sample.
    pub conditions: Vec<ConditionSummary>,
    /// Every fault applied, in order.
    pub faults: Vec<FaultSummary>,
    /// Every load that journaled metric windows.
    #[serde(default)]
    pub loads: Vec<LoadSummary>,
    /// Every finding of the fuzz campaigns, in order.
    #[serde(default)]
    pub findings: Vec<FindingSummary>,
    /// Tracked writes read back after rollback, per load (data-loss counts).
    #[serde(default)]
    pub writes: Vec<WritesSummary>,
    /// Each `process.kill` / `process.restart` against each load that tracks writes: how
    /// long writes failed, the first acknowledged write after the kill, writes lost.
    #[serde(default)]
    pub failovers: Vec<crate::failover::FailoverSummary>,
    /// A split run's segments (`--segments N`): state, when and why one was lost, each
    /// one's requests and errors, its clock offset. Empty for a run on one machine.
    #[serde(default)]
    pub segments: Vec<crate::segments::SegmentSummary>,
    /// "See who notices": for each fault, every detector (hypothesis conditions,
    /// guardrails, loads' errors, fuzz findings) and how long after the fault's start it
    /// first noticed, if it did.
    #[serde(default)]
    pub detectors: Vec<crate::detectors::FaultDetectors>,
    /// A game day's curveballs (a `scenario:`): time to detect, mitigate and recover
    /// each, and the responders' marks. `None` for other runs.
    #[serde(default)]
    pub gameday: Option<crate::gameday::GameDaySummary>,
    /// The `rollbacks:` steps run after the faults were undone.
    #[serde(default)]
    pub rollback_steps: Vec<StepSummary>,
    /// Milliseconds from the start of the after phase until the hypothesis held again.
    pub settled_after_ms: Option<u64>,
    /// Undo records left in the ledger: run `livefire recover`.
    pub ledger_left: usize,
    /// Undo records a person dropped from the ledger by hand after fixing what they
    /// would undo (`livefire recover --forget`), with who and why.
    #[serde(default)]
    pub forgotten: Vec<ForgottenSummary>,
    pub warnings: Vec<String>,
    /// Where the journal stopped early, if it did.
    pub journal_stopped: Option<String>,
    /// Events of types this livefire does not know (skipped), by type.
    #[serde(default)]
    pub unknown_events: BTreeMap<String, u64>,
}

/// One hypothesis condition or guardrail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConditionSummary {
    pub name: String,
    #[schemars(with = "schema::Role")]
    pub role: Role,
    /// `probe` or `metric`.
    #[serde(default)]
    pub kind: String,
    pub samples: u64,
    pub failures: u64,
    /// Whether it held: for the hypothesis no deviation, for a guardrail no trip.
    pub held: bool,
    /// Each deviation (or trip), with its phase and detail.
    pub deviations: Vec<String>,
    /// When the first failing sample was sent, in milliseconds since the start.
    #[serde(default)]
    pub first_failure_ms: Option<u64>,
    /// The first few failing samples at their send time, `at 3.65s: no answer within
    /// 500ms`.
    #[serde(default)]
    pub failure_details: Vec<String>,
    /// Metric conditions: the bound, in the metric's unit (seconds, fractions, per second).
    #[serde(default)]
    pub bound: Option<f64>,
    /// Metric conditions: the value furthest on the wrong side of the bound (or closest
    /// to it when every sample held).
    #[serde(default)]
    pub worst_value: Option<f64>,
    /// Probe conditions: the slowest probe answer, in milliseconds.
    #[serde(default)]
    pub max_latency_ms: Option<f64>,
}

/// One fault: when it was applied and rolled back, what it did to the hypothesis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FaultSummary {
    pub activity: String,
    pub kind: String,
    pub target: String,
    pub applied_ms: u64,
    /// When its apply began, when the journal says: a detector that noticed while the
    /// fault was being applied noticed it after 0 ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applying_ms: Option<u64>,
    pub rolled_back_ms: Option<u64>,
    pub rollback_ok: Option<bool>,
    pub rolled_back_by: Option<String>,
    /// Fault applied -> the first signal that it changed something while it was
    /// active: a failing hypothesis sample, or a load's latency, errors or throughput
    /// moving away from the seconds before the fault. A signal while it was being
    /// applied (after `applying_ms`) is an impact after 0 ms.
    #[serde(default)]
    pub time_to_impact_ms: Option<u64>,
    /// Which signal showed the impact, in words (`hypothesis `health answers` failed`,
    /// `load `browse`: p99 2 ms -> 220 ms`).
    #[serde(default)]
    pub impact_signal: Option<String>,
    /// Fault rolled back -> every hypothesis probe answers ok again.
    pub time_to_recover_ms: Option<u64>,
}

/// A load's totals over the run, from its merged windows (percentiles are exact to the
/// histogram's 3 significant digits, never averaged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadSummary {
    pub name: String,
    /// Seconds that have a window.
    pub seconds: u64,
    /// Sends the schedule asked for.
    pub intended: u64,
    /// Sends that started.
    pub sent: u64,
    /// Requests that reached an end at the target (every outcome but `dropped`).
    pub completed: u64,
    pub ok: u64,
    pub errors: u64,
    pub dropped: u64,
    /// errors / completed.
    pub error_rate: Option<f64>,
    /// Completed requests per second with a window.
    pub rps: f64,
    /// Counts by outcome (`ok`, `http_5xx`, `timeout`, ...), zeros left out.
    pub outcomes: BTreeMap<String, u64>,
    pub latency_ms: Option<Percentiles>,
    /// The same per request name.
    pub requests: Vec<RequestSummary>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// One request name of a load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestSummary {
    pub name: String,
    pub completed: u64,
    pub errors: u64,
    pub error_rate: Option<f64>,
    pub latency_ms: Option<Percentiles>,
}

/// One finding of a fuzz campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FindingSummary {
    pub campaign: String,
    /// `critical`, `high`, `medium`, `low`.
    pub severity: String,
    /// Whether it fails the verdict (at or above `settings.fail_on`).
    pub fails: bool,
    /// When it was journaled, in milliseconds since the start.
    pub at_ms: u64,
    /// The rule that found it (`server_error`, `auth_enforced`, ...).
    pub rule: String,
    /// `GET /items/{itemId}`.
    pub operation: String,
    /// One line for humans.
    pub title: String,
    /// A shell command that sends the same request.
    pub reproducer: String,
    /// The faults active when it appeared.
    pub active_faults: Vec<String>,
}

/// A load's tracked writes, read back after rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WritesSummary {
    pub load: String,
    /// `acked`, `lost`, `phantom`, `duplicated`, `unverified`.
    pub counts: BTreeMap<String, u64>,
}

/// One `rollbacks:` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepSummary {
    pub step: String,
    pub ok: bool,
    pub detail: String,
}

/// An undo record dropped from the ledger by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ForgottenSummary {
    /// The ledger entry (`<run-id>:<n>`).
    pub entry: String,
    pub activity: String,
    pub kind: String,
    /// The undo it would have run.
    pub undo: String,
    pub user: String,
    pub reason: String,
    /// Wall clock, RFC 3339 UTC.
    pub at: String,
}

/// How many failing samples a condition keeps in words.
const FAILURE_DETAILS: usize = 5;

/// When a fault's apply began, from when it returned (`applied_ms`) and, when the
/// journal says, when it began (`applying_ms`): what time to impact, the load-impact
/// spans and the detectors all count from.
pub(crate) fn apply_began(applied_ms: u64, applying_ms: Option<u64>) -> u64 {
    applying_ms.map_or(applied_ms, |a| a.min(applied_ms))
}

/// Journal -> summary. Pure.
pub fn summarize(journal: &Journal) -> Summary {
    let mut s = Summary {
        run_id: String::new(),
        title: String::new(),
        wall_start: String::new(),
        seed: 0,
        livefire: String::new(),
        planned_ms: 0,
        environment: None,
        production: false,
        verdict: None,
        exit_code: None,
        duration_ms: 0,
        aborted: None,
        abort_reason: None,
        reasons: Vec::new(),
        conditions: Vec::new(),
        faults: Vec::new(),
        loads: Vec::new(),
        findings: Vec::new(),
        writes: Vec::new(),
        failovers: Vec::new(),
        segments: Vec::new(),
        detectors: Vec::new(),
        gameday: None,
        rollback_steps: Vec::new(),
        settled_after_ms: None,
        ledger_left: 0,
        forgotten: Vec::new(),
        warnings: Vec::new(),
        journal_stopped: journal.stopped.clone(),
        unknown_events: journal.unknown.clone(),
    };
    let mut conditions: Vec<ConditionSummary> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    fn cond_at(
        conditions: &mut Vec<ConditionSummary>,
        index: &mut BTreeMap<String, usize>,
        name: &str,
        role: Role,
        kind: &str,
    ) -> usize {
        *index.entry(name.to_owned()).or_insert_with(|| {
            conditions.push(ConditionSummary {
                name: name.to_owned(),
                role,
                kind: kind.to_owned(),
                samples: 0,
                failures: 0,
                held: true,
                deviations: Vec::new(),
                first_failure_ms: None,
                failure_details: Vec::new(),
                bound: None,
                worst_value: None,
                max_latency_ms: None,
            });
            conditions.len() - 1
        })
    }
    let mut cond = |conditions: &mut Vec<ConditionSummary>, name: &str, role: Role, kind: &str| {
        cond_at(conditions, &mut index, name, role, kind)
    };
    let mut settled_at: Option<u64> = None;
    // Hypothesis samples in order of their journal time.
    let mut samples: Vec<Sample> = Vec::new();
    for r in &journal.records {
        s.duration_ms = s.duration_ms.max(r.t);
        match &r.event {
            Event::RunStarted {
                run_id,
                title,
                wall_start,
                seed,
                livefire,
                planned_ms,
                ..
            } => {
                s.run_id = run_id.clone();
                s.title = title.clone();
                s.wall_start = wall_start.clone();
                s.seed = *seed;
                s.livefire = livefire.clone();
                s.planned_ms = *planned_ms;
            }
            Event::Probe {
                condition,
                role,
                ok,
                detail,
                latency_ms,
                ..
            } => {
                let i = cond(&mut conditions, condition, *role, "probe");
                let c = &mut conditions[i];
                c.samples += 1;
                if latency_ms.is_finite() {
                    c.max_latency_ms = Some(c.max_latency_ms.unwrap_or(0.0).max(*latency_ms));
                }
                if !ok {
                    // At the send time, as the charts place the sample.
                    note_failure(c, sent_at(r.t, *latency_ms), detail);
                }
                if *role == Role::Hypothesis {
                    samples.push(Sample {
                        sent: sent_at(r.t, *latency_ms),
                        done: r.t,
                        cond: i,
                        ok: *ok,
                        probe: true,
                    });
                }
            }
            Event::Metric {
                condition,
                role,
                ok,
                value,
                bound,
                ..
            } => {
                let i = cond(&mut conditions, condition, *role, "metric");
                let c = &mut conditions[i];
                c.samples += 1;
                c.bound = Some(*bound);
                if let Some(v) = value.filter(|v| v.is_finite()) {
                    // The worst value is the one furthest from the bound on the failing
                    // side, or the closest one while every sample held.
                    let dist = (v - bound).abs();
                    let better = match (c.worst_value, ok, c.failures > 0) {
                        (None, _, _) => true,
                        (Some(_), false, false) => true,
                        (Some(w), false, true) => dist > (w - bound).abs(),
                        (Some(w), true, false) => dist < (w - bound).abs(),
                        (Some(_), true, true) => false,
                    };
                    if better {
                        c.worst_value = Some(v);
                    }
                }
                if !ok {
                    let detail = match value {
                        Some(v) => format!("value {} against bound {}", num(*v), num(*bound)),
                        None => "no value".into(),
                    };
                    note_failure(c, r.t, &detail);
                }
                if *role == Role::Hypothesis {
                    samples.push(Sample {
                        sent: r.t,
                        done: r.t,
                        cond: i,
                        ok: *ok,
                        probe: false,
                    });
                }
            }
            Event::Deviation {
                condition,
                phase,
                detail,
                streak,
            } => {
                let i = cond(&mut conditions, condition, Role::Hypothesis, "probe");
                let c = &mut conditions[i];
                c.held = false;
                c.deviations
                    .push(format!("{} at {}: {detail}", phase_name(*phase), secs(r.t)));
                s.reasons
                    .push(deviation_reason(condition, *phase, r.t, detail, streak));
            }
            Event::GuardrailTripped { condition, detail } => {
                let i = cond(&mut conditions, condition, Role::Guardrail, "probe");
                let c = &mut conditions[i];
                c.held = false;
                c.deviations
                    .push(format!("tripped at {}: {detail}", secs(r.t)));
            }
            Event::FaultApplied {
                activity,
                kind,
                target,
                applying_ms,
                ..
            } => s.faults.push(FaultSummary {
                activity: activity.clone(),
                kind: kind.clone(),
                target: target.clone(),
                applied_ms: r.t,
                applying_ms: *applying_ms,
                rolled_back_ms: None,
                rollback_ok: None,
                rolled_back_by: None,
                time_to_impact_ms: None,
                impact_signal: None,
                time_to_recover_ms: None,
            }),
            Event::FaultRolledBack {
                activity,
                ok,
                by,
                detail,
                ..
            } => {
                if let Some(f) = s
                    .faults
                    .iter_mut()
                    .rev()
                    .find(|f| &f.activity == activity && f.rolled_back_ms.is_none())
                {
                    f.rolled_back_ms = Some(r.t);
                    f.rollback_ok = Some(*ok);
                    f.rolled_back_by = Some(by.clone());
                }
                if !ok {
                    s.reasons.push(format!(
                        "`{activity}` could not be rolled back ({detail}): it stays in the ledger; run `livefire recover` once the cause is fixed"
                    ));
                }
            }
            Event::UndoForgotten {
                entry,
                activity,
                kind,
                undo,
                user,
                reason,
                at,
            } => s.forgotten.push(ForgottenSummary {
                entry: entry.clone(),
                activity: activity.clone(),
                kind: kind.clone(),
                undo: undo.clone(),
                user: user.clone(),
                reason: reason.clone(),
                at: at.clone(),
            }),
            Event::Finding {
                campaign,
                severity,
                fails,
                finding,
            } => {
                let text = |k: &str| {
                    finding
                        .get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                s.findings.push(FindingSummary {
                    campaign: campaign.clone(),
                    severity: severity.clone(),
                    fails: *fails,
                    at_ms: r.t,
                    rule: text("rule"),
                    operation: text("operation"),
                    title: text("title"),
                    reproducer: text("curl"),
                    active_faults: finding
                        .get("active_faults")
                        .and_then(|v| v.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
            Event::Writes { load, counts } => s.writes.push(WritesSummary {
                load: load.clone(),
                counts: counts
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Event::RollbackStep { step, ok, detail } => s.rollback_steps.push(StepSummary {
                step: step.clone(),
                ok: *ok,
                detail: detail.clone(),
            }),
            Event::Settled { ok, after_ms } if *ok => {
                s.settled_after_ms = Some(*after_ms);
                settled_at = Some(r.t);
            }
            Event::Aborted { cause } => {
                s.abort_reason = Some(cause.describe());
                s.aborted = Some(cause.clone());
                s.reasons.push(format!("aborted: {}", cause.describe()));
            }
            Event::Warning { message } => s.warnings.push(message.clone()),
            Event::SetupFailed { message } => s
                .reasons
                .push(format!("setup failed: {message} (nothing was applied)")),
            Event::RunEnded {
                verdict,
                exit_code,
                ledger_left,
            } => {
                s.verdict = Some(*verdict);
                s.exit_code = Some(*exit_code);
                s.ledger_left = *ledger_left;
            }
            _ => {}
        }
    }
    s.duration_ms = s.duration_ms.max(journal.metrics.last_t);
    let probe_conditions: Vec<usize> = {
        let mut v: Vec<usize> = samples.iter().filter(|x| x.probe).map(|x| x.cond).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for f in &mut s.faults {
        let until = f.rolled_back_ms.unwrap_or(u64::MAX);
        // From when its apply began (as the detectors count): a fault that takes a
        // while to apply (a disk filled, a kill waiting for the process to go) may show
        // before the apply returns, and that is an impact after 0 ms.
        let opened = apply_began(f.applied_ms, f.applying_ms);
        // The first failing sample that was in flight while the fault was active,
        // counted from when it was sent (a probe that hangs was impacted when sent).
        let by_hypothesis = samples
            .iter()
            .find(|x| !x.ok && x.done >= opened && x.sent <= until)
            .map(|x| {
                (
                    x.sent.max(opened),
                    format!("hypothesis `{}` failed", conditions[x.cond].name),
                )
            });
        let by_load = crate::impact::first_load_impact(journal, opened, until);
        let first = match (by_hypothesis, by_load) {
            (Some(h), Some(l)) => Some(if l.0 < h.0 { l } else { h }),
            (h, l) => h.or(l),
        };
        if let Some((at, signal)) = first {
            f.time_to_impact_ms = Some(at.saturating_sub(f.applied_ms));
            f.impact_signal = Some(signal);
        }
        if let (Some(back), Some(true)) = (f.rolled_back_ms, f.rollback_ok) {
            f.time_to_recover_ms = recovered_at(&samples, &probe_conditions, back)
                // The after phase's check, when no probe answered after the rollback
                // during the timeline (never without hypothesis probes: nothing to hold).
                .or(settled_at.filter(|at| *at >= back && !probe_conditions.is_empty()))
                .map(|at| at - back);
        }
    }
    s.conditions = conditions;
    s.loads = summarize_loads(journal);
    s.failovers = crate::failover::failovers(journal, &s.faults, &s.writes);
    s.segments = crate::segments::segments(journal);
    s.detectors = crate::detectors::who_noticed(journal, &s.faults);
    s.gameday = crate::gameday::measure(journal, s.seed, &s.faults);
    s.findings.extend(crate::detectors::unnoticed_findings(
        &s.detectors,
        &s.faults,
    ));
    if let Some(plan) = journal.plan() {
        s.environment = plan.environment;
        s.production = plan.production;
    }
    s.reasons.extend(findings_reasons(&s.findings));
    if s.verdict == Some(Verdict::Held) {
        s.reasons.clear();
    }
    s
}

/// `` `health answers` deviated at 4.51s: no answer within 1s (5 samples failed over
/// 3.20s, tolerated 3s) ``.
fn deviation_reason(
    condition: &str,
    phase: Phase,
    t: u64,
    detail: &str,
    streak: &Option<livefire_core::events::Streak>,
) -> String {
    let how = streak
        .map(|k| {
            format!(
                " ({} sample{} failed over {}, tolerated {})",
                k.samples,
                if k.samples == 1 { "" } else { "s" },
                secs(k.failing_ms),
                secs(k.tolerate_ms)
            )
        })
        .unwrap_or_default();
    match phase {
        Phase::Before => format!(
            "`{condition}` did not hold before the experiment, so nothing was applied: {detail}"
        ),
        Phase::After => format!(
            "`{condition}` did not hold after rollback (at {}): {detail}{how}",
            secs(t)
        ),
        _ => format!("`{condition}` deviated at {}: {detail}{how}", secs(t)),
    }
}

/// One line per severity of the findings that fail the run:
/// `2 critical findings at or above fail_on: auth_enforced on GET /admin/stats, ...`.
fn findings_reasons(findings: &[FindingSummary]) -> Vec<String> {
    const SHOWN: usize = 3;
    let mut out = Vec::new();
    for severity in ["critical", "high", "medium", "low"] {
        let failing: Vec<&FindingSummary> = findings
            .iter()
            .filter(|f| f.fails && f.severity == severity)
            .collect();
        if failing.is_empty() {
            continue;
        }
        let mut what: Vec<String> = failing
            .iter()
            .take(SHOWN)
            .map(|f| {
                let during = if f.active_faults.is_empty() {
                    String::new()
                } else {
                    format!(" during {}", f.active_faults.join(", "))
                };
                format!("{} on {}{during}", f.rule, f.operation)
            })
            .collect();
        if failing.len() > SHOWN {
            what.push(format!("and {} more", failing.len() - SHOWN));
        }
        out.push(format!(
            "{} {severity} finding{} at or above fail_on: {}",
            failing.len(),
            if failing.len() == 1 { "" } else { "s" },
            what.join("; ")
        ));
    }
    out
}

/// One hypothesis sample: when it was sent and answered (journaled), its result.
struct Sample {
    sent: u64,
    done: u64,
    cond: usize,
    ok: bool,
    probe: bool,
}

/// When a probe sample was sent: its journal time less its answer time.
pub(crate) fn sent_at(t: u64, latency_ms: f64) -> u64 {
    if latency_ms.is_finite() && latency_ms > 0.0 {
        t.saturating_sub(latency_ms as u64)
    } else {
        t
    }
}

/// The first time at or after `back` when every hypothesis probe condition that
/// answered after `back` has answered ok (each one's first ok answer); `None` when one
/// of them never did, or none answered.
fn recovered_at(samples: &[Sample], probes: &[usize], back: u64) -> Option<u64> {
    let mut latest = None;
    let mut any = false;
    for &c in probes {
        let mut after = samples
            .iter()
            .filter(|x| x.probe && x.cond == c && x.done >= back)
            .peekable();
        if after.peek().is_none() {
            continue;
        }
        any = true;
        let first_ok = after.find(|x| x.ok)?.done;
        latest = Some(latest.unwrap_or(0).max(first_ok));
    }
    if any { latest } else { None }
}

fn note_failure(c: &mut ConditionSummary, t: u64, detail: &str) {
    c.failures += 1;
    c.first_failure_ms.get_or_insert(t);
    if c.failure_details.len() < FAILURE_DETAILS {
        c.failure_details.push(format!("at {}: {detail}", secs(t)));
    }
}

/// Totals per load over every window in the journal, merged exactly (while the journal
/// was read).
fn summarize_loads(journal: &Journal) -> Vec<LoadSummary> {
    journal
        .metrics
        .loads
        .iter()
        .map(|l| {
            let t = &l.total;
            LoadSummary {
                name: l.name.clone(),
                seconds: l.seconds,
                intended: t.intended,
                sent: t.sent,
                completed: t.counts.completed(),
                ok: t.counts.get(Outcome::Ok),
                errors: t.counts.errors(),
                dropped: t.counts.get(Outcome::Dropped),
                error_rate: error_rate(t),
                rps: t.counts.completed() as f64 / l.seconds.max(1) as f64,
                outcomes: t
                    .counts
                    .iter()
                    .map(|(o, n)| (o.as_str().to_owned(), n))
                    .collect(),
                latency_ms: percentiles(t),
                requests: l
                    .requests
                    .iter()
                    .map(|(name, w)| RequestSummary {
                        name: name.clone(),
                        completed: w.counts.completed(),
                        errors: w.counts.errors(),
                        error_rate: error_rate(w),
                        latency_ms: percentiles(w),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// errors / completed, `None` with nothing completed.
pub(crate) fn error_rate(w: &Window) -> Option<f64> {
    let done = w.counts.completed();
    (done > 0).then(|| w.counts.errors() as f64 / done as f64)
}

fn percentiles(w: &Window) -> Option<Percentiles> {
    let ms = |q: f64| w.latency.quantile_us(q).map(|v| v as f64 / 1e3);
    Some(Percentiles {
        p50: ms(0.5)?,
        p90: ms(0.9)?,
        p99: ms(0.99)?,
        p999: ms(0.999)?,
        max: w.latency.max_us()? as f64 / 1e3,
        mean: w.latency.mean_us()? / 1e3,
    })
}

pub(crate) fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Setup => "setup",
        Phase::Before => "before",
        Phase::During => "during",
        Phase::Rollback => "rollback",
        Phase::After => "after",
        Phase::Teardown => "teardown",
    }
}

/// `3.65s`.
pub(crate) fn secs(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1e3)
}

/// A duration: `12 ms` under a second, `3.65s` from one.
pub(crate) fn dur(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        secs(ms)
    }
}

/// A number with at most 4 significant digits, no exponent for everyday values.
pub(crate) fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The word of a verdict, as `summary.json` spells it.
pub fn verdict_word(v: Option<Verdict>) -> &'static str {
    match v {
        Some(v) => v.label(),
        None => "unknown (the journal ends before the run did)",
    }
}
