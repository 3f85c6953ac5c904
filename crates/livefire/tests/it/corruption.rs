//! The corruption drill end to end: `examples/db-corruption.yaml` against a real sandbox
//! (PostgreSQL primary with data checksums, its replica, the orders API): who noticed
//! the damaged page, the replica's data correct all along, and the page byte-identical
//! after rollback, read from the table's file by this test.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::drill::{Sandbox, expected_exit};
use crate::support::{Home, repo, run};

/// PostgreSQL's page size (the sandbox's `initdb` keeps the default).
const PAGE: usize = 8192;

/// How many orders the test makes before the run: a few dozen rows fit on page 0.
const ORDERS: u32 = 30;

/// `POST /orders` as the holder of `token`; the answer's status.
fn post_order(api: &str, token: &str, item: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = api.trim_start_matches("http://").trim_end_matches('/');
    let body = format!(r#"{{"item":"{item}","qty":1}}"#);
    let mut s = std::net::TcpStream::connect(addr).expect("the orders API listens");
    write!(
        s,
        "POST /orders HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {answer}"))
}

/// `psql` of the sandbox's servers, one statement, unaligned output.
fn psql(bin_dir: &Path, port: u16, sql: &str) -> String {
    let out = Command::new(bin_dir.join("psql"))
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"])
        .arg(format!("postgres://postgres@127.0.0.1:{port}/orders"))
        .args(["-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql `{sql}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Page 0 of the file at `path`, as it is on disk.
fn page_zero(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() >= PAGE, "{} holds no page", path.display());
    bytes[..PAGE].to_vec()
}

/// The detector rows of `fault`, as (kind, name, noticed_after_ms, how).
fn detectors(s: &serde_json::Value, fault: &str) -> Vec<(String, String, Option<u64>, String)> {
    let f = s["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fault"] == fault)
        .unwrap_or_else(|| panic!("no detectors for `{fault}`: {s}"));
    assert_eq!(f["nobody_noticed"], false, "{f}");
    f["detectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_owned(),
                d["name"].as_str().unwrap().to_owned(),
                d["noticed_after_ms"].as_u64(),
                d["how"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn db_corruption_example_is_noticed_and_undone_byte_for_byte() {
    if !crate::demo::have_postgres() {
        return;
    }
    let home = Home::new();
    // The damage restarts the primary: the failover helper must not promote the replica
    // meanwhile, so it waits far longer than a restart takes.
    let sb = Sandbox::up(&home, &["--store", "postgres", "--failover-after", "60s"]);
    let record = sb.record();
    let bin_dir: PathBuf = record.bin_dir.clone().expect("the sandbox's bin_dir");
    let port = |name: &str| record.node(name).map(|n| n.port).expect("node");
    let (primary, replica) = (port("primary"), port("replica"));
    let token = crate::drill::token_of(&record, "alice");

    // Alice's orders through the API, as a user makes them: order 1 among them, all on
    // page 0. Frozen and checkpointed, so that nothing but the fault changes the page on
    // disk (hint bits, pruning) during the run.
    let api = record.api().expect("orders API");
    for i in 1..=ORDERS {
        let status = post_order(&api, &token, &format!("widget-{i}"));
        assert_eq!(status, 201, "order {i} is created");
    }
    psql(&bin_dir, primary, "vacuum (freeze, analyze) orders");
    psql(&bin_dir, primary, "checkpoint");
    let relpath = psql(&bin_dir, primary, "select pg_relation_filepath('orders')");
    let file = record.node("primary").unwrap().data_dir.join(&relpath);
    let before = page_zero(&file);

    let example = repo().join("examples/db-corruption.yaml");
    let vars = [
        format!("api={api}"),
        format!("sandbox={}", sb.dir.display()),
        format!("primary=postgres://postgres@127.0.0.1:{primary}/orders"),
        format!("replica=postgres://postgres@127.0.0.1:{replica}/orders"),
    ];
    let with_vars = |cmd: &mut Command| {
        for v in &vars {
            cmd.args(["--var", v]);
        }
    };
    let mut validate = home.livefire();
    validate.arg("validate").arg(&example);
    with_vars(&mut validate);
    let (code, out, err) = run(&mut validate);
    assert_eq!(code, 0, "the example validates:\n{out}{err}");

    let mut cmd = home.run(&example);
    with_vars(&mut cmd);
    let (code, out, err) = run(cmd.env("LIVEFIRE_DEMO_TOKEN", &token));
    assert_eq!(code, expected_exit(&example), "{out}{err}");

    let s = home.summary();
    let fault = &s["faults"][0];
    assert_eq!(fault["activity"], "orders page damaged", "{fault}");
    assert_eq!(fault["rollback_ok"], true, "{fault}");
    // The replica's data was correct before, during and after.
    assert_eq!(s["verdict"], "held", "{out}");
    let replica_ok = s["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "replica data stays correct")
        .expect("the replica's condition");
    assert_eq!(replica_ok["failures"], 0, "{replica_ok}");

    // Who noticed: PostgreSQL itself, the team's alert query and the readers of order 1,
    // each with its time.
    let who = detectors(&s, "orders page damaged");
    let noticed = |kind: &str, name: &str| {
        who.iter()
            .find(|d| d.0 == kind && d.1 == name)
            .unwrap_or_else(|| panic!("no {kind} row `{name}`: {who:?}"))
            .clone()
    };
    let pg: Vec<_> = who
        .iter()
        .filter(|d| d.0 == "postgresql" && d.2.is_some())
        .collect();
    assert!(
        !pg.is_empty(),
        "PostgreSQL noticed (its checksum counter or its log): {who:?}"
    );
    for d in &pg {
        assert!(
            d.3.contains(&relpath) || d.3.contains("checksum"),
            "PostgreSQL's sign names the damaged file or its checksums: {d:?}"
        );
    }
    let alert = noticed("watch", "orders-readable");
    assert!(alert.2.is_some(), "the team's alert query fired: {who:?}");
    assert!(
        alert.3.contains("invalid page") && alert.3.contains(&relpath),
        "the alert's line names the damaged file: {alert:?}"
    );
    let readers = noticed("load errors", "reads");
    assert!(readers.2.is_some(), "reading order 1 failed: {who:?}");
    // What a person reads at the end of the run and in the report.
    assert!(out.contains("who noticed `orders page damaged`: "), "{out}");
    let html = std::fs::read_to_string(home.run_dir().join("report.html")).unwrap();
    assert!(html.contains(r#"<table id="detectors">"#));
    assert!(html.contains("orders-readable") && html.contains("orders-db checksums"));

    // Undone exactly: page 0 on disk is what it was before the run, and the primary
    // reads every order again.
    psql(&bin_dir, primary, "checkpoint");
    assert!(
        page_zero(&file) == before,
        "page 0 of {} is byte-identical after rollback",
        file.display()
    );
    assert_eq!(
        psql(&bin_dir, primary, "select count(*) from orders"),
        ORDERS.to_string()
    );
    assert!(
        home.ledger_index().trim().is_empty(),
        "nothing left in the ledger"
    );
}
