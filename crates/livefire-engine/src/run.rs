//! The run loop: setup, the hypothesis before, the timeline on one clock with the
//! referee and guardrails watching, rollback of every applied fault newest first on
//! every way out, the `rollbacks:` steps, the hypothesis after, teardown, summary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livefire_core::events::{AbortCause, Event, Phase, Role, Verdict};
use livefire_core::metrics::MetricSource;
use livefire_core::undo::UndoRecord;
use livefire_faults::{Prepared, Targets};
use livefire_spec::{Condition, Experiment, ProcessSelector, Ready, Target};
use tokio::sync::mpsc;

use crate::journal::Journal;
use crate::ledger::Ledger;
use crate::{clock, plan, probe};

/// What `livefire run` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub file: PathBuf,
    pub vars: Vec<(String, String)>,
    /// Parent folder of run folders (overrides `settings.out`).
    pub out: Option<PathBuf>,
    pub dry_run: bool,
    /// How progress is shown while the run goes on.
    pub view: crate::view::View,
    /// Serve live metrics in the Prometheus text format at `GET /metrics` here.
    pub metrics_listen: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit_code: i32,
    pub run_dir: Option<PathBuf>,
}

/// A grace period past a fault's deadline after which the watchdog rolls it back.
const WATCHDOG_GRACE: Duration = Duration::from_secs(2);
/// Attempts per rollback before it is left in the ledger.
const ROLLBACK_ATTEMPTS: u32 = 3;

fn invalid(msg: impl std::fmt::Display) -> Outcome {
    eprintln!("livefire: {msg}");
    Outcome {
        exit_code: 3,
        run_dir: None,
    }
}

/// Runs an experiment to the end and returns its exit code. Builds its own runtime.
pub fn run(opts: RunOptions) -> Outcome {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return invalid(format!("cannot start the runtime: {e}")),
    };
    rt.block_on(run_async(opts))
}

/// A fault applied and not yet rolled back.
#[derive(Debug, Clone)]
struct Active {
    ledger_id: u64,
    activity: String,
    kind: String,
    undo: UndoRecord,
    deadline: Instant,
}

/// One fault window: activity, applied and rolled back (run-clock ms).
type FaultWindow = (String, u64, Option<u64>);

/// State shared by the engine, the fault tasks and the watchdog.
#[derive(Clone)]
struct Shared {
    journal: Journal,
    ledger: Arc<Mutex<Ledger>>,
    active: Arc<Mutex<Vec<Active>>>,
    in_flight: Arc<AtomicUsize>,
    /// The proxies this run owns (started in setup, dropped at teardown).
    live: Arc<Mutex<livefire_faults::proxy::Live>>,
    /// Every fault window so far: activity, applied and rolled back (run-clock ms).
    history: Arc<Mutex<Vec<FaultWindow>>>,
}

impl Shared {
    /// Rolls back one entry (retrying), clears it from the ledger on success, and
    /// journals the outcome. Blocking.
    fn rollback(&self, a: &Active, by: &str) -> bool {
        let mut last = String::new();
        for attempt in 1..=ROLLBACK_ATTEMPTS {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match livefire_faults::undo_with(&a.undo, Some(&live)) {
                Ok(detail) => {
                    if let Err(e) = self
                        .ledger
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .done(a.ledger_id)
                    {
                        eprintln!(
                            "livefire: rolled back `{}` but cannot write the ledger: {e}",
                            a.activity
                        );
                    }
                    let now = self.journal.now_ms();
                    if let Some(w) = self
                        .history
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter_mut()
                        .rev()
                        .find(|w| w.0 == a.activity && w.2.is_none())
                    {
                        w.2 = Some(now);
                    }
                    self.journal.emit(Event::FaultRolledBack {
                        activity: a.activity.clone(),
                        kind: a.kind.clone(),
                        ok: true,
                        detail,
                        by: by.into(),
                    });
                    return true;
                }
                Err(e) => {
                    last = e.to_string();
                    if attempt < ROLLBACK_ATTEMPTS {
                        std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                    }
                }
            }
        }
        eprintln!(
            "livefire: ROLLBACK FAILED for `{}` ({}): {last}\nlivefire: it stays in the ledger; run `livefire recover` once the cause is fixed",
            a.activity,
            a.undo.describe()
        );
        self.journal.emit(Event::FaultRolledBack {
            activity: a.activity.clone(),
            kind: a.kind.clone(),
            ok: false,
            detail: last,
            by: by.into(),
        });
        false
    }

    /// Takes an entry out of the active list, so exactly one party rolls it back.
    fn take(&self, ledger_id: u64) -> Option<Active> {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let i = active.iter().position(|a| a.ledger_id == ledger_id)?;
        Some(active.remove(i))
    }
}

