//! The safety rules of the faults crate that hold below any one kind (a reused pid, PID
//! 1, kinds not built) and the errors of a fault's commands. Every kind's conformance
//! (docs/specs/fault.md) is proven by the one harness in
//! crates/livefire/tests/it/conformance.rs, on a real `livefire run`.

// net: the net.* kinds on a network of namespaces the tests build.
mod net;
// The postgres.* access faults, as a client of a real PostgreSQL sees them.
mod postgres;

use std::process::Command;
use std::time::Duration;

use livefire_core::undo::UndoRecord;
use livefire_faults::{Targets, check, exec, prepare, process, undo};
use livefire_spec::{Fault, ProcessSelector, Target};

/// postgres.corrupt on a real PostgreSQL.
mod postgres_corrupt;
/// cpu.stress, memory.stress, disk.fill: refusals, and a fill on a small filesystem.
mod resources;

struct Victim(std::process::Child);

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.id().to_string()])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spec<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    livefire_spec::de::from_node(&livefire_spec::yaml::parse(yaml).unwrap()).unwrap()
}

#[test]
fn a_reused_pid_is_never_signalled() {
    let v = Victim(Command::new("sleep").arg("300").spawn().unwrap());
    let pid = v.0.id();
    let real = process::resolve(
        "v",
        &ProcessSelector {
            pid: Some(pid),
            ..Default::default()
        },
    )
    .unwrap();
    // The record says another start time: as if the pid now belonged to a new process.
    let stale = livefire_core::undo::ProcessId {
        pid,
        start_time: real.start_time + 1,
    };
    let err = process::signal(stale, nix::libc::SIGSTOP).unwrap_err();
    assert!(matches!(err, process::ProcessError::Reused { .. }), "{err}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        process::state(pid),
        Some('S'),
        "the process was not stopped"
    );
    // Undoing a pause whose process is gone or reused is a no-op, never a signal.
    let detail = undo(&UndoRecord::Signal {
        process: stale,
        signal: nix::libc::SIGSTOP,
    })
    .unwrap();
    assert!(detail.contains("gone"), "{detail}");
    assert_eq!(process::state(pid), Some('S'));
}

#[test]
fn pid_1_and_self_are_refused() {
    for pid in [1, std::process::id()] {
        let err = process::resolve(
            "x",
            &ProcessSelector {
                pid: Some(pid),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, process::ProcessError::Forbidden { .. }),
            "{err}"
        );
    }
}

#[test]
fn the_plan_check_refuses_what_needs_no_live_target() {
    // (fault, targets, what the refusal must say); nothing here is running.
    let process = Target {
        process: Some(ProcessSelector {
            pidfile: Some("/nonexistent/w.pid".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let http = Target {
        http: Some("http://127.0.0.1:9".into()),
        ..Default::default()
    };
    type Case<'a> = (&'a str, &'a [(&'a str, &'a Target)], &'a str);
    let cases: &[Case] = &[
        (
            "process.restart: { target: w }",
            &[("w", &process)],
            "target `w` has no `restart:` command",
        ),
        (
            "process.pause: { target: nope }",
            &[("w", &process)],
            "target `nope` is not declared",
        ),
        (
            "proxy.latency: { target: w, latency: 5ms }",
            &[("w", &process)],
            "`proxy.latency` acts on a proxy target; `w` is not one",
        ),
        (
            "process.kill: { target: api }",
            &[("api", &http)],
            "`process.kill` acts on a process target",
        ),
        (
            "command: { apply: \"true\", user: no-such-user-lf }",
            &[],
            "user `no-such-user-lf` does not exist",
        ),
        (
            "disk.fill: { target: w, size: 1GiB }",
            &[("w", &process)],
            "`disk.fill` acts on a path target; `w` is not one",
        ),
    ];
    for (yaml, declared, says) in cases {
        let fault: Fault = spec(yaml);
        let targets = Targets {
            targets: declared
                .iter()
                .map(|(n, t)| (n.to_string(), (*t).clone()))
                .collect(),
            ..Default::default()
        };
        let err = check(&fault, &targets).expect_err(yaml).to_string();
        assert!(err.contains(says), "{yaml}: {err}");
        // prepare checks first: the same refusal, before any target is resolved.
        let err = prepare(&fault, &targets, "t").expect_err(yaml).to_string();
        assert!(err.contains(says), "{yaml}: {err}");
    }
}

#[test]
fn a_failing_command_shows_the_last_lines_of_what_it_printed() {
    // Regression (issue 28): the message ended in ": " and the command's output was lost.
    let cases = [
        (
            "echo cannot reach db >&2; exit 7",
            "`echo cannot reach db >&2; exit 7` exited with code 7; stderr: cannot reach db",
        ),
        (
            "echo to stdout; echo to stderr >&2; false",
            "; stderr: to stderr; stdout: to stdout",
        ),
        ("exit 2", "`exit 2` exited with code 2, printing nothing"),
        (
            "for i in 1 2 3 4 5 6 7; do echo line $i >&2; done; exit 1",
            "; stderr: ... | line 3 | line 4 | line 5 | line 6 | line 7",
        ),
        ("kill -9 $$", "exited with a signal, printing nothing"),
    ];
    for (run, says) in cases {
        let err = exec::run(run, None, None, 10_000)
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains(says), "{run}: {err}");
        // A `command` fault's apply fails with the same words.
        let fault: Fault = spec(&format!("command: {{ apply: {run:?} }}"));
        let prepared = prepare(&fault, &Targets::default(), "t").unwrap();
        let err = prepared.apply(None).unwrap_err().to_string();
        assert!(err.contains(says), "{run}: {err}");
    }
    // Only the end of a long line is kept.
    let long = "head -c 5000 /dev/zero | tr '\\0' x >&2; exit 1";
    let err = exec::run(long, None, None, 10_000)
        .unwrap()
        .check()
        .unwrap_err()
        .to_string();
    assert!(err.len() < 1000 && err.ends_with("xxx"), "{}", err.len());
}
