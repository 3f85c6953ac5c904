//! Schedules: "run this drill every month". A schedule is a cron expression (UTC) and
//! what to run (an uploaded experiment, an environment, variables); the server fires it
//! as a run started by `schedule NAME`, recorded like any other. Schedules live in the
//! store, so they survive a restart; firings missed while the server was down are not
//! run late, but logged (stderr and the audit log) at the next start. A schedule has an
//! owner token, whose holder cannot approve its production firings; one in production
//! made from the shell names it (`--owner`). A firing while the schedule's previous
//! request still waits for approval is skipped, not asked again.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Response, StatusCode};
use hyper::body::Incoming;
use jiff::Timestamp;
use livefire_core::exit::Exit;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::{self, App};
use crate::approval::{self, Policy, Requested};
use crate::auth::{self, Caller, Role};
use crate::runs::{Launch, Runner, StartError};
use crate::server::Body;
use crate::store::{Store, StoreError};

/// The store's table of schedules (created with the others).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schedules(
    name TEXT PRIMARY KEY, cron TEXT NOT NULL, experiment TEXT NOT NULL, env TEXT,
    vars TEXT NOT NULL, created TEXT NOT NULL, created_by TEXT NOT NULL, owner TEXT NOT NULL,
    last_fired TEXT, last_result TEXT);
";

/// How often the scheduler looks at the clock: a schedule fires within this of its time.
const TICK: Duration = Duration::from_millis(250);

/// A parsed cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6
/// with seconds first; times are UTC.
#[derive(Debug, Clone)]
pub struct Cron {
    text: String,
    cron: croner::Cron,
}

/// Why a schedule cannot be made; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "cron `{text}`: {why}: write 5 fields, minute hour day-of-month month day-of-week (UTC), e.g. `0 9 1 * *` for 09:00 on the 1st of every month, or 6 with seconds first"
    )]
    BadCron { text: String, why: String },
    #[error("cron `{0}` never fires: pick a day that exists (e.g. not 30 February)")]
    Never(String),
    #[error("schedule {0}")]
    Name(String),
    #[error("a schedule named `{0}` exists already: delete it first or pick another name")]
    Taken(String),
    #[error("no schedule named `{0}`: GET /api/schedules lists them")]
    Unknown(String),
    /// `--owner` names no token that could ask for a run.
    #[error("--owner `{name}`: {why}")]
    Owner { name: String, why: String },
    #[error(
        "schedule `{name}` runs in environment `{env}`, marked `production: true`, whose runs a second person approves: pass --owner TOKEN, the name of the operator or admin token it runs for (its holder cannot approve its firings; `livefire serve token list` shows the names)"
    )]
    NoOwner { name: String, env: String },
    /// What to run does not start as written (unknown experiment, environment, variable).
    #[error("{0}")]
    Launch(#[from] StartError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl Cron {
    /// Parses a cron expression; the error says what is wrong and what to write.
    pub fn parse(text: &str) -> Result<Cron, ScheduleError> {
        let text = text.trim();
        let bad = |why: String| ScheduleError::BadCron {
            text: text.chars().take(100).collect(),
            why,
        };
        let fields = text.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(bad(format!("{fields} field(s)")));
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(text)
            .map_err(|e| bad(lower_first(&e.to_string())))?;
        let cron = Cron {
            text: text.to_owned(),
            cron,
        };
        if cron.next_after(now()).is_none() {
            return Err(ScheduleError::Never(text.to_owned()));
        }
        Ok(cron)
    }

    /// The first time strictly after `t` that the expression names.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let zoned = t.to_zoned(jiff::tz::TimeZone::UTC);
        self.cron
            .find_next_occurrence(&zoned, false)
            .ok()
            .map(|z| z.timestamp())
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A schedule as the store keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleRow {
    pub name: String,
    pub cron: String,
    pub experiment: String,
    pub env: Option<String>,
    /// Shown as `NAME: ***`: a value may be a secret.
    #[serde(serialize_with = "approval::masked")]
    pub vars: BTreeMap<String, String>,
    pub created: String,
    /// `ops-lead (admin)`: who made it.
    pub created_by: String,
    /// The token it runs for: who made it through the API, or `--owner` from the shell
    /// (`USER (shell)`, no token, when made there outside production). A production
    /// firing needs someone else's approval.
    pub owner: String,
    /// The time of the last firing handled (started, skipped, failed or missed).
    pub last_fired: Option<String>,
    /// What that firing did: `started run ID`, `skipped: ...`.
    pub last_result: Option<String>,
}

impl ScheduleRow {
    fn launch(&self) -> Launch {
        Launch {
            experiment: self.experiment.clone(),
            env: self.env.clone(),
            vars: self.vars.clone().into_iter().collect(),
            by: format!("schedule {}", self.name),
        }
    }
}

/// Stores a new schedule after checking its cron and that what it runs plans; one in a
/// production environment needs an owner token (someone its approvals exclude).
pub fn create(
    store: &Store,
    runner: &Runner,
    row: &ScheduleRow,
) -> Result<ScheduleRow, ScheduleError> {
    api::check_name(&row.name).map_err(ScheduleError::Name)?;
    let cron = Cron::parse(&row.cron)?;
    if let Some(env) = approval::production_env(runner, &row.launch())?
        && store.token_named(&row.owner)?.is_none()
    {
        return Err(ScheduleError::NoOwner {
            name: row.name.clone(),
            env,
        });
    }
    let vars = serde_json::to_string(&row.vars).unwrap_or_else(|_| "{}".into());
    let created = crate::store::now();
    let r = store.with(|c| {
        c.execute(
            "INSERT INTO schedules(name, cron, experiment, env, vars, created, created_by, owner)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                row.name,
                cron.as_str(),
                row.experiment,
                row.env,
                vars,
                created,
                row.created_by,
                row.owner
            ],
        )
    });
    match r {
        Err(StoreError::Sql(rusqlite::Error::SqliteFailure(e, _)))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(ScheduleError::Taken(row.name.clone()));
        }
        other => other?,
    };
    store.audit(
        &row.created_by,
        "create",
        &format!("schedule:{}", row.name),
        &format!("`{}`: {}; owner `{}`", cron.as_str(), what(row), row.owner),
    )?;
    Ok(get(store, &row.name)?.unwrap_or_else(|| row.clone()))
}

