//! The run loop: setup, the hypothesis before, the timeline on one clock with the
//! referee and guardrails watching, rollback of every applied fault newest first on
//! every way out, the `rollbacks:` steps, the hypothesis after, teardown, summary.

mod hypothesis;
mod referee;
mod rollback;
mod setup;
mod shared;
mod teardown;
mod timeline;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livefire_core::events::{AbortCause, Event, Phase};
use livefire_core::metrics::MetricSource;
use livefire_faults::Targets;
use livefire_spec::{Experiment, ProcessSelector, Target};
use tokio::sync::mpsc;

use crate::journal::Journal;
use crate::ledger::Ledger;
use crate::{clock, plan};

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
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit_code: i32,
    pub run_dir: Option<PathBuf>,
}

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
    let options = livefire_spec::Options {
        vars: opts.vars.clone(),
        env: opts.env.clone(),
        every_environment: false,
        built: Some(plan::built()),
    };
    let loaded = match livefire_spec::load_file_with(&opts.file, &options) {
        Ok(l) => l,
        Err(e) => {
            eprint!("{e}");
            if !matches!(e, livefire_spec::LoadError::Invalid(_)) {
                eprintln!();
            }
            return Outcome {
                exit_code: 3,
                run_dir: None,
            };
        }
    };
    // A plan may be looked at without confirming: only a run needs it.
    let confirmed = loaded.confirm(opts.confirm.as_deref());
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
    if let Err(e) = confirmed {
        return invalid(e);
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
            Ok(c) => fuzzes.push((
                a.at.0,
                name,
                livefire_fuzz::FuzzConfig {
                    secrets: secrets.clone(),
                    ..c
                },
            )),
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
        livefire: livefire_core::VERSION.into(),
        planned_ms: planned.as_millis() as u64,
    });
    journal.emit(crate::journal_plan::plan_event(&exp));
    crate::journal_plan::index_run(&journal, &run_id, &run_dir, &exp.title);
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
                journal.emit(Event::SetupFailed { message: msg });
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
    let rollback_notice = rollback::roll_back_everything(&shared, &exp, &cwd_str, abort_rx).await;

    if !setup_failed && aborted.is_none() && !verdict_deviated {
        journal.emit(Event::PhaseStarted {
            phase: Phase::After,
        });
        let settle = exp
            .settings
            .settle
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(30));
        let (ok, after) = check_after(&exp, &journal, &cwd_str, settle, opts.view).await;
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
    hypothesis::read_writes_back(&finished_loads, &store, &journal).await;
    if !finished_loads.is_empty() && judge_facts(&exp, &journal, &metrics) {
        deviated.store(true, Ordering::SeqCst);
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
    };
    teardown::stop_everything(&shared, started).await;
    let facts = teardown::Facts {
        setup_failed,
        aborted,
        deviated: verdict_deviated || deviated.load(Ordering::SeqCst),
        failing_findings: failing_findings.load(Ordering::SeqCst),
    };
    let (verdict, exit_code) = teardown::decide(shared, &facts);
    let found = std::mem::take(&mut *findings.lock().unwrap_or_else(|p| p.into_inner()));
    let reasons = teardown::write_outputs(&run_dir, &exp, &found, facts.failing_findings);
    teardown::print_verdict(verdict, exit_code, &reasons, &run_dir);
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
