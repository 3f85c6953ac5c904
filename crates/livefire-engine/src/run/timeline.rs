//! The timeline: faults, loads and campaigns on one clock, the watchdog, the progress
//! line, and the referee tasks; it ends at the timeline's end or the first abort cause.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livefire_core::events::{AbortCause, Event, Role};
use livefire_core::metrics::MetricSource;
use livefire_faults::{Prepared, Targets};
use livefire_spec::Experiment;
use tokio::sync::mpsc;

use crate::plan;

use super::hypothesis::cond_name;
use super::referee::watch_condition;
use super::shared::{Active, Shared};

/// A grace period past a fault's deadline after which the watchdog rolls it back.
const WATCHDOG_GRACE: Duration = Duration::from_secs(2);

/// Where campaigns' findings go.
#[derive(Clone)]
pub(super) struct Findings {
    pub(super) counts: Arc<crate::campaign::FindingCounts>,
    pub(super) all: Arc<Mutex<Vec<livefire_fuzz::Finding>>>,
    /// Findings at or above `settings.fail_on`.
    pub(super) failing: Arc<AtomicUsize>,
    pub(super) fail_on: Option<livefire_spec::FailOn>,
}

/// What the timeline phase works with.
pub(super) struct During<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) targets: &'a Targets,
    pub(super) shared: &'a Shared,
    pub(super) metrics: &'a Arc<Vec<Arc<dyn MetricSource>>>,
    pub(super) store: &'a Arc<livefire_core::window::WindowStore>,
    /// Each load's start offset and config.
    pub(super) loads: Vec<(Duration, livefire_load::LoadConfig)>,
    /// Each campaign's start offset, name and config.
    pub(super) fuzzes: Vec<(Duration, String, livefire_fuzz::FuzzConfig)>,
    pub(super) findings: Findings,
    pub(super) deviated: &'a Arc<AtomicBool>,
    pub(super) abort_tx: &'a mpsc::UnboundedSender<AbortCause>,
    pub(super) view: crate::view::View,
    pub(super) cwd: &'a str,
}