/// Replaces `${env:NAME}` in every string of the experiment; returns the secrets
/// (value, name) so the journal can mask them. An unset variable is an error.
fn resolve_env(exp: &Experiment) -> Result<(Experiment, Vec<(String, String)>), String> {
    let mut value = serde_json::to_value(exp).map_err(|e| e.to_string())?;
    let mut secrets = Vec::new();
    let mut missing = Vec::new();
    fn walk(v: &mut serde_json::Value, f: &mut dyn FnMut(&mut String)) {
        match v {
            serde_json::Value::String(s) => f(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|v| walk(v, f)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|v| walk(v, f)),
            _ => {}
        }
    }
    walk(&mut value, &mut |s: &mut String| {
        while let Some(start) = s.find("${env:") {
            let Some(len) = s[start..].find('}') else {
                break;
            };
            let name = s[start + 6..start + len].to_owned();
            match std::env::var(&name) {
                Ok(v) => {
                    secrets.push((v.clone(), name));
                    s.replace_range(start..start + len + 1, &v);
                }
                Err(_) => {
                    missing.push(name);
                    break;
                }
            }
        }
    });
    if !missing.is_empty() {
        missing.sort();
        missing.dedup();
        return Err(format!(
            "environment variable(s) not set: {}: export them before the run",
            missing.join(", ")
        ));
    }
    let exp = serde_json::from_value(value).map_err(|e| e.to_string())?;
    Ok((exp, secrets))
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

/// Creates `<out>/<UTC time>-<slug>[-N]/`.
fn create_run_dir(out: &Path, title: &str) -> std::io::Result<(String, PathBuf)> {
    std::fs::create_dir_all(out)?;
    let base = format!("{}-{}", clock::stamp_now(), slug(title));
    for n in 1..1000 {
        let id = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = out.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "too many runs with the same name in the same second",
    ))
}

