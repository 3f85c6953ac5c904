//! `livefire report RUN_DIR` as a binary of this crate alone, for the report benchmark
//! (bench/report.sh `REPORT_BIN`): the same call as the `livefire` binary's subcommand,
//! [`livefire_report::cli::report`], so a change to the report can be timed in a
//! release build without building the whole CLI (minutes, not the better part of an
//! hour on a shared machine).
//!
//! cargo run --release -p livefire-report --example report -- RUN_DIR

use clap::Parser;

/// Rebuilds summary.json, report.html and junit.xml of a run folder from its journal.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    report: livefire_report::cli::ReportArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let exit =
        livefire_report::cli::report(&args.report, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::ExitCode::from(exit.code())
}