/// The timeline with the referee. Returns the abort cause, if the run was aborted.
pub(super) async fn during(
    ctx: During<'_>,
    abort_rx: &mut mpsc::UnboundedReceiver<AbortCause>,
) -> (
    Option<AbortCause>,
    Vec<(livefire_load::LoadConfig, livefire_load::LoadReport)>,
) {
    let During {
        exp,
        targets,
        shared,
        metrics,
        store,
        loads,
        fuzzes,
        findings,
        deviated,
        abort_tx,
        view,
        cwd,
    } = ctx;
    let start = shared.journal.start();
    let during_start = Instant::now();
    let end = during_start + plan::timeline_end(exp);
    let max_end = start + plan::max_duration(exp);

    // The watchdog: a plain thread, so it rolls back even if the async engine stalls.
    let stop_watchdog = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let shared = shared.clone();
        let stop = stop_watchdog.clone();
        std::thread::Builder::new()
            .name("livefire-watchdog".into())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let now = Instant::now();
                    let overdue: Vec<u64> = shared
                        .active
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .filter(|a| now > a.deadline + WATCHDOG_GRACE)
                        .map(|a| a.ledger_id)
                        .collect();
                    for id in overdue {
                        if let Some(a) = shared.take(id) {
                            eprintln!(
                                "livefire: watchdog: `{}` overran its deadline; rolling it back",
                                a.activity
                            );
                            shared.rollback(&a, "watchdog");
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
    };

    let mut tasks = tokio::task::JoinSet::new();
    let mut names = BTreeMap::new();
    for (i, a) in exp.timeline.iter().enumerate() {
        let Some(fault) = a.fault.clone() else {
            continue;
        };
        let name = plan::activity_name(exp, i);
        let (at, until) = (during_start + a.at.0, during_start + a.at.0 + a.for_.0);
        let (shared, targets, cwd) = (shared.clone(), targets.clone(), cwd.to_owned());
        let (activity, id) = (name.clone(), format!("timeline[{i}]"));
        let handle = tasks.spawn(async move {
            fault_task(fault, (activity, id), at, until, targets, shared, cwd).await
        });
        names.insert(handle.id(), name);
    }
    // Loads run on the same clock and publish into the store the referee reads.
    let cancel_loads = tokio_util::sync::CancellationToken::new();
    let mut load_tasks = tokio::task::JoinSet::new();
    for (at, config) in loads {
        let (store, cancel, journal) =
            (store.clone(), cancel_loads.clone(), shared.journal.clone());
        let begin = during_start + at;
        load_tasks.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(begin.into()) => {}
                _ = cancel.cancelled() => return None,
            }
            let name = config.name.clone();
            journal.emit(Event::ActivityStarted {
                activity: name.clone(),
                kind: "load".into(),
            });
            match livefire_load::run(config.clone(), journal.start(), cancel, store).await {
                Ok(report) => {
                    journal.emit(Event::LoadEnded {
                        load: name,
                        report: report.to_json(),
                    });
                    Some((config, report))
                }
                Err(e) => {
                    journal.emit(Event::Warning {
                        message: format!("load `{name}` could not run: {e}"),
                    });
                    None
                }
            }
        });
    }
    // Campaigns probe the degraded system; each finding names the faults active then.
    for (at, name, config) in fuzzes {
        let (cancel, journal, active, findings, history) = (
            cancel_loads.clone(),
            shared.journal.clone(),
            shared.active.clone(),
            findings.clone(),
            shared.history.clone(),
        );
        let begin = during_start + at;
        load_tasks.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep_until(begin.into()) => {}
                _ = cancel.cancelled() => return None,
            }
            journal.emit(Event::ActivityStarted {
                activity: name.clone(),
                kind: "fuzz".into(),
            });
            let on_finding = |mut f: livefire_fuzz::Finding| {
                f.active_faults = active
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .map(|a| a.activity.clone())
                    .collect();
                let fails = crate::campaign::fails(f.severity, findings.fail_on);
                findings.counts.add(&name, f.severity);
                if fails {
                    findings.failing.fetch_add(1, Ordering::SeqCst);
                }
                journal.emit(Event::Finding {
                    campaign: name.clone(),
                    severity: f.severity.name().into(),
                    fails,
                    finding: serde_json::to_value(&f).unwrap_or_default(),
                });
                findings
                    .all
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(f);
            };
            let started_ms = journal.now_ms();
            match livefire_fuzz::run(config, cancel, on_finding).await {
                Ok(summary) => {
                    let history = history.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    for w in crate::campaign::windows(
                        &name,
                        &summary,
                        started_ms,
                        journal.now_ms(),
                        &history,
                    ) {
                        journal.emit(w);
                    }
                    journal.emit(Event::CampaignEnded {
                        campaign: name.clone(),
                        summary: serde_json::to_value(&summary).unwrap_or_default(),
                    })
                }
                Err(e) => journal.emit(Event::Warning {
                    message: format!("fuzz `{name}` could not run: {e}"),
                }),
            }
            None
        });
    }
    let mut referee = tokio::task::JoinSet::new();
    // What each condition's referee task last saw, for the progress line.
    let board = crate::view::Board::default();
    // Which seconds of each series are journaled already.
    let journaled = Arc::new(Mutex::new(BTreeMap::new()));
    {
        let (store, journal, journaled) =
            (store.clone(), shared.journal.clone(), journaled.clone());
        referee.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let mut done = journaled.lock().unwrap_or_else(|p| p.into_inner());
                crate::workload::journal_windows(
                    &store,
                    &journal,
                    journal.start(),
                    &mut done,
                    false,
                );
            }
        });
    }
    let probe_every = exp
        .settings
        .probe_every
        .map(|d| d.0)
        .unwrap_or(Duration::from_secs(1));
    for (role, list) in [
        (Role::Hypothesis, &exp.hypothesis),
        (Role::Guardrail, &exp.guardrails),
    ] {
        for (i, c) in list.iter().enumerate() {
            let (c, name) = (c.clone(), cond_name(c, role, i));
            let (journal, tx, deviated, metrics, cwd, board) = (
                shared.journal.clone(),
                abort_tx.clone(),
                deviated.clone(),
                metrics.clone(),
                cwd.to_owned(),
                board.clone(),
            );
            referee.spawn(async move {
                watch_condition(
                    c,
                    name,
                    role,
                    probe_every,
                    during_start,
                    journal,
                    tx,
                    deviated,
                    metrics,
                    cwd,
                    board,
                )
                .await
            });
        }
    }
    if view != crate::view::View::Quiet {
        let (active, board, metrics, journal) = (
            shared.active.clone(),
            board.clone(),
            metrics.clone(),
            shared.journal.clone(),
        );
        let planned_s = plan::timeline_end(exp).as_secs();
        let loads: Vec<String> = crate::workload::load_names(exp)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        let campaigns: Vec<String> = crate::campaign::fuzz_names(exp)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        referee.spawn(async move {
            let mut progress = crate::view::Progress::default();
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let status = crate::view::Status {
                    elapsed_s: during_start.elapsed().as_secs(),
                    planned_s,
                    active: active
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .map(|a| a.activity.clone())
                        .collect(),
                    hypothesis: board.describe(Role::Hypothesis),
                    guardrails: board.describe(Role::Guardrail),
                };
                let line = progress.line(
                    view,
                    &status,
                    &loads,
                    &campaigns,
                    &metrics,
                    journal.now_ms(),
                );
                crate::view::print(view, &line);
            }
        });
    }

    let mut cause = None;
    let mut timeline_done = false;
    loop {
        tokio::select! {
            Some(c) = abort_rx.recv() => { cause = Some(c); break; }
            _ = tokio::time::sleep_until(max_end.into()) => { cause = Some(AbortCause::MaxDuration); break; }
            _ = tokio::time::sleep_until(end.into()), if !timeline_done => { timeline_done = true; }
            joined = tasks.join_next_with_id(), if !tasks.is_empty() => {
                match joined {
                    Some(Ok((_, Ok(())))) => {}
                    Some(Ok((_, Err(msg)))) => { cause = Some(AbortCause::Error { message: msg }); break; }
                    Some(Err(e)) if e.is_panic() => {
                        let activity = names.get(&e.id()).cloned().unwrap_or_default();
                        let payload = e.into_panic();
                        let message = payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_else(|| "panic".into());
                        cause = Some(AbortCause::Panic { activity, message });
                        break;
                    }
                    _ => {}
                }
            }
        }
        if timeline_done && tasks.is_empty() {
            break;
        }
    }
    crate::view::end_line(view);
    cancel_loads.cancel();
    let mut finished = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(done) = load_tasks.join_next().await {
            if let Ok(Some(load)) = done {
                finished.push(load);
            }
        }
    })
    .await;
    load_tasks.abort_all();
    referee.abort_all();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    while referee.join_next().await.is_some() {}
    // The windows not journaled yet, now that every load has stopped.
    crate::workload::journal_windows(
        store,
        &shared.journal,
        start,
        &mut journaled.lock().unwrap_or_else(|p| p.into_inner()),
        true,
    );
    stop_watchdog.store(true, Ordering::SeqCst);
    if let Ok(w) = watchdog {
        let _ = w.join();
    }
    if let Some(c) = &cause {
        if let AbortCause::Guardrail { condition, detail } = c {
            shared.journal.emit(Event::GuardrailTripped {
                condition: condition.clone(),
                detail: detail.clone(),
            });
        }
        shared.journal.emit(Event::Aborted { cause: c.clone() });
    }
    (cause, finished)
}

