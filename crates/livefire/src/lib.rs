//! The command-line front end. It parses flags, calls the library crates and maps
//! their results to exit codes; it holds no logic of its own.

mod cli;
mod demo;
mod diag;
mod gameday;
mod vars_file;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use livefire_core::exit::Exit;

pub use cli::{Cli, Command};

/// Runs the CLI with the given arguments (the first is the program name) and returns
/// the process exit code. Tests call this instead of spawning the binary where they can.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    diag::install();
    // `livefire recover` (and a run's rollback) deletes a split run's Kubernetes
    // objects through livefire-k8s, which the faults crate cannot depend on.
    #[cfg(feature = "kubernetes")]
    livefire_faults::external::set_kubernetes_undo(livefire_k8s::launcher::undo);
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout with exit 0, usage errors with exit 2;
            // livefire reserves 2 for "aborted", so a bad flag is "invalid" (3).
            let _ = err.print();
            return if err.use_stderr() {
                Exit::Invalid
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    if prints_only(&cli.command) {
        default_sigpipe();
    }
    cli::dispatch(cli).into()
}

/// Commands that only print (and write report files): piped into `head` or a pager that
/// quits, they should end quietly like `cat` does, not panic on the closed pipe.
/// Commands that run faults keep SIGPIPE ignored, so a dead child's pipe can never kill
/// a run before it rolls back.
fn prints_only(command: &Command) -> bool {
    matches!(
        command,
        Command::Validate(_)
            | Command::Schema
            | Command::Version
            | Command::Runs(_)
            | Command::Report(_)
            | Command::Compare(_)
            | Command::Merge(_)
    )
}

/// Restores the default action of SIGPIPE (end the process), which Rust's runtime sets
/// to ignored, turning a closed stdout into a panic in `println!`.
#[allow(unsafe_code)]
fn default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_DFL installs no handler code, so nothing can run in signal context;
    // this only changes what the kernel does when a write hits a closed pipe.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// `livefire validate`: all errors at once, located; exit 3 when there are any.
fn validate(args: cli::ValidateArgs) -> Exit {
    // As `run` reads them: the file's first, so a `--var` overrides it.
    let mut vars = match &args.vars_file {
        Some(path) => match vars_file::read(path) {
            Ok(vars) => vars,
            Err(e) => {
                eprintln!("livefire: {e}");
                return Exit::Invalid;
            }
        },
        None => Vec::new(),
    };
    vars.extend(args.vars);
    let options = livefire_spec::Options {
        vars,
        every_environment: args.env.is_none(),
        env: args.env,
        built: Some(livefire_engine::plan::built()),
    };
    match livefire_spec::load_file_with(&args.file, &options) {
        Ok(loaded) => {
            if !loaded.warnings.diagnostics.is_empty() {
                eprint!("{}", loaded.warnings);
            }
            let e = &loaded.experiment;
            let env = match &loaded.environment {
                Some(e) => format!(" (environment `{}`)", e.name),
                None if !loaded.environments.is_empty() => {
                    format!(
                        " (as written and in environments {})",
                        loaded.environments.join(", ")
                    )
                }
                None => String::new(),
            };
            println!(
                "{}{env}: valid: {} target(s), {} setup process(es), {} activit{}, {} hypothesis condition(s), {} guardrail(s){}",
                args.file.display(),
                e.targets.len(),
                e.setup.len(),
                e.timeline.len(),
                if e.timeline.len() == 1 { "y" } else { "ies" },
                e.hypothesis.len(),
                e.guardrails.len(),
                match e.watch.len() {
                    0 => String::new(),
                    n => format!(", {n} watch(es)"),
                }
            );
            Exit::Ok
        }
        Err(err) => {
            print_load_error(&err);
            Exit::Invalid
        }
    }
}

/// `livefire run`.
fn run(args: cli::RunArgs) -> Exit {
    let (segments, on) = (args.segments, args.on);
    let launcher = match on {
        cli::On::Kubernetes => kubernetes_launcher(&args),
        on => launcher(on),
    };
    let opts = match run_options(args) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("livefire: {e}");
            return Exit::Invalid;
        }
    };
    match segments {
        None => finish(livefire_engine::run(opts)),
        Some(count) => match launcher {
            Ok(launcher) => finish(livefire_engine::run_split(opts, count, launcher)),
            Err(e) => {
                eprintln!("livefire: {e}");
                Exit::Invalid
            }
        },
    }
}

/// The engine's options for `livefire run` (and `livefire gameday`, which runs the same),
/// or why `--vars-file` cannot be used (nothing was applied).
fn run_options(args: cli::RunArgs) -> Result<livefire_engine::RunOptions, String> {
    use std::io::IsTerminal;
    // The file's variables come first, so a `--var` on the command line overrides them.
    let mut vars = match &args.vars_file {
        Some(path) => vars_file::read(path)?,
        None => Vec::new(),
    };
    vars.extend(args.vars);
    Ok(livefire_engine::RunOptions {
        file: args.file,
        vars,
        out: args.out,
        dry_run: args.dry_run,
        env: args.env,
        confirm: args.confirm,
        view: if args.quiet {
            livefire_engine::view::View::Quiet
        } else if std::io::stderr().is_terminal() {
            livefire_engine::view::View::Tty
        } else {
            livefire_engine::view::View::Plain
        },
        metrics_listen: args.metrics_listen,
        attach: None,
    })
}