async fn run_async(opts: RunOptions) -> Outcome {
    let loaded = match livefire_spec::load_file(&opts.file, &opts.vars) {
        Ok(l) => l,
        Err(e) => {
            eprint!("{e}");
            if matches!(e, livefire_spec::LoadError::Read { .. }) {
                eprintln!();
            }
            return Outcome {
                exit_code: 3,
                run_dir: None,
            };
        }
    };
    let written = loaded.experiment;
    let missing = plan::not_built(&written);
    if !missing.is_empty() {
        return invalid(format!(
            "{}: cannot run: this livefire does not build these yet (nothing was applied):\n  - {}",
            opts.file.display(),
            missing.join("\n  - ")
        ));
    }
    if opts.dry_run {
        print!("{}", plan::render(&written));
        return Outcome {
            exit_code: 0,
            run_dir: None,
        };
    }
    let (exp, secrets) = match resolve_env(&written) {
        Ok(x) => x,
        Err(e) => return invalid(e),
    };
    let cwd = opts
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."));
    let cwd_str = cwd.to_string_lossy().into_owned();
    let seed = exp.settings.seed.unwrap_or_else(rand::random);
    // Loads are built now: a missing or malformed data file is an error before anything
    // is applied.
    let mut loads = Vec::new();
    for (i, name) in crate::workload::load_names(&exp) {
        let a = &exp.timeline[i];
        let Some(l) = &a.load else { continue };
        match crate::workload::config(&name, l, a.for_.0, &cwd, seed) {
            Ok(c) => loads.push((a.at.0, c)),
            Err(e) => return invalid(format!("{e} (nothing was applied)")),
        }
    }
    let mut fuzzes = Vec::new();
    for (i, name) in crate::campaign::fuzz_names(&exp) {
        let a = &exp.timeline[i];
        let Some(f) = &a.fuzz else { continue };
        match crate::campaign::config(&name, f, a.for_.0, &cwd, seed) {
            Ok(c) => fuzzes.push((a.at.0, name, c)),
            Err(e) => return invalid(format!("{e} (nothing was applied)")),
        }
    }

    // Resolve declared process targets now: a missing pidfile or an unknown name is a
    // setup error, before anything is applied.
    let mut resolved = BTreeMap::new();
    for (name, t) in &exp.targets {
        if let Some(sel) = &t.process {
            match livefire_faults::process::resolve(name, sel) {
                Ok(p) => {
                    resolved.insert(name.clone(), p);
                }
                Err(e) => return invalid(format!("{e} (nothing was applied)")),
            }
        }
    }
    // An existing proxy server a fault would change must exist now.
    for (name, t) in &exp.targets {
        if let Some(livefire_spec::ProxyTarget {
            api: Some(url),
            name: Some(proxy),
            ..
        }) = &t.proxy
            && let Err(e) = livefire_faults::proxy::check_exists(url, proxy)
        {
            return invalid(format!("target `{name}`: {e} (nothing was applied)"));
        }
    }
    // Refuse to touch a target a crashed run left a pending undo on.
    let pending = crate::ledger::pending_all();
    for (name, p) in &resolved {
        let res = livefire_faults::process::resource(*p);
        if let Some(entry) = pending.iter().find(|e| e.resources.contains(&res)) {
            return invalid(format!(
                "target `{name}` (pid {}) still has a pending undo from run {} (activity `{}`: {}): run `livefire recover` first (nothing was applied)",
                p.pid,
                entry.run_id,
                entry.activity,
                entry.record.describe()
            ));
        }
    }

    // The metrics port is taken now: one in use is an error before anything is applied.
    let metrics_listener = match &opts.metrics_listen {
        None => None,
        Some(addr) => match std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
        {
            Ok(l) => Some(l),
            Err(e) => {
                return invalid(format!(
                    "--metrics-listen {addr}: {e}: pick a free address (nothing was applied)"
                ));
            }
        },
    };
    let out = opts
        .out
        .clone()
        .or_else(|| exp.settings.out.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".livefire/runs"));
    let (run_id, run_dir) = match create_run_dir(&out, &exp.title) {
        Ok(x) => x,
        Err(e) => {
            return invalid(format!(
                "cannot create a run folder under {}: {e}: pass `--out DIR` with a writable folder (nothing was applied)",
                out.display()
            ));
        }
    };
    let mask = |text: String| {
        secrets.iter().fold(text, |t, (v, n)| {
            if v.is_empty() {
                t
            } else {
                t.replace(v.as_str(), &format!("${{env:{n}}}"))
            }
        })
    };
    let as_run = mask(serde_json::to_string_pretty(&exp).unwrap_or_default());
    let start = Instant::now();
    let journal = match std::fs::write(run_dir.join("experiment.yaml"), as_run + "\n")
        .and_then(|_| Journal::create(&run_dir.join("journal.jsonl"), start, secrets.clone()))
    {
        Ok(j) => j,
        Err(e) => {
            return invalid(format!(
                "cannot write the run folder {}: {e} (nothing was applied)",
                run_dir.display()
            ));
        }
    };
    let ledger = match Ledger::create(&run_id, &run_dir) {
        Ok(l) => l,
        Err(e) => {
            return invalid(format!(
                "cannot write the ledger under {}: {e}: set LIVEFIRE_HOME to a writable folder (nothing was applied)",
                crate::home::home().display()
            ));
        }
    };
    let planned = plan::timeline_end(&exp);
    journal.emit(Event::RunStarted {
        run_id: run_id.clone(),
        title: exp.title.clone(),
        wall_start: clock::rfc3339_now(),
        seed,
        livefire: env!("CARGO_PKG_VERSION").into(),
        planned_ms: planned.as_millis() as u64,
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

    let mut verdict_deviated = false;
    let mut finished_loads: Vec<(livefire_load::LoadConfig, livefire_load::LoadReport)> =
        Vec::new();
    let mut aborted: Option<AbortCause> = None;

    journal.emit(Event::PhaseStarted {
        phase: Phase::Setup,
    });
    let mut children: Vec<(String, Child)> = Vec::new();
    // The proxies the run owns start first: they connect to their upstream lazily, and
    // they die with the run, so a crash never leaves a toxic behind.
    let mut setup_error = start_proxies(&exp, &shared).err().map(SetupError::Failed);
    if setup_error.is_none() {
        setup_error = start_setup(
            &exp,
            &cwd_str,
            &run_dir,
            &journal,
            &mut children,
            &mut abort_rx,
        )
        .await;
    }
    let mut targets = Targets {
        targets: exp.targets.clone(),
        cwd: Some(cwd_str.clone()),
        seed,
        live: shared
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
    };
    for (name, child) in &children {
        let restart = exp
            .setup
            .iter()
            .find(|s| &s.name == name)
            .and_then(|s| s.restart.clone());
        targets.targets.insert(
            name.clone(),
            Target {
                process: Some(ProcessSelector {
                    pid: Some(child.id()),
                    ..Default::default()
                }),
                restart,
                ..Default::default()
            },
        );
    }

    // The control socket: `livefire halt` from another shell.
    let (halt_tx, mut halt_rx) = mpsc::unbounded_channel::<()>();
    let socket = crate::home::active_dir().join(format!("{run_id}.sock"));
    let status_active = shared.active.clone();
    let status_id = run_id.clone();
    let control = match std::fs::create_dir_all(crate::home::active_dir()).and_then(|_| {
        crate::control::serve(&socket, halt_tx, move || {
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
        })
    }) {
        Ok(h) => Some(h),
        Err(e) => {
            journal.emit(Event::Warning { message: format!("no control socket ({e}): `livefire halt` cannot reach this run; Ctrl-C still works") });
            None
        }
    };
    let halt_abort = abort_tx.clone();
    tokio::spawn(async move {
        if halt_rx.recv().await.is_some() {
            let _ = halt_abort.send(AbortCause::Halt);
        }
    });

    let mut setup_failed = false;
    if let Some(err) = setup_error {
        match err {
            SetupError::Aborted(cause) => aborted = Some(cause),
            SetupError::Failed(msg) => {
                eprintln!("livefire: {msg} (nothing was applied)");
                journal.emit(Event::Warning { message: msg });
                setup_failed = true;
            }
        }
    }

    let store = Arc::new(livefire_core::window::WindowStore::new());
    let finding_counts = Arc::new(crate::campaign::FindingCounts::default());
    let findings: Arc<Mutex<Vec<livefire_fuzz::Finding>>> = Arc::new(Mutex::new(Vec::new()));
    let failing_findings = Arc::new(AtomicUsize::new(0));
    let metrics: Arc<Vec<Arc<dyn MetricSource>>> = Arc::new(vec![
        crate::workload::source(&store),
        finding_counts.clone(),
    ]);
    let deviated = Arc::new(AtomicBool::new(false));
    let exporter = metrics_listener
        .and_then(|l| tokio::net::TcpListener::from_std(l).ok())
        .map(|listener| {
            let active = shared.active.clone();
            let sources = crate::prom::Sources {
                metrics: metrics.clone(),
                loads: crate::workload::load_names(&exp)
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect(),
                campaigns: crate::campaign::fuzz_names(&exp)
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect(),
                active: Arc::new(move || {
                    active
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .map(|a| a.activity.clone())
                        .collect()
                }),
                deviated: deviated.clone(),
                journal: journal.clone(),
            };
            tokio::spawn(crate::prom::serve(listener, sources))
        });
    if !setup_failed && aborted.is_none() {
        journal.emit(Event::PhaseStarted {
            phase: Phase::Before,
        });
        if !check_before(&exp, &journal, &cwd_str).await {
            eprintln!(
                "livefire: the hypothesis does not hold before the experiment: nothing was applied"
            );
            verdict_deviated = true;
        }
    }
    if !setup_failed && aborted.is_none() && !verdict_deviated {
        journal.emit(Event::PhaseStarted {
            phase: Phase::During,
        });
        let ctx = During {
            exp: &exp,
            targets: &targets,
            shared: &shared,
            metrics: &metrics,
            store: &store,
            loads,
            fuzzes,
            findings: Findings {
                counts: finding_counts.clone(),
                all: findings.clone(),
                failing: failing_findings.clone(),
                fail_on: exp.settings.fail_on,
            },
            deviated: &deviated,
            abort_tx: &abort_tx,
            view: opts.view,
            cwd: &cwd_str,
        };
        let (cause, loads_done) = during(ctx, &mut abort_rx).await;
        aborted = cause;
        finished_loads = loads_done;
    }

    // Rollback: every way out comes through here.
    journal.emit(Event::PhaseStarted {
        phase: Phase::Rollback,
    });
    let rollback_notice = tokio::spawn(async move {
        while let Some(cause) = abort_rx.recv().await {
            if let AbortCause::Signal { signal } = cause {
                eprintln!(
                    "livefire: {signal} received during rollback: rollback continues until every fault is undone"
                );
            }
        }
    });
    let wait_start = Instant::now();
    while shared.in_flight.load(Ordering::SeqCst) > 0
        && wait_start.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut pending: Vec<Active> =
        std::mem::take(&mut *shared.active.lock().unwrap_or_else(|p| p.into_inner()));
    pending.sort_by_key(|a| std::cmp::Reverse(a.ledger_id));
    for a in pending {
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || s.rollback(&a, "engine")).await;
    }
    for (i, step) in exp.rollbacks.iter().enumerate() {
        let livefire_spec::RollbackStep::Command(c) = step;
        let (run, user, cwd, timeout) = (
            c.run.clone(),
            c.user.clone(),
            cwd_str.clone(),
            c.timeout.map(|d| d.as_millis()).unwrap_or(30_000),
        );
        let r = tokio::task::spawn_blocking(move || {
            livefire_faults::exec::run(&run, user.as_deref(), Some(&cwd), timeout)
                .and_then(|o| o.check())
        })
        .await;
        let (ok, detail) = match r {
            Ok(Ok(())) => (true, "exited 0".to_string()),
            Ok(Err(e)) => (false, e.to_string()),
            Err(e) => (false, e.to_string()),
        };
        if !ok {
            eprintln!("livefire: rollback step {} failed: {detail}", i + 1);
        }
        journal.emit(Event::RollbackStep {
            step: c.run.clone(),
            ok,
            detail,
        });
    }

    if !setup_failed && aborted.is_none() && !verdict_deviated {
        journal.emit(Event::PhaseStarted {
            phase: Phase::After,
        });
        let settle = exp
            .settings
            .settle
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(30));
        let (ok, after) = check_after(&exp, &journal, &cwd_str, settle).await;
        journal.emit(Event::Settled {
            ok,
            after_ms: after.as_millis() as u64,
        });
        if !ok {
            deviated.store(true, Ordering::SeqCst);
        }
    }

    // Read every tracked write back, after rollback and recovery (Jepsen's set checker),
    // then judge the conditions on `writes.*`, which only now have values.
    for (config, report) in &finished_loads {
        if !crate::workload::tracks_writes(config) {
            continue;
        }
        match livefire_load::verify_writes(config, report, &store, 8).await {
            Ok(counts) => {
                if counts.lost > 0 {
                    eprintln!(
                        "livefire: load `{}`: {} acknowledged write(s) lost",
                        config.name, counts.lost
                    );
                }
                journal.emit(Event::Writes {
                    load: config.name.clone(),
                    counts: serde_json::to_value(counts).unwrap_or_default(),
                });
            }
            Err(e) => journal.emit(Event::Warning {
                message: format!("load `{}`: cannot read writes back: {e}", config.name),
            }),
        }
    }
    if !finished_loads.is_empty() && judge_facts(&exp, &journal, &metrics) {
        deviated.store(true, Ordering::SeqCst);
    }

    journal.emit(Event::PhaseStarted {
        phase: Phase::Teardown,
    });
    stop_setup(&mut children, &journal).await;
    if let Some(e) = &exporter {
        e.abort();
    }
    // The run's proxies stop with it.
    shared
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .proxies
        .clear();
    rollback_notice.abort();
    if let Some(c) = control {
        c.abort();
    }
    let _ = std::fs::remove_file(&socket);

    let left = shared
        .ledger
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pending();
    let verdict = if left > 0 {
        Verdict::RollbackIncomplete
    } else if aborted.is_some() {
        Verdict::Aborted
    } else if verdict_deviated
        || deviated.load(Ordering::SeqCst)
        || failing_findings.load(Ordering::SeqCst) > 0
    {
        Verdict::Deviated
    } else {
        Verdict::Held
    };
    let exit_code = if setup_failed && left == 0 {
        3
    } else {
        verdict.exit_code()
    };
    if let Some(cause) = &aborted {
        eprintln!(
            "livefire: aborted: {}; every fault was rolled back{}",
            cause.describe(),
            if left > 0 {
                " except what stays in the ledger"
            } else {
                ""
            }
        );
    }
    journal.emit(Event::RunEnded {
        verdict,
        exit_code,
        ledger_left: left,
    });
    if let Ok(l) = Arc::try_unwrap(shared.ledger) {
        l.into_inner().unwrap_or_else(|p| p.into_inner()).close();
    }
    // summary.json, report.html, junit.xml: the same function as `livefire report`.
    let found = std::mem::take(&mut *findings.lock().unwrap_or_else(|p| p.into_inner()));
    if !found.is_empty() {
        let spec_uri = exp
            .timeline
            .iter()
            .find_map(|a| a.fuzz.as_ref().map(|f| f.openapi.clone()))
            .unwrap_or_default();
        let sarif = livefire_fuzz::sarif::to_sarif(&found, &spec_uri, None);
        if let Err(e) = std::fs::write(
            run_dir.join("findings.sarif"),
            serde_json::to_string_pretty(&sarif).unwrap_or_default(),
        ) {
            eprintln!("livefire: cannot write findings.sarif: {e}");
        }
        let failing = failing_findings.load(Ordering::SeqCst);
        eprintln!(
            "livefire: {} finding(s), {failing} at or above the failing severity; see findings.sarif",
            found.len()
        );
    }
    if let Err(e) = livefire_report::write_outputs(&run_dir) {
        eprintln!("livefire: {e}");
    }
    let word = match verdict {
        Verdict::Held => "held",
        Verdict::Deviated => "deviated",
        Verdict::Aborted => "aborted",
        Verdict::RollbackIncomplete => "rollback incomplete: run `livefire recover`",
    };
    println!("verdict: {word} (exit {exit_code})");
    println!("run folder: {}", run_dir.display());
    Outcome {
        exit_code,
        run_dir: Some(run_dir),
    }
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
            Err(e) => eprintln!("livefire: cannot listen for {name}: {e}"),
        }
    }
}

