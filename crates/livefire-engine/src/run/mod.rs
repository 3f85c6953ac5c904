//! The run loop: setup, the hypothesis before, the timeline on one clock with the
//! referee and guardrails watching, rollback of every applied fault newest first on
//! every way out, the `rollbacks:` steps, the hypothesis after, teardown, summary.

mod hypothesis;
mod noticed;
mod referee;
mod rollback;
mod setup;
mod shared;
mod teardown;
mod timeline;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use livefire_core::events::{AbortCause, Event, Phase};
use livefire_core::exit::Exit;
use livefire_core::metrics::MetricSource;
use tokio::sync::mpsc;

use crate::clock;
use crate::journal::Journal;
use crate::ledger::Ledger;
use crate::plan::{Plan, Secret};

use hypothesis::{check_after, check_before, judge_facts};
use setup::{SetupError, start_proxies, start_setup};
use shared::Shared;
use timeline::{During, Findings, during};

/// What `livefire run` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub file: PathBuf,
    pub vars: Vec<(String, String)>,
    /// Parent folder of run folders (overrides `settings.out`).
    pub out: Option<PathBuf>,
    pub dry_run: bool,
    /// `--env NAME`: the environment of the file to resolve for.
    pub env: Option<String>,
    /// `--confirm production`: needed by an environment with `production: true`.
    pub confirm: Option<String>,
    /// How progress is shown while the run goes on.
    pub view: crate::view::View,
    /// Serve live metrics in the Prometheus text format at `GET /metrics` here.
    pub metrics_listen: Option<String>,
    /// Something that runs beside the run from its first event to its last
    /// (`livefire gameday`'s responders' page); none for `livefire run`.
    pub attach: Option<Attach>,
}

/// What runs beside a run: called once the run folder and journal exist and the
/// `run_started` and `plan` events are written, before anything is applied. What it
/// returns is kept until the run has ended (its verdict written), then dropped: a
/// server it started stops then.
#[derive(Clone)]
pub struct Attach(pub Arc<AttachFn>);

/// The function an [`Attach`] holds.
pub type AttachFn = dyn Fn(Attached<'_>) -> Box<dyn Send> + Send + Sync;

impl std::fmt::Debug for Attach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attach(..)")
    }
}

/// The run an [`Attach`] is given: its id and folder, the journal to add its own events
/// to (a responder's mark), and the plan.
#[derive(Clone, Copy)]
pub struct Attached<'a> {
    pub run_id: &'a str,
    pub run_dir: &'a Path,
    pub journal: &'a Journal,
    pub plan: &'a Plan,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `Verdict::exit` of the run's verdict (`Exit::Ok` for `--dry-run`).
    pub exit: Exit,
    pub run_dir: Option<PathBuf>,
}

