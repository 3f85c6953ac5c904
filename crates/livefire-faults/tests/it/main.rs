//! Every fault kind passes one conformance harness (docs/specs/fault.md), on real
//! processes and files.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use livefire_core::undo::UndoRecord;
use livefire_faults::{Targets, prepare, process, undo};
use livefire_spec::{Fault, ProcessSelector, Target};

/// The conformance harness. `observe` reads the state a probe would see.
/// - prepare changes nothing;
/// - the undo record survives a trip through JSON (a fresh process can use it);
/// - apply changes what `observe` sees;
/// - undo from the deserialized record restores what `observe` saw before apply.
fn assert_fault_conformance(fault: &Fault, targets: &Targets, observe: &dyn Fn() -> String) {
    let before = observe();
    let prepared = prepare(fault, targets, "conformance").expect("prepare");
    assert_eq!(
        observe(),
        before,
        "{}: prepare must change nothing",
        fault.kind()
    );
    let record = prepared
        .undo
        .clone()
        .expect("this fault has an undo record");
    let json = serde_json::to_string(&record).unwrap();
    let fresh: UndoRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(fresh, record);
    prepared.apply(None).expect("apply");
    let during = wait_for(observe, |s| s != before);
    assert_ne!(
        during,
        before,
        "{}: apply must change what a probe observes",
        fault.kind()
    );
    undo(&fresh).expect("undo");
    let after = wait_for(observe, |s| s == before);
    assert_eq!(
        after,
        before,
        "{}: rollback must restore what a probe observed before apply",
        fault.kind()
    );
}

fn wait_for(observe: &dyn Fn() -> String, done: impl Fn(&str) -> bool) -> String {
    for _ in 0..200 {
        let s = observe();
        if done(&s) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    observe()
}

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

fn targets(name: &str, target: Target) -> Targets {
    Targets {
        targets: [(name.to_string(), target)].into(),
        ..Default::default()
    }
}

fn spec<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    livefire_spec::de::from_node(&livefire_spec::yaml::parse(yaml).unwrap()).unwrap()
}

#[test]
fn process_pause_conforms() {
    let v = Victim(Command::new("sleep").arg("300").spawn().unwrap());
    let pid = v.0.id();
    let t = targets(
        "v",
        Target {
            process: Some(ProcessSelector {
                pid: Some(pid),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let fault: Fault = spec("process.pause: { target: v }");
    assert_fault_conformance(&fault, &t, &|| {
        process::state(pid).map(String::from).unwrap_or_default()
    });
}

#[test]
fn command_fault_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("flag");
    let fault: Fault = spec(&format!(
        "command: {{ apply: \"touch {0}\", rollback: \"rm {0}\" }}",
        flag.display()
    ));
    assert_fault_conformance(&fault, &Targets::default(), &|| flag.exists().to_string());
}

#[test]
fn process_kill_with_restart_conforms() {
    // The target is whatever its pidfile names; restart starts a new one.
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("w.pid");
    let start = format!(
        "sleep 300 >/dev/null 2>&1 & echo $! > {}",
        pidfile.display()
    );
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(&start)
            .status()
            .unwrap()
            .success()
    );
    let alive = |p: &Path| {
        let pid: u32 = std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        (pid > 1 && process::state(pid).is_some_and(|s| s != 'Z')).to_string()
    };
    let t = targets(
        "w",
        Target {
            process: Some(ProcessSelector {
                pidfile: Some(pidfile.display().to_string()),
                ..Default::default()
            }),
            restart: Some(start.clone()),
            ..Default::default()
        },
    );
    let fault: Fault = spec("process.kill: { target: w }");
    assert_fault_conformance(&fault, &t, &|| alive(&pidfile));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
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
fn kinds_not_built_say_so() {
    let fault: Fault = spec("cpu.stress: { cores: 1 }");
    let err = prepare(&fault, &Targets::default(), "t").unwrap_err();
    assert!(err.to_string().contains("not built"), "{err}");
}
