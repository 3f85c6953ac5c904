//! The plan: the experiment resolved once (`${env:NAME}`, every default, each
//! activity's id, display name and typed body, each condition's check) into plain data.
//! Nothing after planning reads the experiment file's values; the run phases, `--dry-run`
//! and, later, the segment agent and the console take a [`Plan`].

mod env;
mod render;
mod scenario;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use livefire_core::events::Role;
use livefire_spec::values::Quantity;
use livefire_spec::{Comparison, Experiment, FailOn, Probe};

pub use env::Secret;
pub use render::render;

/// An experiment resolved for one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub title: String,
    /// The environment the plan was resolved for (`--env`), if any.
    pub environment: Option<livefire_spec::ChosenEnvironment>,
    /// The experiment file's folder: relative paths (data files, OpenAPI files, setup
    /// and command working directories) are resolved against it.
    pub dir: PathBuf,
    pub settings: Settings,
    /// Every declared target, by name (setup processes become targets at setup).
    pub targets: BTreeMap<String, livefire_spec::Target>,
    pub setup: Vec<SetupStep>,
    /// The hypothesis, then the guardrails, in file order.
    pub conditions: Vec<Condition>,
    /// The timeline in file order (`id` is `timeline[i]`).
    pub activities: Vec<Activity>,
    /// The `rollbacks:` steps.
    pub rollbacks: Vec<RollbackCommand>,
    /// The `watch:` commands, with their defaults filled in.
    pub watches: Vec<PlannedWatch>,
    /// Values that came from `${env:NAME}`: masked wherever the run writes.
    pub secrets: Vec<Secret>,
    /// The experiment with `${env:NAME}` filled in, written (masked) to the run folder.
    pub experiment: Experiment,
}

/// A `setup:` process with its defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct SetupStep {
    pub name: String,
    /// Run with `sh -c`.
    pub command: String,
    /// What says it is ready; without one it counts as ready once started.
    pub ready: Option<livefire_spec::Ready>,
    /// How long it may take to become ready (`timeout:`, default 10 s).
    pub ready_timeout: Duration,
    /// Whom it runs as; without one, as livefire.
    pub user: Option<String>,
    /// Its working directory: `cwd:`, else the experiment file's folder.
    pub cwd: String,
    pub env: BTreeMap<String, String>,
    /// The `restart` of the process target it becomes, if it has one.
    pub restart: Option<String>,
}

fn setup_steps(exp: &Experiment, dir: &std::path::Path) -> Vec<SetupStep> {
    exp.setup
        .iter()
        .map(|s| SetupStep {
            name: s.name.clone(),
            command: s.command.clone(),
            ready: s.ready.clone(),
            ready_timeout: s.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(10)),
            user: s.user.clone(),
            cwd: s
                .cwd
                .clone()
                .unwrap_or_else(|| dir.to_string_lossy().into_owned()),
            env: s.env.clone(),
            restart: s.restart.clone(),
        })
        .collect()
}

/// `settings:` with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub seed: u64,
    /// Whether the seed was drawn at random (no `settings.seed`).
    pub seed_drawn: bool,
    /// The hard cap: timeline end + 5 min unless given.
    pub max_duration: Duration,
    /// Parent folder of run folders.
    pub out: PathBuf,
    pub probe_every: Duration,
    pub settle: Duration,
    pub fail_on: FailOn,
}

/// One timeline entry.
#[derive(Debug, Clone)]
pub struct Activity {
    /// For machines (journal, ledger): `timeline[i]`.
    pub id: String,
    /// For people: the entry's `name:`, else its kind and target (`proxy.down
    /// auth-link`, `load browse`; the kind alone for a fault without a target:
    /// `command`); made unique with ` #2`, ` #3` in timeline order.
    pub name: String,
    /// `load`, `fuzz`, or the fault kind (`process.pause`).
    pub kind: &'static str,
    /// What it acts on, for people: the fault's target, the load's metric prefix, the
    /// campaign's metric prefix.
    pub target: String,
    pub start: Duration,
    pub duration: Duration,
    pub body: Body,
    /// A fault's `noticed_within`: some detector must notice it this soon after it is
    /// applied, else the hypothesis fails.
    pub noticed_within: Option<Duration>,
}

/// What an activity does, typed.
#[derive(Debug, Clone)]
pub enum Body {
    Fault(livefire_spec::Fault),
    /// A load; its metrics are named after `config.name`.
    Load(Box<livefire_load::LoadConfig>),
    /// A fuzz campaign; its metrics are named after `metrics`.
    Fuzz {
        metrics: String,
        /// The OpenAPI document as written (a relative path or a URL), for SARIF.
        openapi: String,
        config: Box<livefire_fuzz::FuzzConfig>,
    },
}

