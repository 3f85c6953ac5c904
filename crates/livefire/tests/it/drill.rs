//! The failover drill end to end: `examples/db-failover.yaml` against a real sandbox
//! (PostgreSQL primary, synchronous replica, failover helper, orders API), with the
//! failover measured from the load's own write outcomes.

use std::path::{Path, PathBuf};

use crate::support::{Home, repo, run};

/// A sandbox this test started; `down` on every way out of the test.
pub(crate) struct Sandbox {
    pub(crate) dir: PathBuf,
}

impl Sandbox {
    pub(crate) fn up(home: &Home, args: &[&str]) -> Sandbox {
        use std::os::unix::fs::PermissionsExt;
        // PostgreSQL runs as `postgres` when the tests run as root: it must reach DIR.
        let tmp = home.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        for dir in [home.path(), tmp.as_path()] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let dir = tmp.join("sandbox");
        let sb = Sandbox { dir };
        let (code, out, err) = run(home
            .livefire()
            .args(["sandbox", "up", "--dir"])
            .arg(&sb.dir)
            .args(args));
        assert_eq!(code, 0, "sandbox up:\n{out}{err}");
        sb
    }

    pub(crate) fn record(&self) -> livefire_sandbox::Sandbox {
        livefire_sandbox::Sandbox::load(&self.dir)
            .unwrap()
            .expect("sandbox.json")
    }
}

/// The API token of the sandbox's user `user` (`alice`, `bob`).
pub(crate) fn token_of(record: &livefire_sandbox::Sandbox, user: &str) -> String {
    record
        .tokens
        .iter()
        .find(|(u, _)| u == user)
        .map(|(_, t)| t.clone())
        .unwrap_or_else(|| panic!("{user}'s token in sandbox.json"))
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = crate::support::livefire()
            .args(["sandbox", "down", "--dir"])
            .arg(&self.dir)
            .output();
    }
}

pub(crate) fn expected_exit(file: &Path) -> i32 {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# expect-exit: "))
        .expect("the example states its exit")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn db_failover_example_measures_the_failover_from_each_write() {
    if !crate::demo::have_postgres() {
        return;
    }
    let home = Home::new();
    // The helper promotes the replica after 2 s without a primary: writes cannot come
    // back sooner than that after the kill.
    let sb = Sandbox::up(&home, &["--store", "postgres", "--failover-after", "2s"]);
    let record = sb.record();
    let token = token_of(&record, "alice");
    let file = repo().join("examples/db-failover.yaml");
    let (code, out, err) = run(home
        .run(&file)
        .args([
            "--var",
            &format!("api={}", record.api().expect("orders API")),
        ])
        .args(["--var", &format!("sandbox={}", sb.dir.display())])
        .env("LIVEFIRE_DEMO_TOKEN", &token));
    assert_eq!(code, expected_exit(&file), "{out}{err}");

    let s = home.summary();
    let f = &s["failovers"][0];
    assert_eq!(f["fault"], "primary killed", "{f}");
    assert_eq!(f["load"], "orders", "{f}");
    assert_eq!(
        f["interrupted"], true,
        "writes failed while no primary ran: {f}"
    );
    let first = f["first_write_after_ms"]
        .as_u64()
        .expect("writes came back");
    let down = f["unavailable_ms"]
        .as_u64()
        .expect("unavailability measured");
    // The helper promotes 2 s after the last poll that saw a primary, and it polls every
    // 250 ms: no write can be acknowledged sooner than 1.75 s after the kill.
    assert!(
        first >= 1750,
        "no write is acknowledged before the replica is promoted (2 s after the helper last saw a primary): {f}"
    );
    assert!(down > 0 && down <= first, "{f}");
    assert!(f["failed_writes"].as_u64().unwrap() > 0, "{f}");
    assert_eq!(
        f["writes_lost"], 0,
        "synchronous replication loses nothing: {f}"
    );
    // Far finer than the one-second windows and the 250 ms probe: a write every 50 ms.
    let resolution = f["resolution_ms"].as_u64().expect("resolution");
    assert!(resolution < 1000, "{f}");
    // A person reads the same at the end of the run and in the report.
    assert!(
        out.contains("failover `primary killed`, load `orders`: writes failed for "),
        "{out}"
    );
    let html = std::fs::read_to_string(home.run_dir().join("report.html")).unwrap();
    assert!(html.contains(r#"<table id="failover">"#));
    // Who noticed the kill: the health probe and the load's failed writes did.
    let who = &s["detectors"][0];
    assert_eq!(who["fault"], "primary killed", "{who}");
    assert_eq!(who["nobody_noticed"], false, "{who}");
    let noticed: Vec<&str> = who["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["noticed_after_ms"].is_u64())
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert!(
        noticed.contains(&"health answers") && noticed.contains(&"orders"),
        "{who}"
    );
    assert!(out.contains("who noticed `primary killed`: "), "{out}");
    assert!(html.contains(r#"<table id="detectors">"#));
    // The old primary came back as a standby of the promoted replica.
    let (code, status, err) = run(home
        .livefire()
        .args(["sandbox", "status", "--dir"])
        .arg(&sb.dir));
    assert_eq!(code, 0, "every component answers:\n{status}{err}");
    let primary = status
        .lines()
        .find(|l| l.trim_start().starts_with("primary "))
        .unwrap_or_default();
    assert!(primary.contains("standby"), "{status}");
}
