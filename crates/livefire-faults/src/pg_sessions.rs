//! The sessions livefire opens on a `postgres` target for its faults: one-off
//! statements (ALTER ROLE, pg_terminate_backend, what a verify asks) and sessions held
//! open for a fault's duration (a pool starved, a table locked, a termination that
//! repeats), each on a thread of its own, found again by the fault's tag when its undo
//! runs in this process.
//!
//! The held sessions live in this process: a process-wide table keyed by tag, because
//! the undo gets nothing but its record. Killed with livefire, they end with it (the
//! kernel closes their sockets and the backends exit); backends that outlive it (a
//! connection through a dead network path) carry the tag as `application_name`, by
//! which `livefire recover` terminates exactly them.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use livefire_spec::PostgresTarget;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::{FaultError, Targets, target};

/// How long a fault waits for a server to answer a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `apply` waits for held sessions to be in place (opening a few hundred
/// connections on a busy machine takes seconds).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// SQLSTATE 53300: the server refuses a connection because its slots are full.
pub(crate) const TOO_MANY_CONNECTIONS: &str = "53300";

/// What went wrong talking to a `postgres` target.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("the dsn of target `{target}` is not one PostgreSQL reads: {message}")]
    Dsn { target: String, message: String },
    #[error("cannot connect to PostgreSQL at {dsn}: {message}")]
    Connect { dsn: String, message: String },
    #[error("PostgreSQL at {dsn} refused `{what}`: {message}")]
    Query {
        dsn: String,
        what: String,
        message: String,
    },
    #[error(
        "role `{role}` does not exist on target `{target}`: name a role that `\\du` lists there"
    )]
    NoRole { target: String, role: String },
    #[error(
        "database `{database}` does not exist on target `{target}`: name one that `\\l` lists there"
    )]
    NoDatabase { target: String, database: String },
    #[error("table `{table}` does not exist on target `{target}`: {hint}")]
    NoTable {
        target: String,
        table: String,
        hint: String,
    },
    #[error(
        "role `{role}` is the role target `{target}`'s dsn logs in as: without LOGIN livefire could not undo the fault; give the target a dsn of another role (a superuser)"
    )]
    OwnRole { target: String, role: String },
    #[error(
        "`postgres.terminate_connections` on `{target}` names no sessions: give `role`, `database` or `application_name` (each given must match)"
    )]
    NoFilter { target: String },
    #[error(
        "unknown lock mode `{0}`: write one of ACCESS SHARE, ROW SHARE, ROW EXCLUSIVE, SHARE UPDATE EXCLUSIVE, SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE, ACCESS EXCLUSIVE"
    )]
    Mode(String),
    #[error("{0}")]
    Held(String),
}

/// How livefire reaches a `postgres` target: its parsed DSN, and the same DSN without
/// its password for records and messages.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    config: Config,
    /// Key/value form, no password: what the undo record and messages carry.
    pub(crate) dsn: String,
}

/// Passwords of the DSNs this process has prepared faults on, by their DSN without
/// password: the undo record holds no secret, and an undo in this process finds it here.
static PASSWORDS: Mutex<BTreeMap<String, Vec<u8>>> = Mutex::new(BTreeMap::new());

impl Conn {
    /// The target `name`'s DSN, parsed.
    pub(crate) fn of(name: &str, t: &PostgresTarget) -> Result<Conn, PgError> {
        let config: Config = t.dsn.parse().map_err(|e| PgError::Dsn {
            target: name.to_owned(),
            message: text(&e),
        })?;
        let dsn = without_password(&config);
        if let Some(pw) = config.get_password() {
            lock(&PASSWORDS).insert(dsn.clone(), pw.to_vec());
        }
        Ok(Conn { config, dsn })
    }

    /// A DSN from an undo record: the password from this process's table, else from
    /// `PGPASSWORD` (as libpq would read it).
    pub(crate) fn from_record(dsn: &str) -> Result<Conn, PgError> {
        let mut config: Config = dsn.parse().map_err(|e| PgError::Dsn {
            target: dsn.to_owned(),
            message: text(&e),
        })?;
        if let Some(pw) = lock(&PASSWORDS).get(dsn) {
            config.password(pw.clone());
        } else if let Some(pw) = std::env::var_os("PGPASSWORD") {
            config.password(pw.into_encoded_bytes());
        }
        Ok(Conn {
            config,
            dsn: dsn.to_owned(),
        })
    }