/// Judges the conditions on whole-run facts (`<load>.writes.*`, `failover.write_gap`)
/// once, after the
/// read-back. Returns true when one does not hold.
fn judge_facts(exp: &Experiment, journal: &Journal, metrics: &[Arc<dyn MetricSource>]) -> bool {
    let mut failed = false;
    for (role, list) in [
        (Role::Hypothesis, &exp.hypothesis),
        (Role::Guardrail, &exp.guardrails),
    ] {
        for (i, c) in list.iter().enumerate() {
            let (Some(metric), Some((cmp, bound))) = (&c.metric, c.comparisons().first().copied())
            else {
                continue;
            };
            if !(metric.contains(".writes.") || metric == "failover.write_gap") {
                continue;
            }
            let name = cond_name(c, role, i);
            let Some(value) = metrics.iter().find_map(|m| m.value(metric, 0, u64::MAX)) else {
                journal.emit(Event::Warning {
                    message: format!("`{name}`: {metric} has no value (no write was tracked)"),
                });
                continue;
            };
            let ok = cmp.holds(value, bound.value());
            journal.emit(Event::Metric {
                condition: name.clone(),
                role,
                phase: Phase::After,
                ok,
                value: Some(value),
                bound: bound.value(),
                metric: metric.clone(),
                comparison: cmp.name().into(),
            });
            if !ok {
                failed = true;
                let detail = format!("{metric} = {value}, expected {} {bound}", cmp.name());
                eprintln!("livefire: `{name}` does not hold: {detail}");
                journal.emit(Event::Deviation {
                    condition: name,
                    phase: Phase::After,
                    detail,
                });
            }
        }
    }
    failed
}

