//! Flags and subcommands. Each subcommand's arguments live beside the crate that does
//! the work where that crate has a standalone mode (proxy, load, fuzz).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Print the version and build information.
    Version,
}

pub(crate) fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Version => {
            println!("livefire {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}
