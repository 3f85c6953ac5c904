//! Where the orders API keeps its orders: PostgreSQL through a multi-host DSN that
//! follows a failover (`target_session_attrs=read-write`, a fresh session after any
//! connection error), or SQLite in a file when there is no PostgreSQL. Both offer the
//! same operations, so the API above them is one piece of code.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::config::TargetSessionAttrs;

/// One order, as the API answers it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Order {
    pub id: i64,
    pub owner: String,
    pub item: String,
    pub qty: i32,
}

/// The store could not do what was asked; the API answers 503 with this text.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Which store, and its handle.
pub enum Store {
    Postgres(Box<PgStore>),
    Sqlite(SqliteStore),
}

impl Store {
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// Checks the store answers (a `select 1`).
    pub async fn health(&self) -> Result<(), StoreError> {
        match self {
            Store::Postgres(s) => {
                s.with(|c| Box::pin(async move { c.simple_query("select 1").await.map(|_| ()) }))
                    .await
            }
            Store::Sqlite(s) => s.call(|c| c.query_row("select 1", [], |_| Ok(()))).await,
        }
    }

    /// Writes a new order now and returns it with its id.
    pub async fn create(&self, owner: &str, item: &str, qty: i32) -> Result<Order, StoreError> {
        let (o, i) = (owner.to_owned(), item.to_owned());
        let id = match self {
            Store::Postgres(s) => {
                s.with(move |c| {
                    let (o, i) = (o.clone(), i.clone());
                    Box::pin(async move {
                        let row = c
                            .query_one(
                                "insert into orders(owner, item, qty) values ($1, $2, $3) returning id",
                                &[&o, &i, &qty],
                            )
                            .await?;
                        Ok(row.get::<_, i64>(0))
                    })
                })
                .await?
            }
            Store::Sqlite(s) => {
                let id = s.reserve();
                s.call(move |c| {
                    c.execute(
                        "insert into orders(id, owner, item, qty) values (?1, ?2, ?3, ?4)",
                        rusqlite::params![id, o, i, qty],
                    )
                    .map(|_| id)
                })
                .await?
            }
        };
        Ok(Order {
            id,
            owner: owner.to_owned(),
            item: item.to_owned(),
            qty,
        })
    }

    /// An id for an order that will be written later (the write-behind defect).
    pub async fn reserve_id(&self) -> Result<i64, StoreError> {
        match self {
            Store::Postgres(s) => {
                s.with(|c| {
                    Box::pin(async move {
                        let row = c
                            .query_one(
                                "select nextval(pg_get_serial_sequence('orders', 'id'))",
                                &[],
                            )
                            .await?;
                        Ok(row.get::<_, i64>(0))
                    })
                })
                .await
            }
            Store::Sqlite(s) => Ok(s.reserve()),
        }
    }

    /// Writes orders whose ids were reserved.
    pub async fn insert_all(&self, orders: Vec<Order>) -> Result<(), StoreError> {
        match self {
            Store::Postgres(s) => {
                s.with(move |c| {
                    let orders = orders.clone();
                    Box::pin(async move {
                        for o in &orders {
                            c.execute(
                                "insert into orders(id, owner, item, qty) values ($1, $2, $3, $4) on conflict (id) do nothing",
                                &[&o.id, &o.owner, &o.item, &o.qty],
                            )
                            .await?;
                        }
                        Ok(())
                    })
                })
                .await
            }
            Store::Sqlite(s) => {
                s.call(move |c| {
                    let tx = c.transaction()?;
                    for o in &orders {
                        tx.execute(
                            "insert or ignore into orders(id, owner, item, qty) values (?1, ?2, ?3, ?4)",
                            rusqlite::params![o.id, o.owner, o.item, o.qty],
                        )?;
                    }
                    tx.commit()
                })
                .await
            }
        }
    }

    /// The order `id` if `owner` may see it (None: any owner).
    pub async fn get(&self, owner: Option<&str>, id: i64) -> Result<Option<Order>, StoreError> {
        let owner = owner.map(str::to_owned);
        match self {
            Store::Postgres(s) => {
                s.with(move |c| {
                    let owner = owner.clone();
                    Box::pin(async move {
                        let rows = c
                            .query(
                                "select id, owner, item, qty from orders where id = $1 and ($2::text is null or owner = $2)",
                                &[&id, &owner],
                            )
                            .await?;
                        Ok(rows.first().map(pg_order))
                    })
                })
                .await
            }
            Store::Sqlite(s) => {
                s.call(move |c| {
                    let mut st = c.prepare(
                        "select id, owner, item, qty from orders where id = ?1 and (?2 is null or owner = ?2)",
                    )?;
                    let mut rows = st.query_map(rusqlite::params![id, owner], sqlite_order)?;
                    rows.next().transpose()
                })
                .await
            }
        }
    }

    /// Up to `limit` orders of `owner` (None: everyone's), newest first, whose item
    /// contains `search`.
    pub async fn list(
        &self,
        owner: Option<&str>,
        search: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        let owner = owner.map(str::to_owned);
        let search = search.map(str::to_owned);
        match self {
            Store::Postgres(s) => {
                s.with(move |c| {
                    let (owner, search) = (owner.clone(), search.clone());
                    Box::pin(async move {
                        let rows = c
                            .query(
                                "select id, owner, item, qty from orders \
                                 where ($1::text is null or owner = $1) and ($2::text is null or strpos(item, $2) > 0) \
                                 order by id desc limit $3",
                                &[&owner, &search, &limit],
                            )
                            .await?;
                        Ok(rows.iter().map(pg_order).collect())
                    })
                })
                .await
            }
            Store::Sqlite(s) => {
                s.call(move |c| {
                    let mut st = c.prepare(
                        "select id, owner, item, qty from orders \
                         where (?1 is null or owner = ?1) and (?2 is null or instr(item, ?2) > 0) \
                         order by id desc limit ?3",
                    )?;
                    let rows = st.query_map(rusqlite::params![owner, search, limit], sqlite_order)?;
                    rows.collect()
                })
                .await
            }
        }
    }
}

