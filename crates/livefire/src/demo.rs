//! `livefire demo`: the sandbox up in a fresh folder, `examples/quickstart.yaml` run
//! against it, the sandbox down again on every way out (errors, Ctrl-C, SIGTERM), and
//! where the report is. It orchestrates `livefire sandbox up` and `livefire run` as child
//! processes, so each keeps its own signal handling and output.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use clap::Args;
use livefire_core::exit::Exit;
use livefire_sandbox::{Sandbox, StoreChoice};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The experiment the demo runs; built in, so an installed livefire needs no checkout.
pub const QUICKSTART: &str = include_str!("../../../examples/quickstart.yaml");

/// The demo's own exits (a finished run's passes through).
const ABORTED: Exit = Exit::Aborted;
const INVALID: Exit = Exit::Invalid;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The orders API's store: auto (PostgreSQL when installed, else SQLite), postgres,
    /// sqlite. With PostgreSQL the drill kills the primary; with SQLite, the service.
    #[arg(long, value_enum, default_value = "auto")]
    pub store: StoreChoice,
    /// Switch on the sandbox's planted defects (docs/sandbox.md), so the run finds them.
    #[arg(long)]
    pub defects: bool,
    /// Parent folder of the run folder (default: .livefire/runs).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress lines from the run.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the demo; the exit code is the run's (0 held, 1 deviated, 2 aborted, ...), 2 when
/// interrupted before the run started, 3 when the sandbox could not start.
pub fn demo(args: DemoArgs) -> Exit {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("livefire demo: cannot start a runtime: {e}");
            return INVALID;
        }
    };
    rt.block_on(demo_async(args))
}

/// SIGINT, SIGTERM and SIGHUP: from the moment they are listened for, none of them ends
/// the demo before it has brought the sandbox down.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for the next of them.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }

    /// Whether one came already.
    async fn pending(&mut self) -> bool {
        tokio::time::timeout(std::time::Duration::ZERO, self.recv())
            .await
            .is_ok()
    }
}

async fn demo_async(args: DemoArgs) -> Exit {
    let mut signals = match Signals::listen() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("livefire demo: cannot listen for Ctrl-C: {e}");
            return INVALID;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("livefire demo: cannot find the livefire program: {e}");
            return INVALID;
        }
    };
    let dir = match fresh_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("livefire demo: cannot create a folder for the sandbox: {e}");
            return INVALID;
        }
    };
    let (code, run_dir) = with_sandbox(&args, &exe, &dir, &mut signals).await;
    // Every way out of `with_sandbox` comes here: bring everything down.
    println!("\nbringing the sandbox down");
    let mut out = std::io::stdout();
    match livefire_sandbox::sandbox::down(&dir, &mut out) {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Err(e) => {
            eprintln!(
                "livefire demo: {e}; its record and logs stay in {}",
                dir.display()
            );
        }
    }
    // Last, so it is the line a user sees.
    if let Some(run_dir) = run_dir {
        println!("\nreport: {}", run_dir.join("report.html").display());
    }
    code
}

/// Up and run; the run's exit and folder. The caller brings the sandbox down.
async fn with_sandbox(
    args: &DemoArgs,
    exe: &Path,
    dir: &Path,
    signals: &mut Signals,
) -> (Exit, Option<PathBuf>) {
    let auth_link = match livefire_sandbox::proc::free_port() {
        Ok(p) => format!("127.0.0.1:{p}"),
        Err(e) => {
            eprintln!("livefire demo: no free port for the auth link's proxy: {e}");
            return (INVALID, None);
        }
    };
    println!(
        "livefire demo: starting the sandbox in {}{}",
        dir.display(),
        if args.defects {
            " with its planted defects (--defects)"
        } else {
            ""
        }
    );
    let mut up = Command::new(exe);
    up.args(["sandbox", "up", "--dir"]).arg(dir).args([
        "--token-via",
        &auth_link,
        "--store",
        store_name(args.store),
    ]);
    if args.defects {
        up.arg("--defects");
    }
    // Its own process group: a Ctrl-C in the terminal reaches the demo only, which lets
    // `up` finish (it cannot be stopped half-way cleanly) and then brings it all down.
    up.process_group(0).stdin(Stdio::null());
    let mut child = match up.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("livefire demo: cannot start `livefire sandbox up`: {e}");
            return (INVALID, None);
        }
    };
    let mut interrupted = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            () = signals.recv(), if !interrupted => {
                interrupted = true;
                eprintln!("livefire demo: interrupted; the sandbox is still starting, then it is stopped");
            }
        }
    };
    if interrupted {
        return (ABORTED, None);
    }
    if !status.is_ok_and(|s| s.success()) {
        eprintln!(
            "livefire demo: the sandbox did not start (above); nothing of it is left running"
        );
        return (INVALID, None);
    }
    let sb = match Sandbox::load(dir) {
        Ok(Some(sb)) => sb,
        Ok(None) => {
            eprintln!(
                "livefire demo: the sandbox left no record in {}",
                dir.display()
            );
            return (INVALID, None);
        }
        Err(e) => {
            eprintln!("livefire demo: {e}");
            return (INVALID, None);
        }
    };
    let plan = match Plan::of(&sb, &auth_link) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("livefire demo: {e}");
            return (INVALID, None);
        }
    };
    println!();
    if sb.store == "postgres" {
        println!(
            "the drill: load on the orders API; kill -9 of the PostgreSQL primary (the failover \
             helper promotes the replica, then the old primary rejoins as a standby); fuzzing \
             from its OpenAPI document; the auth link slower than the API's 2 s limit"
        );
    } else {
        println!(
            "the drill on SQLite: load on the orders API; kill -9 of the orders service itself \
             (then restarted); fuzzing from its OpenAPI document; the auth link slower than the \
             API's 2 s limit.\nskipped: the PostgreSQL primary, its replica and the database \
             failover. For the full drill install one package: apt-get install {}",
            livefire_sandbox::sandbox::PG_PACKAGE
        );
    }
    if signals.pending().await {
        eprintln!("livefire demo: interrupted before the run started");
        return (ABORTED, None);
    }
    let file = dir.join("quickstart.yaml");
    if let Err(e) = std::fs::write(&file, QUICKSTART) {
        eprintln!("livefire demo: cannot write {}: {e}", file.display());
        return (INVALID, None);
    }
    let mut run = Command::new(exe);
    run.arg("run").arg(&file);
    for (name, value) in &plan.vars {
        run.arg("--var").arg(format!("{name}={value}"));
    }
    if let Some(out) = &args.out {
        run.arg("--out").arg(out);
    }
    if args.quiet {
        run.arg("--quiet");
    }
    run.env("LIVEFIRE_DEMO_TOKEN", &plan.token)
        .env("LIVEFIRE_DEMO_OTHER_TOKEN", &plan.other_token)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    println!("livefire run examples/quickstart.yaml (its --vars: the sandbox's addresses)\n");
    let mut child = match run.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("livefire demo: cannot start `livefire run`: {e}");
            return (INVALID, None);
        }
    };
    watch_run(&mut child, signals).await
}