/// Why a run did not start; nothing was applied and `livefire run` exits 3.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The file did not plan: invalid, unreadable, or asks for what is not built.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// A production environment without `--confirm production`.
    #[error(transparent)]
    NotConfirmed(#[from] livefire_spec::FlagError),
    /// A target cannot be used now: nothing was applied.
    #[error("{0} (nothing was applied)")]
    Target(#[from] TargetError),
    /// The run folder, its journal or the ledger cannot be written: nothing was applied.
    #[error(transparent)]
    Folder(#[from] FolderError),
    /// Refused before anything was applied: a port, the runtime.
    #[error("{0}")]
    Refused(String),
}

/// Why a declared target cannot be used now.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Process(#[from] livefire_faults::process::ProcessError),
    #[error("target `{name}`: {path} is not a directory: name an existing directory")]
    NotADirectory { name: String, path: String },
    #[error("activity `{activity}`: {source}")]
    Activity {
        activity: String,
        source: Box<livefire_faults::FaultError>,
    },
    #[error("target `{name}`: {source}")]
    Netns {
        name: String,
        source: Box<livefire_faults::net::NetError>,
    },
    #[error("target `{name}`: {source}")]
    Proxy {
        name: String,
        source: Box<livefire_faults::proxy::ProxyFaultError>,
    },
    /// A pending undo record in the ledger touches the target.
    #[error("{0}")]
    Held(Box<HeldTarget>),
}

/// A target that a pending undo record touches: the target as the file names it, the
/// resource, and the entry (its run, its activity for people, what its undo would do).
#[derive(Debug)]
pub struct HeldTarget {
    pub name: String,
    /// The resource for people: `pid 4242`, `path /srv/data`.
    pub what: String,
    pub run: String,
    pub activity: String,
    pub undo: String,
    /// The entry's id for `livefire recover --forget`.
    pub entry: String,
    /// Its run is going now (its control socket answers).
    pub active: bool,
}

impl std::fmt::Display for HeldTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let HeldTarget {
            name,
            what,
            run,
            activity,
            undo,
            entry,
            active,
        } = self;
        if *active {
            write!(
                f,
                "target `{name}` ({what}) is held by run {run}, going now: its `{activity}` is applied (its undo would {undo}): wait for it to end, or stop it with `livefire halt {run}`"
            )
        } else {
            write!(
                f,
                "target `{name}` ({what}) is held by run {run}, which left a pending undo in the ledger: its `{activity}` would {undo}: run `livefire recover` first (or, if you put it right by hand, `livefire recover --forget {entry} --reason \"...\"`)"
            )
        }
    }
}

/// Why the run folder could not be made; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error(
        "cannot create a run folder under {out}: {source}: pass `--out DIR` with a writable folder (nothing was applied)"
    )]
    Create {
        out: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the run folder {dir}: {source} (nothing was applied)")]
    Write {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot write the ledger under {home}: {source}: set LIVEFIRE_HOME to a writable folder (nothing was applied)"
    )]
    Ledger {
        home: PathBuf,
        source: std::io::Error,
    },
}

/// Runs an experiment to the end and returns how it ended, or why it did not start.
/// Builds its own runtime.
pub fn run(opts: RunOptions) -> Result<Outcome, RunError> {
    run_with(opts, None)
}

/// Runs an experiment split over `count` segments that `launcher` starts (`livefire run
/// --segments N --on ...`): the segments make the load and fuzz, this process owns the
/// faults, the ledger, the referee and the run folder.
pub fn run_split(
    opts: RunOptions,
    count: u32,
    launcher: Box<dyn crate::segments::Launcher>,
) -> Result<Outcome, RunError> {
    run_with(opts, Some((count, launcher)))
}

fn run_with(
    opts: RunOptions,
    split: Option<(u32, Box<dyn crate::segments::Launcher>)>,
) -> Result<Outcome, RunError> {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Err(RunError::Refused(format!("cannot start the runtime: {e}")));
        }
    };
    rt.block_on(run_async(opts, split))
}

fn slug(title: &str) -> String {
    let s: String = title
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s: Vec<&str> = s.split('-').filter(|p| !p.is_empty()).collect();
    s.join("-")
        .chars()
        .take(40)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

/// Creates `<out>/<UTC time>-<slug>[-N]/` and opens its ledger. The id must be new in
/// `$LIVEFIRE_HOME` too, not only in `out`: its ledger index is created only if absent,
/// so two runs of the same title started in the same second in different `--out`
/// folders get different ids, and so different control sockets and ledger indexes.
fn claim_run(out: &Path, title: &str) -> Result<(String, PathBuf, Ledger), FolderError> {
    let create = |source| FolderError::Create {
        out: out.to_owned(),
        source,
    };
    std::fs::create_dir_all(out).map_err(create)?;
    let base = format!("{}-{}", clock::stamp_now(), slug(title));
    for n in 1..1000 {
        let id = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = out.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(create(e)),
        }
        match Ledger::create(&id, &dir) {
            Ok(ledger) => return Ok((id, dir, ledger)),
            Err(e) => {
                // Still empty: the ledger writes its copy only once its index is claimed.
                let _ = std::fs::remove_dir(&dir);
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(FolderError::Ledger {
                        home: crate::home::home(),
                        source: e,
                    });
                }
            }
        }
    }
    Err(create(std::io::Error::other(
        "too many runs with the same name in the same second",
    )))
}