/// Starts the proxies the run owns (`proxy: { listen, upstream }` targets).
fn start_proxies(exp: &Experiment, shared: &Shared) -> Result<(), String> {
    for (name, t) in &exp.targets {
        let Some(livefire_spec::ProxyTarget {
            listen: Some(listen),
            upstream: Some(upstream),
            ..
        }) = &t.proxy
        else {
            continue;
        };
        let config =
            livefire_proxy::ProxyConfig::new(name.clone(), listen.clone(), upstream.clone());
        let proxy =
            livefire_proxy::Proxy::start_with(config, tokio_util::sync::CancellationToken::new())
                .map_err(|e| format!("proxy target `{name}`: {e}"))?;
        shared.journal.emit(Event::ProxyStarted {
            name: name.clone(),
            listen: listen.clone(),
            upstream: upstream.clone(),
        });
        shared
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .proxies
            .insert(listen.clone(), Arc::new(proxy));
    }
    Ok(())
}

enum SetupError {
    Failed(String),
    Aborted(AbortCause),
}

async fn start_setup(
    exp: &Experiment,
    cwd: &str,
    run_dir: &Path,
    journal: &Journal,
    children: &mut Vec<(String, Child)>,
    abort_rx: &mut mpsc::UnboundedReceiver<AbortCause>,
) -> Option<SetupError> {
    for s in &exp.setup {
        let log = run_dir.join(format!("setup-{}.log", s.name));
        let file = match std::fs::File::create(&log) {
            Ok(f) => f,
            Err(e) => {
                return Some(SetupError::Failed(format!(
                    "cannot create {}: {e}",
                    log.display()
                )));
            }
        };
        // `exec` so the pid livefire holds is the process itself, not a shell.
        let simple = !s.command.contains([';', '&', '|', '\n', '(', '`', '$']);
        let command = if simple {
            format!("exec {}", s.command)
        } else {
            s.command.clone()
        };
        // If the ready address answers before the process starts, something else holds
        // it: waiting for "ready" would judge the wrong process.
        if let Some(ready) = &s.ready {
            let (probe, expect) = ready_probe(ready);
            if probe::sample(&probe, &expect, Some(cwd)).await.ok {
                let addr = match ready {
                    Ready::Http(h) => h.url.clone(),
                    Ready::Tcp(t) => t.address.clone(),
                };
                return Some(SetupError::Failed(format!(
                    "setup `{}`: {addr} already answers before the process started: something else holds that port; stop it or change the port",
                    s.name
                )));
            }
        }
        let dir = s.cwd.clone().unwrap_or_else(|| cwd.to_owned());
        let mut cmd = match livefire_faults::exec::shell(&command, s.user.as_deref(), Some(&dir)) {
            Ok(c) => c,
            Err(e) => return Some(SetupError::Failed(format!("setup `{}`: {e}", s.name))),
        };
        cmd.envs(&s.env);
        let err = file
            .try_clone()
            .map(std::process::Stdio::from)
            .unwrap_or_else(|_| std::process::Stdio::null());
        die_with_livefire(&mut cmd);
        let child = match cmd.stdout(file).stderr(err).spawn() {
            Ok(c) => c,
            Err(e) => {
                return Some(SetupError::Failed(format!(
                    "setup `{}`: cannot start `{}`: {e}",
                    s.name, s.command
                )));
            }
        };
        journal.emit(Event::SetupStarted {
            name: s.name.clone(),
            pid: child.id(),
        });
        children.push((s.name.clone(), child));
        let timeout = s.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(10));
        let deadline = Instant::now() + timeout;
        let Some(ready) = &s.ready else { continue };
        loop {
            let (probe, expect) = ready_probe(ready);
            let sample = probe::sample(&probe, &expect, Some(cwd)).await;
            if sample.ok {
                break;
            }
            let (_, child) = children.last_mut().expect("pushed above");
            if let Ok(Some(status)) = child.try_wait() {
                return Some(SetupError::Failed(format!(
                    "setup `{}` exited ({status}) before it was ready; see {}",
                    s.name,
                    log.display()
                )));
            }
            if Instant::now() >= deadline {
                return Some(SetupError::Failed(format!(
                    "setup `{}` was not ready within {} ({}); see {}",
                    s.name,
                    livefire_spec::values::Duration(timeout),
                    sample.detail,
                    log.display()
                )));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                Some(cause) = abort_rx.recv() => return Some(SetupError::Aborted(cause)),
            }
        }
    }
    None
}

