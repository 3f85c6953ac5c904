//! `postgres.exhaust_connections`: opens connections as the target's dsn until the
//! server refuses one (SQLSTATE 53300, "too many clients"), then closes `keep_free` of
//! them, and holds the rest for the duration; the undo record closes them (or, from a
//! fresh process, terminates the backends named by the fault's tag). With a superuser
//! dsn the superuser-reserved slots are taken too. Verify: the server refuses a new
//! connection, or the held sessions are on it.

use livefire_core::undo::UndoRecord;
use livefire_spec::PostgresExhaust;

use crate::pg_sessions::{self, Conn, TOO_MANY_CONNECTIONS, pg_target};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets};

const KIND: &str = "postgres.exhaust_connections";

pub(crate) struct Exhaust<'a>(pub &'a PostgresExhaust);

impl Kind for Exhaust<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        pg_target(targets, &self.0.target, KIND).map(drop)
    }

    fn prepare(&self, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
        let name = &self.0.target;
        let conn = Conn::of(name, pg_target(targets, name, KIND)?)?;
        let rows = pg_sessions::query(
            &conn,
            "select current_setting('max_connections')::int4, now()::text",
            &[],
        )?;
        let (max, since): (i32, String) = rows
            .first()
            .map_or((100, String::new()), |r| (r.get(0), r.get(1)));
        let tag = pg_sessions::tag("exhaust", activity);
        let keep_free = self.0.keep_free.unwrap_or(0);
        let undo = UndoRecord::PostgresSessions {
            dsn: conn.dsn.clone(),
            tag: tag.clone(),
            since,
            what: format!("{KIND} on {name}"),
        };
        Ok(Prepared::new(
            KIND,
            name,
            Some(undo.clone()),
            vec![undo.resource()],
            Exhausted {
                conn,
                tag,
                keep_free,
                // Never more than the server's slots and the one it must refuse: a
                // pooler in front that never refuses must not make livefire open
                // connections without end.
                cap: usize::try_from(max).unwrap_or(100).max(1) + 1,
            },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Exhausted {
    conn: Conn,
    tag: String,
    keep_free: u32,
    cap: usize,
}

impl Action for Exhausted {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        let (conn, tag, keep_free, cap) = (
            self.conn.clone(),
            self.tag.clone(),
            self.keep_free as usize,
            self.cap,
        );
        Ok(pg_sessions::hold(
            &self.tag,
            move |ready, stop| async move {
                let mut held = Vec::new();
                let refused = loop {
                    if held.len() >= cap {
                        break None;
                    }
                    match conn.connect(&tag).await {
                        Ok(c) => held.push(c),
                        Err(e) if e.code.as_deref() == Some(TOO_MANY_CONNECTIONS) => {
                            break Some(e.error.to_string());
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e.error));
                            return String::new();
                        }
                    }
                };
                let freed = keep_free.min(held.len());
                for c in held.drain(held.len() - freed..) {
                    drop(c);
                }
                let n = held.len();
                let why = match refused {
                    Some(_) => "the server refused the next (too many clients)".to_string(),
                    None => format!(
                        "the server did not refuse one past its max_connections ({}): a pooler in front?",
                        cap - 1
                    ),
                };
                let _ = ready.send(Ok(format!(
                    "{n} connections held; {why}; {freed} left free"
                )));
                let _ = stop.await;
                drop(held);
                format!("{n} held connections closed")
            },
        )?)
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let (conn, tag) = (&self.conn, &self.tag);
        let seen = pg_sessions::block(async {
            let client = match conn
                .connect(&format!("{}verify", pg_sessions::TAG_PREFIX))
                .await
            {
                Ok(c) => c,
                Err(e) if e.code.as_deref() == Some(TOO_MANY_CONNECTIONS) => {
                    return Ok(Seen {
                        applied: true,
                        clean: false,
                        detail: format!("a new connection is refused: {}", e.error),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let sql = "select count(*) from pg_stat_activity where application_name = $1";
            let n: i64 = client
                .query_one(sql, &[tag])
                .await
                .map_err(|e| conn.failed(sql, &e))?
                .get(0);
            Ok::<_, FaultError>(Seen {
                applied: n > 0,
                clean: n == 0,
                detail: format!("{n} held connection(s) named {tag} on the server"),
            })
        })??;
        Ok(Some(seen))
    }
}
