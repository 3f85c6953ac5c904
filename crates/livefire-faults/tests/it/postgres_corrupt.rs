//! `postgres.corrupt` on a real PostgreSQL (initdb with data checksums, started by the
//! test in a temporary folder on a free port, as `postgres` when the test runs as
//! root): the damage is what PostgreSQL notices, undo puts the page back byte for byte,
//! and bad input is refused with nothing applied.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use livefire_core::undo::UndoRecord;
use livefire_faults::{Prepared, Targets, prepare, undo};
use livefire_spec::{Fault, Target};

/// Rows in the test table: enough for several pages.
const ROWS: i64 = 2000;

/// The test's own PostgreSQL with an `orders` table.
struct Pg {
    pg: livefire_testkit::pg::Pg,
    rt: tokio::runtime::Runtime,
}

/// The server's `cluster`, `who` and `dir()`, as the tests use them.
impl std::ops::Deref for Pg {
    type Target = livefire_testkit::pg::Pg;
    fn deref(&self) -> &Self::Target {
        &self.pg
    }
}

impl Pg {
    /// A new cluster, or `None` (and a SKIPPED line) without PostgreSQL's programs.
    fn start() -> Option<Pg> {
        let pg = Pg {
            pg: livefire_testkit::pg::Pg::start()?,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        };
        pg.sql(&format!(
            "create table orders (id int8 primary key, item text not null);
             insert into orders select g, 'item number ' || g from generate_series(1, {ROWS}) g;
             checkpoint;"
        ))
        .unwrap();
        Some(pg)
    }

    fn dsn(&self) -> String {
        self.cluster.admin_dsn()
    }

    /// Runs `sql` (several statements allowed); the first column of each row, or the
    /// server's error message.
    fn sql(&self, sql: &str) -> Result<Vec<String>, String> {
        self.rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&self.dsn(), tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            let task = tokio::spawn(conn);
            let res = client.simple_query(sql).await;
            drop(client);
            task.abort();
            let rows = res.map_err(|e| match e.as_db_error() {
                Some(db) => db.message().to_owned(),
                None => e.to_string(),
            })?;
            Ok(rows
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                    _ => None,
                })
                .collect())
        })
    }

    fn count(&self) -> Result<i64, String> {
        Ok(self.sql("select count(*) from orders")?[0].parse().unwrap())
    }

    fn checksum_failures(&self) -> i64 {
        self.sql("select coalesce(sum(checksum_failures), 0) from pg_stat_database")
            .unwrap()[0]
            .parse()
            .unwrap()
    }

    /// The targets a run would hand the faults crate, with livefire's home in `home`.
    fn targets(&self, home: &Path) -> Targets {
        let user = self
            .who
            .switch
            .map(|_| format!(", user: {}", self.who.name));
        let yaml = format!(
            "{{ postgres: {{ dsn: {:?}, data_dir: {:?}{} }} }}",
            self.dsn(),
            self.cluster.data.display().to_string(),
            user.unwrap_or_default()
        );
        Targets {
            targets: [("db".to_string(), spec::<Target>(&yaml))].into(),
            seed: 11,
            home: Some(home.to_owned()),
            ..Default::default()
        }
    }

    fn home(&self) -> PathBuf {
        self.dir().join("home")
    }

    /// The table's file, relative to the data directory (the server must run).
    fn rel(&self) -> String {
        self.sql("select pg_relation_filepath('orders')").unwrap()[0].clone()
    }

    /// The bytes of page `page` of the table's file, as on disk now.
    fn page(&self, page: u64) -> Vec<u8> {
        self.page_offline(&self.rel(), page)
    }

    fn prepare(&self, fault: &str) -> Result<Prepared, livefire_faults::FaultError> {
        prepare(&spec::<Fault>(fault), &self.targets(&self.home()), "t")
    }
}

fn spec<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    livefire_spec::de::from_node(&livefire_spec::yaml::parse(yaml).unwrap()).unwrap()
}

/// Undoes as `livefire recover` does: the record after a trip through JSON.
fn undo_fresh(p: &Prepared) -> Result<String, livefire_faults::FaultError> {
    let json = serde_json::to_string(p.undo.as_ref().expect("an undo record")).unwrap();
    undo(&serde_json::from_str::<UndoRecord>(&json).unwrap())
}

