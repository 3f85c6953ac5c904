//! The timeline: faults, loads and campaigns on one clock, the watchdog, the progress
//! line, and the referee tasks; it ends at the timeline's end or the first abort cause.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livefire_core::events::{AbortCause, Event, Role};
use livefire_core::metrics::MetricSource;
use livefire_core::window::WindowStore;
use livefire_faults::{Prepared, Targets};
use tokio::sync::mpsc;
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::journal::Journal;
use crate::plan::{Activity, Body, Plan};

use super::referee::{Referee, watch_condition};
use super::shared::{Active, Shared};

/// A grace period past a fault's deadline after which the watchdog rolls it back.
const WATCHDOG_GRACE: Duration = Duration::from_secs(2);

/// A load that ran to its end, with what it sent (for the read-back of its writes).
pub(super) type FinishedLoad = (livefire_load::LoadConfig, livefire_load::LoadReport);

/// How a fault task ended: its error aborts the run.
type FaultResult = Result<(), FaultTaskError>;

/// Why a fault task ended the run: the run aborts and rolls back what it holds.
#[derive(Debug, thiserror::Error)]
pub(super) enum FaultTaskError {
    #[error("activity `{activity}` failed: {source}")]
    Join {
        activity: String,
        source: tokio::task::JoinError,
    },
    #[error("activity `{activity}`: {source}")]
    Prepare {
        activity: String,
        source: Box<livefire_faults::FaultError>,
    },
    #[error(
        "activity `{activity}`: cannot write the ledger, so the fault was not applied: {source}"
    )]
    Ledger {
        activity: String,
        source: std::io::Error,
    },
    /// A failed apply may have changed part of the world: it stays active and is rolled
    /// back with everything else.
    #[error("activity `{activity}`: {kind} could not be applied: {source}")]
    Apply {
        activity: String,
        kind: &'static str,
        source: Box<livefire_faults::FaultError>,
    },
}

/// Where campaigns' findings go.
#[derive(Clone)]
pub(super) struct Findings {
    pub(super) counts: Arc<crate::campaign::FindingCounts>,
    pub(super) all: Arc<Mutex<Vec<livefire_fuzz::Finding>>>,
    /// Findings at or above `settings.fail_on`.
    pub(super) failing: Arc<AtomicUsize>,
    pub(super) fail_on: livefire_spec::FailOn,
}

/// What the timeline phase works with.
pub(super) struct During<'a> {
    pub(super) plan: &'a Plan,
    pub(super) targets: &'a Targets,
    pub(super) shared: &'a Shared,
    pub(super) metrics: &'a Arc<Vec<Arc<dyn MetricSource>>>,
    pub(super) store: &'a Arc<WindowStore>,
    pub(super) findings: Findings,
    pub(super) deviated: &'a Arc<AtomicBool>,
    pub(super) abort_tx: &'a mpsc::UnboundedSender<AbortCause>,
    pub(super) view: crate::view::View,
    /// A split run: segments make the load and fuzz (`crate::segments`).
    pub(super) split: Option<crate::segments::coordinator::Split>,
}

/// The tasks of the timeline: faults (their failures and panics abort the run), loads
/// and campaigns (stopped by `cancel`), and the referee's tasks (aborted at the end).
struct Tasks {
    faults: JoinSet<FaultResult>,
    /// Each fault task's activity, to name a panicking one.
    fault_names: BTreeMap<Id, String>,
    /// Each task's finished loads: none or one, or a split run's tracked loads.
    workloads: JoinSet<Vec<FinishedLoad>>,
    /// How long loads and campaigns may take to report once cancelled (a split run's
    /// segments may take longer: `Following::ends_within`).
    workloads_bound: Duration,
    cancel: CancellationToken,
    referee: JoinSet<()>,
}

