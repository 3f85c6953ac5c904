//! The `postgres.*` access faults on a real PostgreSQL, started per test in a temporary
//! directory on a free port: each fault's effect as a client sees it (login refused,
//! session cut, connection refused, query blocked), its undo from the record after a
//! trip through JSON, and what is refused at prepare with nothing applied.

use std::time::{Duration, Instant};

use livefire_core::undo::UndoRecord;
use livefire_faults::{Prepared, Targets, prepare, undo};
use livefire_spec::{Fault, Target};

/// The test's own PostgreSQL, with what these tests do to it as the superuser.
struct Pg(livefire_testkit::pg::Pg);

impl Pg {
    /// A new server allowing `max_connections`; `None` (the test skips, saying so) when
    /// this machine has no PostgreSQL.
    fn start(max_connections: u32) -> Option<Pg> {
        livefire_testkit::pg::Pg::start_with(&format!("max_connections = {max_connections}"))
            .map(Pg)
    }

    fn dsn(&self, user: &str) -> String {
        self.0.dsn(user)
    }

    /// Runs `sql` as the superuser.
    fn admin(&self, sql: &str) {
        Session::open(&self.dsn("postgres"))
            .unwrap()
            .run(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The targets a run would hand the faults crate: `db`, reached as the superuser.
    fn targets(&self) -> Targets {
        let yaml = format!("{{ postgres: {{ dsn: {:?} }} }}", self.dsn("postgres"));
        Targets {
            targets: [("db".to_string(), spec::<Target>(&yaml))].into(),
            ..Targets::default()
        }
    }

    fn prepare(&self, fault: &str) -> Result<Prepared, String> {
        prepare(&spec::<Fault>(fault), &self.targets(), "t").map_err(|e| e.to_string())
    }
}

/// A client's session, as an application holds one.
struct Session {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Session {
    /// Connects, or says why not in the server's words (with its SQLSTATE).
    fn open(dsn: &str) -> Result<Session, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (client, conn) = rt
            .block_on(tokio_postgres::connect(dsn, tokio_postgres::NoTls))
            .map_err(|e| said(&e))?;
        rt.spawn(conn);
        Ok(Session { rt, client })
    }

    fn run(&self, sql: &str) -> Result<(), String> {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .map_err(|e| said(&e))
    }
}

fn said(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn spec<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    livefire_spec::de::from_node(&livefire_spec::yaml::parse(yaml).unwrap())
        .unwrap_or_else(|e| panic!("{yaml}: {e:?}"))
}

/// Undoes from the record as `livefire recover` reads it from the ledger.
fn undo_from_ledger(p: &Prepared) -> String {
    let record = p.undo_after_apply().expect("an undo record");
    let fresh: UndoRecord = serde_json::from_str(&serde_json::to_string(record).unwrap()).unwrap();
    undo(&fresh).unwrap_or_else(|e| panic!("undo: {e}"))
}

/// Polls `f` until it returns true (a backend exits a moment after it is terminated).
fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(30), "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn revoke_login_locks_a_role_out_and_its_undo_lets_it_back_in() {
    let Some(pg) = Pg::start(50) else { return };
    pg.admin("create role app login; create role batch nologin");
    let app = pg.dsn("app");
    let open = Session::open(&app).unwrap();

    let p = pg
        .prepare("postgres.revoke_login: { target: db, role: app }")
        .unwrap();
    assert!(Session::open(&app).is_ok(), "prepare changed nothing");
    let detail = p.apply(None).unwrap();
    assert!(detail.contains("1 of its sessions terminated"), "{detail}");
    let err = open.run("select 1").unwrap_err();
    assert!(err.contains("terminat"), "its open session was cut: {err}");
    let err = Session::open(&app).err().expect("app may not log in");
    assert!(
        err.contains("role \"app\" is not permitted to log in"),
        "{err}"
    );
    assert!(p.verify().unwrap().unwrap().applied);
    undo_from_ledger(&p);
    Session::open(&app).expect("app logs in again after the undo");
    assert!(p.verify().unwrap().unwrap().clean);

    // A role that could not log in before the fault is not given LOGIN by its undo.
    let p = pg
        .prepare("postgres.revoke_login: { target: db, role: batch }")
        .unwrap();
    p.apply(None).unwrap();
    let detail = undo_from_ledger(&p);
    assert!(detail.contains("had no LOGIN before"), "{detail}");
    let err = Session::open(&pg.dsn("batch"))
        .err()
        .expect("batch still may not log in");
    assert!(err.contains("not permitted to log in"), "{err}");
}

#[test]
fn what_cannot_be_done_is_refused_at_prepare_with_nothing_applied() {
    let Some(pg) = Pg::start(50) else { return };
    pg.admin("create role app login; create table orders (id int); grant all on orders to app");
    let cases = [
        (
            "postgres.revoke_login: { target: db, role: nobody }",
            "role `nobody` does not exist on target `db`",
        ),
        (
            // Without LOGIN for the dsn's own role, nothing could undo the fault.
            "postgres.revoke_login: { target: db, role: postgres }",
            "is the role target `db`'s dsn logs in as",
        ),
        (
            "postgres.terminate_connections: { target: db, role: nobody }",
            "role `nobody` does not exist",
        ),
        (
            "postgres.terminate_connections: { target: db, database: nowhere }",
            "database `nowhere` does not exist",
        ),
        (
            "postgres.terminate_connections: { target: db }",
            "names no sessions: give `role`, `database` or `application_name`",
        ),
        (
            "postgres.lock_table: { target: db, table: invoices }",
            "table `invoices` does not exist on target `db`",
        ),
        (
            "postgres.lock_table: { target: db, table: \"a.b.c.d\" }",
            "table `a.b.c.d` does not exist",
        ),
        (
            "postgres.lock_table: { target: db, table: orders, mode: sideways }",
            "unknown lock mode `sideways`",
        ),
        (
            "postgres.exhaust_connections: { target: nowhere }",
            "target `nowhere` is not declared",
        ),
    ];
    for (fault, says) in cases {
        let err = pg
            .prepare(fault)
            .err()
            .unwrap_or_else(|| panic!("{fault}: prepared"));
        assert!(err.contains(says), "{fault}: {err}");
    }
    // Nothing was applied: app still logs in, and the table takes a write at once.
    let s = Session::open(&pg.dsn("app")).unwrap();
    s.run("set lock_timeout = '1s'; select count(*) from orders")
        .unwrap_or_else(|e| panic!("{e}"));
    // An unknown attribute is refused where it is written.
    let node =
        livefire_spec::yaml::parse("postgres.lock_table: { target: db, table: t, nowait: true }")
            .unwrap();
    let err = livefire_spec::de::from_node::<Fault>(&node).unwrap_err();
    assert!(format!("{err:?}").contains("nowait"), "{err:?}");
}

#[test]
fn terminate_connections_cuts_matching_sessions_once_or_for_its_duration() {
    let Some(pg) = Pg::start(50) else { return };
    pg.admin("create role app login");
    let worker = format!("{} application_name=worker", pg.dsn("app"));
    let other = format!("{} application_name=reporting", pg.dsn("app"));

    // Once: the matching session is cut, the other one is left alone; nothing to undo.
    let (w, o) = (
        Session::open(&worker).unwrap(),
        Session::open(&other).unwrap(),
    );
    let p = pg
        .prepare(
            "postgres.terminate_connections: { target: db, role: app, application_name: worker }",
        )
        .unwrap();
    assert!(p.undo.is_none(), "a single cut leaves nothing to undo");
    let detail = p.apply(None).unwrap();
    assert!(detail.starts_with("1 sessions of role app"), "{detail}");
    let err = w.run("select 1").unwrap_err();
    assert!(err.contains("terminat"), "{err}");
    o.run("select 1")
        .expect("a session that does not match is not cut");

    // Every 100ms: a client that reconnects is cut again, until the undo.
    let p = pg
        .prepare("postgres.terminate_connections: { target: db, application_name: worker, every: 100ms }")
        .unwrap();
    p.apply(None).unwrap();
    assert!(p.verify().unwrap().unwrap().applied);
    let w = Session::open(&worker).unwrap();
    eventually("the reconnected session is cut again", || {
        w.run("select 1").is_err()
    });
    undo_from_ledger(&p);
    assert!(p.verify().unwrap().unwrap().clean);
    let w = Session::open(&worker).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    w.run("select 1")
        .expect("after the undo a session stays up");
    o.run("select 1").expect("the other session was never cut");
}

#[test]
fn exhaust_connections_starves_new_clients_until_its_undo() {
    let Some(pg) = Pg::start(12) else { return };
    let dsn = pg.dsn("postgres");
    let p = pg
        .prepare("postgres.exhaust_connections: { target: db }")
        .unwrap();
    Session::open(&dsn).expect("prepare changed nothing");
    let detail = p.apply(None).unwrap();
    assert!(detail.contains("the server refused the next"), "{detail}");
    let err = Session::open(&dsn).err().expect("a new client is refused");
    assert!(
        err.contains("too many clients") && err.contains("53300"),
        "{err}"
    );
    let seen = p.verify().unwrap().unwrap();
    assert!(seen.applied, "{seen:?}");
    undo_from_ledger(&p);
    eventually("a new client connects after the undo", || {
        Session::open(&dsn).is_ok()
    });

    // keep_free: that many connections still get in, and no more.
    let p = pg
        .prepare("postgres.exhaust_connections: { target: db, keep_free: 2 }")
        .unwrap();
    let detail = p.apply(None).unwrap();
    assert!(detail.contains("2 left free"), "{detail}");
    // The freed slots come back a moment after their backends exit.
    let (mut got, start) = (Vec::new(), Instant::now());
    while got.len() < 2 {
        match Session::open(&dsn) {
            Ok(s) => got.push(s),
            Err(e) => {
                assert!(start.elapsed() < Duration::from_secs(30), "{e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let err = Session::open(&dsn).err().expect("the third is refused");
    assert!(err.contains("53300"), "{err}");
    undo_from_ledger(&p);
}

#[test]
fn lock_table_blocks_what_its_mode_conflicts_with_until_rolled_back() {
    let Some(pg) = Pg::start(50) else { return };
    pg.admin("create table orders (id int); insert into orders values (1)");
    let client = Session::open(&pg.dsn("postgres")).unwrap();
    client.run("set lock_timeout = '300ms'").unwrap();
    let read = "select count(*) from orders";
    let write = "insert into orders values (2)";
    // (mode as written, whether a read is blocked, whether a write is blocked)
    let cases = [
        (None, true, true),
        (Some("access exclusive"), true, true),
        (Some("SHARE"), false, true),
        (Some("row_exclusive"), false, false),
    ];
    for (mode, blocks_read, blocks_write) in cases {
        let fault = match mode {
            Some(m) => format!("postgres.lock_table: {{ target: db, table: orders, mode: {m:?} }}"),
            None => "postgres.lock_table: { target: db, table: orders }".to_string(),
        };
        let p = pg.prepare(&fault).unwrap();
        client.run(read).expect("prepare changed nothing");
        let detail = p.apply(None).unwrap();
        assert!(detail.contains("table orders locked"), "{detail}");
        assert!(p.verify().unwrap().unwrap().applied, "{fault}");
        for (sql, blocked) in [(read, blocks_read), (write, blocks_write)] {
            match client.run(sql) {
                Err(e) if blocked => assert!(
                    e.contains("canceling statement due to lock timeout"),
                    "{fault}: {sql}: {e}"
                ),
                Ok(()) if !blocked => {}
                other => panic!("{fault}: {sql}: blocked {blocked}, got {other:?}"),
            }
        }
        let detail = undo_from_ledger(&p);
        assert!(detail.contains("rolled back"), "{detail}");
        assert!(p.verify().unwrap().unwrap().clean, "{fault}");
        client.run(read).expect("the table reads after the undo");
        client
            .run(write)
            .expect("the table takes writes after the undo");
    }
}

#[test]
fn a_fresh_process_terminates_exactly_the_sessions_its_record_names() {
    // After `kill -9` of livefire its held sessions may outlive it (a dead network path);
    // `recover` holds none of them and must end exactly those, by tag and start time.
    let Some(pg) = Pg::start(50) else { return };
    let tag = "livefire/lock/test-orphans";
    let named = format!("{} application_name={tag}", pg.dsn("postgres"));
    let earlier = Session::open(&named).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let since = {
        let s = Session::open(&pg.dsn("postgres")).unwrap();
        let row =
            s.rt.block_on(s.client.query_one("select now()::text", &[]))
                .unwrap();
        row.get::<_, String>(0)
    };
    let orphans: Vec<Session> = (0..3).map(|_| Session::open(&named).unwrap()).collect();
    let bystander = Session::open(&pg.dsn("postgres")).unwrap();
    let record = UndoRecord::PostgresSessions {
        dsn: pg.dsn("postgres"),
        tag: tag.into(),
        since,
        what: "test".into(),
    };
    let detail = undo(&record).unwrap();
    assert!(detail.contains("3 session(s)"), "{detail}");
    for o in &orphans {
        let err = o.run("select 1").unwrap_err();
        assert!(err.contains("terminat"), "{err}");
    }
    earlier
        .run("select 1")
        .expect("a session named alike but older than the fault is not one of its own");
    bystander.run("select 1").expect("others are untouched");
}
