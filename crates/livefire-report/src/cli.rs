//! The `livefire report`, `livefire compare` and `livefire runs` subcommands: their
//! flags and what they print. The binary only parses and dispatches.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

/// Exit code when the input is invalid (missing folder, no journal): nothing written.
pub const EXIT_INVALID: u8 = 3;

/// `livefire report RUN_DIR`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// A run folder (holding journal.jsonl); summary.json, report.html and junit.xml
    /// are rebuilt from the journal alone.
    pub run_dir: PathBuf,
}

/// Rebuilds a run folder's outputs; prints what was written. Exit 0 when written
/// (whatever the verdict), 3 when the folder has no readable journal.
pub fn report(args: &ReportArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match crate::write_outputs(&args.run_dir) {
        Ok(o) => {
            let s = &o.summary;
            let _ = writeln!(
                out,
                "{}: verdict {}{}",
                if s.title.is_empty() {
                    "untitled run"
                } else {
                    &s.title
                },
                crate::verdict_word(s.verdict),
                s.exit_code
                    .map(|c| format!(" (exit {c})"))
                    .unwrap_or_default()
            );
            if let Some(stopped) = &s.journal_stopped {
                let _ = writeln!(err, "livefire: incomplete journal: {stopped}");
            }
            for f in &o.files {
                let _ = writeln!(out, "wrote {}", f.display());
            }
            0
        }
        Err(e) => {
            let _ = writeln!(err, "livefire: {e}");
            EXIT_INVALID
        }
    }
}