/// The timeline with the referee. Returns the abort cause, if the run was aborted, and
/// the loads that finished.
pub(super) async fn during(
    mut ctx: During<'_>,
    abort_rx: &mut mpsc::UnboundedReceiver<AbortCause>,
) -> (Option<AbortCause>, Vec<FinishedLoad>) {
    let shared = ctx.shared;
    let mut segments_entry = None;
    // A split run starts when its segments do, past the ready barrier.
    let (during_start, following) = match ctx.split.take() {
        None => (Instant::now(), None),
        Some(split) => {
            segments_entry = segments_ledger_add(shared, &split);
            match crate::segments::coordinator::launch(split, &shared.journal, abort_rx).await {
                Ok(f) => (f.start, Some(f)),
                Err(cause) => {
                    segments_ledger_clear(shared, segments_entry.take()).await;
                    journal_abort(&shared.journal, Some(&cause));
                    return (Some(cause), Vec::new());
                }
            }
        }
    };
    let split = following.is_some();
    let end = during_start + ctx.plan.timeline_end();
    let max_end = shared.journal.start() + ctx.plan.settings.max_duration;
    let stop_watchdog = Arc::new(AtomicBool::new(false));
    let watchdog = spawn_watchdog(shared, stop_watchdog.clone());

    let mut tasks = Tasks {
        faults: JoinSet::new(),
        fault_names: BTreeMap::new(),
        workloads: JoinSet::new(),
        workloads_bound: Duration::from_secs(10),
        cancel: CancellationToken::new(),
        referee: JoinSet::new(),
    };
    if let Some(f) = following {
        tasks.workloads_bound = tasks.workloads_bound.max(f.ends_within());
        let (sink, cancel) = (segment_sink(&ctx), tasks.cancel.clone());
        tasks
            .workloads
            .spawn(async move { f.follow(sink, cancel, end).await });
    }
    for a in &ctx.plan.activities {
        let begin = during_start + a.start;
        match &a.body {
            Body::Fault(_) => spawn_fault(&ctx, a, during_start, &mut tasks),
            // The segments run them.
            Body::Load(_) | Body::Fuzz { .. } if split => {}
            Body::Load(config) => {
                let task = load_task(a, config, begin, &tasks.cancel, &shared.journal, ctx.store);
                tasks
                    .workloads
                    .spawn(async move { task.await.into_iter().collect() });
            }
            Body::Fuzz {
                metrics, config, ..
            } => {
                let run = CampaignRun {
                    activity: a.clone(),
                    metrics: metrics.clone(),
                    config: (**config).clone(),
                    begin,
                };
                let task = campaign_task(run, &tasks.cancel, shared, &ctx.findings);
                tasks
                    .workloads
                    .spawn(async move { task.await.into_iter().collect() });
            }
        }
    }
    // Which seconds of each series are journaled already.
    let journaled = Arc::new(Mutex::new(BTreeMap::new()));
    tasks.referee.spawn(journal_windows_each_second(
        ctx.store.clone(),
        shared.journal.clone(),
        journaled.clone(),
    ));
    // What each condition's referee task last saw, for the progress line.
    let board = crate::view::Board::default();
    // Segments' windows reach the store a moment after their second ends.
    let lag = if split {
        Duration::from_secs(1)
    } else {
        Duration::ZERO
    };
    spawn_referees(&ctx, during_start, lag, &board, &mut tasks.referee);
    // The team's own alert checks: detectors, stopped with the referee.
    let cwd = ctx.plan.dir.to_string_lossy().into_owned();
    for w in &ctx.plan.watches {
        let task =
            super::watch::watch(w.clone(), cwd.clone(), shared.journal.clone(), during_start);
        tasks.referee.spawn(task);
    }
    if ctx.view != crate::view::View::Quiet {
        tasks
            .referee
            .spawn(progress_task(&ctx, during_start, lag, &board));
    }

    let mut cause = wait_for_end(&mut tasks, abort_rx, end, max_end).await;
    let mut finished = Vec::new();
    if cause.is_none() && !split {
        // Loads and campaigns that ran their course get to finish the requests still in
        // flight (each within its timeout), so the last answers are counted; a split
        // run's `follow` gives its segments the same wait.
        let grace =
            workloads_end_wait(ctx.plan).min(max_end.saturating_duration_since(Instant::now()));
        cause = let_workloads_end(&mut tasks, abort_rx, grace, &mut finished).await;
    }
    crate::view::end_line(ctx.view);
    finished.extend(stop_tasks(tasks).await);
    // The segments are stopped (and their objects deleted) once their task ended.
    segments_ledger_clear(shared, segments_entry.take()).await;
    // The windows not journaled yet, now that every load has stopped.
    crate::workload::journal_windows(
        ctx.store,
        &shared.journal,
        shared.journal.start(),
        &mut journaled.lock().unwrap_or_else(|p| p.into_inner()),
        true,
    );
    stop_watchdog.store(true, Ordering::SeqCst);
    if let Ok(w) = watchdog {
        let _ = w.join();
    }
    journal_abort(&shared.journal, cause.as_ref());
    (cause, finished)
}

