//! `livefire agent`: one segment of a split run. It plans the experiment exactly as the
//! coordinator did (same file, variables, environment and seed), waits for the shared
//! start, runs its deterministic share of every load (send indexes and VUs `k` with
//! `k mod N = i`, so data rows follow) and of every campaign (operations `k mod N = i`,
//! the rate cap divided by N), and writes the protocol (`protocol::Line`) on stdout. It
//! applies no fault, judges no condition and writes no journal, ledger or run folder:
//! those are the coordinator's.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use livefire_core::window::WindowStore;
use livefire_load::Segment;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protocol::{DoneStatus, Line, PROTOCOL, RUNS_SLICE};
use crate::plan::{Activity, Body, Plan};

/// What `livefire agent` was asked to do.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub file: PathBuf,
    pub vars: Vec<(String, String)>,
    pub env: Option<String>,
    /// The coordinator's seed; without it, the file's `settings.seed` (a split run
    /// with a drawn seed would not split the same plan, so the coordinator passes it).
    pub seed: Option<u64>,
    /// `--segment i/N` as written.
    pub segment: String,
    /// `--start-at` as written (RFC 3339 UTC).
    pub start_at: String,
    /// Stop when stdin closes (a local coordinator holds the other end).
    pub watch_stdin: bool,
}

/// Why an agent did not run; nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Segment(#[from] livefire_load::config::SegmentError),
    #[error(
        "--start-at `{0}`: write the shared start as an RFC 3339 UTC time, e.g. 2026-12-03T14:00:00.000Z"
    )]
    StartAt(String),
    #[error(
        "--start-at {start}: the start time is {late_ms} ms in the past (now {now}): the coordinator must give a start time in the future; check this machine's clock"
    )]
    StartPassed {
        start: String,
        now: String,
        late_ms: u128,
    },
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error("{0}")]
    OpenFiles(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(
        "{} holds no variables (a JSON list of [name, value] pairs, as the coordinator writes it): run the same livefire version everywhere",
        super::launch::AGENT_VARS_ENV
    )]
    VarsEnv,
}

/// The variables the coordinator handed over in [`super::launch::AGENT_VARS_ENV`] (a
/// local coordinator does, so they are not on the agent's command line), then `vars`
/// (its `--var`s), which override them.
pub fn vars_with_env(vars: Vec<(String, String)>) -> Result<Vec<(String, String)>, AgentError> {
    let mut all: Vec<(String, String)> = match std::env::var(super::launch::AGENT_VARS_ENV) {
        Ok(text) => serde_json::from_str(&text).map_err(|_| AgentError::VarsEnv)?,
        Err(std::env::VarError::NotPresent) => Vec::new(),
        Err(std::env::VarError::NotUnicode(_)) => return Err(AgentError::VarsEnv),
    };
    all.extend(vars);
    Ok(all)
}

/// Checks the arguments, plans, then runs the segment to its end, writing the protocol
/// to `out`. An error returned here happened before anything was sent (the caller
/// writes it as a `done` line with status `failed`).
pub fn agent(opts: AgentOptions, out: Box<dyn Write + Send>) -> Result<DoneStatus, AgentError> {
    let segment = Segment::parse(&opts.segment)?;
    let vars = vars_with_env(opts.vars)?;
    let start_at = crate::clock::parse_rfc3339(&opts.start_at)
        .ok_or_else(|| AgentError::StartAt(opts.start_at.clone()))?;
    let plan = crate::plan::plan_with_seed(&opts.file, &vars, opts.env.as_deref(), opts.seed)?;
    // One open file per connection: this segment's share of the virtual users must fit.
    let limits =
        crate::workload::check_open_files(&plan, segment).map_err(AgentError::OpenFiles)?;
    // After planning, so a slow plan is caught too.
    let now = SystemTime::now();
    let Ok(wait) = start_at.duration_since(now) else {
        return Err(AgentError::StartPassed {
            start: crate::clock::rfc3339(start_at),
            now: crate::clock::rfc3339(now),
            late_ms: now.duration_since(start_at).unwrap_or_default().as_millis(),
        });
    };
    let start = Instant::now() + wait;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AgentError::Runtime)?;
    let status = rt.block_on(run_segment(
        plan,
        segment,
        start,
        opts.watch_stdin,
        limits,
        out,
    ));
    // The stdin watcher may sit in a blocking read: do not wait for it.
    rt.shutdown_background();
    Ok(status)
}

