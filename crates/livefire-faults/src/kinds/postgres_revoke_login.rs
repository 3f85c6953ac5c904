//! `postgres.revoke_login`: `ALTER ROLE r NOLOGIN`, then its open sessions are
//! terminated, so the role is locked out now and not only at its next login. The undo
//! record says whether the role could log in before: only then does the undo give LOGIN
//! back. Verify: `pg_roles.rolcanlogin`.

use livefire_core::undo::UndoRecord;
use livefire_spec::PostgresRole;

use crate::pg_sessions::{self, Conn, PgError, pg_target};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets};

const KIND: &str = "postgres.revoke_login";

pub(crate) struct RevokeLogin<'a>(pub &'a PostgresRole);

impl Kind for RevokeLogin<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        pg_target(targets, &self.0.target, KIND).map(drop)
    }

    fn prepare(&self, targets: &Targets, _activity: &str) -> Result<Prepared, FaultError> {
        let name = &self.0.target;
        let role = &self.0.role;
        let conn = Conn::of(name, pg_target(targets, name, KIND)?)?;
        let rows = pg_sessions::query(
            &conn,
            "select r.rolcanlogin, r.rolname = session_user \
             from pg_roles r where r.rolname = $1",
            &[role],
        )?;
        let Some(row) = rows.first() else {
            return Err(PgError::NoRole {
                target: name.clone(),
                role: role.clone(),
            }
            .into());
        };
        let (had_login, own): (bool, bool) = (row.get(0), row.get(1));
        if own {
            return Err(PgError::OwnRole {
                target: name.clone(),
                role: role.clone(),
            }
            .into());
        }
        let undo = UndoRecord::PostgresLogin {
            dsn: conn.dsn.clone(),
            role: role.clone(),
            had_login,
        };
        Ok(Prepared::new(
            KIND,
            name,
            Some(undo.clone()),
            vec![undo.resource()],
            Revoked {
                conn,
                role: role.clone(),
                had_login,
            },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Revoked {
    conn: Conn,
    role: String,
    had_login: bool,
}

impl Action for Revoked {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        let (conn, role) = (&self.conn, &self.role);
        let cut: i64 = pg_sessions::block(async {
            let client = conn
                .connect(&format!("{}revoke_login", pg_sessions::TAG_PREFIX))
                .await?;
            let alter = format!("alter role {} nologin", pg_sessions::ident(role));
            client
                .batch_execute(&alter)
                .await
                .map_err(|e| conn.failed(&alter, &e))?;
            let sql = "select count(*) filter (where pg_terminate_backend(pid)) \
                       from pg_stat_activity where usename = $1 and pid <> pg_backend_pid()";
            let row = client
                .query_one(sql, &[role])
                .await
                .map_err(|e| conn.failed(sql, &e))?;
            Ok::<_, PgError>(row.get(0))
        })??;
        let was = if self.had_login {
            ""
        } else {
            " (it had no LOGIN before)"
        };
        Ok(format!(
            "role `{role}` may not log in{was}; {cut} of its sessions terminated"
        ))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let rows = pg_sessions::query(
            &self.conn,
            "select rolcanlogin from pg_roles where rolname = $1",
            &[&self.role],
        )?;
        let can = rows.first().map(|r| r.get::<_, bool>(0));
        Ok(Some(Seen {
            applied: can == Some(false),
            clean: can == Some(self.had_login),
            detail: match can {
                Some(true) => format!("role `{}` can log in", self.role),
                Some(false) => format!("role `{}` cannot log in", self.role),
                None => format!("role `{}` is gone", self.role),
            },
        }))
    }
}

/// Gives LOGIN back if the role had it before the fault.
pub(crate) fn undo(dsn: &str, role: &str, had_login: bool) -> Result<String, FaultError> {
    if !had_login {
        return Ok(format!(
            "role `{role}` had no LOGIN before the fault; left as it was"
        ));
    }
    let conn = Conn::from_record(dsn)?;
    let rows = pg_sessions::query(&conn, "select 1 from pg_roles where rolname = $1", &[&role])?;
    if rows.is_empty() {
        return Ok(format!(
            "role `{role}` no longer exists; there is no LOGIN to give back"
        ));
    }
    let alter = format!("alter role {} login", pg_sessions::ident(role));
    pg_sessions::block(async {
        let client = conn
            .connect(&format!("{}revoke_login", pg_sessions::TAG_PREFIX))
            .await?;
        client
            .batch_execute(&alter)
            .await
            .map_err(|e| conn.failed(&alter, &e))
    })??;
    Ok(format!("role `{role}` may log in again"))
}