/// A back end whose segments can outlive this process (Kubernetes objects) has its
/// record written to the ledger before the launch, so `livefire recover` deletes them
/// after a crash. Returns the entry's id and record.
fn segments_ledger_add(
    shared: &Shared,
    split: &crate::segments::coordinator::Split,
) -> Option<(u64, livefire_core::undo::UndoRecord)> {
    let record = split.launcher.undo_record(&split.spec)?;
    let activity = crate::ledger::Activity {
        name: "segments",
        id: "segments",
        display: "segments",
        kind: "segments",
    };
    let mut ledger = shared.ledger.lock().unwrap_or_else(|p| p.into_inner());
    match ledger.add(&activity, &record, &[record.resource()]) {
        Ok(id) => Some((id, record)),
        Err(e) => {
            tracing::error!("cannot write the segments' record to the ledger: {e}");
            None
        }
    }
}

/// Once the segments are stopped: their record's undo (idempotent: it deletes what is
/// left by the run's label) and the ledger entry done, or left, loudly, for `recover`.
async fn segments_ledger_clear(
    shared: &Shared,
    entry: Option<(u64, livefire_core::undo::UndoRecord)>,
) {
    let Some((id, record)) = entry else { return };
    let undo = tokio::task::spawn_blocking({
        let record = record.clone();
        move || livefire_faults::undo(&record)
    })
    .await;
    let mut ledger = shared.ledger.lock().unwrap_or_else(|p| p.into_inner());
    let written = match undo {
        Ok(Ok(_)) => ledger.done(id),
        Ok(Err(e)) => {
            tracing::error!("cannot {}: {e}; run `livefire recover`", record.describe());
            ledger.failed(id, "run", &e.to_string())
        }
        Err(e) => ledger.failed(id, "run", &e.to_string()),
    };
    if let Err(e) = written {
        tracing::error!("cannot write the ledger: {e}");
    }
}

/// The watchdog: a plain thread, so it rolls back even if the async engine stalls. It
/// rolls back every active fault whose deadline passed more than `WATCHDOG_GRACE` ago.
fn spawn_watchdog(
    shared: &Shared,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let shared = shared.clone();
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
                        tracing::error!(
                            "watchdog: `{}` overran its deadline; rolling it back",
                            a.activity
                        );
                        shared.rollback(&a, "watchdog");
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
}

/// The task of one fault activity: apply at its start, roll back at its end.
fn spawn_fault(ctx: &During<'_>, a: &Activity, during_start: Instant, tasks: &mut Tasks) {
    let Body::Fault(fault) = &a.body else {
        return;
    };
    let run = FaultRun {
        fault: fault.clone(),
        id: a.id.clone(),
        name: a.name.clone(),
        at: during_start + a.start,
        until: during_start + a.start + a.duration,
    };
    let (shared, targets) = (ctx.shared.clone(), ctx.targets.clone());
    let cwd = ctx.plan.dir.to_string_lossy().into_owned();
    let handle = tasks
        .faults
        .spawn(async move { fault_task(run, targets, shared, cwd).await });
    tasks.fault_names.insert(handle.id(), a.name.clone());
}

