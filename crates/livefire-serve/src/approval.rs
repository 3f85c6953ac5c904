//! Starting a run with an environment and variables, and the second person's approval:
//! with `livefire serve --require-approval`, a run in an environment marked
//! `production: true` waits ("awaiting approval") until another operator or admin than
//! the one who asked approves it (it starts then) or rejects it, each with an optional
//! reason, or until it expires (`--approval-expires`). Every request, approval,
//! rejection and expiry is in the audit log; an approved run's journal has the approval
//! too. Variables' values are not shown to others: `NAME=***`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Method, Response, StatusCode};
use rusqlite::{OptionalExtension, params};
use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use crate::api::{self, App};
use crate::auth::{self, Caller, Role};
use crate::runs::{Launch, Runner, StartError};
use crate::server::Body;
use crate::store::{RunRow, Store, StoreError};

/// The store's table of runs asked for in a production environment.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approvals(
    id TEXT PRIMARY KEY, experiment TEXT NOT NULL, env TEXT NOT NULL, vars TEXT NOT NULL,
    requested_by TEXT NOT NULL, requester TEXT NOT NULL, requested TEXT NOT NULL,
    state TEXT NOT NULL, decided_by TEXT, decided TEXT, run_id TEXT, text_sha256 TEXT NOT NULL,
    reason TEXT, expires TEXT);
";

/// The state of a request nobody has decided yet.
pub const AWAITING: &str = "awaiting approval";
/// The state of a request nobody decided within `--approval-expires`: it never runs.
pub const EXPIRED: &str = "expired";
/// The longest reason kept, in characters.
const MAX_REASON: usize = 1000;

/// `--require-approval` and `--approval-expires`: whether a production run waits for a
/// second person, and how long a request waits before it expires.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub required: bool,
    pub expires: Duration,
}

/// Adds the columns later versions brought to a store made before them.
pub(crate) fn migrate(c: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mut s = c.prepare("SELECT name FROM pragma_table_info('approvals')")?;
    let have: Vec<String> = s.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for col in ["reason", "expires"] {
        if !have.iter().any(|h| h == col) {
            c.execute_batch(&format!("ALTER TABLE approvals ADD COLUMN {col} TEXT"))?;
        }
    }
    Ok(())
}

/// A run asked for in a production environment, and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRow {
    pub id: String,
    pub experiment: String,
    pub env: String,
    /// Shown to others as `NAME: ***`: a value may be a secret.
    #[serde(serialize_with = "masked")]
    pub vars: BTreeMap<String, String>,
    /// `alice (operator)` or `schedule NAME`: who asked, as the run will name it.
    pub requested_by: String,
    /// The token (name) that asked, or made the schedule that did: it may not approve.
    pub requester: String,
    pub requested: String,
    /// `awaiting approval`, `approved` (the run started: `run_id`), `rejected` or
    /// `expired` (nobody decided by `expires`).
    pub state: String,
    pub decided_by: Option<String>,
    pub decided: Option<String>,
    pub run_id: Option<String>,
    /// Why it was approved or rejected, as the one deciding wrote it.
    pub reason: Option<String>,
    /// When it expires if nobody decides (RFC 3339 UTC).
    pub expires: Option<String>,
    /// The SHA-256 of the experiment's text when asked: what is approved is that text.
    #[serde(skip)]
    pub text_sha256: String,
}

/// What asking for a run did.
#[derive(Debug)]
pub enum Requested {
    Started(RunRow),
    Awaiting(ApprovalRow),
    /// Asked with [`request_once`] while the same asker's earlier request still waits:
    /// that request, and nothing new was asked.
    StillWaits(ApprovalRow),
}