    /// Opens a session named `application_name`; its connection runs on the caller's
    /// runtime.
    pub(crate) async fn connect(&self, application_name: &str) -> Result<Client, ConnectError> {
        let mut config = self.config.clone();
        config.application_name(application_name);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let (client, connection) = config.connect(NoTls).await.map_err(|e| ConnectError {
            code: e.code().map(|c| c.code().to_owned()),
            error: PgError::Connect {
                dsn: self.dsn.clone(),
                message: text(&e),
            },
        })?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// A `Query` error for `what`.
    pub(crate) fn failed(&self, what: &str, e: &tokio_postgres::Error) -> PgError {
        PgError::Query {
            dsn: self.dsn.clone(),
            what: what.to_owned(),
            message: text(e),
        }
    }
}

/// A refused connection, with its SQLSTATE when the server gave one.
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub(crate) code: Option<String>,
    pub(crate) error: PgError,
}

impl From<ConnectError> for PgError {
    fn from(e: ConnectError) -> PgError {
        e.error
    }
}

impl From<ConnectError> for FaultError {
    fn from(e: ConnectError) -> FaultError {
        FaultError::Postgres(e.error)
    }
}

/// The declared `postgres` target `name`.
pub(crate) fn pg_target<'t>(
    targets: &'t Targets,
    name: &str,
    kind: &'static str,
) -> Result<&'t PostgresTarget, FaultError> {
    target(targets, name)?
        .postgres
        .as_ref()
        .ok_or_else(|| FaultError::WrongTarget {
            name: name.to_owned(),
            kind,
            wants: "postgres",
        })
}

/// Runs `work` to completion on a runtime of its own, on a thread of its own: faults are
/// called from blocking sections, a test's runtime, or `recover`, and must not care which.
pub(crate) fn block<T: Send>(work: impl Future<Output = T> + Send) -> Result<T, PgError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| PgError::Held(format!("cannot start a runtime: {e}")))?;
            Ok(rt.block_on(work))
        })
        .join()
        .unwrap_or_else(|_| Err(PgError::Held("a PostgreSQL session thread panicked".into())))
    })
}

/// One statement on a fresh session (named `livefire`), returning its rows.
pub(crate) fn query(
    conn: &Conn,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, PgError> {
    block(async {
        let client = conn.connect(&format!("{TAG_PREFIX}query")).await?;
        client
            .query(sql, params)
            .await
            .map_err(|e| conn.failed(sql, &e))
    })?
}

/// The tag of a fault's sessions: what their `application_name` will be,
/// `livefire/<short>/<activity>`. Derived from the activity's name, not drawn, so that
/// anyone who prepares the same fault under the same name (the conformance harness, a
/// person reading `pg_stat_activity`) knows its sessions; runs apart in time are told
/// apart by `since`, and two pending runs with one tag on one server are refused by the
/// ledger (the tag is in the record's resource). Printable ASCII under 64 bytes
/// (PostgreSQL replaces the rest and cuts longer names), with a hash of the name when
/// it had to be changed.
pub(crate) fn tag(short: &str, activity: &str) -> String {
    const MAX: usize = 63;
    let head = format!("{TAG_PREFIX}{short}/");
    let clean: String = activity
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == activity && head.len() + clean.len() <= MAX {
        return format!("{head}{clean}");
    }
    // FNV-1a: stable across builds and processes, which `recover` relies on only
    // through the record (the tag is written there), and people through the journal.
    let hash = activity.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let room = MAX - head.len() - 9;
    let cut: String = clean.chars().take(room).collect();
    format!("{head}{cut}~{:08x}", hash as u32)
}

/// Every held session's `application_name` starts with this; `terminate_connections`
/// never cuts them.
pub(crate) const TAG_PREFIX: &str = "livefire/";

/// The server's clock now, as text `backend_start` compares with.
pub(crate) fn server_now(conn: &Conn) -> Result<String, PgError> {
    let rows = query(conn, "select now()::text", &[])?;
    Ok(rows
        .first()
        .map(|r| r.get::<_, String>(0))
        .unwrap_or_default())
}

/// Tells held sessions that they are ready (with what to journal) or why they failed.
pub(crate) type Ready = mpsc::SyncSender<Result<String, PgError>>;

/// Resolves when the fault's undo asks the sessions to end.
pub(crate) type Stop = tokio::sync::oneshot::Receiver<()>;

struct Holder {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<String>,
}

/// The sessions held in this process, by tag.
static HELD: Mutex<BTreeMap<String, Holder>> = Mutex::new(BTreeMap::new());

/// Starts `job` on a thread and runtime of its own and waits until it says it is ready.
/// The job holds its sessions until `Stop` resolves, then ends them and returns what it
/// did; it must send on `Ready` exactly once (an `Err` ends it).
pub(crate) fn hold<F, Fut>(tag: &str, job: F) -> Result<String, PgError>
where
    F: FnOnce(Ready, Stop) -> Fut + Send + 'static,
    Fut: Future<Output = String> + 'static,
{
    if lock(&HELD).contains_key(tag) {
        return Err(PgError::Held(format!(
            "sessions named {tag} are held by this livefire already: give the activity another name"
        )));
    }
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("livefire-pg {tag}"))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ =
                        ready_tx.send(Err(PgError::Held(format!("cannot start a runtime: {e}"))));
                    return String::new();
                }
            };
            rt.block_on(job(ready_tx, stop_rx))
        })
        .map_err(|e| PgError::Held(format!("cannot start a thread: {e}")))?;
    match ready_rx.recv_timeout(READY_TIMEOUT) {
        Ok(Ok(detail)) => {
            lock(&HELD).insert(
                tag.to_owned(),
                Holder {
                    stop: stop_tx,
                    thread,
                },
            );
            Ok(detail)
        }
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            // Not ready in time: ask it to stop (it ends what it opened) and leave it.
            let _ = stop_tx.send(());
            Err(PgError::Held(format!(
                "the sessions were not in place after {}s",
                READY_TIMEOUT.as_secs()
            )))
        }
    }
}