async fn run_async(
    opts: RunOptions,
    split: Option<(u32, Box<dyn crate::segments::Launcher>)>,
) -> Result<Outcome, RunError> {
    let mut plan = crate::plan::plan(&opts.file, &opts.vars, opts.env.as_deref())?;
    // A split run's refusals (N, min_alive, the back end) come
    // before the plan is printed or anything is applied.
    let mut split = match split {
        None => None,
        Some((count, launcher)) => Some(split_run(&opts, &plan, count, launcher).await?),
    };
    if let Some(out) = &opts.out {
        plan.settings.out = out.clone();
    }
    if opts.dry_run {
        print!("{}", crate::plan::render(&plan));
        if let Some(s) = &split {
            let split = crate::segments::split::render(&plan, s.spec.count).await;
            print!("{}", Secret::mask_all(&plan.secrets, split));
        }
        return Ok(Outcome {
            exit: Exit::Ok,
            run_dir: None,
        });
    }
    // A plan may be looked at without confirming: only a run needs it.
    plan.confirm(opts.confirm.as_deref())?;
    check_targets(&plan)?;
    // One open file per connection: a run on one machine holds its loads' virtual
    // users itself (a split run's segments check their own share).
    if split.is_none() {
        crate::workload::check_open_files(&plan, livefire_load::Segment::WHOLE)
            .map_err(RunError::Refused)?;
    }
    // The metrics port is taken now: one in use is an error before anything is applied.
    let metrics_listener = match &opts.metrics_listen {
        None => None,
        Some(addr) => match std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
        {
            Ok(l) => Some(l),
            Err(e) => {
                return Err(RunError::Refused(format!(
                    "--metrics-listen {addr}: {e}: pick a free address (nothing was applied)"
                )));
            }
        },
    };
    let folder = open_run_folder(&plan)?;
    if let Some(s) = &mut split {
        s.spec.run_id = folder.run_id.clone();
        s.spec.segments_dir = folder.run_dir.join("segments");
    }
    Ok(execute(
        &plan,
        folder,
        metrics_listener,
        opts.view,
        opts.attach,
        split,
    )
    .await)
}

/// Checks a split run before anything is applied and says what it will launch.
async fn split_run(
    opts: &RunOptions,
    plan: &Plan,
    count: u32,
    launcher: Box<dyn crate::segments::Launcher>,
) -> Result<crate::segments::coordinator::Split, RunError> {
    let refused = |m: String| RunError::Refused(m);
    crate::segments::launch::check_count(count).map_err(|e| refused(e.to_string()))?;
    let min_alive = plan
        .experiment
        .settings
        .segments
        .as_ref()
        .map(|s| s.min_alive)
        .unwrap_or(count);
    if min_alive > count {
        return Err(refused(format!(
            "settings.segments.min_alive is {min_alive} but --segments {count}: give at least {min_alive} segments or lower min_alive (nothing was applied)"
        )));
    }
    let text = std::fs::read_to_string(&opts.file).map_err(|e| {
        refused(format!(
            "cannot read {}: {e} (nothing was applied)",
            opts.file.display()
        ))
    })?;
    let spec = crate::segments::LaunchSpec {
        run_id: String::new(),
        file: std::path::absolute(&opts.file).unwrap_or_else(|_| opts.file.clone()),
        text,
        vars: opts.vars.clone(),
        env: opts.env.clone(),
        seed: plan.settings.seed,
        count,
        start_at: std::time::SystemTime::now(),
        secret_env: plan.secrets.iter().map(|s| s.name.clone()).collect(),
        segments_dir: PathBuf::new(),
    };
    launcher
        .check(&spec)
        .await
        .map_err(|e| refused(format!("{e} (nothing was applied)")))?;
    Ok(crate::segments::coordinator::Split {
        launcher,
        spec,
        min_alive,
        loads: crate::segments::coordinator::loads_of(plan),
    })
}