fn pg_order(r: &tokio_postgres::Row) -> Order {
    Order {
        id: r.get(0),
        owner: r.get(1),
        item: r.get(2),
        qty: r.get(3),
    }
}

fn sqlite_order(r: &rusqlite::Row<'_>) -> rusqlite::Result<Order> {
    Ok(Order {
        id: r.get(0)?,
        owner: r.get(1)?,
        item: r.get(2)?,
        qty: r.get(3)?,
    })
}

/// A PostgreSQL error as one line: the server's SQLSTATE and message when it sent one.
pub fn pg_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                text.push_str(&format!(": {s}"));
                src = s.source();
            }
            text
        }
    }
}

type PgFuture<'a, T> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>,
>;

/// A few sessions to the read-write node of a multi-host DSN, each replaced after a
/// connection error (the node died, was demoted, or a failover happened).
pub struct PgStore {
    config: tokio_postgres::Config,
    slots: Vec<tokio::sync::Mutex<Option<Arc<tokio_postgres::Client>>>>,
    next: AtomicUsize,
    schema_ready: AtomicBool,
}

const SCHEMA_PG: &str = "create table if not exists orders (\
    id bigserial primary key, owner text not null, item text not null, \
    qty integer not null, created_at timestamptz not null default now())";

impl PgStore {
    /// Parses `dsn` (URL or key=value, several hosts allowed) and insists on a
    /// read-write session. Nothing is connected until the first request.
    pub fn new(dsn: &str, sessions: usize) -> Result<PgStore, StoreError> {
        let mut config = tokio_postgres::Config::from_str(dsn)
            .map_err(|e| StoreError(format!("invalid --dsn: {e}")))?;
        config.target_session_attrs(TargetSessionAttrs::ReadWrite);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(2));
        }
        Ok(PgStore {
            config,
            slots: (0..sessions.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
            schema_ready: AtomicBool::new(false),
        })
    }

    async fn connect(&self) -> Result<Arc<tokio_postgres::Client>, tokio_postgres::Error> {
        let (client, conn) = self.config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        if !self.schema_ready.load(Ordering::Relaxed) {
            client.batch_execute(SCHEMA_PG).await?;
            self.schema_ready.store(true, Ordering::Relaxed);
        }
        Ok(Arc::new(client))
    }

    /// Runs `f` on a session, connecting as needed. After a connection-level error the
    /// session is dropped and `f` is tried once more on a fresh one (which finds the
    /// read-write node again), so one failover costs a request at most its retry.
    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: for<'a> Fn(&'a tokio_postgres::Client) -> PgFuture<'a, T>,
    {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let mut last = String::new();
        for _attempt in 0..2 {
            let client = {
                let mut guard = slot.lock().await;
                match guard.as_ref().filter(|c| !c.is_closed()) {
                    Some(c) => c.clone(),
                    None => {
                        *guard = None;
                        let c = self.connect().await.map_err(|e| {
                            StoreError(format!("database unavailable: {}", pg_error_text(&e)))
                        })?;
                        *guard = Some(c.clone());
                        c
                    }
                }
            };
            match f(&client).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    last = pg_error_text(&e);
                    if !session_lost(&e) {
                        return Err(StoreError(format!("database error: {last}")));
                    }
                    let mut guard = slot.lock().await;
                    if guard.as_ref().is_some_and(|c| Arc::ptr_eq(c, &client)) {
                        *guard = None;
                    }
                }
            }
        }
        Err(StoreError(format!("database unavailable: {last}")))
    }
}

/// True when the session is no good any more: the connection broke, the server is
/// shutting down, or the node is read-only now (it was demoted).
fn session_lost(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c == "25006" || c.starts_with("57P") || c.starts_with("08")
        }
    }
}

/// SQLite in one file (WAL, synchronous=FULL: a write is on disk when it is
/// acknowledged), used from blocking threads.
pub struct SqliteStore {
    conn: Arc<std::sync::Mutex<rusqlite::Connection>>,
    next_id: AtomicI64,
}

impl SqliteStore {
    pub fn open(path: &std::path::Path) -> Result<SqliteStore, StoreError> {
        let err = |e: rusqlite::Error| StoreError(format!("cannot open {}: {e}", path.display()));
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "pragma journal_mode = wal; pragma synchronous = full; pragma busy_timeout = 5000;\
             create table if not exists orders (id integer primary key, owner text not null, \
             item text not null, qty integer not null, created_at text not null default current_timestamp)",
        )
        .map_err(err)?;
        let max: i64 = conn
            .query_row("select coalesce(max(id), 0) from orders", [], |r| r.get(0))
            .map_err(err)?;
        Ok(SqliteStore {
            conn: Arc::new(std::sync::Mutex::new(conn)),
            next_id: AtomicI64::new(max + 1),
        })
    }

    fn reserve(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c).map_err(|e| StoreError(format!("database error: {e}")))
        })
        .await
        .map_err(|e| StoreError(format!("database task failed: {e}")))?
    }
}
