//! `livefire runs`: past runs, oldest first, with verdict, duration and title.

#[test]
fn runs_lists_every_run_folder_oldest_first_with_its_verdict() {
    let out = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (name, fixture) in [
        ("20260101T000000Z-first", "held-pause"),
        ("20260102T000000Z-second", "aborted-guardrail"),
        ("20260103T000000Z-crashed", "held-load"),
    ] {
        let dir = out.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for f in ["journal.jsonl", "experiment.yaml"] {
            std::fs::copy(src.join(fixture).join(f), dir.join(f)).unwrap();
        }
    }
    // One with its outputs written, one whose journal was cut short, one stray folder.
    livefire_report::write_outputs(&out.path().join("20260101T000000Z-first")).unwrap();
    let crashed = out.path().join("20260103T000000Z-crashed/journal.jsonl");
    let text = std::fs::read_to_string(&crashed).unwrap();
    std::fs::write(&crashed, &text[..text.len() / 2]).unwrap();
    std::fs::create_dir(out.path().join("not-a-run")).unwrap();

    let args = livefire_report::cli::RunsArgs {
        out: out.path().to_path_buf(),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    assert_eq!(
        livefire_report::cli::runs(&args, &mut stdout, &mut stderr),
        0
    );
    let text = String::from_utf8(stdout).unwrap();
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

#[test]
fn no_runs_folder_yet_says_where_runs_land() {
    let out = tempfile::tempdir().unwrap();
    let args = livefire_report::cli::RunsArgs {
        out: out.path().join("missing"),
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    assert_eq!(
        livefire_report::cli::runs(&args, &mut stdout, &mut stderr),
        0
    );
    assert!(String::from_utf8(stdout).unwrap().contains("no runs in"));
}
