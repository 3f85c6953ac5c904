//! The `livefire report`, `livefire compare` and `livefire runs` subcommands: their
//! flags and what they print. The binary only parses and dispatches.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use livefire_core::exit::Exit;

/// The default runs folder (`settings.out`'s default).
pub const DEFAULT_RUNS: &str = ".livefire/runs";

/// Where a run is, from what a user typed: a run folder, its `journal.jsonl`, or a run
/// id as `livefire runs` prints it (looked up in the home's index, wherever the run
/// went, then in the default runs folder).
pub fn resolve_run(arg: &Path, home: &Path) -> Result<PathBuf, crate::ReportError> {
    if arg.is_file() && arg.file_name().is_some_and(|n| n == "journal.jsonl") {
        return Ok(arg.parent().map(|p| p.to_path_buf()).unwrap_or_default());
    }
    if arg.exists() {
        return Ok(arg.to_path_buf());
    }
    let id = arg.to_string_lossy();
    if let Some(e) = crate::index::find(home, &id) {
        if e.kind == crate::index::RunKind::Fuzz {
            return Err(crate::ReportError::FuzzRun(e.dir));
        }
        return Ok(e.dir);
    }
    let by_id = Path::new(DEFAULT_RUNS).join(arg);
    if by_id.join("journal.jsonl").is_file() {
        return Ok(by_id);
    }
    Err(crate::ReportError::NotFound(id.into_owned()))
}

/// `livefire report RUN_DIR`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// A run folder (holding journal.jsonl), its journal.jsonl, or a run id from
    /// `livefire runs`; summary.json, report.html and junit.xml are rebuilt from the
    /// journal alone.
    pub run_dir: PathBuf,
    /// Where the index of runs is (`$LIVEFIRE_HOME`).
    #[arg(skip = crate::index::home())]
    pub home: PathBuf,
}

/// Rebuilds a run folder's outputs; prints what was written. Exit 0 when written
/// (whatever the verdict), 3 when the folder has no readable journal.
pub fn report(args: &ReportArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    match resolve_run(&args.run_dir, &args.home).and_then(|dir| crate::write_outputs(&dir)) {
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
            for n in &o.notes {
                let _ = writeln!(out, "{n}");
            }
            Exit::Ok
        }
        Err(e) => {
            let _ = writeln!(err, "livefire: {e}");
            Exit::Invalid
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
    /// Where the index of runs is (`$LIVEFIRE_HOME`).
    #[arg(skip = crate::index::home())]
    pub home: PathBuf,
}

/// Prints two runs side by side. Exit 0, or 3 when a folder has no readable journal or
/// the HTML cannot be written.
pub fn compare(args: &CompareArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let dirs = resolve_run(&args.run_a, &args.home)
        .and_then(|a| Ok((a, resolve_run(&args.run_b, &args.home)?)));
    let c = match dirs.and_then(|(a, b)| crate::compare::compare_dirs(&a, &b)) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "livefire: {e}");
            return Exit::Invalid;
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
            return Exit::Invalid;
        }
        let _ = writeln!(out, "\nwrote {}", path.display());
    }
    Exit::Ok
}

/// `livefire runs`.
#[derive(Debug, Clone, Args)]
pub struct RunsArgs {
    /// Also list run folders here that the home's index does not know (runs from an
    /// older livefire); runs in the index are listed wherever they went.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_RUNS)]
    pub out: PathBuf,
    /// Where the index of runs is (`$LIVEFIRE_HOME`).
    #[arg(skip = crate::index::home())]
    pub home: PathBuf,
}

/// Lists past runs, oldest first: run id, verdict, duration, title, folder. Exit 0, or 3
/// when the index or the folder cannot be read.
pub fn runs(args: &RunsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let list = match crate::runs::list_runs(&args.home, &args.out) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(
                err,
                "livefire: cannot read the runs in {} or {}: {e}: check LIVEFIRE_HOME and --out",
                args.home.join(crate::index::INDEX_FILE).display(),
                args.out.display()
            );
            return Exit::Invalid;
        }
    };
    if list.is_empty() {
        let _ = writeln!(
            out,
            "no runs yet: none in {} and none in {} (every run and fuzz run is listed there once it starts)",
            args.home.join(crate::index::INDEX_FILE).display(),
            args.out.display()
        );
        return Exit::Ok;
    }
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.verdict.clone(),
                r.duration_ms.map(crate::summary::secs).unwrap_or_default(),
                r.title.clone(),
                r.dir.display().to_string(),
            ]
        })
        .collect();
    let header = ["RUN", "VERDICT", "DURATION", "TITLE", "FOLDER"].map(String::from);
    let mut width = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let _ = writeln!(
            out,
            "{:w0$}   {:w1$}   {:>w2$}   {:w3$}   {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3]
        );
    }
    Exit::Ok
}
