//! `postgres.lock_table`: a session livefire holds takes `LOCK TABLE t IN <mode> MODE`
//! (default ACCESS EXCLUSIVE) in an open transaction and keeps it for the duration;
//! the undo record rolls the transaction back (or, from a fresh process, terminates the
//! backend named by the fault's tag). The lock is taken with a `lock_timeout` of 10 s:
//! a table busy for longer is an apply error, not a queue that blocks everyone
//! unannounced. Verify: `pg_locks` shows the granted lock.

use livefire_core::undo::UndoRecord;
use livefire_spec::PostgresLockTable;

use crate::pg_sessions::{self, Conn, PgError, pg_target};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets};

const KIND: &str = "postgres.lock_table";

/// PostgreSQL's table lock modes, as `LOCK TABLE` and `pg_locks.mode` name them.
const MODES: [(&str, &str); 8] = [
    ("ACCESS SHARE", "AccessShareLock"),
    ("ROW SHARE", "RowShareLock"),
    ("ROW EXCLUSIVE", "RowExclusiveLock"),
    ("SHARE UPDATE EXCLUSIVE", "ShareUpdateExclusiveLock"),
    ("SHARE", "ShareLock"),
    ("SHARE ROW EXCLUSIVE", "ShareRowExclusiveLock"),
    ("EXCLUSIVE", "ExclusiveLock"),
    ("ACCESS EXCLUSIVE", "AccessExclusiveLock"),
];

pub(crate) struct LockTable<'a>(pub &'a PostgresLockTable);

/// The mode as `LOCK TABLE` writes it and as `pg_locks` shows it: `access exclusive`,
/// `ACCESS_EXCLUSIVE` and `AccessExclusiveLock`-less spellings all name one.
fn mode(written: Option<&str>) -> Result<(&'static str, &'static str), PgError> {
    let Some(w) = written else {
        return Ok(MODES[7]);
    };
    let norm = w
        .split(|c: char| c.is_whitespace() || c == '_' || c == '-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    MODES
        .iter()
        .find(|(m, _)| *m == norm)
        .copied()
        .ok_or_else(|| PgError::Mode(w.to_owned()))
}

impl Kind for LockTable<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        pg_target(targets, &self.0.target, KIND)?;
        mode(self.0.mode.as_deref())?;
        Ok(())
    }

    fn prepare(&self, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
        let f = self.0;
        let name = &f.target;
        let (sql_mode, pg_mode) = mode(f.mode.as_deref())?;
        let conn = Conn::of(name, pg_target(targets, name, KIND)?)?;
        let no_table = |hint: String| PgError::NoTable {
            target: name.clone(),
            table: f.table.clone(),
            hint,
        };
        // to_regclass is NULL for a table that does not exist and an error for a name
        // that cannot be one (`a.b.c.d`).
        let rows = pg_sessions::query(
            &conn,
            "select c.oid::int8, c.oid::regclass::text, now()::text \
             from pg_class c where c.oid = to_regclass($1)",
            &[&f.table],
        )
        .map_err(|e| match e {
            PgError::Query { message, .. } => no_table(message),
            e => e,
        })?;
        let Some(row) = rows.first() else {
            return Err(no_table(format!(
                "name a table in the dsn's database ({}), schema-qualified if it is not on the search_path",
                conn.dsn
            ))
            .into());
        };
        let (oid, table, since): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
        let tag = pg_sessions::tag("lock", activity);
        let undo = UndoRecord::PostgresSessions {
            dsn: conn.dsn.clone(),
            tag: tag.clone(),
            since,
            what: format!("{KIND} {table}"),
        };
        Ok(Prepared::new(
            KIND,
            name,
            Some(undo.clone()),
            vec![undo.resource()],
            Locked {
                conn,
                tag,
                oid,
                table,
                sql_mode,
                pg_mode,
            },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Locked {
    conn: Conn,
    tag: String,
    oid: i64,
    /// As `regclass` prints it: quoted where it must be, schema-qualified where needed.
    table: String,
    sql_mode: &'static str,
    pg_mode: &'static str,
}

impl Action for Locked {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        let (conn, tag) = (self.conn.clone(), self.tag.clone());
        let lock = format!(
            "set idle_in_transaction_session_timeout = 0; set lock_timeout = '10s'; \
             begin; lock table {} in {} mode",
            self.table, self.sql_mode
        );
        let what = format!("table {} locked in {} mode", self.table, self.sql_mode);
        Ok(pg_sessions::hold(
            &self.tag,
            move |ready, stop| async move {
                let client = match conn.connect(&tag).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready.send(Err(e.into()));
                        return String::new();
                    }
                };
                if let Err(e) = client.batch_execute(&lock).await {
                    let _ = ready.send(Err(conn.failed(&lock, &e)));
                    return String::new();
                }
                let _ = ready.send(Ok(what.clone()));
                let _ = stop.await;
                match client.batch_execute("rollback").await {
                    Ok(()) => format!("{what}: rolled back"),
                    Err(e) => format!(
                        "{what}: the session ended ({}), and its lock with it",
                        pg_sessions::text(&e)
                    ),
                }
            },
        )?)
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let rows = pg_sessions::query(
            &self.conn,
            "select count(*) from pg_locks l join pg_stat_activity a using (pid) \
             where a.application_name = $1 and l.relation = $2::int8::oid \
             and l.mode = $3 and l.granted",
            &[&self.tag, &self.oid, &self.pg_mode],
        )?;
        let n: i64 = rows.first().map_or(0, |r| r.get(0));
        Ok(Some(Seen {
            applied: n > 0,
            clean: n == 0,
            detail: format!(
                "{} {} by livefire's session: {}",
                self.table,
                self.sql_mode,
                if n > 0 { "held" } else { "not held" }
            ),
        }))
    }
}
