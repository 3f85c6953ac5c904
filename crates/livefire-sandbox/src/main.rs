//! `livefire-sandbox`: the `livefire sandbox` subcommands as a program of their own, so
//! this crate's tests drive real processes (`up` starts its services by running itself).

use std::process::ExitCode;

fn main() -> ExitCode {
    let launcher = livefire_sandbox::cli::self_launcher(&[]);
    livefire_sandbox::cli::main_with_args(std::env::args_os(), launcher).into()
}