/// Resolves declared process targets (a missing pidfile or an unknown name is an
/// error), checks that a declared network namespace and an existing proxy server a fault
/// would change exist, and refuses a target of any kind that a pending undo in the
/// ledger touches (a crashed run's, or a run's going now).
/// Changes nothing.
fn check_targets(plan: &Plan) -> Result<(), TargetError> {
    let mut resolved = BTreeMap::new();
    for (name, t) in &plan.targets {
        if let Some(sel) = &t.process {
            let p = livefire_faults::process::resolve(name, sel)?;
            resolved.insert(name.clone(), p);
        }
    }
    for (name, t) in &plan.targets {
        if let Some(path) = &t.path
            && !std::path::Path::new(path).is_dir()
        {
            return Err(TargetError::NotADirectory {
                name: name.clone(),
                path: path.clone(),
            });
        }
    }
    // Each fault's own refusals (its attributes, its target's type) before anything is
    // applied; setup processes count as process targets of their name.
    let mut targets = livefire_faults::Targets {
        targets: plan.targets.clone(),
        ..Default::default()
    };
    for s in &plan.setup {
        targets
            .targets
            .entry(s.name.clone())
            .or_insert_with(|| livefire_spec::Target {
                process: Some(livefire_spec::ProcessSelector {
                    name: Some(s.name.clone()),
                    ..Default::default()
                }),
                restart: s.restart.clone(),
                ..Default::default()
            });
    }
    for a in &plan.activities {
        if let crate::plan::Body::Fault(f) = &a.body {
            livefire_faults::check(f, &targets).map_err(|source| TargetError::Activity {
                activity: a.name.clone(),
                source: Box::new(source),
            })?;
        }
    }
    for (name, t) in &plan.targets {
        if let Some(ns) = &t.netns
            && let Err(e) = livefire_faults::net::check_netns(ns)
        {
            return Err(TargetError::Netns {
                name: name.clone(),
                source: Box::new(e),
            });
        }
        if let Some(livefire_spec::ProxyTarget {
            api: Some(url),
            name: Some(proxy),
            ..
        }) = &t.proxy
            && let Err(e) = livefire_faults::proxy::check_exists(url, proxy)
        {
            return Err(TargetError::Proxy {
                name: name.clone(),
                source: Box::new(e),
            });
        }
    }
    // Every kind of target, by the resource it names (crate::held).
    let claims: Vec<crate::held::Claim> = plan
        .targets
        .iter()
        .filter_map(|(name, t)| crate::held::Claim::of(name, t, resolved.get(name).copied()))
        .chain(crate::held::machine_claims(plan))
        .collect();
    let pending = crate::ledger::pending_all();
    if let Some(held) = crate::held::in_ledger(&claims, &pending) {
        let (c, e) = (held.claim, held.entry);
        return Err(TargetError::Held(Box::new(HeldTarget {
            name: c.target.clone(),
            what: c.what.clone(),
            run: e.run_id.clone(),
            activity: e.label(),
            undo: e.record.describe(),
            entry: e.key(),
            active: crate::control::is_active(&e.run_id),
        })));
    }
    Ok(())
}

/// The run folder, its journal and its ledger, created before anything is applied.
struct RunFolder {
    run_id: String,
    run_dir: PathBuf,
    journal: Journal,
    ledger: Ledger,
}

/// Creates `<out>/<UTC time>-<slug>[-N]/` with its ledger, `experiment.yaml` (secrets
/// masked) and the journal.
fn open_run_folder(plan: &Plan) -> Result<RunFolder, FolderError> {
    let (run_id, run_dir, ledger) = claim_run(&plan.settings.out, &plan.title)?;
    let as_run = Secret::mask_all(
        &plan.secrets,
        serde_json::to_string_pretty(&plan.experiment).unwrap_or_default(),
    );
    let secrets: Vec<(String, String)> = plan
        .secrets
        .iter()
        .map(|s| (s.value.clone(), s.name.clone()))
        .collect();
    let journal = match std::fs::write(run_dir.join("experiment.yaml"), as_run + "\n")
        .and_then(|_| Journal::create(&run_dir.join("journal.jsonl"), Instant::now(), secrets))
    {
        Ok(journal) => journal,
        Err(source) => {
            // Nothing is pending: closing removes the index, freeing the id.
            ledger.close();
            return Err(FolderError::Write {
                dir: run_dir,
                source,
            });
        }
    };
    Ok(RunFolder {
        run_id,
        run_dir,
        journal,
        ledger,
    })
}

