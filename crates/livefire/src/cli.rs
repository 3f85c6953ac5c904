//! Flags and subcommands. Each subcommand's arguments live beside the crate that does
//! the work where that crate has a standalone mode (proxy, load, fuzz).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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
    /// Print the JSON Schema of the experiment file format.
    Schema,
    /// Run a fault-injecting TCP proxy server with a Toxiproxy-compatible HTTP API.
    Proxy(livefire_proxy::ProxyArgs),
    /// Print the version.
    Version,
    /// Load a URL at a rate (-r) or with virtual users (-c) and print a latency summary.
    Load(livefire_load::cli::LoadArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The experiment file (YAML or JSON).
    pub file: PathBuf,
    /// Set a variable used as `${name}` (repeatable); overrides the file's `vars:`.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = livefire_spec::parse_var)]
    pub vars: Vec<(String, String)>,
}

/// Exit codes of livefire (DESIGN.md).
pub mod exit {
    /// Invalid experiment, flag or setup: nothing was applied.
    pub const INVALID: u8 = 3;
}

pub(crate) fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate(args) => crate::validate(args),
        Command::Schema => {
            let schema = livefire_spec::json_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Command::Load(args) => ExitCode::from(livefire_load::cli::command(
            &args,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Proxy(args) => {
            let ready = |addr| {
                println!(
                    "livefire proxy: API on http://{addr} (Toxiproxy-compatible), Ctrl-C to stop"
                );
            };
            match livefire_proxy::run(args, ready) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::from(exit::INVALID)
                }
            }
        }
        Command::Version => {
            println!("livefire {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}