/// A load on the run's clock: it publishes into the store the referee reads.
fn load_task(
    a: &Activity,
    config: &livefire_load::LoadConfig,
    begin: Instant,
    cancel: &CancellationToken,
    journal: &Journal,
    store: &Arc<WindowStore>,
) -> impl std::future::Future<Output = Option<FinishedLoad>> + Send + 'static {
    let (store, cancel, journal) = (store.clone(), cancel.clone(), journal.clone());
    let (config, id, display) = (config.clone(), a.id.clone(), a.name.clone());
    async move {
        tokio::select! {
            _ = tokio::time::sleep_until(begin.into()) => {}
            _ = cancel.cancelled() => return None,
        }
        let name = config.name.clone();
        journal.emit(Event::ActivityStarted {
            activity: display,
            kind: "load".into(),
            id,
        });
        match livefire_load::run(config.clone(), journal.start(), cancel, store).await {
            Ok(report) => {
                // The write outcomes right before the load's end, nothing between.
                let outcomes = report.write_log.as_ref().map(|log| {
                    let (runs, truncated_ms) = log.runs();
                    Event::WriteOutcomes {
                        load: name.clone(),
                        runs,
                        truncated_ms,
                    }
                });
                journal.emit_all(outcomes.into_iter().chain([Event::LoadEnded {
                    load: name,
                    report: report.to_json(),
                }]));
                Some((config, report))
            }
            Err(e) => {
                journal.emit(Event::Warning {
                    message: format!("load `{name}` could not run: {e}"),
                });
                None
            }
        }
    }
}

/// A campaign to run: its activity, metric prefix, config and start.
struct CampaignRun {
    activity: Activity,
    metrics: String,
    config: livefire_fuzz::FuzzConfig,
    begin: Instant,
}

