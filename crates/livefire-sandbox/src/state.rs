//! DIR/sandbox.json: everything `up` started, written after each step so that `down`
//! (or a later `up`) can stop it all even when `up` itself died half-way.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::SandboxError;
use crate::proc::ProcId;

/// The file's name inside the sandbox folder.
pub const FILE: &str = "sandbox.json";

/// The sandbox as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sandbox {
    /// Format version.
    pub v: u32,
    /// The sandbox folder (absolute).
    pub dir: PathBuf,
    /// `postgres` or `sqlite`.
    pub store: String,
    /// True between a successful `up` and `down`.
    pub up: bool,
    /// PostgreSQL's bin directory, when the store is PostgreSQL.
    pub bin_dir: Option<PathBuf>,
    /// The OS user PostgreSQL runs as.
    pub pg_user: Option<String>,
    /// The PostgreSQL servers, in start order (`primary`, then `replica`).
    pub postgres: Vec<PgNode>,
    /// The multi-host DSN the orders API uses (read-write node first found).
    pub dsn: Option<String>,
    /// The SQLite file, when the store is SQLite.
    pub sqlite: Option<PathBuf>,
    /// The processes `up` started besides PostgreSQL, in start order.
    pub services: Vec<Service>,
    /// Bearer tokens the token service accepts, by user.
    pub tokens: Vec<(String, String)>,
    /// Whether the orders API runs with its planted defects.
    pub defects: bool,
}

/// One PostgreSQL server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PgNode {
    /// `primary` or `replica`: the name it was created with; its role may change.
    pub name: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// The folder of its socket and log.
    pub run_dir: PathBuf,
    /// Keyword/value DSN of this node alone, as the application role `app`.
    pub dsn: String,
    /// The postmaster as first started (after a rejoin, postmaster.pid has the new one).
    pub pid: Option<ProcId>,
}

/// One process the sandbox runs (`token`, `orders`, `failover`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    /// Where it listens (host:port), for the HTTP services.
    pub listen: Option<String>,
    /// The command line it was started with (program first), so `restart` can rerun it.
    pub argv: Vec<String>,
    pub log: PathBuf,
    pub pid: ProcId,
}

impl Sandbox {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// Reads DIR/sandbox.json; Ok(None) when there is none.
    pub fn load(dir: &Path) -> Result<Option<Sandbox>, SandboxError> {
        let path = Sandbox::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SandboxError::io(
                    format!("cannot read {}", path.display()),
                    e,
                ));
            }
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            SandboxError::Setup(format!(
                "{} is not a sandbox record ({e}): stop what it started by hand, then remove it",
                path.display()
            ))
        })
    }

    /// Writes the record (to a temporary file, then renamed, so a reader never sees half).
    pub fn save(&self) -> Result<(), SandboxError> {
        let path = Sandbox::path(&self.dir);
        let tmp = self.dir.join(format!(".{FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&tmp, text + "\n")
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| SandboxError::io(format!("cannot write {}", path.display()), e))
    }

    pub fn node(&self, name: &str) -> Option<&PgNode> {
        self.postgres.iter().find(|n| n.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The orders API's base URL.
    pub fn api(&self) -> Option<String> {
        self.service("orders")
            .and_then(|s| s.listen.as_ref())
            .map(|l| format!("http://{l}"))
    }
}
