//! Flags and subcommands. Each subcommand's arguments live beside the crate that does
//! the work where that crate has a standalone mode (proxy, load, fuzz).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use livefire_core::exit::Exit;

/// livefire: break a running system on purpose, drive it with real traffic, and probe
/// it for crashes and vulnerabilities while it is degraded, under control.
#[derive(Debug, Parser)]
#[command(name = "livefire", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an experiment file; every error is shown as FILE:LINE:COL (exit 3).
    Validate(ValidateArgs),
    /// Run an experiment: hypothesis before, timeline, rollback of every fault, after.
    /// Exit 0 held, 1 deviated, 2 aborted, 3 invalid, 4 rollback incomplete.
    Run(RunArgs),
    /// Run a game day: the experiment exactly as `run` does (same exit codes), with the
    /// responders' page served while it runs (its URL is printed).
    Gameday(crate::gameday::GamedayArgs),
    /// Mark a game day from any shell: `detected`, `mitigated` or `resolved`, as a
    /// responder of its scenario (exit 3 when refused or no game day runs).
    Mark(crate::gameday::MarkArgs),
    /// The quickstart: start the sandbox (a replicated PostgreSQL, or SQLite, and an
    /// orders API), run examples/quickstart.yaml against it (load, a database kill,
    /// fuzzing, a slow auth link), bring it all down, and print where the report is.
    /// Exits with the run's code.
    Demo(crate::demo::DemoArgs),
    /// Stop an active run from another shell: full rollback, the run exits 2.
    Halt(HaltArgs),
    /// Undo what crashed runs left in the ledger ($LIVEFIRE_HOME/ledger), newest first;
    /// or list it, or forget an entry fixed by hand. Exit 0 when the ledger ends empty,
    /// 4 when entries stay.
    Recover(RecoverArgs),
    /// Local targets for examples and tests: a replicated PostgreSQL and a demo orders
    /// API (`up`, `status`, `down`), or a small HTTP server (`http`).
    #[command(subcommand)]
    Sandbox(livefire_sandbox::cli::SandboxCommand),
    /// The console for a whole organisation: an HTTP API and a web UI over experiments
    /// and runs (started as child `livefire run`s), with tokens and roles
    /// (`livefire serve token create --role operator`). See docs/SERVE.md.
    Serve(livefire_serve::ServeArgs),
    /// One segment of a split run: plan FILE as the coordinator did, wait for the shared
    /// start, run this segment's share of every load and fuzz campaign (no faults), and
    /// stream its metric windows and findings on stdout as JSON lines. Started by
    /// `livefire run --segments N`; exit 0 done, 2 stopped, 3 could not run.
    Agent(AgentArgs),
    /// Print the JSON Schema of the experiment file format.
    Schema,
    /// Run a fault-injecting TCP proxy server with a Toxiproxy-compatible HTTP API.
    Proxy(livefire_proxy::ProxyArgs),
    /// Print the version.
    Version,
    /// Load a URL at a rate (-r) or with virtual users (-c) and print a latency summary.
    Load(livefire_load::cli::LoadArgs),
    /// Merge the load reports of split runs (`livefire load --segment i/N --out DIR`, or run folders) exactly.
    Merge(livefire_load::cli::MergeArgs),
    /// Fuzz an API from its OpenAPI spec and report security and conformance findings.
    Fuzz(livefire_fuzz::cli::FuzzArgs),
    /// Rebuild a run folder's summary.json, report.html and junit.xml from its journal.
    Report(livefire_report::cli::ReportArgs),
    /// Compare two runs of the same drill: verdicts, time to recover per fault, conditions, loads.
    Compare(livefire_report::cli::CompareArgs),
    /// List past runs in the runs folder with verdict, duration and title.
    Runs(ListRunsArgs),
    /// Kubernetes: print the manifests of a split run (`render`) for review or GitOps.
    #[cfg(feature = "kubernetes")]
    #[command(subcommand)]
    K8s(livefire_k8s::cli::K8sCommand),
    /// Internal: the process behind `cpu.stress` and `memory.stress`, started by a run.
    #[command(name = "stress-worker", hide = true)]
    StressWorker(StressWorkerArgs),
}

#[derive(Debug, Args)]
pub struct StressWorkerArgs {
    /// Read by `livefire_faults::stress::WorkerArgs::parse`, which also writes them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The experiment file (YAML or JSON).
    pub file: PathBuf,
    /// Set a variable used as `${name}` (repeatable); overrides the file's `vars:`.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = livefire_spec::parse_var)]
    pub vars: Vec<(String, String)>,
    /// Read variables from a file, one `NAME=VALUE` a line (`-`: standard input), as
    /// `livefire run --vars-file` does.
    #[arg(long, value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
    /// Check the file as resolved for this environment of its `environments:` only
    /// (default: the file as written and every environment).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment file (YAML or JSON).
    pub file: PathBuf,
    /// Parent folder of the run folder (default: settings.out, else .livefire/runs).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the plan (a timeline table) and apply nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Set a variable used as `${name}` (repeatable); overrides the file's `vars:`.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = livefire_spec::parse_var)]
    pub vars: Vec<(String, String)>,
    /// Read variables from a file, one `NAME=VALUE` a line (`-`: standard input), as if
    /// each were a `--var` given before the others; keeps secret values out of `ps`.
    #[arg(long, value_name = "FILE")]
    pub vars_file: Option<PathBuf>,
    /// Resolve the file for this environment of its `environments:`.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// `--confirm production`: run an environment marked `production: true`.
    #[arg(long, value_name = "WHAT")]
    pub confirm: Option<String>,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Serve the run's live metrics in the Prometheus text format at
    /// http://ADDR/metrics while it runs (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Split the loads and fuzz campaigns over N segments (`livefire agent`) that start
    /// together; this process keeps the faults, the ledger and the referee.
    #[arg(long, value_name = "N")]
    pub segments: Option<u32>,
    /// Where the segments run: `local` (child processes of this one) or `kubernetes`.
    #[arg(
        long,
        value_enum,
        value_name = "WHERE",
        default_value = "local",
        requires = "segments"
    )]
    pub on: On,
    #[cfg(feature = "kubernetes")]
    #[command(flatten)]
    pub k8s: livefire_k8s::cli::K8sRunArgs,
}