/// Why an approval or rejection is refused.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no approval `{0}`: GET /api/approvals lists them")]
    Unknown(String),
    #[error("approval `{0}` was decided already (it is {1})")]
    Decided(String, String),
    #[error(
        "approval `{id}` expired at {at}: nobody decided it within `livefire serve --approval-expires`, so it cannot run; ask for the run again"
    )]
    Expired { id: String, at: String },
    #[error(
        "{asked} (token `{token}`): a second person, another operator or admin, must approve or reject it"
    )]
    OwnRequest { token: String, asked: String },
    #[error(
        "experiment `{0}` was uploaded again since this run was asked for: what was asked for is not what would run; reject this and ask again"
    )]
    Changed(String),
    #[error("{0}")]
    Start(#[from] StartError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Asks for a run: it starts now, unless approval is required and its environment is
/// `production: true`; then it waits for a second person, until `policy.expires` from
/// now. `requester` is the token (name) asking. Refused as a start is (unknown
/// experiment, environment or variable, a held target) with nothing applied.
pub async fn request(
    store: &Store,
    runner: &Arc<Runner>,
    policy: Policy,
    launch: Launch,
    requester: &str,
) -> Result<Requested, StartError> {
    ask(store, runner, policy, launch, requester, false).await
}

/// [`request`] for a schedule's firing: one waiting request per asker (`schedule NAME`)
/// at a time. Whether one waits and the insert of the new one are one step, so of two
/// firings at the same moment one asks and the other gets [`Requested::StillWaits`].
pub async fn request_once(
    store: &Store,
    runner: &Arc<Runner>,
    policy: Policy,
    launch: Launch,
    requester: &str,
) -> Result<Requested, StartError> {
    ask(store, runner, policy, launch, requester, true).await
}

async fn ask(
    store: &Store,
    runner: &Arc<Runner>,
    policy: Policy,
    launch: Launch,
    requester: &str,
    once: bool,
) -> Result<Requested, StartError> {
    let production = production_env(runner, &launch)?;
    let (true, Some(env)) = (policy.required, production) else {
        return runner.launch(&launch).await.map(Requested::Started);
    };
    // A duration past the calendar's end never expires.
    let expires = SystemTime::now()
        .checked_add(policy.expires)
        .filter(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .is_ok_and(|d| d.as_secs() < 253_402_300_799)
        })
        .map(livefire_engine::clock::rfc3339);
    let row = ApprovalRow {
        id: format!("approval-{}", short_id()),
        experiment: launch.experiment.clone(),
        env,
        vars: launch.vars.iter().cloned().collect(),
        requested_by: launch.by.clone(),
        requester: requester.to_owned(),
        requested: crate::store::now(),
        state: AWAITING.into(),
        decided_by: None,
        decided: None,
        run_id: None,
        reason: None,
        expires,
        text_sha256: text_sha256(store, &launch.experiment)?,
    };
    // The values as given: the store keeps what is to run; only what is shown masks them.
    let vars = serde_json::to_string(&launch.vars.iter().cloned().collect::<BTreeMap<_, _>>())
        .unwrap_or_else(|_| "{}".into());
    // One write transaction (IMMEDIATE: it holds SQLite's write lock from its start, so
    // no other connection or process inserts between): the insert, only when `once` finds
    // no waiting request of the same asker (one not past its `expires`), then, when it
    // did find one, that request to say so.
    let waiting = store.with(|c| {
        let tx = rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO approvals(id, experiment, env, vars, requested_by, requester, requested, state, text_sha256, expires)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
             WHERE NOT ?11 OR NOT EXISTS (
                 SELECT 1 FROM approvals WHERE requested_by = ?5 AND state = ?8
                 AND (expires IS NULL OR expires > ?7))",
            params![
                row.id,
                row.experiment,
                row.env,
                vars,
                row.requested_by,
                row.requester,
                row.requested,
                row.state,
                row.text_sha256,
                row.expires,
                once
            ],
        )?;
        let waiting = if inserted == 0 {
            Some(tx.query_row(
                &format!(
                    "{COLUMNS} WHERE requested_by = ?1 AND state = ?2 AND (expires IS NULL OR expires > ?3) ORDER BY requested, id LIMIT 1"
                ),
                params![row.requested_by, AWAITING, row.requested],
                approval_row,
            )?)
        } else {
            None
        };
        tx.commit()?;
        Ok(waiting)
    })?;
    if let Some(w) = waiting {
        return Ok(Requested::StillWaits(w));
    }
    store.audit(
        &row.requested_by,
        "request",
        &format!("approval:{}", row.id),
        &format!(
            "experiment `{}` in production environment `{}`{}: waits for a second person's approval until {}",
            row.experiment,
            row.env,
            with_vars(&row.vars),
            row.expires.as_deref().unwrap_or("decided (it does not expire)")
        ),
    )?;
    Ok(Requested::Awaiting(row))
}

