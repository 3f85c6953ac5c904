//! `up`, `status` and `down` as a user runs them, on both stores, and an `up` that fails
//! half-way: nothing it started may stay behind.

use std::net::TcpListener;
use std::time::Duration;

use crate::support::{Api, Dir, have_postgres, text};

/// up → every component answers → the API stores an order → down → nothing runs.
fn up_status_down(store: &str) {
    let dir = Dir::new();
    let sb = dir.up(&["--store", store]);
    assert_eq!(sb.store, store);
    assert!(sb.up);

    let status = dir.run(&["status"]);
    let out = text(&status.stdout);
    assert!(
        status.status.success(),
        "status: {out}{}",
        text(&status.stderr)
    );
    let expected: &[&str] = if store == "postgres" {
        &["primary", "replica", "token", "orders", "failover"]
    } else {
        &["token", "orders"]
    };
    for name in expected {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no status line for {name}:\n{out}"));
        assert!(line.contains("answers:"), "{name} does not answer:\n{out}");
    }
    if store == "postgres" {
        assert!(out.contains("primary (read-write)"), "{out}");
        assert!(out.contains("standby"), "{out}");
    } else {
        assert!(!out.contains("replica"), "{out}");
    }

    let api = Api::of(&sb, "alice");
    let (status, id) = api.create("lamp");
    assert_eq!(status, 201);
    let (code, order) = api
        .call("GET", &format!("/orders/{}", id.unwrap()), None)
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(order["item"], "lamp");
    assert_eq!(order["owner"], "alice");

    // Each service's pid file names it, for an experiment's `process: { pidfile }`.
    for svc in &sb.services {
        let pidfile = dir.path().join(format!("{}.pid", svc.name));
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        assert_eq!(pid.trim(), svc.pid.pid.to_string(), "{}", svc.name);
    }

    let running = dir.processes();
    assert!(running.iter().all(|(_, p)| p.alive()));
    let down = dir.run(&["down"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    for (name, p) in &running {
        assert!(!p.alive(), "{name} (pid {}) still runs after down", p.pid);
    }
    for svc in &sb.services {
        assert!(
            !dir.path().join(format!("{}.pid", svc.name)).exists(),
            "{}.pid after down",
            svc.name
        );
    }
    let after = dir.run(&["status"]);
    assert_eq!(
        after.status.code(),
        Some(1),
        "status after down must say what does not answer"
    );
    assert!(text(&after.stdout).contains("not running"));
}

#[test]
fn up_status_down_on_postgres() {
    if have_postgres() {
        up_status_down("postgres");
    }
}

#[test]
fn up_status_down_on_sqlite() {
    up_status_down("sqlite");
}

/// A port already taken makes `up` fail at that step; everything started before it is
/// stopped again, and the error names the address.
fn up_fails_half_way(store: &str, flag: &str) {
    let dir = Dir::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = dir.run(&["up", "--store", store, flag, &addr]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains(&addr) && said.contains("in use"), "{said}");
    let sb = dir.record();
    assert!(!sb.up);
    let started = dir.processes();
    assert!(
        !started.is_empty(),
        "the record must name what up had started"
    );
    // The services are stopped before up returns; nothing recorded may still run.
    for (name, p) in started {
        assert!(
            p.wait_gone(Duration::from_secs(5)),
            "{name} (pid {}) survived the failed up",
            p.pid
        );
    }
    for n in &sb.postgres {
        assert!(
            crate::support::postmaster(&n.data_dir).is_none(),
            "PostgreSQL {} still runs",
            n.name
        );
    }
}

#[test]
fn up_failing_on_a_taken_port_leaves_nothing_running_postgres() {
    if have_postgres() {
        // The token service comes after both servers: they must be stopped.
        up_fails_half_way("postgres", "--token-listen");
    }
}

#[test]
fn up_failing_on_a_taken_port_leaves_nothing_running_sqlite() {
    // The orders API comes after the token service, which must be stopped.
    up_fails_half_way("sqlite", "--api-listen");
}

#[test]
fn a_second_up_on_a_live_sandbox_is_refused() {
    let dir = Dir::new();
    dir.up(&["--store", "sqlite"]);
    let again = dir.run(&["up", "--store", "sqlite"]);
    assert_eq!(again.status.code(), Some(3));
    assert!(
        text(&again.stderr).contains("sandbox down"),
        "{}",
        text(&again.stderr)
    );
    // The first one still serves.
    let status = dir.run(&["status"]);
    assert!(status.status.success(), "{}", text(&status.stdout));
    // After down, up starts afresh in the same folder.
    assert!(dir.run(&["down"]).status.success());
    let sb = dir.up(&["--store", "sqlite"]);
    let (code, _) = Api::of(&sb, "bob").create("fresh");
    assert_eq!(code, 201);
}
