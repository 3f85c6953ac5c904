//! `livefire runs`: past runs, oldest first, with verdict, duration and title: every
//! run the home's index knows, wherever it went, and the run folders under `--out`.

use std::path::Path;

use livefire_report::index::{self, RunKind};

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A run folder named `id` under `parent`, holding a fixture's journal.
fn run_folder(parent: &Path, id: &str, fixture: &str) -> std::path::PathBuf {
    let dir = parent.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        fixtures().join(fixture).join("journal.jsonl"),
        dir.join("journal.jsonl"),
    )
    .unwrap();
    dir
}

fn runs(home: &Path, out: &Path) -> String {
    let args = livefire_report::cli::RunsArgs {
        out: out.to_path_buf(),
        home: home.to_path_buf(),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    assert_eq!(
        livefire_report::cli::runs(&args, &mut stdout, &mut stderr).code(),
        0,
        "{}",
        String::from_utf8_lossy(&stderr)
    );
    String::from_utf8(stdout).unwrap()
}

#[test]
fn runs_lists_every_run_folder_oldest_first_with_its_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("runs");
    run_folder(&out, "20260101T000000Z-first", "held-pause");
    run_folder(&out, "20260102T000000Z-second", "aborted-guardrail");
    run_folder(&out, "20260103T000000Z-crashed", "held-load");
    // One with its outputs written, one whose journal was cut short, one stray folder.
    livefire_report::write_outputs(&out.join("20260101T000000Z-first")).unwrap();
    let crashed = out.join("20260103T000000Z-crashed/journal.jsonl");
    let text = std::fs::read_to_string(&crashed).unwrap();
    std::fs::write(&crashed, &text[..text.len() / 2]).unwrap();
    std::fs::create_dir(out.join("not-a-run")).unwrap();

    let text = runs(&tmp.path().join("home"), &out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("RUN") && lines[0].contains("VERDICT"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("20260101T000000Z-first") && lines[1].contains("held"),
        "{text}"
    );
    assert!(
        lines[1].contains("A paused worker stops answering"),
        "{text}"
    );
    assert!(
        lines[2].contains("aborted") && lines[2].contains("3.31s"),
        "{text}"
    );
    assert!(lines[3].contains("incomplete"), "{text}");
}

// Regression: `livefire runs` looked only in `.livefire/runs`, so a run that
// `settings.out` put elsewhere was "not found", and fuzz runs never appeared.
#[test]
fn runs_in_the_index_are_listed_wherever_they_went_fuzz_runs_too() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let elsewhere = tmp.path().join("drills/q3");
    let dir = run_folder(&elsewhere, "20260105T000000Z-elsewhere", "planned-pause");
    index::append(
        &home,
        "20260105T000000Z-elsewhere",
        &dir,
        "A paused worker",
        RunKind::Run,
    )
    .unwrap();
    // A fuzz run: findings, no journal.
    let fuzz = tmp.path().join("fuzz/fuzz-20260106T000000Z-1a2b");
    std::fs::create_dir_all(&fuzz).unwrap();
    std::fs::write(
        fuzz.join("findings.json"),
        r#"{"version":1,"findings":[{"rule":"server_error"},{"rule":"leak"}]}"#,
    )
    .unwrap();
    std::fs::write(fuzz.join("fuzz-summary.json"), r#"{"elapsed_ms":2500}"#).unwrap();
    index::append(
        &home,
        "fuzz-20260106T000000Z-1a2b",
        &fuzz,
        "fuzz api.yaml against http://127.0.0.1:9",
        RunKind::Fuzz,
    )
    .unwrap();
    // A run the index names but whose folder was deleted is left out.
    index::append(
        &home,
        "20260107T000000Z-deleted",
        &tmp.path().join("gone"),
        "gone",
        RunKind::Run,
    )
    .unwrap();
    // And one from before the index, under --out.
    let out = tmp.path().join("runs");
    run_folder(&out, "20260104T000000Z-older", "held-load");

    let text = runs(&home, &out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].starts_with("20260104T000000Z-older"), "{text}");
    assert!(
        lines[2].starts_with("20260105T000000Z-elsewhere")
            && lines[2].contains("held")
            && lines[2].contains(&dir.display().to_string()),
        "{text}"
    );
    assert!(
        lines[3].starts_with("fuzz-20260106T000000Z-1a2b")
            && lines[3].contains("fuzz: 2 findings")
            && lines[3].contains("2.50s")
            && lines[3].contains("fuzz api.yaml against"),
        "{text}"
    );

    // `livefire report ID` finds the run through the index, from anywhere.
    let report = |id: &str| {
        let args = livefire_report::cli::ReportArgs {
            run_dir: id.into(),
            home: home.clone(),
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = livefire_report::cli::report(&args, &mut stdout, &mut stderr).code();
        (
            code,
            String::from_utf8(stdout).unwrap(),
            String::from_utf8(stderr).unwrap(),
        )
    };
    let (code, stdout, stderr) = report("20260105T000000Z-elsewhere");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("verdict held"), "{stdout}");
    assert!(dir.join("report.html").is_file());
    // A fuzz run has no journal: say where its results are.
    let (code, _, stderr) = report("fuzz-20260106T000000Z-1a2b");
    assert_eq!(code, 3);
    assert!(
        stderr.contains("a `livefire fuzz` run") && stderr.contains("findings.json"),
        "{stderr}"
    );
    let (code, _, stderr) = report("20260108T000000Z-never");
    assert_eq!(code, 3);
    assert!(
        stderr.contains("no run folder or run id `20260108T000000Z-never`"),
        "{stderr}"
    );
}

#[test]
fn no_runs_yet_says_where_runs_are_listed_from() {
    let tmp = tempfile::tempdir().unwrap();
    let text = runs(&tmp.path().join("home"), &tmp.path().join("missing"));
    assert!(text.contains("no runs yet"), "{text}");
}