/// Makes a setup process die with livefire even when livefire is killed with SIGKILL,
/// so a crash never leaves the experiment's own processes holding their ports. (What
/// the faults changed is the ledger's business; `livefire recover` undoes it.)
#[allow(unsafe_code)]
fn die_with_livefire(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and only makes the
    // prctl(PR_SET_PDEATHSIG) system call, which is async-signal-safe; it allocates
    // nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

/// The probe that says a setup process is ready.
fn ready_probe(ready: &Ready) -> (livefire_spec::Probe, livefire_spec::Expect) {
    let timeout = Some(livefire_spec::values::Duration::from_millis(500));
    match ready {
        Ready::Http(h) => (
            livefire_spec::Probe::Http(livefire_spec::HttpProbe {
                url: h.url.clone(),
                method: None,
                headers: Default::default(),
                body: None,
                timeout,
            }),
            livefire_spec::Expect::default(),
        ),
        Ready::Tcp(t) => (
            livefire_spec::Probe::Tcp(livefire_spec::TcpProbe {
                address: t.address.clone(),
                timeout,
            }),
            livefire_spec::Expect {
                ok: Some(true),
                ..Default::default()
            },
        ),
    }
}

/// Stops setup processes: resume (a paused one cannot die of SIGTERM), SIGTERM to its
/// process group, then SIGKILL after 3 s.
async fn stop_setup(children: &mut [(String, Child)], journal: &Journal) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    for (name, child) in children.iter_mut().rev() {
        let pg = Pid::from_raw(child.id() as i32);
        let _ = killpg(pg, Signal::SIGCONT);
        let _ = killpg(pg, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = killpg(pg, Signal::SIGKILL);
                    let _ = child.wait();
                    break;
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        journal.emit(Event::SetupStopped { name: name.clone() });
    }
}

fn cond_name(c: &Condition, role: Role, i: usize) -> String {
    c.name.clone().unwrap_or_else(|| match role {
        Role::Hypothesis => format!("hypothesis[{i}]"),
        Role::Guardrail => format!("guardrails[{i}]"),
    })
}

/// One sample of every hypothesis probe, journaled; the failures by condition name.
async fn sample_hypothesis(
    exp: &Experiment,
    journal: &Journal,
    cwd: &str,
    phase: Phase,
) -> Vec<(String, String)> {
    let mut failures = Vec::new();
    for (i, c) in exp.hypothesis.iter().enumerate() {
        let (Some(p), Some(e)) = (&c.probe, &c.expect) else {
            continue;
        };
        let s = probe::sample(p, e, Some(cwd)).await;
        let name = cond_name(c, Role::Hypothesis, i);
        journal.emit(Event::Probe {
            condition: name.clone(),
            role: Role::Hypothesis,
            phase,
            ok: s.ok,
            detail: s.detail.clone(),
            latency_ms: s.latency.as_secs_f64() * 1e3,
        });
        if !s.ok {
            failures.push((name, s.detail));
        }
    }
    failures
}

/// One sample of every hypothesis probe; false if any fails.
async fn check_before(exp: &Experiment, journal: &Journal, cwd: &str) -> bool {
    let failures = sample_hypothesis(exp, journal, cwd, Phase::Before).await;
    for (name, detail) in &failures {
        eprintln!("livefire: before: `{name}` does not hold: {detail}");
        journal.emit(Event::Deviation {
            condition: name.clone(),
            phase: Phase::Before,
            detail: detail.clone(),
        });
    }
    failures.is_empty()
}

/// Polls the hypothesis probes until all hold in one round, or `settle` runs out.
async fn check_after(
    exp: &Experiment,
    journal: &Journal,
    cwd: &str,
    settle: Duration,
) -> (bool, Duration) {
    let start = Instant::now();
    loop {
        let failures = sample_hypothesis(exp, journal, cwd, Phase::After).await;
        if failures.is_empty() {
            return (true, start.elapsed());
        }
        if start.elapsed() >= settle {
            for (name, detail) in failures {
                eprintln!("livefire: after: `{name}` did not hold again within settle: {detail}");
                journal.emit(Event::Deviation {
                    condition: name,
                    phase: Phase::After,
                    detail,
                });
            }
            return (false, start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Where campaigns' findings go.
#[derive(Clone)]
struct Findings {
    counts: Arc<crate::campaign::FindingCounts>,
    all: Arc<Mutex<Vec<livefire_fuzz::Finding>>>,
    /// Findings at or above `settings.fail_on`.
    failing: Arc<AtomicUsize>,
    fail_on: Option<livefire_spec::FailOn>,
}

/// What the timeline phase works with.
struct During<'a> {
    exp: &'a Experiment,
    targets: &'a Targets,
    shared: &'a Shared,
    metrics: &'a Arc<Vec<Arc<dyn MetricSource>>>,
    store: &'a Arc<livefire_core::window::WindowStore>,
    /// Each load's start offset and config.
    loads: Vec<(Duration, livefire_load::LoadConfig)>,
    /// Each campaign's start offset, name and config.
    fuzzes: Vec<(Duration, String, livefire_fuzz::FuzzConfig)>,
    findings: Findings,
    deviated: &'a Arc<AtomicBool>,
    abort_tx: &'a mpsc::UnboundedSender<AbortCause>,
    view: crate::view::View,
    cwd: &'a str,
}

/// The timeline with the referee. Returns the abort cause, if the run was aborted.
async fn during(
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
        let activity = name.clone();
        let handle = tasks.spawn(async move {
            fault_task(fault, activity, at, until, targets, shared, cwd).await
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
            let (journal, tx, deviated, metrics, cwd) = (
                shared.journal.clone(),
                abort_tx.clone(),
                deviated.clone(),
                metrics.clone(),
                cwd.to_owned(),
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
                )
                .await
            });
        }
    }
    if view != crate::view::View::Quiet {
        let (active, deviated, metrics, journal) = (
            shared.active.clone(),
            deviated.clone(),
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
                    deviated: deviated.load(Ordering::SeqCst),
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
    if view == crate::view::View::Tty {
        eprintln!();
    }
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
async fn fault_task(
    fault: livefire_spec::Fault,
    activity: String,
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
    shared.journal.emit(Event::ActivityStarted {
        activity: activity.clone(),
        kind: fault.kind().into(),
    });
    // Ledger write and apply happen in one blocking section that cannot be cancelled
    // half-way; rollback waits for `in_flight` to reach zero.
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let s = shared.clone();
    let act = activity.clone();
    let applied = tokio::task::spawn_blocking(move || {
        let result = apply_one(&fault, &act, until, &targets, &s, &cwd);
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
        kind: String::new(),
    });
    Ok(())
}

/// Prepare, write the ledger, apply. Returns the ledger id to roll back at the end, if
/// anything needs undoing.
fn apply_one(
    fault: &livefire_spec::Fault,
    activity: &str,
    until: Instant,
    targets: &Targets,
    shared: &Shared,
    cwd: &str,
) -> Result<Option<u64>, String> {
    let prepared: Prepared = livefire_faults::prepare(fault, targets, activity)
        .map_err(|e| format!("activity `{activity}`: {e}"))?;
    let mut entry = None;
    if let Some(undo) = &prepared.undo {
        let id = shared
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(activity, undo, &prepared.resources)
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
fn test_hook_stalls(activity: &str) -> bool {
    cfg!(debug_assertions) && std::env::var("LIVEFIRE_TEST_STALL").is_ok_and(|v| v == activity)
}

fn test_hook_panics(activity: &str) -> bool {
    cfg!(debug_assertions) && std::env::var("LIVEFIRE_TEST_PANIC").is_ok_and(|v| v == activity)
}

/// Watches one condition during the timeline: samples it, journals each sample, marks
/// deviations, and trips guardrails.
#[allow(clippy::too_many_arguments)]
async fn watch_condition(
    c: Condition,
    name: String,
    role: Role,
    default_every: Duration,
    during_start: Instant,
    journal: Journal,
    abort: mpsc::UnboundedSender<AbortCause>,
    deviated: Arc<AtomicBool>,
    metrics: Arc<Vec<Arc<dyn MetricSource>>>,
    cwd: String,
) {
    let every = c.every.map(|d| d.0).unwrap_or(default_every);
    let mut failing_since: Option<Instant> = None;
    let mut reported = false;
    // A fixed cadence from the start, whatever each sample takes.
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (ok, detail) = if let (Some(p), Some(e)) = (&c.probe, &c.expect) {
            let s = probe::sample(p, e, Some(&cwd)).await;
            journal.emit(Event::Probe {
                condition: name.clone(),
                role,
                phase: Phase::During,
                ok: s.ok,
                detail: s.detail.clone(),
                latency_ms: s.latency.as_secs_f64() * 1e3,
            });
            (Some(s.ok), s.detail)
        } else if let (Some(metric), Some((cmp, bound))) =
            (&c.metric, c.comparisons().first().copied())
        {
            let now = Instant::now();
            let window = match (role, c.for_) {
                (_, Some(d)) => d.0,
                (Role::Guardrail, None) => Duration::from_secs(1),
                (Role::Hypothesis, None) => now - during_start,
            };
            // Judge complete one-second windows only: the window ends at the last whole
            // second, so "the last second" is the one that just finished.
            let to = now.duration_since(journal.start()).as_millis() as u64 / 1000 * 1000;
            let from = to.saturating_sub(window.as_millis().max(1000) as u64);
            match metrics.iter().find_map(|m| m.value(metric, from, to)) {
                // No data yet: not judged.
                None => (None, String::new()),
                Some(v) => {
                    let ok = cmp.holds(v, bound.value());
                    journal.emit(Event::Metric {
                        condition: name.clone(),
                        role,
                        phase: Phase::During,
                        ok,
                        value: Some(v),
                        bound: bound.value(),
                        metric: metric.clone(),
                        comparison: cmp.name().into(),
                    });
                    (
                        Some(ok),
                        format!("{metric} = {v}, expected {} {bound}", cmp.name()),
                    )
                }
            }
        } else {
            (None, String::new())
        };
        match ok {
            Some(true) => {
                failing_since = None;
                reported = false;
            }
            Some(false) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                let failing = since.elapsed();
                match role {
                    Role::Hypothesis => {
                        let tolerate = c.tolerate.map(|d| d.0).unwrap_or_default();
                        if failing >= tolerate && !reported {
                            reported = true;
                            deviated.store(true, Ordering::SeqCst);
                            journal.emit(Event::Deviation {
                                condition: name.clone(),
                                phase: Phase::During,
                                detail: detail.clone(),
                            });
                        }
                    }
                    Role::Guardrail => {
                        // A metric guardrail's `for` is its window (judged over it); a
                        // probe guardrail's `for` is how long it must fail in a row.
                        let need = if c.probe.is_some() {
                            c.for_.map(|d| d.0).unwrap_or_default()
                        } else {
                            Duration::ZERO
                        };
                        if failing >= need {
                            let _ = abort.send(AbortCause::Guardrail {
                                condition: name.clone(),
                                detail,
                            });
                            return;
                        }
                    }
                }
            }
            None => {}
        }
    }
}