/// Runs the plan's loads and campaigns for one segment from `start`.
async fn run_segment(
    plan: Plan,
    segment: Segment,
    start: Instant,
    watch_stdin: bool,
    limits: Option<livefire_load::limits::OpenFiles>,
    out: Box<dyn Write + Send>,
) -> DoneStatus {
    let (tx, rx) = mpsc::unbounded_channel::<Line>();
    let cancel = CancellationToken::new();
    let writer = spawn_writer(rx, out, cancel.clone());
    let workloads = plan
        .activities
        .iter()
        .filter_map(|a| match &a.body {
            Body::Load(c) => Some(c.name.clone()),
            Body::Fuzz { metrics, .. } => Some(metrics.clone()),
            Body::Fault(_) => None,
        })
        .collect();
    let _ = tx.send(Line::Ready {
        protocol: PROTOCOL,
        segment: format!("{}/{}", segment.index + 1, segment.count),
        seed: plan.settings.seed,
        livefire: livefire_core::VERSION.into(),
        workloads,
        clock_ms: Some(unix_ms(SystemTime::now())),
        open_files: limits.map(|l| l.limit),
        open_files_was: limits.map(|l| l.was),
    });
    // Its clock until the start, so the coordinator can tell delivery delay from skew.
    let clock = {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(super::protocol::CLOCK_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                if Instant::now() >= start {
                    break;
                }
                let clock_ms = unix_ms(SystemTime::now());
                if tx.send(Line::Clock { clock_ms }).is_err() {
                    break;
                }
            }
        })
    };
    let stop = spawn_stop_listeners(watch_stdin, cancel.clone());
    let store = Arc::new(WindowStore::new());
    let mut tasks = tokio::task::JoinSet::new();
    for a in &plan.activities {
        let ctx = Ctx {
            tx: tx.clone(),
            cancel: cancel.clone(),
            start,
            segment,
        };
        match &a.body {
            Body::Fault(_) => {}
            Body::Load(config) => {
                tasks.spawn(load(ctx, a.clone(), (**config).clone(), store.clone()));
            }
            Body::Fuzz {
                metrics, config, ..
            } => {
                tasks.spawn(campaign(
                    ctx,
                    a.clone(),
                    metrics.clone(),
                    (**config).clone(),
                ));
            }
        }
    }
    let sent = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let emitter = tokio::spawn(emit_windows(store.clone(), start, sent.clone(), tx.clone()));
    while tasks.join_next().await.is_some() {}
    clock.abort();
    emitter.abort();
    let _ = emitter.await;
    // Every window not sent yet, the last partial seconds included.
    send_windows(
        &store,
        u64::MAX,
        &mut sent.lock().unwrap_or_else(|p| p.into_inner()),
        &tx,
    );
    let _ = tx.send(Line::Watermark { second: u64::MAX });
    let status = if cancel.is_cancelled() {
        DoneStatus::Stopped
    } else {
        DoneStatus::Ok
    };
    let _ = tx.send(Line::Done {
        status,
        message: String::new(),
    });
    drop(tx);
    stop.abort();
    let _ = writer.await;
    status
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What each activity of the segment shares.
struct Ctx {
    tx: mpsc::UnboundedSender<Line>,
    cancel: CancellationToken,
    start: Instant,
    segment: Segment,
}

impl Ctx {
    /// Waits for the activity's start; false if stopped first.
    async fn wait_for(&self, a: &Activity) -> bool {
        tokio::select! {
            _ = tokio::time::sleep_until((self.start + a.start).into()) => true,
            _ = self.cancel.cancelled() => false,
        }
    }

    fn started(&self, a: &Activity) -> u64 {
        let started_ms = self.start.elapsed().as_millis() as u64;
        let _ = self.tx.send(Line::Started {
            activity: a.name.clone(),
            id: a.id.clone(),
            kind: a.kind.into(),
            started_ms,
        });
        started_ms
    }
}

