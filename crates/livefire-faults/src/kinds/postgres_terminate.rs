//! `postgres.terminate_connections`: `pg_terminate_backend` on the client sessions that
//! match every filter given (`role`, `database`, `application_name`; at least one), never
//! livefire's own. Without `every` it cuts once, at apply, and leaves nothing to undo
//! (clients reconnect as they would after any cut). With `every` it cuts again at that
//! interval for the whole duration, from a session livefire holds; the undo record stops
//! it. Verify (with `every`): the terminating session is on the server.

use std::time::Duration;

use livefire_core::undo::UndoRecord;
use livefire_spec::PostgresTerminate;

use crate::pg_sessions::{self, Conn, PgError, pg_target};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets};

const KIND: &str = "postgres.terminate_connections";

/// The sessions a fault cuts: client backends matching each filter given (NULL: any).
const MATCHING: &str = "select count(*) filter (where pg_terminate_backend(pid)) \
     from pg_stat_activity where backend_type = 'client backend' \
     and pid <> pg_backend_pid() \
     and application_name not like 'livefire/%' \
     and ($1::text is null or usename = $1) \
     and ($2::text is null or datname = $2) \
     and ($3::text is null or application_name = $3)";

pub(crate) struct Terminate<'a>(pub &'a PostgresTerminate);

impl Kind for Terminate<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        pg_target(targets, &self.0.target, KIND)?;
        let f = self.0;
        if f.role.is_none() && f.database.is_none() && f.application_name.is_none() {
            return Err(PgError::NoFilter {
                target: f.target.clone(),
            }
            .into());
        }
        Ok(())
    }

    fn prepare(&self, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
        let f = self.0;
        let name = &f.target;
        let conn = Conn::of(name, pg_target(targets, name, KIND)?)?;
        let rows = pg_sessions::query(
            &conn,
            "select $1::text is null or exists (select 1 from pg_roles where rolname = $1), \
                    $2::text is null or exists (select 1 from pg_database where datname = $2)",
            &[&f.role, &f.database],
        )?;
        let (role_ok, db_ok): (bool, bool) =
            rows.first().map_or((true, true), |r| (r.get(0), r.get(1)));
        if let (false, Some(role)) = (role_ok, &f.role) {
            return Err(PgError::NoRole {
                target: name.clone(),
                role: role.clone(),
            }
            .into());
        }
        if let (false, Some(database)) = (db_ok, &f.database) {
            return Err(PgError::NoDatabase {
                target: name.clone(),
                database: database.clone(),
            }
            .into());
        }
        let filter = Filter {
            role: f.role.clone(),
            database: f.database.clone(),
            application_name: f.application_name.clone(),
        };
        let (undo, every, tag) = match &f.every {
            None => (None, None, String::new()),
            Some(every) => {
                let tag = pg_sessions::tag("terminate", activity);
                let undo = UndoRecord::PostgresSessions {
                    dsn: conn.dsn.clone(),
                    since: pg_sessions::server_now(&conn)?,
                    tag: tag.clone(),
                    what: format!("terminating {} every {every}", filter.describe()),
                };
                (
                    Some(undo),
                    Some(every.0.max(Duration::from_millis(10))),
                    tag,
                )
            }
        };
        let resources = undo.iter().map(UndoRecord::resource).collect();
        Ok(Prepared::new(
            KIND,
            name,
            undo,
            resources,
            Cutting {
                conn,
                filter,
                every,
                tag,
            },
            targets,
        ))
    }
}

#[derive(Debug, Clone)]
struct Filter {
    role: Option<String>,
    database: Option<String>,
    application_name: Option<String>,
}

impl Filter {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.role {
            parts.push(format!("role {r}"));
        }
        if let Some(d) = &self.database {
            parts.push(format!("database {d}"));
        }
        if let Some(a) = &self.application_name {
            parts.push(format!("application_name {a}"));
        }
        format!("sessions of {}", parts.join(", "))
    }

    /// Terminates the matching sessions now; returns how many.
    async fn cut(&self, client: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
        let row = client
            .query_one(
                MATCHING,
                &[&self.role, &self.database, &self.application_name],
            )
            .await?;
        Ok(row.get(0))
    }
}

#[derive(Debug)]
struct Cutting {
    conn: Conn,
    filter: Filter,
    /// `None`: once.
    every: Option<Duration>,
    /// The terminating session's `application_name` (with `every`).
    tag: String,
}

impl Action for Cutting {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        let what = self.filter.describe();
        let Some(every) = self.every else {
            let (conn, filter) = (&self.conn, &self.filter);
            let cut = pg_sessions::block(async {
                let client = conn
                    .connect(&format!("{}terminate", pg_sessions::TAG_PREFIX))
                    .await?;
                filter
                    .cut(&client)
                    .await
                    .map_err(|e| conn.failed("pg_terminate_backend", &e))
            })??;
            return Ok(format!("{cut} {what} terminated"));
        };
        let (conn, filter, tag) = (self.conn.clone(), self.filter.clone(), self.tag.clone());
        let detail = pg_sessions::hold(&self.tag, move |ready, mut stop| async move {
            let first = async {
                let client = conn.connect(&tag).await?;
                let n = filter
                    .cut(&client)
                    .await
                    .map_err(|e| conn.failed("pg_terminate_backend", &e))?;
                Ok::<_, PgError>((client, n))
            };
            let (mut client, mut total) = match first.await {
                Ok((c, n)) => (Some(c), n),
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return String::new();
                }
            };
            let _ = ready.send(Ok(format!(
                "{total} {what} terminated; again every {}ms",
                every.as_millis()
            )));
            let mut rounds = 1u64;
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tokio::time::sleep(every) => {}
                }
                // The server may have closed the session (a restart, another fault):
                // open a new one and keep going.
                if client.as_ref().is_none_or(|c| c.is_closed()) {
                    client = conn.connect(&tag).await.ok();
                }
                let Some(c) = &client else { continue };
                match filter.cut(c).await {
                    Ok(n) => {
                        total += n;
                        rounds += 1;
                    }
                    Err(e) => tracing::warn!(
                        error = %pg_sessions::text(&e),
                        "cannot terminate sessions this round"
                    ),
                }
            }
            format!("stopped terminating: {total} sessions cut in {rounds} rounds")
        })?;
        Ok(detail)
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        if self.every.is_none() {
            // A cut leaves nothing to see; the experiment's probes see the clients' errors.
            return Ok(None);
        }
        let n = pg_sessions::count_tagged(&self.conn, &self.tag)?;
        Ok(Some(Seen {
            applied: n > 0,
            clean: n == 0,
            detail: format!(
                "{n} terminating session(s) named {} on the server",
                self.tag
            ),
        }))
    }
}
