//! Runs the server starts: each one a child `livefire run` process with the server's
//! `$LIVEFIRE_HOME`, so the ledger, `livefire recover` and `livefire halt` apply to it as
//! to any run. A run is refused before it starts when a target it names is still held:
//! by an undo record in the ledger, or by a run this server has going.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::auth::Caller;
use crate::store::{RunRow, Store, StoreError};

/// Starts, watches and stops the server's runs.
#[derive(Debug)]
pub struct Runner {
    /// The `livefire` program the runs are started with.
    exe: PathBuf,
    data: PathBuf,
    store: Arc<Store>,
    /// Runs going now, by run id (or by a placeholder while one starts): the targets
    /// they hold.
    live: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Held while a run starts, until its folder exists.
    starting: tokio::sync::Mutex<()>,
    /// The runs' journals being streamed (live.rs): one tail per run.
    pub hubs: crate::live::Hubs,
}

/// What to run: an uploaded experiment, for one of its environments, with variables;
/// and who asked, as the run index and the audit log name them.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub experiment: String,
    /// `livefire run --env`: one of the file's `environments:`.
    pub env: Option<String>,
    /// `livefire run --var NAME=VALUE`, in order.
    pub vars: Vec<(String, String)>,
    /// `alice (operator)`, or `schedule NAME` for a schedule's firing.
    pub by: String,
}

/// Why a run was not started; nothing was applied.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no experiment named `{0}`: upload it first (PUT /api/experiments/{0})")]
    NoExperiment(String),
    /// The experiment does not load: located diagnostics.
    #[error("{}", .0)]
    Invalid(livefire_spec::diag::Report),
    #[error("{0}")]
    Refused(String),
    /// A target is held by another run (still going, or with an undo in the ledger).
    #[error(
        "target `{target}` is held by run {run} ({why}): wait for it to end, stop it, or run `livefire recover`"
    )]
    Held {
        target: String,
        run: String,
        why: String,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot start `livefire run`: {0}")]
    Spawn(std::io::Error),
}

/// Why a run cannot be stopped.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("no run `{0}`: GET /api/runs lists them")]
    Unknown(String),
    #[error("run `{0}` has ended already; nothing to stop")]
    Ended(String),
    #[error(
        "cannot reach run {id}'s control socket ({source}); if it crashed, run `livefire recover`"
    )]
    Socket { id: String, source: std::io::Error },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// One undo record a run still holds in the ledger.
#[derive(Debug, Clone, Serialize)]
pub struct PendingUndo {
    pub entry: String,
    pub activity: String,
    pub undo: String,
}

/// What the server found of runs a previous server left going, and what it did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Lines for the operator (stderr).
    pub lines: Vec<String>,
}

/// The longest a started run may take to open its run folder before the server gives
/// up waiting for it (planning, setup processes' checks, target checks happen first).
const FOLDER_WAIT: Duration = Duration::from_secs(60);

impl Runner {
    pub fn new(exe: PathBuf, data: PathBuf, store: Arc<Store>) -> Runner {
        Runner {
            exe,
            data,
            store,
            live: Mutex::new(BTreeMap::new()),
            starting: tokio::sync::Mutex::new(()),
            hubs: crate::live::Hubs::default(),
        }
    }

    /// The file the experiment named `name` is run from.
    pub fn experiment_path(&self, name: &str) -> PathBuf {
        self.data.join("experiments").join(format!("{name}.yaml"))
    }