/// The environment's name when the launch runs in one marked `production: true`.
pub fn production_env(runner: &Runner, launch: &Launch) -> Result<Option<String>, StartError> {
    let plan = runner.plan_of(launch)?;
    Ok(plan
        .environment
        .as_ref()
        .filter(|e| e.production)
        .map(|e| e.name.clone()))
}

/// The request asked by `requested_by` (`schedule NAME`) still waiting, if any (the
/// oldest).
pub fn waiting_for(store: &Store, requested_by: &str) -> Result<Option<ApprovalRow>, StoreError> {
    expire_due(store)?;
    store.with(|c| {
        c.query_row(
            &format!(
                "{COLUMNS} WHERE requested_by = ?1 AND state = ?2 ORDER BY requested, id LIMIT 1"
            ),
            params![requested_by, AWAITING],
            approval_row,
        )
        .optional()
    })
}

/// Marks the requests nobody decided before their `expires` as `expired` (they never
/// run), each in the audit log; returns how many.
pub fn expire_due(store: &Store) -> Result<usize, StoreError> {
    let now = crate::store::now();
    let due: Vec<(String, String)> = store.with(|c| {
        let mut s = c.prepare(
            "SELECT id, expires FROM approvals WHERE state = ?1 AND expires IS NOT NULL AND expires <= ?2",
        )?;
        s.query_map(params![AWAITING, now], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    })?;
    let mut n = 0;
    for (id, at) in due {
        // Taken from `awaiting approval` atomically: an approval at the same moment wins
        // or loses whole.
        let taken = store.with(|c| {
            c.execute(
                "UPDATE approvals SET state = ?2, decided = ?3 WHERE id = ?1 AND state = ?4",
                params![id, EXPIRED, now, AWAITING],
            )
        })?;
        if taken > 0 {
            n += 1;
            store.audit(
                "livefire serve",
                "expire",
                &format!("approval:{id}"),
                &format!(
                    "nobody approved or rejected it by {at} (`--approval-expires`): it will not run"
                ),
            )?;
        }
    }
    Ok(n)
}

/// ` with a=*** b=***`: the variables' names, never their values.
pub fn with_vars<'a>(vars: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let names: Vec<String> = vars.into_iter().map(|(k, _)| format!("{k}=***")).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" with {}", names.join(" "))
    }
}

/// Serializes variables with their values masked: what others see of a start request.
pub(crate) fn masked<S: Serializer>(
    vars: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(vars.keys().map(|k| (k, "***")))
}