/// Deletes a schedule; false when there is none.
pub fn delete(store: &Store, name: &str, by: &str) -> Result<bool, StoreError> {
    let n = store.with(|c| c.execute("DELETE FROM schedules WHERE name = ?1", [name]))?;
    if n > 0 {
        store.audit(by, "delete", &format!("schedule:{name}"), "")?;
    }
    Ok(n > 0)
}

pub fn list(store: &Store) -> Result<Vec<ScheduleRow>, StoreError> {
    store.with(|c| {
        let mut s = c.prepare(&format!("{COLUMNS} ORDER BY name"))?;
        s.query_map([], schedule_row)?.collect()
    })
}

pub fn get(store: &Store, name: &str) -> Result<Option<ScheduleRow>, StoreError> {
    store.with(|c| {
        c.query_row(&format!("{COLUMNS} WHERE name = ?1"), [name], schedule_row)
            .optional()
    })
}

fn record(store: &Store, name: &str, at: Timestamp, result: &str) {
    let r = store.with(|c| {
        c.execute(
            "UPDATE schedules SET last_fired = ?2, last_result = ?3 WHERE name = ?1",
            params![name, at.to_string(), result],
        )
    });
    if let Err(e) = r {
        tracing::warn!(schedule = %name, "cannot record the firing: {e}");
    }
}

const COLUMNS: &str = "SELECT name, cron, experiment, env, vars, created, created_by, owner, last_fired, last_result FROM schedules";

fn schedule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRow> {
    let vars: String = r.get(4)?;
    Ok(ScheduleRow {
        name: r.get(0)?,
        cron: r.get(1)?,
        experiment: r.get(2)?,
        env: r.get(3)?,
        vars: serde_json::from_str(&vars).unwrap_or_default(),
        created: r.get(5)?,
        created_by: r.get(6)?,
        owner: r.get(7)?,
        last_fired: r.get(8)?,
        last_result: r.get(9)?,
    })
}

/// `experiment `x` in environment `prod` with a=b`.
fn what(row: &ScheduleRow) -> String {
    let mut out = format!("experiment `{}`", row.experiment);
    if let Some(env) = &row.env {
        out.push_str(&format!(" in environment `{env}`"));
    }
    out.push_str(&approval::with_vars(&row.vars));
    out
}