#[test]
fn each_mode_is_what_postgres_notices_and_undo_restores_the_page_byte_for_byte() {
    let Some(pg) = Pg::start() else { return };
    // (mode, what a read of the table gives while the page is damaged): `flip` and
    // `torn_header` are refused by name; a zeroed page passes for a new, empty one, so
    // its rows vanish without an error (checksums cannot catch it).
    let cases = [
        ("flip", Some("invalid page in block 1")),
        ("torn_header", Some("invalid page in block 1")),
        ("zero", None),
    ];
    for (mode, error) in cases {
        // On disk as the server holds it (a read sets hint bits in memory only).
        pg.sql("checkpoint").unwrap();
        let before = pg.page(1);
        let failures = pg.checksum_failures();
        let p = pg
            .prepare(&format!(
                "postgres.corrupt: {{ target: db, table: orders, page: 1, mode: {mode} }}"
            ))
            .unwrap_or_else(|e| panic!("{mode}: prepare: {e}"));
        let seen = p.verify().unwrap().unwrap();
        assert!(
            seen.clean && !seen.applied,
            "{mode}: prepare changed nothing: {seen:?}"
        );
        assert!(pg.page(1) == before, "{mode}: prepare wrote nothing");
        let detail = p
            .apply(None)
            .unwrap_or_else(|e| panic!("{mode}: apply: {e}"));
        assert!(detail.contains("page 1 of table `orders`"), "{detail}");
        let seen = p.verify().unwrap().unwrap();
        assert!(seen.applied && !seen.clean, "{mode}: {seen:?}");
        assert!(pg.page(1) != before, "{mode}: the page on disk is damaged");
        assert_eq!(
            pg.saved_pages().len(),
            1,
            "{mode}: the page is saved in the home"
        );
        // The server came back on its own port (its command-line options kept) and
        // reads the page from disk.
        match (error, pg.count()) {
            (Some(says), Err(e)) => {
                assert!(e.contains(says), "{mode}: {e}");
                if mode == "flip" {
                    // The checksum caught it, and PostgreSQL counts it.
                    let start = Instant::now();
                    while pg.checksum_failures() <= failures {
                        assert!(
                            start.elapsed() < Duration::from_secs(20),
                            "{mode}: pg_stat_database.checksum_failures never rose above {failures}"
                        );
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
            (None, Ok(n)) => assert!(n < ROWS, "{mode}: the page's rows vanish, {n} left"),
            (expected, got) => panic!("{mode}: expected {expected:?}, read {got:?}"),
        }
        let done = undo_fresh(&p).unwrap_or_else(|e| panic!("{mode}: undo: {e}"));
        assert!(done.contains("byte-identical"), "{done}");
        assert!(
            pg.page(1) == before,
            "{mode}: the page is byte-identical again"
        );
        let seen = p.verify().unwrap().unwrap();
        assert!(seen.clean && !seen.applied, "{mode}: {seen:?}");
        assert_eq!(pg.count(), Ok(ROWS), "{mode}: every row reads again");
        // Regression: saved pages were kept after a successful undo and piled up.
        assert_eq!(
            pg.saved_pages(),
            Vec::<PathBuf>::new(),
            "{mode}: the saved page is removed once restored"
        );
        // Undo again (a retry, or recover after the engine): a no-op that says so.
        let again = undo_fresh(&p).unwrap();
        assert!(again.contains("already restored"), "{again}");
    }
}

#[test]
fn a_page_written_since_the_damage_is_not_overwritten() {
    let Some(pg) = Pg::start() else { return };
    let p = pg
        .prepare("postgres.corrupt: { target: db, table: orders, page: 2 }")
        .unwrap();
    p.apply(None).unwrap();
    // Someone repairs the page by hand (here: with other bytes) while the server is down.
    let rel = pg.rel();
    pg.cluster.stop(&pg.who).unwrap();
    let mut mine = pg.page_offline(&rel, 2);
    mine[100] ^= 0x55;
    pg.write_offline(&rel, 2, &mine);
    pg.cluster.start(&pg.who).unwrap();
    let err = undo_fresh(&p).unwrap_err().to_string();
    assert!(
        err.contains("changed since livefire damaged it") && err.contains("refusing"),
        "{err}"
    );
    assert!(
        pg.page(2) == mine,
        "the page someone wrote is left as it is"
    );
    // The server runs again after the refusal.
    assert!(pg.sql("select 1").is_ok());
    // The page was not restored: its saved copy stays for a person to use.
    assert_eq!(pg.saved_pages().len(), 1, "{:?}", pg.saved_pages());
}

impl Pg {
    /// The saved pages `postgres.corrupt` keeps in the home until they are restored.
    fn saved_pages(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.home().join("saved"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    fn page_offline(&self, rel: &str, page: u64) -> Vec<u8> {
        let mut f = std::fs::File::open(self.cluster.data.join(rel)).unwrap();
        f.seek(SeekFrom::Start(page * 8192)).unwrap();
        let mut buf = vec![0; 8192];
        f.read_exact(&mut buf).unwrap();
        buf
    }

    fn write_offline(&self, rel: &str, page: u64, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.cluster.data.join(rel))
            .unwrap();
        f.seek(SeekFrom::Start(page * 8192)).unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
    }
}

#[test]
fn bad_input_is_refused_with_nothing_applied() {
    let Some(pg) = Pg::start() else { return };
    // A table in a tablespace outside the data directory.
    let outside = pg.dir().join("tablespace");
    std::fs::create_dir(&outside).unwrap();
    pg.who.own(&outside).unwrap();
    // (CREATE TABLESPACE runs outside a transaction: a statement of its own.)
    pg.sql(&format!(
        "create tablespace elsewhere location '{}'",
        outside.display()
    ))
    .unwrap();
    pg.sql("create table faraway (id int) tablespace elsewhere; insert into faraway values (1)")
        .unwrap();
    let not_a_cluster = pg.dir().join("run");
    pg.sql("checkpoint").unwrap();
    let before = pg.page(0);
    // (fault, targets' data_dir or None for the cluster's, what the refusal says)
    let cases: &[(&str, Option<&Path>, &str)] = &[
        (
            "postgres.corrupt: { target: db, table: no_such_table }",
            None,
            "table `no_such_table` does not exist",
        ),
        (
            "postgres.corrupt: { target: db, table: orders }",
            Some(&not_a_cluster),
            "is not a PostgreSQL cluster: it has no PG_VERSION",
        ),
        (
            "postgres.corrupt: { target: db, table: faraway }",
            None,
            "outside data_dir",
        ),
        (
            "postgres.corrupt: { target: db, table: pg_class }",
            None,
            "never a system catalog",
        ),
        (
            "postgres.corrupt: { target: db, table: orders, page: 100000 }",
            None,
            "page 100000 does not exist",
        ),
    ];
    for (fault, data_dir, says) in cases {
        let mut targets = pg.targets(&pg.home());
        if let Some(dir) = data_dir {
            let t = targets.targets.get_mut("db").unwrap();
            t.postgres.as_mut().unwrap().data_dir = Some(dir.display().to_string());
        }
        let err = prepare(&spec::<Fault>(fault), &targets, "t")
            .expect_err(fault)
            .to_string();
        assert!(err.contains(says), "{fault}: {err}");
    }
    // No place to keep the saved copy: apply refuses before the damage, and the server
    // runs again.
    let blocked = pg.dir().join("a-file");
    std::fs::write(&blocked, "not a folder").unwrap();
    let p = prepare(
        &spec::<Fault>("postgres.corrupt: { target: db, table: orders, page: 0 }"),
        &pg.targets(&blocked),
        "t",
    )
    .unwrap();
    let err = p.apply(None).unwrap_err().to_string();
    assert!(err.contains("cannot create"), "{err}");
    // Nothing was damaged: the page is as it was, every row reads, and undo of the
    // record (no saved copy) only says so.
    assert!(pg.page(0) == before, "the page is as it was");
    assert_eq!(pg.count(), Ok(ROWS));
    let done = undo_fresh(&p).unwrap();
    assert!(done.contains("never damaged"), "{done}");
    assert!(pg.page(0) == before, "undo wrote nothing");
}

#[test]
fn postgresql_itself_notices_the_damage_in_its_log_and_checksum_counter() {
    use livefire_faults::pg_watch::PgWatch;
    let Some(pg) = Pg::start() else { return };
    pg.sql("checkpoint").unwrap();
    let fault = spec::<Fault>("postgres.corrupt: { target: db, table: orders, page: 1 }");
    let targets = pg.targets(&pg.home());
    let mut watch = pg
        .rt
        .block_on(PgWatch::begin(&fault, &targets))
        .expect("a postgres target with a data_dir is watched");
    assert_eq!(watch.detectors(), ["db checksums", "db server log"]);
    // An error that names another relation is not this fault's sign.
    assert!(pg.sql("select * from no_such_table").is_err());
    assert_eq!(pg.rt.block_on(watch.poll()), vec![], "nothing noticed yet");
    let p = prepare(&fault, &targets, "t").unwrap();
    p.apply(None).unwrap();
    watch.relation(p.undo.as_ref().unwrap());
    let rel = pg.rel();
    // The read that meets the damaged page.
    assert!(pg.count().is_err());
    let mut seen = Vec::new();
    let start = Instant::now();
    while seen.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "PostgreSQL's signs never all showed: {seen:?}"
        );
        seen.extend(pg.rt.block_on(watch.poll()));
        std::thread::sleep(Duration::from_millis(200));
    }
    seen.sort_by(|a, b| a.detector.cmp(&b.detector));
    assert_eq!(seen[0].detector, "db checksums");
    assert!(
        seen[0]
            .how
            .starts_with("pg_stat_database.checksum_failures rose from"),
        "{seen:?}"
    );
    assert_eq!(seen[1].detector, "db server log");
    assert!(
        seen[1].how.contains(&format!(
            "ERROR:  invalid page in block 1 of relation {rel}"
        )),
        "{seen:?}"
    );
    // Each detector says once.
    assert!(pg.count().is_err());
    assert_eq!(pg.rt.block_on(watch.poll()), vec![]);
    undo_fresh(&p).unwrap();
    assert_eq!(pg.count(), Ok(ROWS));
}