/// Approves (the run starts now) or rejects a waiting run, with an optional reason.
/// Only an operator or admin other than the one who asked may; an approval whose run
/// cannot start (a target held) stays waiting, so it can be approved again later; an
/// expired one cannot be decided.
pub async fn decide(
    store: &Store,
    runner: &Arc<Runner>,
    caller: &Caller,
    id: &str,
    approve: bool,
    reason: Option<&str>,
) -> Result<ApprovalRow, DecideError> {
    expire_due(store)?;
    let row = get(store, id)?.ok_or_else(|| DecideError::Unknown(id.to_owned()))?;
    if row.requester == caller.name {
        let asked = match row.requested_by.strip_prefix("schedule ") {
            Some(name) => format!("schedule `{name}`, which is yours, asked for this run"),
            None => "you asked for this run".to_owned(),
        };
        return Err(DecideError::OwnRequest {
            token: caller.name.clone(),
            asked,
        });
    }
    if row.state == EXPIRED {
        return Err(expired(row));
    }
    // What is approved is the text that was asked for, not a later upload.
    if approve && row.state == AWAITING && text_sha256(store, &row.experiment)? != row.text_sha256 {
        return Err(DecideError::Changed(row.experiment));
    }
    // Take it from `awaiting approval` atomically: two people deciding at once cannot
    // both start it.
    let next = if approve { "starting" } else { "rejected" };
    let taken = store.with(|c| {
        c.execute(
            "UPDATE approvals SET state = ?2, decided_by = ?3, decided = ?4, reason = ?6 WHERE id = ?1 AND state = ?5",
            params![id, next, caller.label(), crate::store::now(), AWAITING, reason],
        )
    })?;
    if taken == 0 {
        let now = get(store, id)?.unwrap_or(row);
        if now.state == EXPIRED {
            return Err(expired(now));
        }
        return Err(DecideError::Decided(id.to_owned(), now.state));
    }
    let subject = format!("approval:{id}");
    let because = reason.map(|r| format!("; reason: {r}")).unwrap_or_default();
    if !approve {
        store.audit(
            &caller.label(),
            "reject",
            &subject,
            &format!(
                "experiment `{}` in `{}`, asked by {}{because}",
                row.experiment, row.env, row.requested_by
            ),
        )?;
        return Ok(get(store, id)?.unwrap_or(row));
    }
    let launch = Launch {
        experiment: row.experiment.clone(),
        env: Some(row.env.clone()),
        vars: row.vars.clone().into_iter().collect(),
        by: row.requested_by.clone(),
    };
    match runner.launch(&launch).await {
        Ok(run) => {
            store.with(|c| {
                c.execute(
                    "UPDATE approvals SET state = 'approved', run_id = ?2 WHERE id = ?1",
                    params![id, run.id],
                )
            })?;
            let detail = format!(
                "{id}: asked by {} at {}, environment `{}`{because}",
                row.requested_by, row.requested, row.env
            );
            store.audit(
                &caller.label(),
                "approve",
                &subject,
                &format!("{}{because}", run.id),
            )?;
            // The run's own audit lines go to its journal when it ends.
            store.audit(&caller.label(), "approve", &run.id, &detail)?;
            Ok(get(store, id)?.unwrap_or(row))
        }
        Err(e) => {
            store.with(|c| {
                c.execute(
                    "UPDATE approvals SET state = ?2, decided_by = NULL, decided = NULL, reason = NULL WHERE id = ?1",
                    params![id, AWAITING],
                )
            })?;
            Err(DecideError::Start(e))
        }
    }
}

/// At start: an approval the previous server was starting when it stopped waits again
/// (its run, if it began, was rolled back and ended by the recovery); returns a line for
/// each, for stderr.
pub fn waiting_again_at_start(store: &Store) -> Vec<String> {
    let ids: Vec<String> = list(store)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.state == "starting")
        .map(|a| a.id)
        .collect();
    let mut lines = Vec::new();
    for id in ids {
        let reset = store.with(|c| {
            c.execute(
                "UPDATE approvals SET state = ?2, decided_by = NULL, decided = NULL WHERE id = ?1",
                params![id, AWAITING],
            )
        });
        if reset.is_ok() {
            let _ = store.audit(
                "livefire serve",
                "recover",
                &format!("approval:{id}"),
                "the server stopped while starting this approved run: it waits for approval again",
            );
            lines.push(format!(
                "approval {id} was being started when the previous server stopped: it waits for approval again"
            ));
        }
    }
    lines
}

/// Every request, newest first.
pub fn list(store: &Store) -> Result<Vec<ApprovalRow>, StoreError> {
    store.with(|c| {
        let mut s = c.prepare(&format!("{COLUMNS} ORDER BY requested DESC, id LIMIT 1000"))?;
        s.query_map([], approval_row)?.collect()
    })
}