/// Checks that `name` is a token a schedule can run for: it exists, is neither revoked
/// nor expired, and may start runs (operator or admin).
pub fn check_owner(store: &Store, name: &str) -> Result<(), ScheduleError> {
    let why = match store.token_named(name)? {
        None => "no token has this name: `livefire serve token list` shows them".to_owned(),
        Some(t) if t.revoked => "this token is revoked: name one in use".to_owned(),
        Some(t) if t.expires.is_some_and(|e| e <= auth::unix_now()) => {
            "this token has expired: name one in use".to_owned()
        }
        Some(t) if t.role < Role::Operator => format!(
            "this token is a {}: a schedule runs for an operator or admin, who may start runs",
            t.role.as_str()
        ),
        Some(_) => return Ok(()),
    };
    Err(ScheduleError::Owner {
        name: name.to_owned(),
        why,
    })
}

fn lower_first(s: &str) -> String {
    let s = s.trim_end_matches('.');
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The row's next firing after now, as RFC 3339.
fn next_of(row: &ScheduleRow) -> Option<String> {
    Cron::parse(&row.cron)
        .ok()?
        .next_after(now())
        .map(|t| t.to_string())
}

fn with_next(row: &ScheduleRow) -> Value {
    let mut v = json!(row);
    v["next"] = json!(next_of(row));
    v
}

/// The wall clock as a jiff instant (jiff is built without `std` here, as k8s-openapi
/// has it, so it does not read the clock itself).
fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32).unwrap_or(Timestamp::UNIX_EPOCH)
}

// ---- the scheduler ----------------------------------------------------------------

/// At start: the firings each schedule missed while the server was down (after its last
/// firing, or its making, and before now). They are not run late, a drill meant for a
/// time is not run at another without a person deciding so; each schedule's are logged
/// once (returned for stderr, and in the audit log), and the next firing is as usual.
pub fn missed_at_start(store: &Store) -> Vec<String> {
    let mut lines = Vec::new();
    let now = now();
    for row in list(store).unwrap_or_default() {
        let Ok(cron) = Cron::parse(&row.cron) else {
            continue;
        };
        let since = row
            .last_fired
            .as_deref()
            .or(Some(row.created.as_str()))
            .and_then(|t| t.parse::<Timestamp>().ok());
        let Some(mut t) = since else { continue };
        let (mut count, mut first, mut last) = (0u64, None, None);
        // Bounded: a schedule every second down for a year is counted up to here.
        while count < 100_000 {
            match cron.next_after(t) {
                Some(n) if n < now => {
                    count += 1;
                    first.get_or_insert(n);
                    last = Some(n);
                    t = n;
                }
                _ => break,
            }
        }
        let (Some(first), Some(last)) = (first, last) else {
            continue;
        };
        let next = cron
            .next_after(now)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let detail = format!(
            "missed {count} firing(s) from {first} to {last} while the server was down; not run late; the next is at {next}"
        );
        let _ = store.audit(
            "livefire serve",
            "missed",
            &format!("schedule:{}", row.name),
            &detail,
        );
        record(store, &row.name, last, &detail);
        lines.push(format!("schedule `{}`: {detail}", row.name));
    }
    lines
}

/// Fires the schedules, forever: each at the first time its cron names after the server
/// started (or after the schedule was made). The table is read each tick, so schedules
/// made or deleted through the API or the CLI take effect at once.
pub async fn run(store: Arc<Store>, runner: Arc<Runner>, policy: Policy) {
    // Name -> (cron text, next firing).
    let mut due: BTreeMap<String, (String, Option<Timestamp>)> = BTreeMap::new();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        // Requests nobody decided in time expire even when nobody looks.
        if let Err(e) = approval::expire_due(&store) {
            tracing::warn!("cannot expire the approvals due: {e}");
        }
        let rows = match list(&store) {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("cannot read the schedules: {e}");
                continue;
            }
        };
        let now = now();
        due.retain(|name, (cron, _)| rows.iter().any(|r| r.name == *name && r.cron == *cron));
        for row in rows {
            let Ok(cron) = Cron::parse(&row.cron) else {
                continue;
            };
            let entry = due
                .entry(row.name.clone())
                .or_insert_with(|| (row.cron.clone(), cron.next_after(now)));
            let Some(at) = entry.1 else { continue };
            if at > now {
                continue;
            }
            // Several times passed at once (a stalled machine): fire once, then go on
            // from now.
            entry.1 = cron.next_after(now.max(at));
            let (store, runner) = (store.clone(), runner.clone());
            tokio::spawn(async move { fire(&store, &runner, policy, &row, at).await });
        }
    }
}

