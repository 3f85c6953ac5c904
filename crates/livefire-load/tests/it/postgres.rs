//! PostgreSQL loads against a real server that the test starts from the local binaries
//! (Debian's postgresql package; `.ci/run` installs it). Without them the tests skip
//! loudly, and fail under `CI=true`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use livefire_core::window::{Outcome, WindowStore};
use livefire_load::{
    Executor, LoadConfig, SqlStatement, TrackWrite, WriteCounts, run, verify_writes,
};
use tokio_util::sync::CancellationToken;

/// A throwaway PostgreSQL cluster on 127.0.0.1, stopped on drop.
struct Pg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

fn as_postgres(cmd: &Path, args: &[&str]) -> Command {
    // PostgreSQL refuses to run as root: run its programs as the `postgres` user then.
    if nix_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(cmd).args(args);
        c
    } else {
        let mut c = Command::new(cmd);
        c.args(args);
        c
    }
}

use std::path::Path;

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Pg {
    fn start() -> Option<Pg> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists());
        let Some(bin) = bin else {
            livefire_testkit::skip_missing(
                "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin",
                "apt-get install postgresql",
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        if nix_is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the cluster directory to postgres");
        }
        let data = dir.path().join("data");
        let out = as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            dir.path().display()
        );
        let log = dir.path().join("log");
        let out = as_postgres(
            &bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Pg { dir, bin, port })
    }

    fn dsn(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn exec(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let (c, conn) = tokio_postgres::connect(&self.dsn(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.simple_query("select 1").await.unwrap();
        c.query(sql, &[]).await.unwrap()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        )
        .output();
    }
}

fn rate(r: f64) -> Executor {
    Executor::Rate {
        rate: r,
        stages: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_writes_are_tracked_lost_duplicated_and_phantom() {
    let Some(pg) = Pg::start() else { return };
    pg.exec("create table t (id serial primary key, v int not null)")
        .await;
    pg.exec("create table u (k bigint not null)").await;

    // Keys from the returned row: 100 inserts, then 10 rows deleted behind its back.
    let mut ins = SqlStatement::new(
        "insert",
        "insert into t (v) values ($1) returning id",
        &["${seq}"],
    );
    ins.track_write = Some(TrackWrite {
        key: "id".into(),
        read: "select 1 from t where id = $1".into(),
    });
    let cfg = LoadConfig::postgres(
        "ledger",
        &pg.dsn(),
        vec![ins],
        rate(100.0),
        Duration::from_secs(1),
    );
    let store = Arc::new(WindowStore::new());
    let report = run(
        cfg.clone(),
        Instant::now(),
        CancellationToken::new(),
        store.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        report.total.counts.get(Outcome::Ok),
        100,
        "{:?}",
        report.total.counts
    );
    let counts = verify_writes(&cfg, &report, &store, 4).await.unwrap();
    assert_eq!(
        counts,
        WriteCounts {
            acked: 100,
            ..Default::default()
        }
    );
    pg.exec("delete from t where id % 10 = 0").await;
    let counts = verify_writes(&cfg, &report, &store, 4).await.unwrap();
    assert_eq!(counts.lost, 10);

    // Keys from a parameter: an insert that outlives the client's timeout is of unknown
    // fate; it commits anyway, so it is a phantom. A row added twice is a duplicate.
    let mut slow = SqlStatement::new(
        "slow",
        "insert into u (k) select $1::bigint from pg_sleep(0.4)",
        &["${seq}"],
    );
    slow.track_write = Some(TrackWrite {
        key: "$1".into(),
        read: "select 1 from u where k = $1".into(),
    });
    let mut cfg = LoadConfig::postgres(
        "slow",
        &pg.dsn(),
        vec![slow],
        rate(10.0),
        Duration::from_millis(300),
    );
    cfg.timeout = Duration::from_millis(150);
    let report = run(
        cfg.clone(),
        Instant::now(),
        CancellationToken::new(),
        store.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        report.total.counts.get(Outcome::Timeout),
        3,
        "{:?}",
        report.total.counts
    );
    // The server finishes the three inserts the client gave up on: wait until they are
    // there (a loaded machine may take longer than their 0.4 s), not a fixed time.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = pg.exec("select count(*) from u where k < 1000").await;
        let n: i64 = rows[0].get(0);
        if n >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the timed-out inserts never committed: {n} of 3 rows"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pg.exec("insert into u (k) values (1000)").await;
    let counts = verify_writes(&cfg, &report, &store, 2).await.unwrap();
    assert_eq!(counts.acked, 0);
    assert_eq!(counts.phantom, 3, "{counts:?}");

    let mut fast = SqlStatement::new(
        "fast",
        "insert into u (k) values ($1::bigint + 1000)",
        &["${seq}"],
    );
    fast.track_write = Some(TrackWrite {
        key: "$1".into(),
        read: "select 1 from u where k = $1::bigint + 1000".into(),
    });
    let cfg = LoadConfig::postgres(
        "fast",
        &pg.dsn(),
        vec![fast],
        rate(20.0),
        Duration::from_millis(500),
    );
    let report = run(
        cfg.clone(),
        Instant::now(),
        CancellationToken::new(),
        store.clone(),
    )
    .await
    .unwrap();
    let counts = verify_writes(&cfg, &report, &store, 2).await.unwrap();
    // seq 0 -> k = 1000, which was also inserted above.
    assert_eq!(
        counts,
        WriteCounts {
            acked: 10,
            duplicated: 1,
            ..Default::default()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_sessions_reconnect_and_dead_hosts_are_skipped() {
    let Some(pg) = Pg::start() else { return };
    // The first host refuses; target_session_attrs=read-write takes the next one.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dsn = format!(
        "postgres://postgres@127.0.0.1:{dead},127.0.0.1:{}/postgres",
        pg.port
    );
    let ex = Executor::Vus {
        vus: 2,
        stages: vec![],
        think: Duration::from_millis(10),
    };
    let mut cfg = LoadConfig::postgres(
        "q",
        &dsn,
        vec![SqlStatement::new(
            "q",
            "select $1::int",
            &["${random.int(1,9)}"],
        )],
        ex,
        Duration::from_millis(1500),
    );
    cfg.postgres.as_mut().unwrap().read_write = true;
    let store = Arc::new(WindowStore::new());
    let killer = {
        let dsn = pg.dsn();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (c, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            c.query("select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid() and backend_type = 'client backend'", &[])
                .await
                .unwrap()
                .len()
        })
    };
    let report = run(cfg, Instant::now(), CancellationToken::new(), store.clone())
        .await
        .unwrap();
    assert!(killer.await.unwrap() >= 2, "both sessions were terminated");
    let c = &report.total.counts;
    assert!(c.get(Outcome::Ok) > 40, "{c:?}");
    // Work went on after the sessions were killed at 0.5 s.
    let later: u64 = store
        .windows("q", 0, u64::MAX)
        .iter()
        .filter(|(s, _)| *s >= 1)
        .map(|(_, w)| w.counts.get(Outcome::Ok))
        .sum();
    assert!(later > 10, "{later} ok after the terminate; {c:?}");
    assert_eq!(
        c.get(Outcome::ConnectRefused),
        0,
        "the dead host is skipped, not measured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_dsn_is_refused_and_a_dead_server_is_measured() {
    let bad = LoadConfig::postgres(
        "x",
        "postgres://[oops",
        vec![SqlStatement::new("q", "select 1", &[])],
        rate(1.0),
        Duration::from_secs(1),
    );
    let err = run(
        bad,
        Instant::now(),
        CancellationToken::new(),
        Arc::new(WindowStore::new()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("bad PostgreSQL DSN"), "{err}");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = LoadConfig::postgres(
        "x",
        &format!("postgres://u@127.0.0.1:{dead}/db"),
        vec![SqlStatement::new("q", "select 1", &[])],
        rate(20.0),
        Duration::from_millis(500),
    );
    let report = run(
        cfg,
        Instant::now(),
        CancellationToken::new(),
        Arc::new(WindowStore::new()),
    )
    .await
    .unwrap();
    assert_eq!(
        report.total.counts.get(Outcome::ConnectRefused),
        10,
        "{:?}",
        report.total.counts
    );
}