/// A hypothesis condition or a guardrail.
#[derive(Debug, Clone)]
pub struct Condition {
    /// Its `name:`, else `hypothesis[i]` / `guardrails[i]`.
    pub name: String,
    pub role: Role,
    /// How often it is judged during the timeline.
    pub every: Duration,
    /// How long a hypothesis condition may fail in a row during the timeline.
    pub tolerate: Duration,
    pub check: Check,
}

/// What a condition judges.
#[derive(Debug, Clone)]
pub enum Check {
    Probe {
        probe: Box<Probe>,
        /// How long one sample may take: the probe's `timeout:` or its kind's default.
        timeout: Duration,
        expect: Box<livefire_spec::Expect>,
        /// A guardrail trips when the probe fails this long in a row (its `for:`).
        fail_for: Duration,
    },
    Metric {
        metric: String,
        comparison: Comparison,
        bound: Quantity,
        window: Window,
    },
}

/// The metric windows a metric condition is judged over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last complete seconds (at least one).
    Last(Duration),
    /// Every second since the timeline began (a hypothesis without `for:`).
    SinceStart,
}

/// One `watch:` command: a team's own alert check, a detector of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedWatch {
    pub name: String,
    /// Run with `sh -c` in the experiment file's folder.
    pub command: String,
    /// `every:`, else `settings.probe_every`.
    pub every: Duration,
    /// `None`: it fires when the command exits non-zero; `Some(text)`: when its
    /// standard output contains `text`.
    pub fires_on_stdout: Option<String>,
    /// Whom it runs as; without one, as livefire.
    pub user: Option<String>,
    /// `timeout:`, else 10 s; a run that overruns it does not fire.
    pub timeout: Duration,
}

/// One `rollbacks:` step.
#[derive(Debug, Clone)]
pub struct RollbackCommand {
    pub run: String,
    /// Run as this user; as livefire's own user when absent.
    pub user: Option<String>,
    pub timeout: Duration,
}

/// Why an experiment could not be planned. Nothing was applied.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file is unreadable or invalid; the report is already located.
    #[error("{0}")]
    Load(#[from] livefire_spec::LoadError),
    #[error(
        "{file}: cannot run: this livefire does not build these yet (nothing was applied):\n  - {}",
        .missing.join("\n  - ")
    )]
    NotBuilt { file: String, missing: Vec<String> },
    #[error("environment variable(s) not set: {}: export them before the run", .0.join(", "))]
    EnvMissing(Vec<String>),
    /// A load that cannot run as written.
    #[error("{0} (nothing was applied)")]
    Workload(#[from] crate::workload::WorkloadError),
    /// A fuzz campaign that cannot run as written.
    #[error("{0} (nothing was applied)")]
    Campaign(#[from] crate::campaign::CampaignError),
    /// A timeline entry with no work (validation refuses it first).
    #[error("a timeline entry needs exactly one of `fault`, `load`, `fuzz` (nothing was applied)")]
    NoWork,
}

impl Plan {
    /// When the last activity ends.
    pub fn timeline_end(&self) -> Duration {
        self.activities
            .iter()
            .map(|a| a.start + a.duration)
            .max()
            .unwrap_or_default()
    }

    /// The metric prefixes of the loads, in timeline order.
    pub fn load_names(&self) -> Vec<String> {
        self.activities
            .iter()
            .filter_map(|a| match &a.body {
                Body::Load(c) => Some(c.name.clone()),
                _ => None,
            })
            .collect()
    }

    /// The metric prefixes of the campaigns, in timeline order.
    pub fn fuzz_names(&self) -> Vec<String> {
        self.activities
            .iter()
            .filter_map(|a| match &a.body {
                Body::Fuzz { metrics, .. } => Some(metrics.clone()),
                _ => None,
            })
            .collect()
    }

    /// Refuses a production environment unless the user confirmed it with
    /// `--confirm production`.
    pub fn confirm(&self, confirm: Option<&str>) -> Result<(), livefire_spec::FlagError> {
        livefire_spec::confirm_environment(self.environment.as_ref(), confirm)
    }

    /// The display name of the activity with this id (the id itself if unknown).
    pub fn name_of(&self, id: &str) -> String {
        self.activities
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| id.to_owned())
    }
}

/// Reads, validates and resolves the experiment at `file` with `--var` overrides, for
/// the environment `env` of its `environments:` when given. Reads the environment for
/// `${env:NAME}`, load data files and local OpenAPI files; changes nothing.
pub fn plan(file: &Path, vars: &[(String, String)], env: Option<&str>) -> Result<Plan, PlanError> {
    plan_with_seed(file, vars, env, None)
}