/// A campaign probes the degraded system; each finding names the faults active then.
fn campaign_task(
    run: CampaignRun,
    cancel: &CancellationToken,
    shared: &Shared,
    findings: &Findings,
) -> impl std::future::Future<Output = Option<FinishedLoad>> + Send + 'static {
    let (cancel, shared, findings) = (cancel.clone(), shared.clone(), findings.clone());
    async move {
        tokio::select! {
            _ = tokio::time::sleep_until(run.begin.into()) => {}
            _ = cancel.cancelled() => return None,
        }
        let (journal, name) = (shared.journal.clone(), run.metrics);
        journal.emit(Event::ActivityStarted {
            activity: run.activity.name.clone(),
            kind: "fuzz".into(),
            id: run.activity.id.clone(),
        });
        // Findings' times count from this instant, on the run's clock from `started_ms`.
        let epoch = Instant::now();
        let started_ms = epoch.duration_since(journal.start()).as_millis() as u64;
        let config = livefire_fuzz::FuzzConfig {
            epoch: Some(epoch),
            ..run.config
        };
        let on_finding =
            |f: livefire_fuzz::Finding| record_finding(&name, f, started_ms, &shared, &findings);
        match livefire_fuzz::run(config, cancel, on_finding).await {
            Ok(summary) => {
                let history = shared
                    .history
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let ended_ms = journal.now_ms();
                for w in crate::campaign::windows(&name, &summary, started_ms, ended_ms, &history) {
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
    }
}

/// Where a split run's segments' streams go: this run's journal, store, fault history,
/// findings and abort channel.
fn segment_sink(ctx: &During<'_>) -> crate::segments::coordinator::Sink {
    let (shared, findings) = (ctx.shared.clone(), ctx.findings.clone());
    crate::segments::coordinator::Sink {
        journal: ctx.shared.journal.clone(),
        store: ctx.store.clone(),
        history: ctx.shared.history.clone(),
        on_finding: Arc::new(move |campaign, f, started_ms| {
            record_finding(campaign, f, started_ms, &shared, &findings)
        }),
        abort: ctx.abort_tx.clone(),
    }
}

/// Counts, judges and journals one finding, with the faults active when it was sent.
fn record_finding(
    campaign: &str,
    mut f: livefire_fuzz::Finding,
    started_ms: u64,
    shared: &Shared,
    findings: &Findings,
) {
    // The faults active when the finding's first request was sent, not now: a fault may
    // have ended while the finding was confirmed or minimized.
    let history = shared.history.lock().unwrap_or_else(|p| p.into_inner());
    f.active_faults = crate::campaign::active_at(&history, started_ms + f.sent_ms);
    drop(history);
    let fails = crate::campaign::fails(f.severity, findings.fail_on);
    findings.counts.add(campaign, f.severity);
    if fails {
        findings.failing.fetch_add(1, Ordering::SeqCst);
    }
    shared.journal.emit(Event::Finding {
        campaign: campaign.to_owned(),
        severity: f.severity.name().into(),
        fails,
        finding: serde_json::to_value(&f).unwrap_or_default(),
    });
    findings
        .all
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(f);
}

/// Journals every complete metric window once a second.
async fn journal_windows_each_second(
    store: Arc<WindowStore>,
    journal: Journal,
    journaled: Arc<Mutex<BTreeMap<String, u64>>>,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut done = journaled.lock().unwrap_or_else(|p| p.into_inner());
        crate::workload::journal_windows(&store, &journal, journal.start(), &mut done, false);
    }
}

/// One referee task per hypothesis condition and guardrail.
fn spawn_referees(
    ctx: &During<'_>,
    during_start: Instant,
    metric_lag: Duration,
    board: &crate::view::Board,
    referee: &mut JoinSet<()>,
) {
    let shared = Referee {
        during_start,
        journal: ctx.shared.journal.clone(),
        abort: ctx.abort_tx.clone(),
        deviated: ctx.deviated.clone(),
        metrics: ctx.metrics.clone(),
        cwd: ctx.plan.dir.to_string_lossy().into_owned(),
        metric_lag,
    };
    for c in &ctx.plan.conditions {
        referee.spawn(watch_condition(c.clone(), shared.clone(), board.clone()));
    }
}

/// The progress line, once a second.
fn progress_task(
    ctx: &During<'_>,
    during_start: Instant,
    // Shows the metrics of seconds this old (a split run's windows arrive later).
    metric_lag: Duration,
    board: &crate::view::Board,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (active, board, metrics, journal, view) = (
        ctx.shared.active.clone(),
        board.clone(),
        ctx.metrics.clone(),
        ctx.shared.journal.clone(),
        ctx.view,
    );
    let planned_s = ctx.plan.timeline_end().as_secs();
    let (loads, campaigns) = (ctx.plan.load_names(), ctx.plan.fuzz_names());
    let plan = ctx.plan.clone();
    async move {
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
                    .map(|a| plan.shown_name(&a.activity))
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
                journal
                    .now_ms()
                    .saturating_sub(metric_lag.as_millis() as u64),
            );
            crate::view::print(view, &line);
        }
    }
}

/// Waits for the first abort cause, `max_end`, or the timeline's end with every fault
/// task done. A fault task's error or panic is an abort cause.
async fn wait_for_end(
    tasks: &mut Tasks,
    abort_rx: &mut mpsc::UnboundedReceiver<AbortCause>,
    end: Instant,
    max_end: Instant,
) -> Option<AbortCause> {
    let mut timeline_done = false;
    loop {
        tokio::select! {
            Some(c) = abort_rx.recv() => return Some(c),
            _ = tokio::time::sleep_until(max_end.into()) => return Some(AbortCause::MaxDuration),
            _ = tokio::time::sleep_until(end.into()), if !timeline_done => { timeline_done = true; }
            joined = tasks.faults.join_next_with_id(), if !tasks.faults.is_empty() => {
                if let Some(cause) = fault_task_ended(joined, &tasks.fault_names) {
                    return Some(cause);
                }
            }
        }
        if timeline_done && tasks.faults.is_empty() {
            return None;
        }
    }
}