pub fn get(store: &Store, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
    store.with(|c| {
        c.query_row(&format!("{COLUMNS} WHERE id = ?1"), [id], approval_row)
            .optional()
    })
}

const COLUMNS: &str = "SELECT id, experiment, env, vars, requested_by, requester, requested, state, decided_by, decided, run_id, text_sha256, reason, expires FROM approvals";

fn expired(row: ApprovalRow) -> DecideError {
    DecideError::Expired {
        at: row.expires.or(row.decided).unwrap_or_default(),
        id: row.id,
    }
}

/// The reason of an approve or reject body: none (no body, `null`, or `{}`) or
/// `{"reason": "..."}`.
pub fn reason_of(v: &Value) -> Result<Option<String>, String> {
    if v.is_null() {
        return Ok(None);
    }
    crate::api::only_keys(v, &["reason"])?;
    match v.get("reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() > MAX_REASON => Err(format!(
            "`reason` is {} characters: say it in at most {MAX_REASON}",
            s.chars().count()
        )),
        Some(Value::String(s)) if s.chars().any(|c| c.is_control() && c != '\n') => {
            Err("`reason`: write it without control characters (a line break is fine)".into())
        }
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(_) => Err("`reason` is text: {\"reason\": \"...\"}".into()),
    }
}

/// The SHA-256 of an uploaded experiment's text (empty when there is none).
fn text_sha256(store: &Store, experiment: &str) -> Result<String, StoreError> {
    Ok(store
        .experiment(experiment)?
        .map(|e| crate::auth::hash(&e.text))
        .unwrap_or_default())
}

fn approval_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRow> {
    let vars: String = r.get(3)?;
    Ok(ApprovalRow {
        id: r.get(0)?,
        experiment: r.get(1)?,
        env: r.get(2)?,
        vars: serde_json::from_str(&vars).unwrap_or_default(),
        requested_by: r.get(4)?,
        requester: r.get(5)?,
        requested: r.get(6)?,
        state: r.get(7)?,
        decided_by: r.get(8)?,
        decided: r.get(9)?,
        run_id: r.get(10)?,
        text_sha256: r.get(11)?,
        reason: r.get(12)?,
        expires: r.get(13)?,
    })
}

/// Variables for a run, in order: `livefire run --var NAME=VALUE`.
pub type Vars = Vec<(String, String)>;
/// `env` and `vars` of a JSON body: a name, and an object of strings. A value that
/// cannot be passed to `livefire run` (a NUL byte, a line break) is refused here.
pub fn env_and_vars(v: &Value) -> Result<(Option<String>, Vars), String> {
    let env = match v.get("env") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && !s.contains('\0') => Some(s.clone()),
        Some(_) => {
            return Err(
                "`env` is the name of one of the experiment's `environments:` (a string)".into(),
            );
        }
    };
    let vars = match v.get("vars") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => {
            let mut out = Vec::new();
            for (k, val) in m {
                let Some(val) = val.as_str() else {
                    return Err(format!(
                        "`vars.{k}`: send each variable's value as a string"
                    ));
                };
                // One line each: `livefire run --vars-file` reads NAME=VALUE lines.
                if k.is_empty()
                    || k.contains(['=', '\0', '\n', '\r'])
                    || val.contains(['\0', '\n', '\r'])
                {
                    return Err(format!(
                        "`vars`: `{}` is not a variable name and one-line value `livefire run --var` takes",
                        k.escape_debug()
                    ));
                }
                out.push((k.clone(), val.to_owned()));
            }
            out
        }
        Some(_) => return Err("`vars` is an object: {\"NAME\": \"VALUE\"}".into()),
    };
    Ok((env, vars))
}

