//! The PostgreSQL side of a load: a connection per worker (multi-host DSN, following a
//! failover with `target_session_attrs=read-write`, reconnecting after any connection
//! error), statements prepared once per connection, text parameters converted to the
//! types the server asks for, and errors mapped to outcomes.

use std::io;
use std::str::FromStr;
use std::time::Duration;

use livefire_core::window::Outcome;
use tokio_postgres::config::TargetSessionAttrs;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Row, Statement};

use crate::client::classify_io;

/// A DSN `tokio_postgres` cannot read.
#[derive(Debug, thiserror::Error)]
#[error("bad PostgreSQL DSN: {0}; write it like postgres://user@127.0.0.1:5432/db")]
pub struct DsnError(#[source] tokio_postgres::Error);

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
}

impl PgTarget {
    /// Parses a DSN (`postgres://u@h1:5432,h2:5433/db?...` or `host=h1,h2 port=...`);
    /// `read_write` forces `target_session_attrs=read-write` so a failover is followed.
    pub fn new(
        dsn: &str,
        read_write: bool,
        connect_timeout: Duration,
    ) -> Result<PgTarget, DsnError> {
        let mut config = tokio_postgres::Config::from_str(dsn).map_err(DsnError)?;
        if read_write {
            config.target_session_attrs(TargetSessionAttrs::ReadWrite);
        }
        config.connect_timeout(connect_timeout);
        Ok(PgTarget { config })
    }

    async fn connect(&self) -> Result<Client, Outcome> {
        let (client, conn) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| classify_pg(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }
}

/// A worker's connection and its prepared statements (by statement index).
#[derive(Default)]
pub struct PgConn {
    client: Option<Client>,
    prepared: Vec<Option<Statement>>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("connected", &self.client.is_some())
            .finish()
    }
}

impl PgConn {
    /// Runs statement `idx` (`sql`) with text `params`, connecting (again) as needed.
    pub async fn query(
        &mut self,
        target: &PgTarget,
        idx: usize,
        sql: &str,
        params: &[String],
    ) -> Result<Vec<Row>, Outcome> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = None;
            self.prepared.clear();
            self.client = Some(target.connect().await?);
        }
        let result = self.query_inner(idx, sql, params).await;
        if result.is_err() && self.client.as_ref().is_none_or(|c| c.is_closed()) {
            // The session is gone (failover, terminated): the next send reconnects.
            self.client = None;
            self.prepared.clear();
        }
        result
    }

    async fn query_inner(
        &mut self,
        idx: usize,
        sql: &str,
        params: &[String],
    ) -> Result<Vec<Row>, Outcome> {
        let Some(client) = self.client.as_ref() else {
            return Err(Outcome::Other);
        };
        if self.prepared.len() <= idx {
            self.prepared.resize(idx + 1, None);
        }
        let stmt = match &self.prepared[idx] {
            Some(s) => s.clone(),
            None => {
                let s = client.prepare(sql).await.map_err(|e| classify_pg(&e))?;
                self.prepared[idx] = Some(s.clone());
                s
            }
        };
        let values = convert(stmt.params(), params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        client
            .query(&stmt, &refs)
            .await
            .map_err(|e| classify_pg(&e))
    }
}

/// Converts text parameters to the types the prepared statement expects.
fn convert(
    types: &[Type],
    params: &[String],
) -> Result<Vec<Box<dyn ToSql + Sync + Send>>, Outcome> {
    if types.len() != params.len() {
        return Err(Outcome::Other);
    }
    types
        .iter()
        .zip(params)
        .map(|(t, p)| -> Result<Box<dyn ToSql + Sync + Send>, Outcome> {
            Ok(match *t {
                Type::INT2 => Box::new(p.trim().parse::<i16>().map_err(|_| Outcome::Other)?),
                Type::INT4 => Box::new(p.trim().parse::<i32>().map_err(|_| Outcome::Other)?),
                Type::INT8 => Box::new(p.trim().parse::<i64>().map_err(|_| Outcome::Other)?),
                Type::FLOAT4 => Box::new(p.trim().parse::<f32>().map_err(|_| Outcome::Other)?),
                Type::FLOAT8 => Box::new(p.trim().parse::<f64>().map_err(|_| Outcome::Other)?),
                Type::BOOL => Box::new(p.trim().parse::<bool>().map_err(|_| Outcome::Other)?),
                _ => Box::new(p.clone()),
            })
        })
        .collect()
}

/// The text of column `col` of `row` (integers, floats, bools and text).
pub fn column_text(row: &Row, col: &str) -> Option<String> {
    let idx = row.columns().iter().position(|c| c.name() == col)?;
    let t = row.columns()[idx].type_().clone();
    match t {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(idx)
            .ok()
            .flatten()
            .map(|v| v.to_string()),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(idx)
            .ok()
            .flatten()
            .map(|v| v.to_string()),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(idx)
            .ok()
            .flatten()
            .map(|v| v.to_string()),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(idx)
            .ok()
            .flatten()
            .map(|v| v.to_string()),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(idx)
            .ok()
            .flatten()
            .map(|v| v.to_string()),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(idx)
            .ok()
            .flatten()
            .map(|v| v.to_string()),
        _ => row.try_get::<_, Option<String>>(idx).ok().flatten(),
    }
}

/// Maps a PostgreSQL error to an outcome: lost connections are resets, a refused
/// connection is connect_refused, and anything the server reports is `other`.
pub fn classify_pg(e: &tokio_postgres::Error) -> Outcome {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return if code.starts_with("08") || code == "57P01" || code == "57P02" {
            Outcome::Reset
        } else if code == "57P03" {
            Outcome::ConnectRefused
        } else if code == "57014" {
            Outcome::Timeout
        } else {
            Outcome::Other
        };
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return classify_io(io);
        }
        cur = err.source();
    }
    if e.is_closed() {
        return Outcome::Reset;
    }
    let text = e.to_string();
    if text.contains("timed out") || text.contains("timeout") {
        Outcome::Timeout
    } else if text.contains("closed") {
        Outcome::Reset
    } else {
        Outcome::Other
    }
}