/// One firing: a run started by `schedule NAME`, or one waiting for approval, or a
/// skip with its reason (a target held by a run still going, the previous request
/// still waiting), all in the audit log and the schedule's last result. The loop calls
/// it when `at` is due.
pub async fn fire(
    store: &Store,
    runner: &Arc<Runner>,
    policy: Policy,
    row: &ScheduleRow,
    at: Timestamp,
) {
    let launch = row.launch();
    let who = launch.by.clone();
    let subject = format!("schedule:{}", row.name);
    let (action, result) = match skip_reason(store, runner, policy, row, &launch) {
        Some(why) => ("skip", format!("skipped: {why}")),
        None => match approval::request_once(store, runner, policy, launch, &row.owner).await {
            Ok(Requested::Started(run)) => ("fire", format!("started run {}", run.id)),
            // Another firing asked between this one's look and its request.
            Ok(Requested::StillWaits(w)) => ("skip", format!("skipped: {}", still_waits(&w))),
            Ok(Requested::Awaiting(a)) => (
                "fire",
                format!(
                    "run waits for approval {} (production environment `{}`)",
                    a.id, a.env
                ),
            ),
            Err(e @ StartError::Held { .. }) => (
                "skip",
                format!("skipped: a run is already active on its targets: {e}"),
            ),
            Err(e) => ("fail", format!("not started: {e}")),
        },
    };
    tracing::info!(schedule = %row.name, at = %at, "{result}");
    let _ = store.audit(&who, action, &subject, &format!("due {at}: {result}"));
    record(store, &row.name, at, &result);
}

/// Why a firing asks nothing, under `--require-approval`: the schedule's previous
/// request still waits (one request at a time, not a pile for the approvers), or a
/// production firing has no owner token to keep from approving it.
fn skip_reason(
    store: &Store,
    runner: &Runner,
    policy: Policy,
    row: &ScheduleRow,
    launch: &Launch,
) -> Option<String> {
    if !policy.required {
        return None;
    }
    match approval::waiting_for(store, &launch.by) {
        Ok(Some(w)) => return Some(still_waits(&w)),
        Ok(None) => {}
        Err(e) => return Some(format!("cannot read the approvals: {e}")),
    }
    if store.token_named(&row.owner).ok().flatten().is_some() {
        return None;
    }
    // Made before owners were asked for, or its experiment moved into production since.
    let env = approval::production_env(runner, launch).ok().flatten()?;
    Some(format!(
        "environment `{env}` is production and this schedule has no owner token, so nobody could be kept from approving its own run: make it again with `livefire serve schedule create --owner TOKEN`"
    ))
}

/// Why a firing is skipped while the schedule's previous request waits.
fn still_waits(w: &approval::ApprovalRow) -> String {
    format!(
        "the approval for the firing at {} ({}) still waits, asked of an operator or admin other than `{}`{}",
        w.requested,
        w.id,
        w.requester,
        w.expires
            .as_ref()
            .map(|t| format!("; it expires at {t}"))
            .unwrap_or_default()
    )
}

// ---- the API ------------------------------------------------------------------------

/// `/api/schedules...`: anyone may list them; admins make and delete them.
pub async fn route(
    app: &Arc<App>,
    caller: &Caller,
    method: &Method,
    path: &[&str],
    body: Incoming,
) -> Response<Body> {
    match (method, path) {
        (&Method::GET, ["schedules"]) => match list(&app.store) {
            Ok(rows) => api::json_status(
                StatusCode::OK,
                Value::Array(rows.iter().map(with_next).collect()),
            ),
            Err(e) => api::internal(e),
        },
        (&Method::GET, ["schedules", name]) => match get(&app.store, name) {
            Ok(Some(row)) => api::json_status(StatusCode::OK, with_next(&row)),
            Ok(None) => api::error(
                StatusCode::NOT_FOUND,
                ScheduleError::Unknown((*name).to_owned()).to_string(),
            ),
            Err(e) => api::internal(e),
        },
        (&Method::POST, ["schedules"]) => {
            if let Err(d) = auth::require(caller, Role::Admin) {
                return api::denied(&d);
            }
            let v = match api::json_body(body).await {
                Ok(v) => v,
                Err(r) => return *r,
            };
            let row = match from_json(&v, caller) {
                Ok(row) => row,
                Err(why) => return api::error(StatusCode::BAD_REQUEST, why),
            };
            match create(&app.store, &app.runner, &row) {
                Ok(row) => api::json_status(StatusCode::CREATED, with_next(&row)),
                Err(e) => schedule_error(e),
            }
        }
        (&Method::DELETE, ["schedules", name]) => {
            if let Err(d) = auth::require(caller, Role::Admin) {
                return api::denied(&d);
            }
            match delete(&app.store, name, &caller.label()) {
                Ok(true) => api::json_status(StatusCode::OK, json!({"deleted": name})),
                Ok(false) => api::error(
                    StatusCode::NOT_FOUND,
                    ScheduleError::Unknown((*name).to_owned()).to_string(),
                ),
                Err(e) => api::internal(e),
            }
        }
        _ => api::error(
            StatusCode::NOT_FOUND,
            "no such route: GET /api/openapi.yaml lists them".into(),
        ),
    }
}

