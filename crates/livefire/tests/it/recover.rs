//! `livefire recover` after a crash, on real processes: `--list` says what is pending
//! and why, `--forget` is the way out of an undo that keeps failing (with who and why in
//! the run's journal), a gone process is called gone, stale control sockets are removed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// Waits (up to 20 s) until `cond` holds.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(20), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `livefire run` on `file` and kills it with SIGKILL once its ledger holds an
/// undo record (the fault is applied right after): no rollback can run.
fn run_then_kill_9(home: &Home, file: &std::path::Path) {
    let mut child = home
        .run(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the ledger holds an undo record", || {
        home.ledger_index().contains("\"op\":\"add\"")
    });
    // The apply follows the ledger write; give it a moment to happen.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    let _ = child.wait();
}

/// The run id (the run folder's name), as the user sees it.
fn run_id(home: &Home) -> String {
    home.run_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn sockets(home: &Home) -> Vec<PathBuf> {
    std::fs::read_dir(home.path().join("home/active"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn list_names_the_activity_as_written_its_fault_and_its_undo() {
    let home = Home::new();
    let victim = Victim::start();
    run_then_kill_9(&home, &home.file(&pause_experiment(victim.pid(), 30, "")));
    assert_eq!(victim.state(), 'T');
    let (code, out, err) = run(home.livefire().args(["recover", "--list"]));
    assert_eq!(code, 4, "entries are pending: {out}{err}");
    let id = run_id(&home);
    for expected in [
        format!("{id}:0"),
        "victim paused (timeline[0])".to_owned(),
        "fault:    process.pause".to_owned(),
        format!("undo:     send signal 18 to pid {}", victim.pid()),
        "failed:   not tried yet".to_owned(),
    ] {
        assert!(out.contains(&expected), "`{expected}` missing from:\n{out}");
    }
    assert!(victim.state() == 'T', "--list changes nothing");
    let (code, out, _) = run(home.livefire().arg("recover"));
    assert_eq!(code, 0, "{out}");
    assert!(victim.running());
    let (code, out, _) = run(home.livefire().args(["recover", "--list"]));
    assert_eq!(code, 0);
    assert!(out.contains("the ledger is empty"), "{out}");
}

#[test]
fn an_undo_that_keeps_failing_is_listed_with_its_reason_until_forgotten_with_one() {
    // (SUDO_USER, who the journal must name): the user behind sudo, else the OS user.
    let whoami = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    for (sudo_user, user) in [(Some("alice"), "alice"), (None, whoami.as_str())] {
        let home = Home::new();
        let file = home.file(
            "version: 1\ntitle: t\ntimeline:\n  - { at: 0s, for: 1s, fault: { command: { apply: \"true\", rollback: \"echo the disk is read-only >&2; exit 1\" } } }\n",
        );
        let (code, _, err) = run(&mut home.run(&file));
        assert_eq!(code, 4, "{err}");
        let entry = format!("{}:0", run_id(&home));
        // However often recover runs, the undo fails: exit 4 each time.
        for _ in 0..2 {
            let (code, _, err) = run(home.livefire().arg("recover"));
            assert_eq!(code, 4, "{err}");
            assert!(err.contains(&entry) && err.contains("--forget"), "{err}");
        }
        let (code, out, _) = run(home.livefire().args(["recover", "--list"]));
        assert_eq!(code, 4);
        assert!(out.contains(&entry), "{out}");
        assert!(out.contains("activity: command (timeline[0])"), "{out}");
        assert!(
            out.contains("(recover): `echo the disk is read-only >&2; exit 1` exited with code 1; stderr: the disk is read-only"),
            "the last failure and its reason: {out}"
        );
        // Without a reason, nothing is forgotten.
        let (code, _, err) = run(home.livefire().args(["recover", "--forget", &entry]));
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("--reason"), "{err}");
        assert!(home.ledger_index().contains("\"op\":\"add\""));
        // An entry that does not exist is refused, naming the ones that do.
        let (code, _, err) =
            run(home
                .livefire()
                .args(["recover", "--forget", "no-such-run:0", "--reason", "x"]));
        assert_eq!(code, 3);
        assert!(
            err.contains("no pending ledger entry") && err.contains(&entry),
            "{err}"
        );
        // With a reason, it is dropped; who and why go to the run's journal.
        let mut forget = home.livefire();
        forget.args([
            "recover",
            "--forget",
            &entry,
            "--reason",
            "remounted rw by hand",
        ]);
        match sudo_user {
            Some(u) => forget.env("SUDO_USER", u),
            None => forget.env_remove("SUDO_USER"),
        };
        let (code, out, err) = run(&mut forget);
        assert_eq!(code, 0, "the ledger is empty now: {out}{err}");
        assert!(out.contains(&format!("forgotten by {user}")), "{out}");
        let journal = home.journal();
        let event: serde_json::Value = journal
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["type"] == "undo_forgotten")
            .unwrap_or_else(|| panic!("no undo_forgotten event in:\n{journal}"));
        assert_eq!(event["user"], user);
        assert_eq!(event["reason"], "remounted rw by hand");
        assert_eq!(event["entry"], entry.as_str());
        let (code, out, _) = run(home.livefire().arg("recover"));
        assert_eq!(code, 0);
        assert!(out.contains("nothing to recover"), "{out}");
        // The report reads the event.
        let (code, _, err) = run(home.livefire().arg("report").arg(home.run_dir()));
        assert_eq!(code, 0, "{err}");
        let forgotten = &home.summary()["forgotten"];
        assert_eq!(forgotten[0]["user"], user, "{forgotten}");
        assert_eq!(forgotten[0]["reason"], "remounted rw by hand");
    }
}

#[test]
fn an_entry_of_a_run_that_is_still_active_is_left_to_it() {
    let home = Home::new();
    let victim = Victim::start();
    let file = home.file(&pause_experiment(victim.pid(), 30, ""));
    let child = home
        .run(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(victim.wait_state('T'));
    let entry = format!("{}:0", run_id(&home));
    let (code, _, err) = run(home
        .livefire()
        .args(["recover", "--forget", &entry, "--reason", "x"]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("still active") && err.contains("livefire halt"),
        "{err}"
    );
    let (code, out, _) = run(home.livefire().arg("recover"));
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("left to its run"), "{out}");
    assert_eq!(
        victim.state(),
        'T',
        "recover does not undo a live run's fault"
    );
    signal(&child, "TERM");
    let (code, _, err) = finish(child);
    assert_eq!(code, 2, "{err}");
    assert!(victim.running());
}

#[test]
fn after_kill_9_recover_calls_a_setup_process_that_died_with_livefire_gone() {
    let home = Home::new();
    let file = home.file(
        "version: 1\ntitle: t\nsetup:\n  - { name: w, command: \"sleep 300\" }\ntimeline:\n  - { at: 0s, for: 30s, fault: { process.pause: { target: w } } }\n",
    );
    run_then_kill_9(&home, &file);
    let (code, out, err) = run(home.livefire().arg("recover"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("is gone; nothing to undo"), "{out}");
    assert!(!out.contains("sent"), "nothing was signalled: {out}");
}

#[test]
fn a_stale_control_socket_is_removed_by_recover_and_ignored_by_halt_and_runs_active() {
    for command in ["recover", "halt", "runs --active"] {
        let home = Home::new();
        let victim = Victim::start();
        let file = home.file(&pause_experiment(victim.pid(), 30, ""));
        if command == "runs --active" {
            // While the run lives, it is listed with what it is doing.
            let child = home
                .run(&file)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            assert!(victim.wait_state('T'));
            let (code, out, err) = run(home.livefire().args(["runs", "--active"]));
            assert_eq!(code, 0, "{err}");
            assert!(
                out.contains(&run_id(&home)) && out.contains("active faults: victim paused"),
                "{out}"
            );
            signal(&child, "TERM");
            assert_eq!(finish(child).0, 2);
            std::fs::remove_dir_all(home.path().join("runs")).unwrap();
        }
        run_then_kill_9(&home, &file);
        assert_eq!(sockets(&home).len(), 1, "kill -9 leaves the socket behind");
        let (code, out, err) = run(home.livefire().args(command.split(' ')));
        match command {
            "recover" => {
                assert_eq!(code, 0, "{err}");
                assert!(out.contains("removed the stale control socket"), "{out}");
            }
            "halt" => {
                assert_eq!(code, 3, "{out}");
                assert!(err.contains("no active run"), "{err}");
            }
            _ => {
                assert_eq!(code, 0, "{err}");
                assert!(out.contains("no active run"), "{out}");
            }
        }
        assert_eq!(sockets(&home), Vec::<PathBuf>::new(), "`{command}`");
    }
}