    fn live(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the server has this run going now.
    pub fn is_live(&self, id: &str) -> bool {
        self.live().contains_key(id)
    }

    /// Starts the experiment `name` as a child `livefire run`; returns its row once its
    /// run folder exists (so the id is the one `livefire runs` and `halt` know).
    pub async fn start(
        self: &Arc<Self>,
        caller: &Caller,
        name: &str,
    ) -> Result<RunRow, StartError> {
        let launch = Launch {
            experiment: name.to_owned(),
            by: caller.label(),
            ..Launch::default()
        };
        self.launch(&launch).await
    }

    /// Plans an uploaded experiment as `livefire run` will (its environment and
    /// variables); refused as the run would be, with nothing applied.
    pub fn plan_of(&self, launch: &Launch) -> Result<livefire_engine::plan::Plan, StartError> {
        let name = &launch.experiment;
        let row = self
            .store
            .experiment(name)?
            .ok_or_else(|| StartError::NoExperiment(name.to_owned()))?;
        let file = self.experiment_path(name);
        write_file(&file, &row.text).map_err(StartError::Spawn)?;
        match livefire_engine::plan::plan(&file, &launch.vars, launch.env.as_deref()) {
            Ok(plan) => Ok(plan),
            Err(livefire_engine::plan::PlanError::Load(livefire_spec::LoadError::Invalid(r))) => {
                Err(StartError::Invalid(r))
            }
            Err(e) => Err(StartError::Refused(e.to_string())),
        }
    }

    /// [`Runner::start`] for a [`Launch`]: an environment and variables, and who asked.
    /// A production environment is confirmed (`--confirm production`): whoever calls
    /// this decided so (the approval, when the server asks for one, came first).
    pub async fn launch(self: &Arc<Self>, launch: &Launch) -> Result<RunRow, StartError> {
        let name = launch.experiment.as_str();
        let plan = self.plan_of(launch)?;
        let production = plan.environment.as_ref().is_some_and(|e| e.production);
        let file = self.experiment_path(name);
        let claims =
            livefire_engine::held::claims(&plan).map_err(|e| StartError::Refused(e.to_string()))?;
        let pending = livefire_engine::ledger::pending_all();
        if let Some(held) = livefire_engine::held::in_ledger(&claims, &pending) {
            let (target, e) = (held.claim.target.clone(), held.entry);
            let why = if livefire_engine::control::is_active(&e.run_id) {
                format!("its `{}` is applied", e.label())
            } else {
                format!(
                    "its `{}` is still in the ledger: {}",
                    e.label(),
                    e.record.describe()
                )
            };
            return Err(StartError::Held {
                target,
                run: e.run_id.clone(),
                why,
            });
        }
        // Claim the targets under the lock, so two starts at once cannot both pass.
        let slot = format!("starting:{}", uuid_like());
        {
            let mut live = self.live();
            if let Some((run, target)) = crate::held::in_live(&claims, live.iter()) {
                return Err(StartError::Held {
                    target,
                    run,
                    why: "it is running now".into(),
                });
            }
            live.insert(slot.clone(), crate::held::keys(&claims));
        }
        // A game day runs as `livefire gameday`: its page and `livefire mark` work, and
        // the console mounts the page (gameday.rs).
        let gameday = plan.experiment.scenario.is_some();
        let started = self.spawn(launch, production, &file, &slot, gameday).await;
        let (row, child) = match started {
            Ok(x) => x,
            Err(e) => {
                self.live().remove(&slot);
                return Err(e);
            }
        };
        {
            let mut live = self.live();
            let held = live.remove(&slot).unwrap_or_default();
            live.insert(row.id.clone(), held);
        }
        let at = self.store.audit(
            &launch.by,
            "start",
            &row.id,
            &format!("experiment `{name}`{}", described(launch)),
        )?;
        tracing::info!(run = %row.id, by = %launch.by, at = %at, "run started");
        let this = self.clone();
        let id = row.id.clone();
        let dir = PathBuf::from(&row.dir);
        tokio::spawn(async move { this.watch(id, dir, child).await });
        Ok(row)
    }

    async fn spawn(
        &self,
        launch: &Launch,
        production: bool,
        file: &Path,
        slot: &str,
        gameday: bool,
    ) -> Result<(RunRow, tokio::process::Child), StartError> {
        // One runs folder for every run, so the engine keeps run ids unique (two runs of
        // a drill in the same second get `-2`): the id names the control socket too. One
        // start at a time, so the one new folder is this run's.
        let _one_at_a_time = self.starting.lock().await;
        let out = self.data.join("runs");
        let launches = self.data.join("launches");
        std::fs::create_dir_all(&out)
            .and_then(|_| std::fs::create_dir_all(&launches))
            .map_err(StartError::Spawn)?;
        let before = folders(&out);
        let log_path = launches.join(format!("{}.log", uuid_like()));
        let log = std::fs::File::create(&log_path).map_err(StartError::Spawn)?;
        let log2 = log.try_clone().map_err(StartError::Spawn)?;
        let mut cmd = tokio::process::Command::new(&self.exe);
        if gameday {
            cmd.args(["gameday", "--no-tui", "--listen", "127.0.0.1:0"]);
        } else {
            cmd.arg("run");
        }
        cmd.arg(file).arg("--out").arg(&out).arg("--quiet");
        if let Some(env) = &launch.env {
            cmd.arg("--env").arg(env);
        }
        if production {
            cmd.args(["--confirm", "production"]);
        }
        // The variables (secrets, maybe) go through the child's stdin, not its arguments,
        // which every local user can read in `ps` and /proc/PID/cmdline.
        if !launch.vars.is_empty() {
            cmd.args(["--vars-file", "-"]);
        }
        let mut child = cmd
            .stdin(if launch.vars.is_empty() {
                std::process::Stdio::null()
            } else {
                std::process::Stdio::piped()
            })
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(StartError::Spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            let text: String = launch
                .vars
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            // In its own task: a child that ends before reading (a refusal) must not
            // hold this start; the refusal is then read from its log as before.
            tokio::spawn(async move {
                let _ = stdin.write_all(text.as_bytes()).await;
                let _ = stdin.shutdown().await;
            });
        }
        let pid = child.id();
        let deadline = tokio::time::Instant::now() + FOLDER_WAIT;
        let run_dir = loop {
            if let Some(dir) = new_run_folder(&out, &before) {
                break dir;
            }
            match child.try_wait() {
                Ok(Some(_)) => {
                    // Ended before its folder: refused before anything was applied. The
                    // folder may have appeared just before it exited.
                    if let Some(dir) = new_run_folder(&out, &before) {
                        break dir;
                    }
                    let said = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let _ = std::fs::remove_file(&log_path);
                    return Err(refusal(said.trim()));
                }
                Ok(None) => {}
                Err(e) => return Err(StartError::Spawn(e)),
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.start_kill();
                return Err(StartError::Refused(format!(
                    "the run did not open its run folder within {}s (start {slot}); it was stopped before its timeline",
                    FOLDER_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let id = run_dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The run's own output (it runs --quiet: only errors) under its id.
        let _ = std::fs::rename(&log_path, launches.join(format!("{id}.log")));
        let row = RunRow {
            id,
            experiment: launch.experiment.clone(),
            dir: run_dir.display().to_string(),
            state: "running".into(),
            verdict: None,
            exit_code: None,
            pid: pid.map(i64::from),
            started: crate::store::now(),
            ended: None,
            started_by: launch.by.clone(),
            stopped_by: None,
        };
        self.store.add_run(&row)?;
        Ok((row, child))
    }

    /// Waits for a run's process to end, records its verdict and appends the audit
    /// lines about it to its journal.
    async fn watch(self: Arc<Self>, id: String, dir: PathBuf, mut child: tokio::process::Child) {
        let status = child.wait().await.ok();
        let code = status.and_then(|s| s.code()).map(i64::from);
        let verdict = verdict_of(&dir).unwrap_or_else(|| match code {
            Some(c) => format!("exit {c}"),
            None => "killed".into(),
        });
        // The journal is complete and the targets are free before anyone reads `ended`.
        self.journal_audit(&id, &dir);
        self.live().remove(&id);
        if let Err(e) = self.store.mark_ended(&id, &verdict, code) {
            tracing::warn!(run = %id, "cannot record the run's end: {e}");
        }
        tracing::info!(run = %id, verdict = %verdict, "run ended");
    }

    /// Appends the run's audit lines (oldest first) to its journal as `audit` events.
    fn journal_audit(&self, id: &str, dir: &Path) {
        let Ok(mut rows) = self.store.audit_log(Some(id)) else {
            return;
        };
        rows.reverse();
        let journal = dir.join("journal.jsonl");
        for r in rows {
            let event = livefire_core::events::Event::Audit {
                who: r.who,
                action: r.action,
                detail: r.detail,
                at: r.at,
            };
            if let Err(e) = livefire_engine::recover::append_event(&journal, event) {
                tracing::warn!(run = %id, "cannot write the audit log to the journal: {e}");
                return;
            }
        }
    }

    /// Halts a run through its control socket; it rolls back and ends as `aborted`.
    pub async fn stop(&self, caller: &Caller, id: &str) -> Result<RunRow, StopError> {
        let row = self
            .store
            .run(id)?
            .ok_or_else(|| StopError::Unknown(id.to_owned()))?;
        if row.state == "ended" || !self.is_live(id) {
            return Err(StopError::Ended(id.to_owned()));
        }
        let socket = livefire_engine::control::socket_of(id);
        // The journal then says who: "stopped from the console by alice".
        let command = format!("halt from the console by {}", caller.name);
        // In the audit log before the halt goes out: the run's journal takes the
        // audit rows when it ends, which a fast rollback may do before `send` returns.
        // A store that cannot write (a disk being filled) does not hold the halt up.
        if let Err(e) = self.store.audit(&caller.label(), "stop", id, &command) {
            tracing::error!(run = %id, error = %e, "cannot write the stop to the audit log; halting anyway");
        }
        let reply = match livefire_engine::control::send(&socket, &command).await {
            Ok(reply) => reply,
            Err(source) => {
                let _ = self.store.audit(
                    &caller.label(),
                    "stop_failed",
                    id,
                    &format!("the run's control socket did not take it: {source}"),
                );
                return Err(StopError::Socket {
                    id: id.to_owned(),
                    source,
                });
            }
        };
        self.store.mark_stopping(id, &caller.label())?;
        tracing::debug!(run = %id, reply = %reply.trim(), "halt taken");
        tracing::info!(run = %id, by = %caller.label(), "run halted");
        Ok(self.store.run(id)?.unwrap_or(row))
    }

    /// Halts every run this server has going (the server is stopping) and waits for
    /// them to end, up to `wait`.
    pub async fn halt_all(&self, wait: Duration) {
        let ids: Vec<String> = self.live().keys().cloned().collect();
        for id in &ids {
            let _ = self
                .store
                .audit("livefire serve", "stop", id, "the server is stopping");
            let _ = livefire_engine::control::send(
                &livefire_engine::control::socket_of(id),
                "halt from the console, which is stopping",
            )
            .await;
        }
        let deadline = tokio::time::Instant::now() + wait;
        while !self.live().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// At start: runs the store says were going when the previous server stopped. A
    /// run still alive is halted (nobody watches it any more); then the ledger is rolled
    /// back as `livefire recover` does, and each run is marked ended.
    pub async fn recover_previous(&self) -> Recovery {
        let mut out = Recovery::default();
        let Ok(runs) = self.store.unfinished_runs() else {
            return out;
        };
        if runs.is_empty() {
            return out;
        }
        for r in &runs {
            out.lines.push(format!(
                "the previous server stopped while run {} (experiment `{}`) was going",
                r.id, r.experiment
            ));
            if livefire_engine::control::is_active(&r.id) {
                let socket = livefire_engine::control::socket_of(&r.id);
                if livefire_engine::control::send(&socket, "halt")
                    .await
                    .is_ok()
                {
                    out.lines.push(format!(
                        "run {} was still going: halted it (it rolls back)",
                        r.id
                    ));
                }
                let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
                while livefire_engine::control::is_active(&r.id)
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let recovered = tokio::task::spawn_blocking(livefire_engine::recover::recover)
            .await
            .unwrap_or_default();
        for l in &recovered.undone {
            out.lines.push(format!("rolled back from the ledger: {l}"));
        }
        for l in &recovered.failed {
            out.lines.push(format!(
                "NOT rolled back (stays in the ledger; fix it and run `livefire recover`): {l}"
            ));
        }
        for r in &runs {
            let dir = PathBuf::from(&r.dir);
            let verdict = verdict_of(&dir).unwrap_or_else(|| "aborted".into());
            let _ = self.store.mark_ended(&r.id, &verdict, None);
            let _ = self.store.audit(
                "livefire serve",
                "recover",
                &r.id,
                "the server stopped during the run; rolled back via the ledger at its next start",
            );
            self.journal_audit(&r.id, &dir);
        }
        let left = livefire_engine::recover::remaining();
        out.lines.push(if left == 0 {
            "the ledger is empty".to_owned()
        } else {
            format!(
                "{left} undo record(s) stay in the ledger: `livefire recover --list` shows them"
            )
        });
        out
    }

    /// The undo records a run still holds in the ledger: its rollback's progress.
    pub fn pending_undo(id: &str) -> Vec<PendingUndo> {
        livefire_engine::ledger::pending_all()
            .into_iter()
            .filter(|p| p.run_id == id)
            .map(|p| PendingUndo {
                entry: p.key(),
                activity: p.label(),
                undo: p.record.describe(),
            })
            .collect()
    }
}

/// ` in environment `prod` with var1=***`: what the audit line adds to the experiment
/// (variables' names only: a value may be a secret, and others read the audit log).
fn described(launch: &Launch) -> String {
    let mut out = String::new();
    if let Some(env) = &launch.env {
        out.push_str(&format!(" in environment `{env}`"));
    }
    out.push_str(&crate::approval::with_vars(
        launch.vars.iter().map(|(k, v)| (k, v)),
    ));
    out
}

/// A refusal `livefire run` printed (exit 3 before its folder): located diagnostics stay
/// as they are.
fn refusal(said: &str) -> StartError {
    let text: Vec<&str> = said.lines().collect();
    StartError::Refused(if text.is_empty() {
        "the run ended before it started, saying nothing".into()
    } else {
        text.join("\n")
    })
}

/// The folders in `out`.
fn folders(out: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(out)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// The run folder `livefire run --out OUT` made: a folder new since `before`, once its
/// journal exists.
fn new_run_folder(out: &Path, before: &BTreeSet<PathBuf>) -> Option<PathBuf> {
    folders(out)
        .into_iter()
        .find(|p| !before.contains(p) && p.join("journal.jsonl").is_file())
}

/// A run's verdict from its summary.json (written at its end).
pub fn verdict_of(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("verdict")?.as_str().map(str::to_owned)
}

/// Writes `text` to `path` whole: into a file of its own beside it, then renamed over
/// it, so a plan or run reading `path` meanwhile (two schedules firing at once) reads the
/// old text or the new, never a half-written file.
pub(crate) fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid_like()));
    let written = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// 64 random bits in hex: unique names for launch folders and start slots.
fn uuid_like() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}