/// This segment's share of a load: `LoadConfig::segment` splits sends and VUs.
async fn load(
    ctx: Ctx,
    a: Activity,
    mut config: livefire_load::LoadConfig,
    store: Arc<WindowStore>,
) {
    if !ctx.wait_for(&a).await {
        return;
    }
    ctx.started(&a);
    config.segment = ctx.segment;
    let name = config.name.clone();
    // Tracked writes: their keys and outcomes go to the coordinator as they come, so
    // those of a segment that dies are read back and measured too.
    let writes = crate::workload::tracks_writes(&config)
        .then(|| Arc::new(livefire_load::WriteLog::sliced(ctx.start, RUNS_SLICE)));
    let read = Arc::new(std::sync::Mutex::new(WritesRead::default()));
    let streaming = writes.clone().map(|log| {
        let task = stream_writes(name.clone(), log, read.clone(), ctx.tx.clone());
        tokio::spawn(task)
    });
    let result = livefire_load::run_with_writes(
        config,
        ctx.start,
        ctx.cancel.clone(),
        store,
        writes.clone(),
    )
    .await;
    if let (Some(task), Some(log)) = (streaming, writes) {
        // Aborted between two sends (it only yields while it sleeps); the rest now.
        task.abort();
        let _ = task.await;
        send_writes(
            &name,
            &log,
            &mut read.lock().unwrap_or_else(|p| p.into_inner()),
            &ctx.tx,
        );
    }
    match result {
        Ok(report) => {
            let _ = ctx.tx.send(Line::LoadEnded { load: name, report });
        }
        Err(e) => {
            let _ = ctx.tx.send(Line::Warning {
                message: format!("load `{name}` could not run: {e}"),
            });
        }
    }
}

/// How far a load's keys and runs have been sent.
#[derive(Default)]
struct WritesRead {
    keys: livefire_load::KeysRead,
    runs: livefire_load::RunsRead,
}

/// Sends the keys `log` recorded since `read`, in lines of at most `WRITES_BATCH`, then
/// its runs if they changed (the keys first: a run's acknowledged writes are then all
/// known to the coordinator).
fn send_writes(
    load: &str,
    log: &livefire_load::WriteLog,
    read: &mut WritesRead,
    tx: &mpsc::UnboundedSender<Line>,
) {
    loop {
        let keys = log.keys_since(&mut read.keys, super::protocol::WRITES_BATCH);
        if keys.is_empty() {
            break;
        }
        let _ = tx.send(Line::Writes {
            load: load.to_owned(),
            keys,
        });
    }
    if let Some(runs) = log.runs_since(&mut read.runs) {
        let _ = tx.send(Line::WriteOutcomes {
            load: load.to_owned(),
            runs,
        });
    }
}