/// The abort cause a fault task's end means, if any: its error, or its panic.
fn fault_task_ended(
    joined: Option<Result<(Id, FaultResult), tokio::task::JoinError>>,
    names: &BTreeMap<Id, String>,
) -> Option<AbortCause> {
    match joined {
        Some(Ok((_, Err(e)))) => Some(AbortCause::Error {
            message: e.to_string(),
        }),
        Some(Err(e)) if e.is_panic() => {
            let activity = names.get(&e.id()).cloned().unwrap_or_default();
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Some(AbortCause::Panic { activity, message })
        }
        _ => None,
    }
}

/// How long a run on one machine waits, after the timeline's end, for its loads and
/// campaigns to end on their own: the longest request timeout plus `END_MARGIN`.
fn workloads_end_wait(plan: &Plan) -> Duration {
    let longest = plan
        .activities
        .iter()
        .filter_map(|a| match &a.body {
            Body::Load(c) => Some(c.timeout),
            Body::Fuzz { config, .. } => Some(config.timeout),
            Body::Fault(_) => None,
        })
        .max()
        .unwrap_or_default();
    longest + crate::segments::coordinator::END_MARGIN
}

/// Waits up to `grace` for every load and campaign to end on its own, keeping what
/// they report; an abort (a guardrail judging their last seconds, a stop) ends the wait.
async fn let_workloads_end(
    tasks: &mut Tasks,
    abort_rx: &mut mpsc::UnboundedReceiver<AbortCause>,
    grace: Duration,
    finished: &mut Vec<FinishedLoad>,
) -> Option<AbortCause> {
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            Some(c) = abort_rx.recv() => return Some(c),
            _ = &mut deadline => return None,
            joined = tasks.workloads.join_next() => match joined {
                None => return None,
                Some(Ok(loads)) => finished.extend(loads),
                Some(Err(_)) => {}
            },
        }
    }
}

/// Cancels loads and campaigns (waiting up to `workloads_bound` for their reports),
/// stops the referee and the fault tasks. Returns the loads that finished.
async fn stop_tasks(mut tasks: Tasks) -> Vec<FinishedLoad> {
    tasks.cancel.cancel();
    let mut finished = Vec::new();
    let _ = tokio::time::timeout(tasks.workloads_bound, async {
        while let Some(done) = tasks.workloads.join_next().await {
            if let Ok(loads) = done {
                finished.extend(loads);
            }
        }
    })
    .await;
    tasks.workloads.abort_all();
    tasks.referee.abort_all();
    tasks.faults.abort_all();
    while tasks.faults.join_next().await.is_some() {}
    while tasks.referee.join_next().await.is_some() {}
    finished
}

/// Journals why the timeline stopped early, if it did.
fn journal_abort(journal: &Journal, cause: Option<&AbortCause>) {
    let Some(c) = cause else { return };
    if let AbortCause::Guardrail { condition, detail } = c {
        journal.emit(Event::GuardrailTripped {
            condition: condition.clone(),
            detail: detail.clone(),
        });
    }
    journal.emit(Event::Aborted { cause: c.clone() });
}

/// One fault activity to run: when it starts and ends on the run's clock.
pub(super) struct FaultRun {
    pub(super) fault: livefire_spec::Fault,
    /// `timeline[i]`.
    pub(super) id: String,
    /// The display name: what the journal, the ledger and people see.
    pub(super) name: String,
    pub(super) at: Instant,
    pub(super) until: Instant,
}

