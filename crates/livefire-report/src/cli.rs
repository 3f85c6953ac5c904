//! The `livefire report`, `livefire compare` and `livefire runs` subcommands: their
//! flags and what they print. The binary only parses and dispatches.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

/// Exit code when the input is invalid (missing folder, no journal): nothing written.
pub const EXIT_INVALID: u8 = 3;

/// The default runs folder (`settings.out`'s default).
pub const DEFAULT_RUNS: &str = ".livefire/runs";

/// Where a run is, from what a user typed: a run folder, its `journal.jsonl`, or a run
/// id as `livefire runs` prints it (looked up in the default runs folder).
pub fn resolve_run(arg: &std::path::Path) -> PathBuf {
    if arg.is_file() && arg.file_name().is_some_and(|n| n == "journal.jsonl") {
        return arg.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    }
    if !arg.exists() {
        let by_id = std::path::Path::new(DEFAULT_RUNS).join(arg);
        if by_id.join("journal.jsonl").is_file() {
            return by_id;
        }
    }
    arg.to_path_buf()
}

/// `livefire report RUN_DIR`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// A run folder (holding journal.jsonl), its journal.jsonl, or a run id from
    /// `livefire runs`; summary.json, report.html and junit.xml are rebuilt from the
    /// journal alone.
    pub run_dir: PathBuf,
}

/// Rebuilds a run folder's outputs; prints what was written. Exit 0 when written
/// (whatever the verdict), 3 when the folder has no readable journal.
pub fn report(args: &ReportArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match crate::write_outputs(&resolve_run(&args.run_dir)) {
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

/// `livefire compare RUN_A RUN_B`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The earlier run (a run folder, or a run id from `livefire runs`).
    pub run_a: PathBuf,
    /// The later run.
    pub run_b: PathBuf,
    /// Also write the comparison as a self-contained HTML page here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Prints two runs side by side. Exit 0, or 3 when a folder has no readable journal or
/// the HTML cannot be written.
pub fn compare(args: &CompareArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let c = match crate::compare::compare_dirs(&resolve_run(&args.run_a), &resolve_run(&args.run_b))
    {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "livefire: {e}");
            return EXIT_INVALID;
        }
    };
    let _ = write!(out, "{}", c.to_text());
    if let Some(path) = &args.html {
        if let Err(e) = std::fs::write(path, c.to_html()) {
            let _ = writeln!(
                err,
                "livefire: cannot write {}: {e}: pass --html with a writable path",
                path.display()
            );
            return EXIT_INVALID;
        }
        let _ = writeln!(out, "\nwrote {}", path.display());
    }
    0
}

/// `livefire runs`.
#[derive(Debug, Clone, Args)]
pub struct RunsArgs {
    /// The runs folder (the parent of run folders), as given to `livefire run --out`.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS)]
    pub out: PathBuf,
}

/// Lists past runs, oldest first: run id, verdict, duration, title. Exit 0, or 3 when
/// the folder cannot be read.
pub fn runs(args: &RunsArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let list = match crate::runs::list_runs(&args.out) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(
                err,
                "livefire: cannot read {}: {e}: pass --out with the folder `livefire run --out` used",
                args.out.display()
            );
            return EXIT_INVALID;
        }
    };
    if list.is_empty() {
        let _ = writeln!(
            out,
            "no runs in {} (runs land there unless `livefire run --out DIR` names another folder)",
            args.out.display()
        );
        return 0;
    }
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|r| {
            let s = &r.summary;
            let id = r
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let verdict = match (s.verdict, &s.journal_stopped) {
                (None, _) => "incomplete".to_owned(),
                (Some(_), _) => crate::verdict_word(s.verdict).to_owned(),
            };
            [
                id,
                verdict,
                crate::summary::secs(s.duration_ms),
                s.title.clone(),
            ]
        })
        .collect();
    let header = ["RUN", "VERDICT", "DURATION", "TITLE"].map(String::from);
    let mut width = [0usize; 4];
    for row in std::iter::once(&header).chain(&rows) {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let _ = writeln!(
            out,
            "{:w0$}   {:w1$}   {:>w2$}   {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        );
    }
    0
}