/// Passes the run's output through (noting its run folder), forwards the first signal
/// to it (it rolls everything back and exits 2), and returns its exit code.
async fn watch_run(child: &mut Child, signals: &mut Signals) -> (Exit, Option<PathBuf>) {
    let mut lines = child.stdout.take().map(|o| BufReader::new(o).lines());
    let mut run_dir = None;
    let mut forwarded = false;
    loop {
        tokio::select! {
            line = next_line(&mut lines) => match line {
                Some(line) => {
                    if let Some(p) = line.strip_prefix("run folder: ") {
                        run_dir = Some(PathBuf::from(p.trim()));
                    }
                    println!("{line}");
                }
                None => lines = None,
            },
            () = signals.recv(), if !forwarded => {
                forwarded = true;
                if let Some(pid) = child.id() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGINT,
                    );
                }
            }
            status = child.wait(), if lines.is_none() => {
                // A run killed by a signal never reached its verdict: aborted.
                let code = status
                    .ok()
                    .and_then(|s| s.code())
                    .map_or(ABORTED, |c| Exit::from_code(i64::from(c)).unwrap_or(INVALID));
                return (code, run_dir);
            }
        }
    }
}

async fn next_line(
    lines: &mut Option<tokio::io::Lines<BufReader<tokio::process::ChildStdout>>>,
) -> Option<String> {
    match lines {
        Some(l) => l.next_line().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// What the sandbox record lacks that the demo needs (its services did not all start).
#[derive(Debug)]
struct Missing(String);

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the sandbox record has no {}: see its logs", self.0)
    }
}

impl std::error::Error for Missing {}

/// What the experiment is told about this sandbox.
struct Plan {
    vars: Vec<(&'static str, String)>,
    token: String,
    other_token: String,
}

impl Plan {
    fn of(sb: &Sandbox, auth_link: &str) -> Result<Plan, Missing> {
        let missing = |what: &str| Missing(what.to_owned());
        let api = sb.api().ok_or_else(|| missing("orders API"))?;
        let token_service = sb
            .service("token")
            .and_then(|s| s.listen.clone())
            .ok_or_else(|| missing("token service"))?;
        let token_of = |user: &str| {
            sb.tokens
                .iter()
                .find(|(u, _)| u == user)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| missing(&format!("token for {user}")))
        };
        let dir = shell_quote(&sb.dir.to_string_lossy());
        let (victim, pidfile, restart, down_for) = match sb.node("primary") {
            Some(primary) => (
                "primary",
                primary.data_dir.join("postmaster.pid"),
                format!("livefire sandbox rejoin primary --dir {dir}"),
                "10s",
            ),
            None => (
                "orders",
                sb.dir.join("orders.pid"),
                format!("livefire sandbox restart orders --dir {dir}"),
                "2s",
            ),
        };
        Ok(Plan {
            vars: vec![
                ("api", api),
                ("token_service", token_service),
                ("auth_link", auth_link.to_owned()),
                ("victim", victim.into()),
                ("victim_pidfile", pidfile.to_string_lossy().into_owned()),
                ("victim_restart", restart),
                ("victim_down", down_for.into()),
            ],
            token: token_of("alice")?,
            other_token: token_of("bob")?,
        })
    }
}

fn store_name(s: StoreChoice) -> &'static str {
    match s {
        StoreChoice::Auto => "auto",
        StoreChoice::Postgres => "postgres",
        StoreChoice::Sqlite => "sqlite",
    }
}

/// `text` as one word for `sh -c`.
fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// A new folder under the temporary directory, readable by other users: PostgreSQL runs
/// as `postgres` when livefire runs as root, and must reach its data inside it.
fn fresh_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = base.join(format!("livefire-demo-{}-{stamp}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o755).create(&dir)?;
    // The mode given to mkdir is masked by the umask; set it as meant.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(dir)
}
