//! The server's store: one SQLite file (`DATA/serve.db`) holding tokens (hashed), the
//! uploaded experiments, the index of runs the server started, and the audit log. Run
//! folders stay on disk where `livefire run` writes them; the store only points at them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::auth::Role;

/// Why the store cannot be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data folder {}: {source}: pass a writable --data DIR", path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the store {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("a token named `{0}` exists already: pick another --name")]
    NameTaken(String),
}

/// The store, shared by every request; each call holds the connection briefly.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

/// A token as the store keeps it (its hash, never the token).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    pub name: String,
    pub role: Role,
    pub created: String,
    /// Unix seconds after which the token is refused; `None`: never.
    pub expires: Option<i64>,
    pub revoked: bool,
}

/// An uploaded experiment.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentRow {
    pub name: String,
    pub text: String,
    pub updated: String,
    pub updated_by: String,
}

/// A run the server started.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// The run id (the run folder's name), as `livefire runs` and `halt` know it.
    pub id: String,
    pub experiment: String,
    pub dir: String,
    /// `running`, `stopping`, then `ended`.
    pub state: String,
    /// The run's verdict once ended (`held`, `deviated`, `aborted`, ...).
    pub verdict: Option<String>,
    pub exit_code: Option<i64>,
    pub pid: Option<i64>,
    pub started: String,
    pub ended: Option<String>,
    pub started_by: String,
    pub stopped_by: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub at: String,
    pub who: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens(
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL, expires INTEGER, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS experiments(
    name TEXT PRIMARY KEY, text TEXT NOT NULL, updated TEXT NOT NULL, updated_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
    id TEXT PRIMARY KEY, experiment TEXT NOT NULL, dir TEXT NOT NULL, state TEXT NOT NULL,
    verdict TEXT, exit_code INTEGER, pid INTEGER, started TEXT NOT NULL, ended TEXT,
    started_by TEXT NOT NULL, stopped_by TEXT);
CREATE TABLE IF NOT EXISTS audit(
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL);
";

impl Store {
    /// Opens (creating when new) `DIR/serve.db`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("serve.db");
        let conn = Connection::open(&path)
            .and_then(|c| {
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                c.execute_batch(SCHEMA)?;
                c.execute_batch(crate::schedule::SCHEMA)?;
                c.execute_batch(crate::approval::SCHEMA)?;
                crate::approval::migrate(&c)?;
                Ok(c)
            })
            .map_err(|source| StoreError::Open { path, source })?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        // A panic while holding the lock cannot leave SQLite half-written (each call is
        // one statement or one transaction), so a poisoned lock is still usable.
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&conn)?)
    }

    pub fn add_token(
        &self,
        name: &str,
        role: Role,
        hash: &str,
        expires: Option<i64>,
    ) -> Result<(), StoreError> {
        let r = self.with(|c| {
            c.execute(
                "INSERT INTO tokens(name, role, hash, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, role.as_str(), hash, now(), expires],
            )
        });
        match r {
            Err(StoreError::Sql(rusqlite::Error::SqliteFailure(e, _)))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(StoreError::NameTaken(name.to_owned()))
            }
            other => other.map(|_| ()),
        }
    }

    /// The token whose hash this is, if any (revoked and expired ones too: the caller
    /// says which it was).
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT name, role, created, expires, revoked FROM tokens WHERE hash = ?1",
                [hash],
                token_row,
            )
            .optional()
        })
    }

    /// The token named so, if any (revoked and expired ones too).
    pub fn token_named(&self, name: &str) -> Result<Option<TokenRow>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT name, role, created, expires, revoked FROM tokens WHERE name = ?1",
                [name],
                token_row,
            )
            .optional()
        })
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare(
                "SELECT name, role, created, expires, revoked FROM tokens ORDER BY created, name",
            )?;
            s.query_map([], token_row)?.collect()
        })
    }

    /// Revokes a token by name; false when there is none.
    pub fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| c.execute("UPDATE tokens SET revoked = 1 WHERE name = ?1", [name]))
            .map(|n| n > 0)
    }

    pub fn put_experiment(&self, name: &str, text: &str, by: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO experiments(name, text, updated, updated_by) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET text = ?2, updated = ?3, updated_by = ?4",
                params![name, text, now(), by],
            )
        })
        .map(|_| ())
    }

    pub fn experiment(&self, name: &str) -> Result<Option<ExperimentRow>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT name, text, updated, updated_by FROM experiments WHERE name = ?1",
                [name],
                experiment_row,
            )
            .optional()
        })
    }

    pub fn experiments(&self) -> Result<Vec<ExperimentRow>, StoreError> {
        self.with(|c| {
            let mut s =
                c.prepare("SELECT name, text, updated, updated_by FROM experiments ORDER BY name")?;
            s.query_map([], experiment_row)?.collect()
        })
    }

    pub fn add_run(&self, run: &RunRow) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO runs(id, experiment, dir, state, pid, started, started_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    run.id,
                    run.experiment,
                    run.dir,
                    run.state,
                    run.pid,
                    run.started,
                    run.started_by
                ],
            )
        })
        .map(|_| ())
    }

    pub fn run(&self, id: &str) -> Result<Option<RunRow>, StoreError> {
        self.with(|c| {
            c.query_row(&format!("{RUN_COLUMNS} WHERE id = ?1"), [id], run_row)
                .optional()
        })
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRow>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare(&format!("{RUN_COLUMNS} ORDER BY started DESC, id DESC"))?;
            s.query_map([], run_row)?.collect()
        })
    }

    /// Runs not ended (as the store last knew them).
    pub fn unfinished_runs(&self) -> Result<Vec<RunRow>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare(&format!(
                "{RUN_COLUMNS} WHERE state != 'ended' ORDER BY started"
            ))?;
            s.query_map([], run_row)?.collect()
        })
    }

    pub fn mark_stopping(&self, id: &str, by: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET state = 'stopping', stopped_by = ?2 WHERE id = ?1 AND state = 'running'",
                params![id, by],
            )
        })
        .map(|_| ())
    }

    pub fn mark_ended(
        &self,
        id: &str,
        verdict: &str,
        exit_code: Option<i64>,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET state = 'ended', verdict = ?2, exit_code = ?3, ended = ?4 WHERE id = ?1",
                params![id, verdict, exit_code, now()],
            )
        })
        .map(|_| ())
    }

    pub fn audit(
        &self,
        who: &str,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<String, StoreError> {
        let at = now();
        self.with(|c| {
            c.execute(
                "INSERT INTO audit(at, who, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![at, who, action, subject, detail],
            )
        })?;
        Ok(at)
    }

    /// The audit log, newest first; only `subject`'s lines when given.
    pub fn audit_log(&self, subject: Option<&str>) -> Result<Vec<AuditRow>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare(
                "SELECT at, who, action, subject, detail FROM audit
                 WHERE ?1 IS NULL OR subject = ?1 ORDER BY id DESC LIMIT 1000",
            )?;
            s.query_map([subject], |r| {
                Ok(AuditRow {
                    at: r.get(0)?,
                    who: r.get(1)?,
                    action: r.get(2)?,
                    subject: r.get(3)?,
                    detail: r.get(4)?,
                })
            })?
            .collect()
        })
    }
}

const RUN_COLUMNS: &str = "SELECT id, experiment, dir, state, verdict, exit_code, pid, started, ended, started_by, stopped_by FROM runs";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        experiment: r.get(1)?,
        dir: r.get(2)?,
        state: r.get(3)?,
        verdict: r.get(4)?,
        exit_code: r.get(5)?,
        pid: r.get(6)?,
        started: r.get(7)?,
        ended: r.get(8)?,
        started_by: r.get(9)?,
        stopped_by: r.get(10)?,
    })
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    let role: String = r.get(1)?;
    Ok(TokenRow {
        name: r.get(0)?,
        // A role this version does not know reads as the least one: it can see, not change.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created: r.get(2)?,
        expires: r.get(3)?,
        revoked: r.get::<_, i64>(4)? != 0,
    })
}

fn experiment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExperimentRow> {
    Ok(ExperimentRow {
        name: r.get(0)?,
        text: r.get(1)?,
        updated: r.get(2)?,
        updated_by: r.get(3)?,
    })
}

/// Wall clock, RFC 3339 UTC (sorts as text).
pub fn now() -> String {
    livefire_engine::clock::rfc3339_now()
}
