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

// Regression: `livefire runs` and `livefire report RUN_ID` looked only in
// `.livefire/runs`, so a run that `settings.out` put elsewhere was "not found".
#[test]
fn a_run_under_settings_out_elsewhere_is_listed_by_runs_and_found_by_id() {
    let home = Home::new();
    let victim = Victim::start();
    let out = home.path().join("drills/elsewhere");
    let file = home.file(&pause_experiment(
        victim.pid(),
        1,
        &format!("settings:\n  out: {}\n", out.display()),
    ));
    let (code, stdout, err) = run(home.livefire().arg("run").arg(&file).arg("-q"));
    assert_eq!(code, 0, "{stdout}{err}");
    let dirs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = &dirs[0];
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();

    // From a folder that has no runs of its own, and without --out.
    let cwd = home.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let (code, stdout, err) = run(home.livefire().current_dir(&cwd).arg("runs"));
    assert_eq!(code, 0, "{err}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not listed:\n{stdout}"));
    assert!(
        line.contains("held") && line.contains("pause the victim"),
        "{line}"
    );
    assert!(line.contains(&dir.display().to_string()), "{line}");
    std::fs::remove_file(dir.join("report.html")).unwrap();
    let (code, stdout, err) = run(home.livefire().current_dir(&cwd).arg("report").arg(&id));
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(dir.join("report.html").is_file());
    let (code, stdout, err) = run(home
        .livefire()
        .current_dir(&cwd)
        .args(["compare", &id, &id]));
    assert_eq!(code, 0, "{stdout}{err}");
}

// Regression: `--version` said 0.1.0 while the journal, summary, report and JUnit said
// 0.0.0.
#[test]
fn the_journal_summary_junit_and_version_flag_name_one_version() {
    let home = Home::new();
    let victim = Victim::start();
    let (code, stdout, err) =
        run(&mut home.run(&home.file(&pause_experiment(victim.pid(), 1, ""))));
    assert_eq!(code, 0, "{stdout}{err}");
    let (code, stdout, _) = run(livefire().arg("--version"));
    assert_eq!(code, 0);
    let version = stdout.trim().strip_prefix("livefire ").unwrap().to_owned();
    assert!(!version.is_empty() && version != "0.0.0", "{stdout}");
    let (_, stdout, _) = run(livefire().arg("version"));
    assert_eq!(stdout.trim(), format!("livefire {version}"));
    let first: serde_json::Value =
        serde_json::from_str(home.journal().lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "run_started");
    assert_eq!(first["livefire"], version.as_str());
    assert_eq!(home.summary()["livefire"], version.as_str());
    let junit = std::fs::read_to_string(home.run_dir().join("junit.xml")).unwrap();
    assert!(
        junit.contains(&format!(r#"<property name="livefire" value="{version}"/>"#)),
        "{junit}"
    );
    let html = std::fs::read_to_string(home.run_dir().join("report.html")).unwrap();
    assert!(html.contains(&format!("<dt>livefire</dt><dd>{version}</dd>")));
    assert!(
        livefire_proxy::api::API_VERSION.ends_with(&format!("+livefire.{version}")),
        "{}",
        livefire_proxy::api::API_VERSION
    );
}

// Regression: `activity_ended` events said `"kind": ""`; and a report needs the journal
// alone: its plan event names every condition and activity.
#[test]
fn the_journal_has_its_plan_and_activity_kinds() {
    let home = Home::new();
    let victim = Victim::start();
    let (code, stdout, err) =
        run(&mut home.run(&home.file(&pause_experiment(victim.pid(), 1, ""))));
    assert_eq!(code, 0, "{stdout}{err}");
    let events: Vec<serde_json::Value> = home
        .journal()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[1]["type"], "plan", "right after run_started");
    let activity = &events[1]["activities"][0];
    assert_eq!(activity["id"], "timeline[0]");
    assert_eq!(activity["display"], "victim paused");
    assert_eq!(activity["kind"], "process.pause");
    assert_eq!(events[1]["experiment"]["title"], "pause the victim");
    let ended = events
        .iter()
        .find(|e| e["type"] == "activity_ended")
        .expect("activity_ended");
    assert_eq!(ended["kind"], "process.pause");
    // Nothing but the journal: the report is the same without experiment.yaml.
    let dir = home.run_dir();
    let before = std::fs::read_to_string(dir.join("report.html")).unwrap();
    std::fs::remove_file(dir.join("experiment.yaml")).unwrap();
    let (code, stdout, err) = run(home.livefire().arg("report").arg(&dir));
    assert_eq!(code, 0, "{stdout}{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("report.html")).unwrap(),
        before
    );
}
