//! A PostgreSQL server of the test's own: initdb and pg_ctl as the `postgres` user (as
//! livefire's sandbox runs them) in a temporary directory, on a free port, stopped when
//! dropped.

use std::path::Path;

use livefire_sandbox::pg::{self, Cluster, RunAs};

/// A running PostgreSQL server; stopped, and its files removed, when dropped.
pub struct Pg {
    pub cluster: Cluster,
    pub who: RunAs,
    dir: tempfile::TempDir,
}

impl Pg {
    /// A new server with the sandbox's settings; `None` (after [`crate::skip_missing`]
    /// said so, which fails the test under `CI=true`) when this machine has no PostgreSQL.
    pub fn start() -> Option<Pg> {
        Pg::start_with("")
    }

    /// As [`Pg::start`], with `conf` (lines such as `max_connections = 12`) added to
    /// postgresql.conf before the server starts.
    pub fn start_with(conf: &str) -> Option<Pg> {
        let Some(bin) = pg::installed() else {
            crate::skip_missing(
                "PostgreSQL server binaries not found",
                "apt-get install postgresql",
            );
            return None;
        };
        let who = RunAs::detect().expect("a user to run PostgreSQL as");
        let dir = tempfile::tempdir().unwrap();
        let run_dir = dir.path().join("run");
        std::fs::create_dir(&run_dir).unwrap();
        who.own(dir.path()).unwrap();
        let cluster = Cluster {
            bin,
            data: dir.path().join("data"),
            port: livefire_sandbox::proc::free_port().unwrap(),
            name: "test".into(),
            run_dir,
        };
        cluster.initdb(&who).unwrap();
        if !conf.is_empty() {
            let file = cluster.data.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&file).unwrap();
            text.push('\n');
            text.push_str(conf);
            text.push('\n');
            std::fs::write(&file, text).unwrap();
        }
        cluster
            .start(&who)
            .unwrap_or_else(|e| panic!("the test's PostgreSQL did not start: {e}"));
        Some(Pg { cluster, who, dir })
    }

    /// The test's temporary folder (the server's user owns it), for files a test wants
    /// beside the server; removed when dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The keyword/value DSN of this server's `postgres` database as `user`.
    pub fn dsn(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname=postgres connect_timeout=5",
            self.cluster.port
        )
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = self.cluster.stop(&self.who);
    }
}