/// Ends the sessions this process holds under `tag`; `None` when it holds none (a fresh
/// process, or already ended).
pub(crate) fn release(tag: &str) -> Option<String> {
    let holder = lock(&HELD).remove(tag)?;
    let _ = holder.stop.send(());
    Some(
        holder
            .thread
            .join()
            .unwrap_or_else(|_| "the session thread panicked; its sessions ended with it".into()),
    )
}

/// Terminates the backends named `tag` that started at or after `since`; returns how many.
pub(crate) fn terminate_tagged(conn: &Conn, tag: &str, since: &str) -> Result<i64, PgError> {
    let rows = query(
        conn,
        "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity \
         where application_name = $1 and backend_start >= $2::text::timestamptz \
         and pid <> pg_backend_pid()",
        &[&tag, &since],
    )?;
    Ok(rows.first().map_or(0, |r| r.get(0)))
}

/// How many sessions named `tag` the server has now.
pub(crate) fn count_tagged(conn: &Conn, tag: &str) -> Result<i64, PgError> {
    let rows = query(
        conn,
        "select count(*) from pg_stat_activity where application_name = $1",
        &[&tag],
    )?;
    Ok(rows.first().map_or(0, |r| r.get(0)))
}

/// `name` as an SQL identifier, quoted.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What a PostgreSQL error says: the server's message (and its SQLSTATE), or the
/// client's reason with its cause.
pub(crate) fn text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(&format!(": {c}"));
        }
        source = cause.source();
    }
    s
}

/// `config` as a key/value DSN without its password.
fn without_password(config: &Config) -> String {
    let mut parts = Vec::new();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    if !hosts.is_empty() {
        parts.push(format!("host={}", quote(&hosts.join(","))));
    }
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        parts.push(format!("port={}", ports.join(",")));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote(user)));
    }
    if let Some(db) = config.get_dbname() {
        parts.push(format!("dbname={}", quote(db)));
    }
    if let Some(options) = config.get_options() {
        parts.push(format!("options={}", quote(options)));
    }
    if let Some(t) = config.get_connect_timeout() {
        parts.push(format!("connect_timeout={}", t.as_secs().max(1)));
    }
    if config.get_target_session_attrs() == tokio_postgres::config::TargetSessionAttrs::ReadWrite {
        parts.push("target_session_attrs=read-write".into());
    }
    parts.join(" ")
}

/// A key/value DSN value, quoted when it must be.
fn quote(v: &str) -> String {
    if !v.is_empty() && !v.contains([' ', '\'', '\\']) {
        return v.to_owned();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Undoes a `PostgresSessions` record: ends the sessions if this process holds them, and
/// terminates whatever backends still carry the tag (all of them, from a fresh process).
pub(crate) fn undo(dsn: &str, tag: &str, since: &str, what: &str) -> Result<String, FaultError> {
    let released = release(tag);
    let conn = Conn::from_record(dsn)?;
    match (terminate_tagged(&conn, tag, since), released) {
        (Ok(0), Some(detail)) => Ok(detail),
        (Ok(n), Some(detail)) => Ok(format!("{detail}; {n} left behind terminated")),
        (Ok(n), None) => Ok(format!(
            "{what}: {n} session(s) named {tag} terminated (none held by this process)"
        )),
        // Closed here: the server cannot be asked about stragglers, but this process held
        // every session, and they are closed.
        (Err(e), Some(detail)) => Ok(format!("{detail} (cannot check for stragglers: {e})")),
        (Err(e), None) => Err(e.into()),
    }
}