/// Sends a load's new keys and runs at its start and then four times a second until
/// aborted; then the caller sends the rest from where `read` got.
async fn stream_writes(
    load: String,
    log: Arc<livefire_load::WriteLog>,
    read: Arc<std::sync::Mutex<WritesRead>>,
    tx: mpsc::UnboundedSender<Line>,
) {
    loop {
        send_writes(
            &load,
            &log,
            &mut read.lock().unwrap_or_else(|p| p.into_inner()),
            &tx,
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// This segment's share of a campaign: the operations `k mod N = i`, at `rate / N`.
async fn campaign(ctx: Ctx, a: Activity, name: String, config: livefire_fuzz::FuzzConfig) {
    if !ctx.wait_for(&a).await {
        return;
    }
    let spec = match livefire_fuzz::spec::load(&config.spec).await {
        Ok(spec) => spec,
        Err(e) => {
            let _ = ctx.tx.send(Line::Warning {
                message: format!("fuzz `{name}` could not run: {e}"),
            });
            return;
        }
    };
    let spec = share_of_operations(spec, ctx.segment);
    if spec.operations.is_empty() {
        let _ = ctx.tx.send(Line::Warning {
            message: format!(
                "fuzz `{name}`: segment {}/{} has no operation to fuzz (fewer operations than segments)",
                ctx.segment.index + 1,
                ctx.segment.count
            ),
        });
        return;
    }
    let started_ms = ctx.started(&a);
    let config = livefire_fuzz::FuzzConfig {
        epoch: Some(Instant::now()),
        rate: config.rate.map(|r| r / ctx.segment.count as f64),
        ..config
    };
    let tx = ctx.tx.clone();
    let campaign = name.clone();
    let on_finding = move |finding: livefire_fuzz::Finding| {
        let _ = tx.send(Line::Finding {
            campaign: campaign.clone(),
            started_ms,
            finding,
        });
    };
    match livefire_fuzz::run_spec(spec, config, ctx.cancel.clone(), on_finding).await {
        Ok(summary) => {
            let _ = ctx.tx.send(Line::CampaignEnded {
                campaign: name,
                started_ms,
                ended_ms: ctx.start.elapsed().as_millis() as u64,
                summary,
            });
        }
        Err(e) => {
            let _ = ctx.tx.send(Line::Warning {
                message: format!("fuzz `{name}` could not run: {e}"),
            });
        }
    }
}

/// The operations of segment `i` of `N`: those at positions `k mod N = i`.
pub fn share_of_operations(
    mut spec: livefire_fuzz::spec::Spec,
    segment: Segment,
) -> livefire_fuzz::spec::Spec {
    let mut k = 0u64;
    spec.operations.retain(|_| {
        let mine = segment.owns(k);
        k += 1;
        mine
    });
    spec
}

/// How long after a second ends its windows are final: the load's ticker publishes a
/// second 2 ms after it ends.
const SETTLE: Duration = Duration::from_millis(100);

/// Sends each complete second's windows, then a watermark, four times a second.
async fn emit_windows(
    store: Arc<WindowStore>,
    start: Instant,
    sent: Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
    tx: mpsc::UnboundedSender<Line>,
) {
    let mut mark = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(since) = Instant::now().checked_duration_since(start + SETTLE) else {
            continue;
        };
        let complete = since.as_secs();
        send_windows(
            &store,
            complete,
            &mut sent.lock().unwrap_or_else(|p| p.into_inner()),
            &tx,
        );
        if complete > mark {
            mark = complete;
            let _ = tx.send(Line::Watermark { second: mark });
        }
    }
}

/// Sends every window of the seconds before `before` not sent yet.
fn send_windows(
    store: &WindowStore,
    before: u64,
    sent: &mut std::collections::BTreeMap<String, u64>,
    tx: &mpsc::UnboundedSender<Line>,
) {
    // Aliases (the one request of a load, kept as the load) are not sent: the
    // coordinator knows them from the same plan.
    for series in store.stored_series() {
        let next = sent.get(&series).copied().unwrap_or(0);
        let mut last = None;
        // Only the seconds not sent yet are decoded: decoding every stored second each
        // time would grow with the run's length.
        for (second, window) in store.windows(&series, next, before) {
            let _ = tx.send(Line::Window {
                series: series.clone(),
                second,
                window,
            });
            last = Some(second + 1);
        }
        if let Some(l) = last {
            sent.insert(series, l);
        }
    }
}

/// Writes lines to stdout as they come, flushing each; a closed stdout (the
/// coordinator is gone) stops the segment.
fn spawn_writer(
    mut rx: mpsc::UnboundedReceiver<Line>,
    mut out: Box<dyn Write + Send>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        while let Some(line) = rx.blocking_recv() {
            let text = line.to_json();
            if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
                cancel.cancel();
                // Keep draining so senders never block; nothing more can be written.
                while rx.blocking_recv().is_some() {}
                return;
            }
        }
    })
}

/// Stops the segment on SIGTERM, SIGINT, SIGHUP, or (with `watch_stdin`) when stdin
/// closes.
fn spawn_stop_listeners(
    watch_stdin: bool,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        use tokio::signal::unix::{SignalKind, signal};
        let mut signals = Vec::new();
        for kind in [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::hangup(),
        ] {
            if let Ok(s) = signal(kind) {
                signals.push(s);
            }
        }
        let stdin_closed = async {
            if !watch_stdin {
                return std::future::pending::<()>().await;
            }
            let mut stdin = tokio::io::stdin();
            let mut buf = [0u8; 256];
            while let Ok(n) = stdin.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        let any_signal = async {
            let waits = signals.iter_mut().map(|s| Box::pin(s.recv()));
            futures_select_all(waits.collect()).await;
        };
        tokio::select! {
            _ = stdin_closed => {}
            _ = any_signal => {}
        }
        cancel.cancel();
    })
}

/// Resolves when the first of `futures` does (never, for none).
async fn futures_select_all<F: std::future::Future + Unpin>(mut futures: Vec<F>) {
    if futures.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        for f in futures.iter_mut() {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}
