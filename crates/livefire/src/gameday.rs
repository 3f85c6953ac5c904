//! `livefire gameday` and `livefire mark`: flags, and the call into livefire-gameday.

use clap::Args;
use livefire_core::events::MarkKind;
use livefire_core::exit::Exit;

#[derive(Debug, Args)]
pub struct GamedayArgs {
    #[command(flatten)]
    pub run: crate::cli::RunArgs,
    /// Where the responders' page listens (loopback and a free port by default; the
    /// URL is printed).
    #[arg(long, value_name = "ADDR", default_value = livefire_gameday::DEFAULT_LISTEN)]
    pub listen: String,
    /// No facilitator's terminal view: the progress line, as `livefire run` prints it
    /// (the view is shown only when stdout is a terminal anyway).
    #[arg(long)]
    pub no_tui: bool,
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    /// detected, mitigated or resolved.
    pub mark: MarkKind,
    /// Who marks: one of the scenario's `responders:` (default: $LIVEFIRE_RESPONDER,
    /// else $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub responder: Option<String>,
    /// What you saw or did, kept with the mark.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// The game day to mark (its run id); optional with one running.
    #[arg(long = "run", value_name = "ID")]
    pub run_id: Option<String>,
}

/// `livefire gameday FILE`.
pub(crate) fn gameday(args: GamedayArgs) -> Exit {
    use std::io::IsTerminal;
    let facilitator = !args.no_tui && std::io::stdout().is_terminal();
    let opts = match crate::run_options(args.run) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("livefire: {e}");
            return Exit::Invalid;
        }
    };
    crate::finish(livefire_gameday::run(opts, &args.listen, facilitator))
}

/// `livefire mark KIND`.
pub(crate) fn mark(args: MarkArgs) -> Exit {
    let responder = args
        .responder
        .or_else(|| std::env::var("LIVEFIRE_RESPONDER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    let request = livefire_gameday::marks::MarkRequest {
        mark: args.mark,
        responder,
        note: args.note,
        via: Some(livefire_gameday::Via::Cli.label().into()),
    };
    match livefire_gameday::client::send(args.run_id.as_deref(), &request) {
        Ok(m) => {
            println!(
                "{} by {} recorded at t = {:.1} s",
                m.mark.label(),
                m.responder,
                m.t_ms as f64 / 1e3
            );
            Exit::Ok
        }
        Err(e) => {
            eprintln!("livefire: {e}");
            Exit::Invalid
        }
    }
}
