//! A sandbox under test: a temporary folder, the program run with it, and the record.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use livefire_sandbox::Sandbox;
use livefire_sandbox::proc::{ProcId, http_request};

pub const BIN: &str = env!("CARGO_BIN_EXE_livefire-sandbox");

/// True when this machine has PostgreSQL's server programs; when not, says so past
/// libtest's capture (and fails under CI=true, where .ci/run installs them).
pub fn have_postgres() -> bool {
    let found = livefire_sandbox::pg::installed().is_some();
    if !found {
        livefire_testkit::skip_missing(
            "no PostgreSQL server binaries on PATH or under /usr/lib/postgresql/*/bin",
            "apt-get install postgresql",
        );
    }
    found
}

/// A sandbox folder; `down` runs on drop, whatever the test did.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::Builder::new().prefix("lf-sbx").tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Runs `livefire-sandbox ARGS --dir DIR`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(BIN);
        c.args(args).arg("--dir").arg(self.path());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// `up ARGS`, which must succeed; the record it wrote.
    pub fn up(&self, args: &[&str]) -> Sandbox {
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "up failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        self.record()
    }

    pub fn record(&self) -> Sandbox {
        Sandbox::load(self.path()).unwrap().expect("sandbox.json")
    }

    /// Every process the record names, services and PostgreSQL servers.
    pub fn processes(&self) -> Vec<(String, ProcId)> {
        let sb = self.record();
        let mut all: Vec<(String, ProcId)> = sb
            .services
            .iter()
            .map(|s| (s.name.clone(), s.pid))
            .collect();
        for n in &sb.postgres {
            all.extend(n.pid.map(|p| (n.name.clone(), p)));
            if let Some(p) = postmaster(&n.data_dir) {
                all.push((n.name.clone(), p));
            }
        }
        all
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .arg("down")
            .arg("--dir")
            .arg(self.path())
            .output();
    }
}

/// The postmaster running in `data`, if any.
pub fn postmaster(data: &Path) -> Option<ProcId> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    ProcId::of(text.lines().next()?.trim().parse().ok()?).filter(|p| p.alive())
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The orders API of `sb`, as `user`.
pub struct Api {
    pub addr: String,
    pub token: String,
}

impl Api {
    pub fn of(sb: &Sandbox, user: &str) -> Api {
        Api {
            addr: sb.service("orders").unwrap().listen.clone().unwrap(),
            token: sb
                .tokens
                .iter()
                .find(|(u, _)| u == user)
                .map(|(_, t)| t.clone())
                .unwrap(),
        }
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Option<(u16, serde_json::Value)> {
        let auth = format!("Bearer {}", self.token);
        let (status, body) = http_request(
            &self.addr,
            method,
            path,
            &[("Authorization", &auth)],
            body,
            Duration::from_secs(10),
        )?;
        Some((
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// POST /orders; the status and the new order's id (when 201).
    pub fn create(&self, item: &str) -> (u16, Option<i64>) {
        match self.call(
            "POST",
            "/orders",
            Some(&format!(r#"{{"item":"{item}","qty":3}}"#)),
        ) {
            Some((status, v)) => (status, v.get("id").and_then(|i| i.as_i64())),
            None => (0, None),
        }
    }
}

/// Polls `f` every 100 ms until it gives Some, for at most `within`.
pub fn eventually<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `sql` on the node at `port` as `app` in `orders`; the first column of each row as text.
pub fn sql(port: u16, sql: &str) -> Result<Vec<String>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dsn = format!("host=127.0.0.1 port={port} user=app dbname=orders connect_timeout=5");
        let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let task = tokio::spawn(conn);
        let rows = client
            .simple_query(sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => db.message().to_string(),
                None => e.to_string(),
            })?;
        task.abort();
        Ok(rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some(r.get(0).unwrap_or("").to_string())
                }
                _ => None,
            })
            .collect())
    })
}
