//! `cpu.stress` and `memory.stress` really burn and hold, measured from /proc (the
//! worker's CPU time, its affinity, its resident memory), and their undo stops the
//! worker; a run refuses a bad resource fault before it applies anything. The fill's
//! room on a small filesystem is livefire-faults' test; the kill -9 and `recover` path
//! of all three is the conformance harness's.

use std::time::Duration;

use livefire_core::undo::{ProcessId, UndoRecord};
use livefire_faults::{Prepared, Targets, stress};
use livefire_spec::Fault;

use crate::support::*;

fn spec(yaml: &str) -> Fault {
    let node = livefire_spec::yaml::parse(yaml).unwrap();
    livefire_spec::de::from_node(&node).unwrap()
}

/// Applies `yaml` in this process, as the engine does; returns it and its worker.
fn apply(yaml: &str) -> (Prepared, ProcessId) {
    stress::set_program(env!("CARGO_BIN_EXE_livefire"));
    let prepared = livefire_faults::prepare(&spec(yaml), &Targets::default(), yaml).unwrap();
    prepared.apply(None).unwrap();
    let Some(UndoRecord::StressWorker { token }) = prepared.undo.clone() else {
        panic!("{yaml}: a stress is undone by stopping its worker");
    };
    let found = stress::find(&token);
    assert_eq!(found.len(), 1, "{yaml}: one worker runs: {found:?}");
    (prepared, found[0])
}

/// Undoes from the record and checks that the worker is gone.
fn undo(prepared: &Prepared, worker: ProcessId) {
    let detail = livefire_faults::undo(prepared.undo.as_ref().unwrap()).unwrap();
    assert!(detail.contains("stopped"), "{detail}");
    assert!(
        !livefire_faults::process::alive(worker),
        "the worker is gone after undo"
    );
    assert!(prepared.verify().unwrap().unwrap().clean);
}

/// user + system CPU time of a process, in clock ticks (/proc/PID/stat fields 14, 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap()
}

#[test]
fn cpu_stress_burns_on_the_cpus_it_names_and_undo_stops_it() {
    let (prepared, worker) = apply("cpu.stress: { cores: 1, cpus: [0] }");
    // Its one busy thread runs only on CPU 0.
    let tasks: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", worker.pid))
        .unwrap()
        .map(|t| {
            let status = std::fs::read_to_string(t.unwrap().path().join("status")).unwrap();
            let line = status
                .lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))
                .unwrap();
            line.split_whitespace().nth(1).unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        tasks.iter().filter(|c| *c == "0").count(),
        1,
        "one thread pinned to CPU 0: {tasks:?}"
    );
    // It burns: its CPU time keeps rising (a bounded wait, no clock asserted).
    let start = cpu_ticks(worker.pid);
    let mut burnt = 0;
    for _ in 0..600 {
        burnt = cpu_ticks(worker.pid) - start;
        if burnt >= 50 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(burnt >= 50, "the worker used {burnt} ticks of CPU");
    assert!(prepared.verify().unwrap().unwrap().applied);
    undo(&prepared, worker);
}

#[test]
fn memory_stress_holds_its_size_and_undo_frees_it() {
    let size = 96u64 << 20;
    let (prepared, worker) = apply("memory.stress: { size: 96MiB }");
    // apply returns once every page is written: the memory is resident now.
    let rss = stress::rss(worker.pid).unwrap();
    assert!(rss >= size, "the worker holds {rss} bytes, not {size}");
    assert!(prepared.verify().unwrap().unwrap().applied);
    undo(&prepared, worker);
}

#[test]
fn a_run_refuses_a_bad_resource_fault_before_it_applies_anything() {
    let home = Home::new();
    let flag = home.path().join("applied.flag");
    let scratch = home.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    for bad in [
        "disk.fill: { target: scratch, size: 900000GiB }",
        "memory.stress: { size: 900000GiB }",
        "disk.fill: { target: nowhere, size: 1MiB }",
    ] {
        let file = home.file(&format!(
            "version: 1\ntitle: t\ntargets:\n  scratch: {{ path: {:?} }}\n  nowhere: {{ path: \"/nonexistent/lf\" }}\n\
             timeline:\n  - {{ at: 0s, for: 5s, fault: {{ command: {{ apply: \"touch {}\" }} }} }}\n  \
             - {{ at: 1s, for: 5s, fault: {{ {bad} }} }}\n",
            scratch.display().to_string(),
            flag.display()
        ));
        let (code, out, err) = run(&mut home.run(&file));
        assert_eq!(code, 3, "{bad}: {out}{err}");
        assert!(err.contains("nothing was applied"), "{bad}: {err}");
        assert!(!flag.exists(), "{bad}: the command fault ran");
        assert_eq!(
            std::fs::read_dir(&scratch).unwrap().count(),
            0,
            "{bad}: something was written"
        );
    }
}

#[test]
fn a_stress_worker_stops_by_itself_shortly_after_its_fault_ends() {
    // A fault that ends now: the worker's own bound is the grace after it, whatever
    // happens to whoever should have stopped it.
    stress::set_program(env!("CARGO_BIN_EXE_livefire"));
    let yaml = "cpu.stress: { cores: 1, load: 10% }";
    let prepared = livefire_faults::prepare(&spec(yaml), &Targets::default(), "ends").unwrap();
    prepared
        .apply_until(None, std::time::Instant::now())
        .unwrap();
    let Some(UndoRecord::StressWorker { token }) = prepared.undo.clone() else {
        panic!("a stress is undone by stopping its worker");
    };
    let worker = stress::find(&token)[0];
    for _ in 0..1200 {
        if !livefire_faults::process::alive(worker) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !livefire_faults::process::alive(worker),
        "the worker outlived its bound"
    );
    // Its record has nothing left to do, and says so.
    let detail = livefire_faults::undo(prepared.undo.as_ref().unwrap()).unwrap();
    assert!(detail.contains("nothing to undo"), "{detail}");
}