/// [`plan`] with the seed given (a split run's agents take the coordinator's, so every
/// segment draws the same plan); `None` keeps `settings.seed`, else draws one.
pub fn plan_with_seed(
    file: &Path,
    vars: &[(String, String)],
    env: Option<&str>,
    seed: Option<u64>,
) -> Result<Plan, PlanError> {
    let text = std::fs::read_to_string(file).map_err(|source| livefire_spec::LoadError::Read {
        path: file.to_owned(),
        source,
    })?;
    let (env_vars, secrets) = env::resolve(&text)?;
    let options = livefire_spec::Options {
        vars: vars.iter().cloned().chain(env_vars).collect(),
        env: env.map(str::to_owned),
        every_environment: false,
        built: Some(built()),
    };
    let loaded = livefire_spec::load_file_with(file, &options)?;
    let mut exp = loaded.experiment;
    if seed.is_some() {
        exp.settings.seed = seed;
    }
    let missing = not_built(&exp);
    if !missing.is_empty() {
        return Err(PlanError::NotBuilt {
            file: file.display().to_string(),
            missing,
        });
    }
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut plan = from_experiment(exp, dir, secrets)?;
    plan.environment = loaded.environment;
    Ok(plan)
}

/// Resolves an experiment whose `${env:NAME}` are already filled in.
pub fn from_experiment(
    exp: Experiment,
    dir: PathBuf,
    secrets: Vec<Secret>,
) -> Result<Plan, PlanError> {
    let mut settings = settings(&exp);
    let mut activities = activities(&exp, &dir, settings.seed)?;
    activities.extend(scenario::curveballs(&exp, settings.seed));
    if exp.settings.max_duration.is_none() {
        let end = activities.iter().map(|a| a.start + a.duration).max();
        settings.max_duration = end.unwrap_or_default() + Duration::from_secs(300);
    }
    // Reproducers write `"${NAME}"` for these values, so a pasted curl reads the secret
    // from the shell's environment and never shows it.
    for a in &mut activities {
        if let Body::Fuzz { config, .. } = &mut a.body {
            config.secrets = secrets
                .iter()
                .map(|s| (s.value.clone(), s.name.clone()))
                .collect();
        }
    }
    let conditions = conditions(&exp, settings.probe_every);
    let rollbacks = exp
        .rollbacks
        .iter()
        .map(|step| {
            let livefire_spec::RollbackStep::Command(c) = step;
            RollbackCommand {
                run: c.run.clone(),
                user: c.user.clone(),
                timeout: Duration::from_millis(c.timeout.map(|d| d.as_millis()).unwrap_or(30_000)),
            }
        })
        .collect();
    let setup = setup_steps(&exp, &dir);
    let watches = exp
        .watch
        .iter()
        .map(|w| PlannedWatch {
            name: w.name.clone(),
            command: w.command.clone(),
            every: w.every.map_or(settings.probe_every, |d| d.0),
            fires_on_stdout: w.fires_when.stdout_contains.clone(),
            user: w.user.clone(),
            timeout: w.timeout.map_or(Duration::from_secs(10), |d| d.0),
        })
        .collect();
    Ok(Plan {
        title: exp.title.clone(),
        environment: None,
        dir,
        settings,
        targets: exp.targets.clone(),
        setup,
        conditions,
        activities,
        rollbacks,
        watches,
        secrets,
        experiment: exp,
    })
}

/// The end of the experiment's last activity.
fn timeline_end(exp: &Experiment) -> Duration {
    exp.timeline
        .iter()
        .map(|a| a.at.0 + a.for_.0)
        .max()
        .unwrap_or_default()
}

fn settings(exp: &Experiment) -> Settings {
    let s = &exp.settings;
    Settings {
        seed: s.seed.unwrap_or_else(rand::random),
        seed_drawn: s.seed.is_none(),
        max_duration: s
            .max_duration
            .map(|d| d.0)
            .unwrap_or_else(|| timeline_end(exp) + Duration::from_secs(300)),
        out: PathBuf::from(s.out.as_deref().unwrap_or(".livefire/runs")),
        probe_every: s.probe_every.map(|d| d.0).unwrap_or(Duration::from_secs(1)),
        settle: s.settle.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
        fail_on: s.fail_on.unwrap_or(FailOn::High),
    }
}