/// Applies one fault at its time (write-ahead), and rolls it back at its end.
pub(super) async fn fault_task(
    fault: livefire_spec::Fault,
    (activity, id): (String, String),
    at: Instant,
    until: Instant,
    targets: Targets,
    shared: Shared,
    cwd: String,
) -> Result<(), String> {
    tokio::time::sleep_until(at.into()).await;
    if test_hook_panics(&activity) {
        panic!("test hook: activity `{activity}` panics on purpose");
    }
    let kind = fault.kind();
    shared.journal.emit(Event::ActivityStarted {
        activity: activity.clone(),
        kind: kind.into(),
    });
    // Ledger write and apply happen in one blocking section that cannot be cancelled
    // half-way; rollback waits for `in_flight` to reach zero.
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let s = shared.clone();
    let act = activity.clone();
    let applied = tokio::task::spawn_blocking(move || {
        let result = apply_one(&fault, &act, &id, until, &targets, &s, &cwd);
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    })
    .await
    .map_err(|e| format!("activity `{activity}` failed: {e}"))??;
    let Some(ledger_id) = applied else {
        return Ok(());
    };
    tokio::time::sleep_until(until.into()).await;
    if test_hook_stalls(&activity) {
        // Blocks this runtime thread past the deadline, as a stalled engine would.
        std::thread::sleep(WATCHDOG_GRACE * 3);
    }
    if let Some(a) = shared.take(ledger_id) {
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || s.rollback(&a, "engine")).await;
    }
    shared.journal.emit(Event::ActivityEnded {
        activity,
        kind: kind.into(),
    });
    Ok(())
}