/// The exit of a run, or of one that did not start (said on stderr).
fn finish(result: Result<livefire_engine::Outcome, livefire_engine::RunError>) -> Exit {
    match result {
        Ok(outcome) => outcome.exit,
        Err(livefire_engine::RunError::Plan(livefire_engine::plan::PlanError::Load(e))) => {
            print_load_error(&e);
            Exit::Invalid
        }
        Err(e) => {
            eprintln!("livefire: {e}");
            Exit::Invalid
        }
    }
}

/// The back end of `--on`.
fn launcher(on: cli::On) -> Result<Box<dyn livefire_engine::segments::Launcher>, String> {
    match on {
        cli::On::Local => {
            let me = std::env::current_exe()
                .map_err(|e| format!("cannot find this livefire binary to run segments: {e}"))?;
            Ok(Box::new(livefire_engine::segments::LocalLauncher::new(me)))
        }
        cli::On::Kubernetes => Err(
            "--on kubernetes: this livefire was built without the Kubernetes back end: build it with `cargo build --features kubernetes` or use the container image (nothing was applied)"
                .into(),
        ),
    }
}

/// `--on kubernetes`, with its `--k8s-*` flags.
#[cfg(feature = "kubernetes")]
fn kubernetes_launcher(
    args: &cli::RunArgs,
) -> Result<Box<dyn livefire_engine::segments::Launcher>, String> {
    Ok(Box::new(args.k8s.launcher()))
}

/// `--on kubernetes` in a build without the back end.
#[cfg(not(feature = "kubernetes"))]
fn kubernetes_launcher(
    _args: &cli::RunArgs,
) -> Result<Box<dyn livefire_engine::segments::Launcher>, String> {
    launcher(cli::On::Kubernetes)
}

/// `livefire agent`: one segment of a split run. Its stdout is the protocol, so even a
/// refusal is a `done` line there (and the message on stderr).
fn agent(args: cli::AgentArgs) -> Exit {
    use livefire_engine::segments::protocol::{DoneStatus, Line};
    let opts = livefire_engine::segments::agent::AgentOptions {
        file: args.file,
        vars: args.vars,
        env: args.env,
        seed: args.seed,
        // `--segment-index K --segments N` is share K+1 of N; Segment::parse judges both.
        segment: match (args.segment, args.segment_index, args.segments) {
            (Some(s), _, _) => s,
            (None, Some(k), Some(n)) => format!("{}/{n}", u64::from(k) + 1),
            _ => String::new(),
        },
        start_at: args.start_at,
        watch_stdin: args.watch_stdin,
    };
    match livefire_engine::segments::agent::agent(opts, Box::new(std::io::stdout())) {
        Ok(DoneStatus::Ok) => Exit::Ok,
        Ok(DoneStatus::Stopped) => Exit::Aborted,
        Ok(DoneStatus::Failed) => Exit::Invalid,
        Err(e) => {
            let message = e.to_string();
            match &e {
                livefire_engine::segments::agent::AgentError::Plan(
                    livefire_engine::plan::PlanError::Load(l),
                ) => print_load_error(l),
                _ => eprintln!("livefire: {message}"),
            }
            let done = Line::Done {
                status: DoneStatus::Failed,
                message,
            };
            println!("{}", done.to_json());
            Exit::Invalid
        }
    }
}

/// A file that does not load: the located diagnostics as they are (they name the file),
/// or the one-line reason it could not be read.
fn print_load_error(err: &livefire_spec::LoadError) {
    eprint!("{err}");
    if !matches!(err, livefire_spec::LoadError::Invalid(_)) {
        eprintln!();
    }
}

/// `livefire halt`: asks an active run to stop, through its control socket.
fn halt(args: cli::HaltArgs) -> Exit {
    let runs = livefire_engine::control::active_runs();
    let id_of = livefire_engine::control::run_id_of;
    let socket = match (&args.run_id, runs.len()) {
        (Some(id), _) => match runs.iter().find(|p| id_of(p) == *id) {
            Some(p) => p.clone(),
            None => {
                eprintln!(
                    "livefire: no active run `{id}`; active runs: {}",
                    runs.iter().map(|p| id_of(p)).collect::<Vec<_>>().join(", ")
                );
                return Exit::Invalid;
            }
        },
        (None, 0) => {
            eprintln!(
                "livefire: no active run to halt (looked in {})",
                livefire_engine::home::active_dir().display()
            );
            return Exit::Invalid;
        }
        (None, 1) => runs[0].clone(),
        (None, _) => {
            eprintln!("livefire: several runs are active; name one:");
            for p in &runs {
                eprintln!("  livefire halt {}", id_of(p));
            }
            return Exit::Invalid;
        }
    };
    let Some(rt) = control_runtime() else {
        return Exit::Invalid;
    };
    match rt.block_on(livefire_engine::control::send(&socket, "halt")) {
        Ok(reply) => {
            println!("{}: {}", id_of(&socket), reply.trim());
            Exit::Ok
        }
        Err(e) => {
            eprintln!(
                "livefire: cannot reach run {} ({e}); if it crashed, run `livefire recover`",
                id_of(&socket)
            );
            let _ = std::fs::remove_file(&socket);
            Exit::Invalid
        }
    }
}