/// Each timeline entry with its id, display name and typed body. Loads and campaigns
/// are built here: a missing data or OpenAPI file is an error before anything runs.
fn activities(exp: &Experiment, dir: &Path, seed: u64) -> Result<Vec<Activity>, PlanError> {
    let metric_names: BTreeMap<usize, String> = exp.workload_names().into_iter().collect();
    let mut out = Vec::new();
    for (i, a) in exp.timeline.iter().enumerate() {
        let (kind, target, body) = if let Some(f) = &a.fault {
            (f.kind(), fault_target(f), Body::Fault(f.clone()))
        } else {
            let metrics = metric_names.get(&i).cloned().unwrap_or_default();
            workload(a, metrics, dir, seed)?
        };
        out.push(Activity {
            id: format!("timeline[{i}]"),
            name: a.name.clone().unwrap_or_else(|| {
                if target.is_empty() {
                    kind.to_owned()
                } else {
                    format!("{kind} {target}")
                }
            }),
            kind,
            target,
            start: a.at.0,
            duration: a.for_.0,
            body,
            noticed_within: a.noticed_within.map(|d| d.0),
        });
    }
    make_unique(&mut out);
    Ok(out)
}

/// A load's or a campaign's kind, target and built config.
fn workload(
    a: &livefire_spec::Activity,
    metrics: String,
    dir: &Path,
    seed: u64,
) -> Result<(&'static str, String, Body), PlanError> {
    if let Some(l) = &a.load {
        let config = crate::workload::config(&metrics, l, a.for_.0, dir, seed)?;
        return Ok(("load", metrics, Body::Load(Box::new(config))));
    }
    let Some(f) = &a.fuzz else {
        // Validation allows no other entry.
        return Err(PlanError::NoWork);
    };
    let config = crate::campaign::config(&metrics, f, a.for_.0, dir, seed)?;
    let body = Body::Fuzz {
        metrics: metrics.clone(),
        openapi: f.openapi.clone(),
        config: Box::new(config),
    };
    Ok(("fuzz", metrics, body))
}

/// The target of a fault, for people: its target's name; empty for a fault that names
/// none (`command`, a `cpu.stress` on this host), whose display name is its kind.
fn fault_target(f: &livefire_spec::Fault) -> String {
    f.target()
        .map(|(t, _)| t)
        .or(f.responder())
        .unwrap_or_default()
        .to_owned()
}

/// Appends ` #2`, ` #3`, ... to the later of activities that share a display name, so
/// a name says which one.
fn make_unique(activities: &mut [Activity]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for a in activities.iter_mut() {
        let n = seen.entry(a.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            a.name = format!("{} #{n}", a.name);
        }
    }
}

fn conditions(exp: &Experiment, probe_every: Duration) -> Vec<Condition> {
    let mut out = Vec::new();
    for (role, list) in [
        (Role::Hypothesis, &exp.hypothesis),
        (Role::Guardrail, &exp.guardrails),
    ] {
        for (i, c) in list.iter().enumerate() {
            let Some(check) = check(c, role) else {
                continue;
            };
            out.push(Condition {
                name: c.name.clone().unwrap_or_else(|| match role {
                    Role::Hypothesis => format!("hypothesis[{i}]"),
                    Role::Guardrail => format!("guardrails[{i}]"),
                }),
                role,
                every: c.every.map(|d| d.0).unwrap_or(probe_every),
                tolerate: c.tolerate.map(|d| d.0).unwrap_or_default(),
                check,
            });
        }
    }
    out
}

/// The condition's check; validation guarantees exactly one of probe (with expect) or
/// metric (with one comparison).
fn check(c: &livefire_spec::Condition, role: Role) -> Option<Check> {
    if let (Some(probe), Some(expect)) = (&c.probe, &c.expect) {
        return Some(Check::Probe {
            probe: Box::new(probe.clone()),
            timeout: crate::probe::timeout(probe),
            expect: Box::new(expect.clone()),
            fail_for: c.for_.map(|d| d.0).unwrap_or_default(),
        });
    }
    let metric = c.metric.clone()?;
    let (comparison, bound) = c.comparisons().first().copied()?;
    let window = match (role, c.for_) {
        (_, Some(d)) => Window::Last(d.0),
        (Role::Guardrail, None) => Window::Last(Duration::from_secs(1)),
        (Role::Hypothesis, None) => Window::SinceStart,
    };
    Some(Check::Metric {
        metric,
        comparison,
        bound,
        window,
    })
}

/// What this build can run, for validation to refuse the rest where it is written.
pub fn built() -> livefire_spec::Built {
    livefire_spec::Built {
        // Every fault kind the spec knows is built: livefire-faults' catalog routes
        // each, and a kind the spec adds does not compile until it does.
        faults: |_| true,
        https_probes: false,
        scenario: true,
    }
}

/// What the file asks for that this build cannot run yet. `run` refuses with exit 3.
pub fn not_built(exp: &Experiment) -> Vec<String> {
    let mut missing = Vec::new();
    for c in exp.hypothesis.iter().chain(&exp.guardrails) {
        if let Some(Probe::Http(h)) = &c.probe
            && h.url.starts_with("https://")
        {
            missing.push(format!("https probes ({})", h.url));
        }
    }
    missing.sort();
    missing.dedup();
    missing
}