/// Prepare, write the ledger, apply. Returns the ledger id to roll back at the end, if
/// anything needs undoing.
pub(super) fn apply_one(
    fault: &livefire_spec::Fault,
    activity: &str,
    activity_id: &str,
    until: Instant,
    targets: &Targets,
    shared: &Shared,
    cwd: &str,
) -> Result<Option<u64>, String> {
    let prepared: Prepared = livefire_faults::prepare(fault, targets, activity)
        .map_err(|e| format!("activity `{activity}`: {e}"))?;
    let mut entry = None;
    // For people: its `name:` as written, else kind and target.
    let display = match (activity == activity_id, prepared.target.is_empty()) {
        (false, _) => activity.to_owned(),
        (true, true) => prepared.kind.to_owned(),
        (true, false) => format!("{} {}", prepared.kind, prepared.target),
    };
    if let Some(undo) = &prepared.undo {
        let id = shared
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(
                &crate::ledger::Activity {
                    name: activity,
                    id: activity_id,
                    display: &display,
                    kind: prepared.kind,
                },
                undo,
                &prepared.resources,
            )
            .map_err(|e| format!("activity `{activity}`: cannot write the ledger, so the fault was not applied: {e}"))?;
        let a = Active {
            ledger_id: id,
            activity: activity.into(),
            kind: prepared.kind.into(),
            undo: undo.clone(),
            deadline: until,
        };
        shared
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(a);
        entry = Some(id);
    }
    match prepared.apply(Some(cwd)) {
        Ok(detail) => {
            let now = shared.journal.now_ms();
            shared
                .history
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((activity.to_owned(), now, None));
            shared.journal.emit(Event::FaultApplied {
                activity: activity.into(),
                kind: prepared.kind.into(),
                target: prepared.target.clone(),
                detail,
            });
            if prepared.undo_after_apply().is_none() {
                // Nothing left to undo (a restart that already ran).
                if let Some(id) = entry.take() {
                    shared.take(id);
                    let _ = shared
                        .ledger
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .done(id);
                }
            }
            Ok(entry)
        }
        // A failed apply may have changed part of the world: it stays active and is
        // rolled back with everything else; the run aborts.
        Err(e) => Err(format!(
            "activity `{activity}`: {} could not be applied: {e}",
            prepared.kind
        )),
    }
}

/// Tests make an activity panic by naming it in LIVEFIRE_TEST_PANIC (debug builds only),
/// to prove that a panicking activity still ends in full rollback.
/// Tests make the engine miss an activity's deadline by naming it in LIVEFIRE_TEST_STALL
/// (debug builds only), to prove that the watchdog rolls it back.
pub(super) fn test_hook_stalls(activity: &str) -> bool {
    cfg!(debug_assertions) && std::env::var("LIVEFIRE_TEST_STALL").is_ok_and(|v| v == activity)
}

pub(super) fn test_hook_panics(activity: &str) -> bool {
    cfg!(debug_assertions) && std::env::var("LIVEFIRE_TEST_PANIC").is_ok_and(|v| v == activity)
}