/// Applies one fault at its time (write-ahead), and rolls it back at its end.
pub(super) async fn fault_task(
    run: FaultRun,
    targets: Targets,
    shared: Shared,
    cwd: String,
) -> FaultResult {
    tokio::time::sleep_until(run.at.into()).await;
    if test_hook_panics(&run.name) {
        panic!("test hook: activity `{}` panics on purpose", run.name);
    }
    let (activity, id, kind, until) = (
        run.name.clone(),
        run.id.clone(),
        run.fault.kind(),
        run.until,
    );
    shared.journal.emit(Event::ActivityStarted {
        activity: activity.clone(),
        kind: kind.into(),
        id: id.clone(),
    });
    // PostgreSQL as a detector: where its log and checksum counter stand before apply.
    let mut watch = livefire_faults::pg_watch::PgWatch::begin(&run.fault, &targets).await;
    if let Some(w) = &watch {
        for detector in w.detectors() {
            shared.journal.emit(Event::Watching {
                detector,
                kind: "postgresql".into(),
            });
        }
    }
    // Ledger write and apply happen in one blocking section that cannot be cancelled
    // half-way; rollback waits for `in_flight` to reach zero.
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let s = shared.clone();
    let applied = tokio::task::spawn_blocking(move || {
        let result = apply_one(
            &run.fault, &run.name, &run.id, run.until, &targets, &s, &cwd,
        );
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    })
    .await
    .map_err(|source| FaultTaskError::Join {
        activity: activity.clone(),
        source,
    })??;
    match (&mut watch, applied) {
        (Some(w), Some(ledger_id)) => {
            if let Some(undo) = shared.undo_of(ledger_id) {
                w.relation(&undo);
            }
            watch_postgres(w, &shared.journal, until).await;
        }
        (Some(w), None) => watch_postgres(w, &shared.journal, until).await,
        (None, _) => tokio::time::sleep_until(until.into()).await,
    }
    // A fault with nothing to undo (a command without `rollback`, a human curveball)
    // still ends at its time: readers of the journal (the game day's page, the review)
    // see its window close.
    if let Some(ledger_id) = applied {
        if test_hook_stalls(&activity) {
            // Blocks this runtime thread past the deadline, as a stalled engine would.
            std::thread::sleep(WATCHDOG_GRACE * 3);
        }
        if let Some(a) = shared.take(ledger_id) {
            let s = shared.clone();
            let _ = tokio::task::spawn_blocking(move || s.rollback(&a, "engine")).await;
        }
    }
    shared.journal.emit(Event::ActivityEnded {
        activity,
        kind: kind.into(),
        id,
    });
    Ok(())
}

/// Polls PostgreSQL each second until `until` (and once more then), journaling each
/// detector's first sign.
async fn watch_postgres(
    w: &mut livefire_faults::pg_watch::PgWatch,
    journal: &Journal,
    until: Instant,
) {
    loop {
        let done = Instant::now() >= until;
        for s in w.poll().await {
            journal.emit(Event::Noticed {
                detector: s.detector,
                kind: "postgresql".into(),
                how: s.how,
            });
        }
        if done {
            return;
        }
        let next = (Instant::now() + Duration::from_secs(1)).min(until);
        tokio::time::sleep_until(next.into()).await;
    }
}

/// Prepare, write the ledger, apply. Returns the ledger id to roll back at the end, if
/// anything needs undoing.
pub(super) fn apply_one(
    fault: &livefire_spec::Fault,
    // The display name (journal, ledger, people) and the id (`timeline[i]`).
    activity: &str,
    activity_id: &str,
    until: Instant,
    targets: &Targets,
    shared: &Shared,
    cwd: &str,
) -> Result<Option<u64>, FaultTaskError> {
    let prepared: Prepared = livefire_faults::prepare(fault, targets, activity).map_err(|e| {
        FaultTaskError::Prepare {
            activity: activity.into(),
            source: Box::new(e),
        }
    })?;
    let mut entry = None;
    if let Some(undo) = &prepared.undo {
        let id = shared
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(
                &crate::ledger::Activity {
                    name: activity,
                    id: activity_id,
                    display: activity,
                    kind: prepared.kind,
                },
                undo,
                &prepared.resources,
            )
            .map_err(|source| FaultTaskError::Ledger {
                activity: activity.into(),
                source,
            })?;
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
    let applying_ms = shared.journal.now_ms();
    match prepared.apply_until(Some(cwd), until) {
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
                applying_ms: Some(applying_ms),
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
        Err(e) => Err(FaultTaskError::Apply {
            activity: activity.into(),
            kind: prepared.kind,
            source: Box::new(e),
        }),
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
