//! `livefire report`: every run folder has summary.json, report.html and junit.xml,
//! and `livefire report RUN_DIR` rebuilds them from the journal alone.

use crate::support::*;

#[test]
fn every_run_folder_has_a_report_and_livefire_report_rebuilds_it_from_the_journal() {
    let home = Home::new();
    // The example's shape on a port of its own (the example's fixed port would clash
    // with the tests that run the example itself).
    let port = free_port();
    let example = std::fs::read_to_string(repo().join("examples/pause-a-worker.yaml"))
        .unwrap()
        .replace("18080", &port.to_string());
    let (code, out, err) = run(&mut home.run(&home.file(&example)));
    assert_eq!(code, 0, "{out}{err}");
    let dir = home.run_dir();
    for f in ["summary.json", "report.html", "junit.xml"] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    // The fresh run's summary matches the committed schema.
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("schema/summary.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let first = home.summary();
    let errors: Vec<String> = validator
        .iter_errors(&first)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();

    for f in ["summary.json", "report.html", "junit.xml"] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let (code, out, err) = run(home.livefire().arg("report").arg(&dir));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verdict held (exit 0)"), "{out}");
    assert!(
        out.contains("wrote ") && out.contains("report.html"),
        "{out}"
    );
    assert_eq!(home.summary(), first, "rebuilt from the journal alone");
    assert_eq!(
        std::fs::read_to_string(dir.join("report.html")).unwrap(),
        html
    );

    // `livefire runs` lists it; `livefire compare` puts it beside itself.
    let (code, out, err) = run(home
        .livefire()
        .arg("runs")
        .arg("--out")
        .arg(home.path().join("runs")));
    assert_eq!(code, 0, "{err}");
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    let line = out
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("held") && line.contains("A paused worker"),
        "{line}"
    );
    let (code, out, err) = run(home.livefire().arg("compare").arg(&dir).arg(&dir));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verdict") && out.contains("same"), "{out}");
    assert!(out.contains("worker paused"), "{out}");
    // A run id, as `livefire runs` prints it, is looked up in .livefire/runs.
    let cwd = home.path().join("cwd");
    std::fs::create_dir_all(cwd.join(".livefire")).unwrap();
    std::os::unix::fs::symlink(home.path().join("runs"), cwd.join(".livefire/runs")).unwrap();
    let (code, out, err) = run(home.livefire().current_dir(&cwd).arg("report").arg(&id));
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run(home.livefire().arg("compare").arg(&dir).arg(home.path()));
    assert_eq!(code, 3);
    assert!(err.contains("no journal.jsonl here"), "{err}");
}

#[test]
fn report_on_a_folder_without_a_journal_exits_3_and_says_what_to_pass() {
    let home = Home::new();
    let (code, _, err) = run(home.livefire().arg("report").arg(home.path()));
    assert_eq!(code, 3);
    assert!(
        err.contains("no journal.jsonl here: pass a run folder"),
        "{err}"
    );
}