/// The small runtime `halt` and `runs --active` talk to control sockets with; `None`
/// (said on stderr) when it cannot start.
fn control_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("livefire: cannot start the runtime: {e}");
            None
        }
    }
}

/// `livefire runs --active`: each active run's id and status, from its control socket.
fn runs_active() -> Exit {
    let runs = livefire_engine::control::active_runs();
    if runs.is_empty() {
        println!("no active run");
        return Exit::Ok;
    }
    let Some(rt) = control_runtime() else {
        return Exit::Invalid;
    };
    for socket in &runs {
        let id = livefire_engine::control::run_id_of(socket);
        match rt.block_on(livefire_engine::control::send(socket, "status")) {
            Ok(reply) => println!("{id}: {}", reply.trim()),
            Err(e) => println!("{id}: no answer ({e})"),
        }
    }
    Exit::Ok
}

/// `livefire recover`: undo, `--list` or `--forget`; exit 0 when the ledger ends empty,
/// 4 when entries stay, 3 for a forget that was refused.
fn recover(args: cli::RecoverArgs) -> Exit {
    use livefire_engine::recover;
    if args.list {
        print_pending(&recover::list());
    } else if let Some(entry) = &args.forget {
        let reason = args.reason.as_deref().unwrap_or_default();
        match recover::forget(entry, reason, &recover::os_user()) {
            Ok(f) => {
                println!(
                    "forgotten by {}: {} {}: its undo ({}) will not run; recorded in the ledger",
                    f.user,
                    f.entry.key(),
                    f.entry.label(),
                    f.entry.record.describe()
                );
                match &f.journal {
                    Ok(path) => println!("recorded in the run's journal: {}", path.display()),
                    Err(why) => eprintln!("livefire: not recorded in the run's journal: {why}"),
                }
            }
            Err(e) => {
                eprintln!("livefire: recover --forget: {e}");
                return Exit::Invalid;
            }
        }
    } else {
        let r = recover::recover();
        for run in &r.stale_sockets {
            println!("removed the stale control socket of run {run} (nothing listened on it)");
        }
        if r.undone.is_empty() && r.failed.is_empty() && r.skipped.is_empty() {
            println!("the ledger is empty: nothing to recover");
        }
        for line in &r.undone {
            println!("undone: {line}");
        }
        for line in &r.skipped {
            println!("left to its run: {line}");
        }
        for line in &r.failed {
            eprintln!("livefire: NOT undone (stays in the ledger): {line}");
        }
        if !r.failed.is_empty() {
            eprintln!(
                "livefire: fix the cause and run `livefire recover` again; if you fixed it by hand, `livefire recover --list` shows the entry to `--forget ENTRY --reason \"...\"`"
            );
        }
    }
    if recover::remaining() == 0 {
        Exit::Ok
    } else {
        Exit::RollbackIncomplete
    }
}

/// `recover --list`: one block per pending entry, oldest first. Stops quietly when
/// stdout is closed (`| head`).
fn print_pending(entries: &[livefire_engine::recover::Listed]) {
    let mut out = std::io::stdout().lock();
    let _ = write_pending(&mut out, entries);
}

fn write_pending(
    out: &mut dyn std::io::Write,
    entries: &[livefire_engine::recover::Listed],
) -> std::io::Result<()> {
    if entries.is_empty() {
        return writeln!(out, "the ledger is empty: nothing to recover");
    }
    writeln!(
        out,
        "{} pending entr{} in {}:",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" },
        livefire_engine::home::ledger_dir().display()
    )?;
    for l in entries {
        let e = &l.entry;
        let active = if l.run_active {
            " (still active: it rolls this back itself)"
        } else {
            ""
        };
        writeln!(out)?;
        writeln!(out, "{}", e.key())?;
        writeln!(out, "  run:      {}{active}", e.run_id)?;
        writeln!(out, "  activity: {}", e.label())?;
        let unknown = "(not recorded by this ledger's livefire)";
        writeln!(out, "  fault:    {}", e.kind.as_deref().unwrap_or(unknown))?;
        writeln!(out, "  since:    {}", e.since.as_deref().unwrap_or(unknown))?;
        writeln!(out, "  undo:     {}", e.record.describe())?;
        match &e.failure {
            Some(f) => writeln!(out, "  failed:   {} ({}): {}", f.at, f.by, f.reason)?,
            None => writeln!(out, "  failed:   not tried yet")?,
        }
    }
    Ok(())
}
