//! The command-line front end. It parses flags, calls the library crates and maps
//! their results to exit codes; it holds no logic of its own.

mod cli;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use cli::{Cli, Command};

/// Runs the CLI with the given arguments (the first is the program name) and returns
/// the process exit code. Tests call this instead of spawning the binary where they can.
pub fn main_with_args<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout with exit 0, usage errors with exit 2;
            // livefire reserves 2 for "aborted", so a bad flag is "invalid" (3).
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    cli::dispatch(cli)
}

/// `livefire validate`: all errors at once, located; exit 3 when there are any.
fn validate(args: cli::ValidateArgs) -> ExitCode {
    match livefire_spec::load_file(&args.file, &args.vars) {
        Ok(loaded) => {
            if !loaded.warnings.diagnostics.is_empty() {
                eprint!("{}", loaded.warnings);
            }
            let e = &loaded.experiment;
            println!(
                "{}: valid: {} target(s), {} setup process(es), {} activit{}, {} hypothesis condition(s), {} guardrail(s)",
                args.file.display(),
                e.targets.len(),
                e.setup.len(),
                e.timeline.len(),
                if e.timeline.len() == 1 { "y" } else { "ies" },
                e.hypothesis.len(),
                e.guardrails.len()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprint!("{err}");
            if matches!(err, livefire_spec::LoadError::Read { .. }) {
                eprintln!();
            }
            ExitCode::from(cli::exit::INVALID)
        }
    }
}