/// `POST /api/runs` `{"experiment": NAME, "env": ENV, "vars": {...}}`: 201 with the run,
/// or 202 when it waits for approval.
pub async fn start(app: &Arc<App>, caller: &Caller, v: &Value, name: &str) -> Response<Body> {
    if let Err(why) = crate::api::only_keys(v, &["experiment", "env", "vars"]) {
        return api::error(StatusCode::BAD_REQUEST, why);
    }
    let (env, vars) = match env_and_vars(v) {
        Ok(x) => x,
        Err(why) => return api::error(StatusCode::BAD_REQUEST, why),
    };
    let launch = Launch {
        experiment: name.to_owned(),
        env,
        vars,
        by: caller.label(),
    };
    match request(&app.store, &app.runner, app.approvals, launch, &caller.name).await {
        Ok(Requested::Started(row)) => api::json_status(StatusCode::CREATED, json!(row)),
        // (A person's request never `StillWaits`; were it to, the request shown waits.)
        Ok(Requested::Awaiting(a) | Requested::StillWaits(a)) => api::json_status(
            StatusCode::ACCEPTED,
            json!({
                "state": AWAITING,
                "approval": a,
                "message": format!(
                    "environment `{}` is production: the run waits until another operator or admin approves it ({}){}",
                    a.env,
                    a.id,
                    a.expires.as_deref().map(|t| format!("; the request expires at {t}")).unwrap_or_default()
                ),
            }),
        ),
        Err(e) => api::start_error(e),
    }
}

/// `/api/approvals...`: anyone may see them; operators and admins other than the one
/// who asked approve or reject, with an optional `{"reason": "..."}`.
pub async fn route(
    app: &Arc<App>,
    caller: &Caller,
    method: &Method,
    path: &[&str],
    body: hyper::body::Incoming,
) -> Response<Body> {
    if let Err(e) = expire_due(&app.store) {
        return api::internal(e);
    }
    match (method, path) {
        (&Method::GET, ["approvals"]) => match list(&app.store) {
            Ok(rows) => api::json_status(StatusCode::OK, json!(rows)),
            Err(e) => api::internal(e),
        },
        (&Method::GET, ["approvals", id]) => match get(&app.store, id) {
            Ok(Some(row)) => api::json_status(StatusCode::OK, json!(row)),
            Ok(None) => api::error(
                StatusCode::NOT_FOUND,
                DecideError::Unknown((*id).to_owned()).to_string(),
            ),
            Err(e) => api::internal(e),
        },
        (&Method::POST, ["approvals", id, verb @ ("approve" | "reject")]) => {
            if let Err(d) = auth::require(caller, Role::Operator) {
                return api::denied(&d);
            }
            let approve = *verb == "approve";
            let v = match api::optional_json_body(body).await {
                Ok(v) => v,
                Err(r) => return *r,
            };
            let reason = match reason_of(&v) {
                Ok(r) => r,
                Err(why) => return api::error(StatusCode::BAD_REQUEST, why),
            };
            match decide(
                &app.store,
                &app.runner,
                caller,
                id,
                approve,
                reason.as_deref(),
            )
            .await
            {
                Ok(row) => {
                    let status = if approve {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    };
                    api::json_status(status, json!(row))
                }
                Err(e @ DecideError::Unknown(_)) => {
                    api::error(StatusCode::NOT_FOUND, e.to_string())
                }
                Err(
                    e @ (DecideError::Decided(..)
                    | DecideError::Changed(_)
                    | DecideError::Expired { .. }),
                ) => api::error(StatusCode::CONFLICT, e.to_string()),
                Err(e @ DecideError::OwnRequest { .. }) => {
                    api::error(StatusCode::FORBIDDEN, e.to_string())
                }
                Err(DecideError::Start(e)) => api::start_error(e),
                Err(DecideError::Store(e)) => api::internal(e),
            }
        }
        _ => api::error(
            StatusCode::NOT_FOUND,
            "no such route: GET /api/openapi.yaml lists them".into(),
        ),
    }
}

/// 64 random bits in hex.
fn short_id() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}