const SHAPE: &str = "send {\"name\": NAME, \"cron\": \"0 9 1 * *\", \"experiment\": NAME, \"env\": ENV, \"vars\": {NAME: VALUE}} (env and vars optional)";

fn from_json(v: &Value, caller: &Caller) -> Result<ScheduleRow, String> {
    crate::api::only_keys(v, &["name", "cron", "experiment", "env", "vars"])?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(name), Some(cron), Some(experiment)) =
        (text("name"), text("cron"), text("experiment"))
    else {
        return Err(SHAPE.into());
    };
    let (env, vars) = approval::env_and_vars(v)?;
    Ok(ScheduleRow {
        name,
        cron,
        experiment,
        env,
        vars: vars.into_iter().collect(),
        created: String::new(),
        created_by: caller.label(),
        owner: caller.name.clone(),
        last_fired: None,
        last_result: None,
    })
}

fn schedule_error(e: ScheduleError) -> Response<Body> {
    match e {
        ScheduleError::Taken(_) => api::error(StatusCode::CONFLICT, e.to_string()),
        ScheduleError::Launch(e) => api::start_error(e),
        ScheduleError::Store(e) => api::internal(e),
        e => api::error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

// ---- the CLI ------------------------------------------------------------------------

/// `livefire serve schedule create|list|delete`, on the store directly (as `token`).
pub fn command(
    cmd: &crate::ScheduleCommand,
    store: &Arc<Store>,
    exe: PathBuf,
    data: PathBuf,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    let me = format!("{} (shell)", livefire_engine::recover::os_user());
    match cmd {
        crate::ScheduleCommand::Create {
            name,
            cron,
            experiment,
            env,
            vars,
            owner,
        } => {
            if let Some(Err(e)) = owner.as_deref().map(|o| check_owner(store, o)) {
                let _ = writeln!(err, "livefire serve schedule create: {e}");
                return Exit::Invalid;
            }
            let runner = Runner::new(exe, data, store.clone());
            let row = ScheduleRow {
                name: name.clone(),
                cron: cron.clone(),
                experiment: experiment.clone(),
                env: env.clone(),
                vars: vars.iter().cloned().collect(),
                created: String::new(),
                created_by: me.clone(),
                owner: owner.clone().unwrap_or(me),
                last_fired: None,
                last_result: None,
            };
            match create(store, &runner, &row) {
                Ok(row) => {
                    let _ = writeln!(
                        out,
                        "schedule `{}` made: `{}`, {}; next at {}",
                        row.name,
                        row.cron,
                        what(&row),
                        next_of(&row).unwrap_or_default()
                    );
                    Exit::Ok
                }
                Err(e) => {
                    let _ = writeln!(err, "livefire serve schedule create: {e}");
                    Exit::Invalid
                }
            }
        }
        crate::ScheduleCommand::List => match list(store) {
            Ok(rows) => {
                for r in rows {
                    let _ = writeln!(
                        out,
                        "{}\t{}\t{}\tnext {}\tlast {}",
                        r.name,
                        r.cron,
                        what(&r),
                        next_of(&r).unwrap_or_default(),
                        r.last_result.as_deref().unwrap_or("never fired")
                    );
                }
                Exit::Ok
            }
            Err(e) => {
                let _ = writeln!(err, "livefire serve schedule list: {e}");
                Exit::Invalid
            }
        },
        crate::ScheduleCommand::Delete { name } => match delete(store, name, &me) {
            Ok(true) => {
                let _ = writeln!(out, "deleted schedule `{name}`");
                Exit::Ok
            }
            Ok(false) => {
                let _ = writeln!(
                    err,
                    "livefire serve schedule delete: no schedule named `{name}`: `livefire serve schedule list` shows them"
                );
                Exit::Invalid
            }
            Err(e) => {
                let _ = writeln!(err, "livefire serve schedule delete: {e}");
                Exit::Invalid
            }
        },
    }
}