/// What the referee and the campaigns fill in while the run goes on.
struct Tally {
    store: Arc<livefire_core::window::WindowStore>,
    findings: Findings,
    metrics: Arc<Vec<Arc<dyn MetricSource>>>,
    /// The hypothesis deviated during the timeline or after it.
    deviated: Arc<AtomicBool>,
}

impl Tally {
    fn new(plan: &Plan) -> Tally {
        let store = Arc::new(livefire_core::window::WindowStore::new());
        let counts = Arc::new(crate::campaign::FindingCounts::default());
        let metrics: Arc<Vec<Arc<dyn MetricSource>>> =
            Arc::new(vec![crate::workload::source(&store), counts.clone()]);
        Tally {
            store,
            findings: Findings {
                counts,
                all: Arc::new(Mutex::new(Vec::new())),
                failing: Arc::new(AtomicUsize::new(0)),
                fail_on: plan.settings.fail_on,
            },
            metrics,
            deviated: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// The phases, in order: setup, before, during, rollback, after, teardown. Every way
/// out of setup, before and during goes through rollback.
async fn execute(
    plan: &Plan,
    folder: RunFolder,
    metrics_listener: Option<std::net::TcpListener>,
    view: crate::view::View,
    attach: Option<Attach>,
    split: Option<crate::segments::coordinator::Split>,
) -> Outcome {
    let RunFolder {
        run_id,
        run_dir,
        journal,
        ledger,
    } = folder;
    journal.emit(Event::RunStarted {
        run_id: run_id.clone(),
        title: plan.title.clone(),
        wall_start: clock::rfc3339_now(),
        seed: plan.settings.seed,
        livefire: livefire_core::VERSION.into(),
        planned_ms: plan.timeline_end().as_millis() as u64,
        open_files: livefire_load::limits::raise_open_files().map(|l| l.limit),
    });
    journal.emit(crate::journal_plan::plan_event(plan));
    crate::journal_plan::index_run(&journal, &run_id, &run_dir, &plan.title);
    // Kept until the verdict is written (dropped before it is printed).
    let attached = attach.map(|a| {
        (a.0)(Attached {
            run_id: &run_id,
            run_dir: &run_dir,
            journal: &journal,
            plan,
        })
    });
    let shared = Shared {
        journal: journal.clone(),
        ledger: Arc::new(Mutex::new(ledger)),
        active: Arc::new(Mutex::new(Vec::new())),
        in_flight: Arc::new(AtomicUsize::new(0)),
        live: Arc::new(Mutex::new(livefire_faults::proxy::Live::default())),
        history: Arc::new(Mutex::new(Vec::new())),
    };
    // Every way out sends its cause here: signals, `livefire halt`, guardrails,
    // max_duration, a panicking or failing activity.
    let (abort_tx, mut abort_rx) = mpsc::unbounded_channel::<AbortCause>();
    spawn_signal_listeners(abort_tx.clone());

    journal.emit(Event::PhaseStarted {
        phase: Phase::Setup,
    });
    let mut children: Vec<(String, Child)> = Vec::new();
    // The proxies the run owns start first: they connect to their upstream lazily, and
    // they die with the run, so a crash never leaves a toxic behind.
    let mut setup_error = start_proxies(plan, &shared).err().map(SetupError::Failed);
    if setup_error.is_none() {
        setup_error = start_setup(plan, &run_dir, &journal, &mut children, &mut abort_rx).await;
    }
    let targets = setup::fault_targets(plan, &children, &shared);
    let (control, socket, control_shared) = start_control(&run_id, &shared, &abort_tx);
    let (mut aborted, setup_failed) = match setup_error {
        None => (None, false),
        Some(SetupError::Aborted(cause)) => (Some(cause), false),
        Some(SetupError::Failed(failure)) => {
            tracing::error!("{failure} (nothing was applied)");
            journal.emit(Event::SetupFailed {
                message: failure.to_string(),
            });
            (None, true)
        }
    };
    let tally = Tally::new(plan);
    let exporter = metrics_listener.and_then(|l| start_exporter(l, plan, &shared, &tally));

    let mut before_failed = false;
    let mut finished_loads = Vec::new();
    if !setup_failed && aborted.is_none() {
        journal.emit(Event::PhaseStarted {
            phase: Phase::Before,
        });
        if !check_before(plan, &journal).await {
            tracing::warn!(
                "the hypothesis does not hold before the experiment: nothing was applied"
            );
            before_failed = true;
        }
    }
    if !setup_failed && aborted.is_none() && !before_failed {
        journal.emit(Event::PhaseStarted {
            phase: Phase::During,
        });
        let ctx = During {
            plan,
            targets: &targets,
            shared: &shared,
            metrics: &tally.metrics,
            store: &tally.store,
            findings: tally.findings.clone(),
            deviated: &tally.deviated,
            abort_tx: &abort_tx,
            view,
            split,
        };
        (aborted, finished_loads) = during(ctx, &mut abort_rx).await;
    }

    // Rollback: every way out comes through here.
    journal.emit(Event::PhaseStarted {
        phase: Phase::Rollback,
    });
    let rollback_notice = rollback::roll_back_everything(&shared, plan, abort_rx).await;

    if !setup_failed && aborted.is_none() && !before_failed {
        check_after_phase(plan, &journal, &tally, view).await;
    }
    // Read every tracked write back, after rollback and recovery (Jepsen's set checker),
    // then judge the conditions on `writes.*`, which only now have values.
    hypothesis::read_writes_back(&finished_loads, &tally.store, &journal).await;
    if !finished_loads.is_empty() && judge_facts(plan, &journal, &tally.metrics) {
        tally.deviated.store(true, Ordering::SeqCst);
    }

    journal.emit(Event::PhaseStarted {
        phase: Phase::Teardown,
    });
    let started = teardown::Started {
        children,
        exporter,
        rollback_notice,
        control,
        socket,
        control_shared,
    };
    teardown::stop_everything(&shared, started).await;
    if !setup_failed
        && aborted.is_none()
        && !before_failed
        && noticed::judge(plan, &run_dir, &journal)
    {
        tally.deviated.store(true, Ordering::SeqCst);
    }
    let facts = teardown::Facts {
        setup_failed,
        aborted,
        deviated: before_failed || tally.deviated.load(Ordering::SeqCst),
        failing_findings: tally.findings.failing.load(Ordering::SeqCst),
    };
    let (verdict, exit) = teardown::decide(shared, &facts);
    let found = std::mem::take(&mut *tally.findings.all.lock().unwrap_or_else(|p| p.into_inner()));
    let summary = teardown::write_outputs(&run_dir, plan, &found, facts.failing_findings);
    // What runs beside the run stops once the verdict is in the journal, before it is
    // printed: a full-screen terminal view gives the terminal back first.
    drop(attached);
    teardown::print_verdict(verdict, exit, summary.as_ref(), &run_dir);
    Outcome {
        exit,
        run_dir: Some(run_dir),
    }
}

/// The after phase: the hypothesis polled until it holds again or `settle` runs out.
async fn check_after_phase(plan: &Plan, journal: &Journal, tally: &Tally, view: crate::view::View) {
    journal.emit(Event::PhaseStarted {
        phase: Phase::After,
    });
    let (ok, after) = check_after(plan, journal, view).await;
    journal.emit(Event::Settled {
        ok,
        after_ms: after.as_millis() as u64,
    });
    if !ok {
        tally.deviated.store(true, Ordering::SeqCst);
    }
}

/// The control socket, so `livefire halt` from another shell aborts the run, `status`
/// names the active faults and `end curveball N` ends a game day's curveball early.
/// Without one the run goes on (Ctrl-C still works).
fn start_control(
    run_id: &str,
    shared: &Shared,
    abort_tx: &mpsc::UnboundedSender<AbortCause>,
) -> (Option<tokio::task::JoinHandle<()>>, PathBuf, Arc<Shared>) {
    let (halt_tx, mut halt_rx) = mpsc::unbounded_channel::<Option<String>>();
    let socket = crate::home::active_dir().join(format!("{run_id}.sock"));
    let status_active = shared.active.clone();
    let status_id = run_id.to_owned();
    // The socket's task only borrows the run's state: the teardown drops the one strong
    // reference, so the ledger is the run's alone again when it is closed.
    let control_shared = Arc::new(shared.clone());
    let ender = Arc::downgrade(&control_shared);
    let control = std::fs::create_dir_all(crate::home::active_dir()).and_then(|_| {
        crate::control::serve(
            &socket,
            halt_tx,
            move || {
                let active = status_active.lock().unwrap_or_else(|p| p.into_inner());
                let names: Vec<String> = active.iter().map(|a| a.activity.clone()).collect();
                format!(
                    "run {status_id}: active faults: {}",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                )
            },
            move |n| match ender.upgrade() {
                Some(shared) => end_curveball(&shared, n),
                None => {
                    format!("the run is ending: curveball {n} is rolled back with everything else")
                }
            },
        )
    });
    let control = match control {
        Ok(h) => Some(h),
        Err(e) => {
            shared.journal.emit(Event::Warning {
                message: format!(
                    "no control socket ({e}): `livefire halt` cannot reach this run; Ctrl-C still works"
                ),
            });
            None
        }
    };
    let halt_abort = abort_tx.clone();
    tokio::spawn(async move {
        if let Some(from) = halt_rx.recv().await {
            let _ = halt_abort.send(AbortCause::Halt { from });
        }
    });
    (control, socket, control_shared)
}

/// Rolls back curveball `n` now, if it is active: the facilitator ended it early. The
/// rollback is journaled (`fault_rolled_back` by `facilitator`); the curveball's task
/// finds nothing left to undo at its drawn end. Blocking.
fn end_curveball(shared: &Shared, n: u32) -> String {
    let prefix = format!("curveball {n}:");
    let found = shared
        .active
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|a| a.activity.starts_with(&prefix))
        .map(|a| a.ledger_id);
    match found.and_then(|id| shared.take(id)) {
        Some(a) if shared.rollback(&a, "facilitator") => {
            format!("ended `{}` early: rolled back", a.activity)
        }
        Some(a) => format!(
            "`{}` could not be rolled back: it stays in the ledger; `livefire halt` rolls back everything, `livefire recover` after the run",
            a.activity
        ),
        None => format!(
            "curveball {n} is not active (not started yet, already ended, or not drawn): `status` names the active faults"
        ),
    }
}

/// Serves `--metrics-listen` from what the referee sees.
fn start_exporter(
    listener: std::net::TcpListener,
    plan: &Plan,
    shared: &Shared,
    tally: &Tally,
) -> Option<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::from_std(listener).ok()?;
    let active = shared.active.clone();
    let sources = crate::prom::Sources {
        metrics: tally.metrics.clone(),
        loads: plan.load_names(),
        campaigns: plan.fuzz_names(),
        active: Arc::new(move || {
            active
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|a| a.activity.clone())
                .collect()
        }),
        deviated: tally.deviated.clone(),
        journal: shared.journal.clone(),
    };
    Some(tokio::spawn(crate::prom::serve(listener, sources)))
}

fn spawn_signal_listeners(tx: mpsc::UnboundedSender<AbortCause>) {
    use tokio::signal::unix::{SignalKind, signal};
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT (Ctrl-C)"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ] {
        let tx = tx.clone();
        match signal(kind) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx
                            .send(AbortCause::Signal {
                                signal: name.into(),
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
            Err(e) => tracing::error!("cannot listen for {name}: {e}"),
        }
    }
}