/// Where a split run's segments run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum On {
    /// Child processes of the coordinator, on this machine.
    Local,
    /// Pods of an Indexed Job, through the Kubernetes API.
    Kubernetes,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The experiment file (YAML or JSON), the same the coordinator runs.
    pub file: PathBuf,
    /// This segment's share: `i/N` with 1 <= i <= N.
    #[arg(long, value_name = "i/N", required_unless_present = "segment_index")]
    pub segment: Option<String>,
    /// The share as a 0-based index (with `--segments N`), as Kubernetes' Indexed Jobs
    /// number their pods (`JOB_COMPLETION_INDEX`): `--segment-index 1 --segments 4` is
    /// `--segment 2/4`.
    #[arg(
        long,
        value_name = "K",
        conflicts_with = "segment",
        requires = "segments"
    )]
    pub segment_index: Option<u32>,
    /// How many segments, with `--segment-index`.
    #[arg(long, value_name = "N", requires = "segment_index")]
    pub segments: Option<u32>,
    /// The shared start, RFC 3339 UTC (`2026-12-03T14:00:00.000Z`); it must be in the
    /// future.
    #[arg(long, value_name = "TIME")]
    pub start_at: String,
    /// The coordinator's seed, so every segment plans the same run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Set a variable used as `${name}` (repeatable), as given to the coordinator.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = livefire_spec::parse_var)]
    pub vars: Vec<(String, String)>,
    /// Resolve the file for this environment of its `environments:`.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Stop when stdin closes (a local coordinator holds the other end).
    #[arg(long, hide = true)]
    pub watch_stdin: bool,
}

#[derive(Debug, Args)]
pub struct HaltArgs {
    /// The run to halt (a run id, as `livefire halt` lists); optional with one active run.
    pub run_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListRunsArgs {
    #[command(flatten)]
    pub runs: livefire_report::cli::RunsArgs,
    /// List the runs active now (their control socket answers) and what each is doing;
    /// removes the sockets of runs that died.
    #[arg(long)]
    pub active: bool,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Show each pending entry (run, activity, fault, since when, the undo it would run,
    /// why its last undo failed) and change nothing.
    #[arg(long, conflicts_with_all = ["forget", "reason"])]
    pub list: bool,
    /// Drop one pending entry (an id `--list` shows) without undoing it, after fixing by
    /// hand what its undo would do. Needs --reason.
    #[arg(long, value_name = "ENTRY")]
    pub forget: Option<String>,
    /// Why the entry can be dropped; written with your user name to the run's journal
    /// and the ledger.
    #[arg(long, value_name = "TEXT", requires = "forget")]
    pub reason: Option<String>,
}

pub(crate) fn dispatch(cli: Cli) -> Exit {
    match cli.command {
        Command::Validate(args) => crate::validate(args),
        Command::Run(args) => crate::run(args),
        Command::Gameday(args) => crate::gameday::gameday(args),
        Command::Mark(args) => crate::gameday::mark(args),
        Command::Agent(args) => crate::agent(args),
        Command::Demo(args) => crate::demo::demo(args),
        Command::Halt(args) => crate::halt(args),
        Command::Recover(args) => crate::recover(args),
        Command::Sandbox(cmd) => {
            livefire_sandbox::cli::run(cmd, livefire_sandbox::cli::self_launcher(&["sandbox"]))
        }
        Command::Serve(args) => {
            // Runs are started with this very program, so they share its version.
            let exe = std::env::current_exe().unwrap_or_else(|_| "livefire".into());
            livefire_serve::command(&args, exe, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::Schema => {
            let schema = livefire_spec::json_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            Exit::Ok
        }
        Command::Load(args) => {
            livefire_load::cli::command(&args, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::Merge(args) => {
            livefire_load::cli::merge_command(&args, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::Fuzz(args) => {
            livefire_fuzz::cli::command(&args, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::Report(args) => {
            livefire_report::cli::report(&args, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::Compare(args) => {
            livefire_report::cli::compare(&args, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::Runs(args) if args.active => crate::runs_active(),
        Command::Runs(args) => {
            livefire_report::cli::runs(&args.runs, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::Proxy(args) => {
            let ready = |addr| {
                // Starting the data plane here makes the line say what will forward.
                let plane = match livefire_proxy::io_uring_connections() {
                    Some(_) => "io_uring",
                    None => "epoll",
                };
                println!(
                    "livefire proxy: API on http://{addr} (Toxiproxy-compatible), \
                     data plane {plane}, Ctrl-C to stop"
                );
            };
            match livefire_proxy::run(args, ready) {
                Ok(()) => Exit::Ok,
                Err(err) => {
                    eprintln!("error: {err}");
                    Exit::Invalid
                }
            }
        }
        #[cfg(feature = "kubernetes")]
        Command::K8s(cmd) => {
            livefire_k8s::cli::command(&cmd, &mut std::io::stdout(), &mut std::io::stderr())
        }
        Command::StressWorker(a) => livefire_faults::stress::worker_main(&a.args),
        Command::Version => {
            println!("livefire {}", env!("CARGO_PKG_VERSION"));
            Exit::Ok
        }
    }
}
