//! The experiment file: its types, parsing with source positions, validation that
//! reports every error at once as `FILE:LINE:COL: message`, variable substitution, and
//! the JSON Schema of the format.
//!
//! This crate does no I/O besides reading the experiment file (and, for validation,
//! looking up programs and users on this machine).

pub mod de;
pub mod diag;
mod environments;
pub mod net;
mod subst;
pub mod types;
pub mod validate;
pub mod values;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Report, Severity};
pub use types::*;
pub use validate::Built;
pub use yaml::{Node, Pos};

/// What a caller asks of a load besides the file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--var name=value`, overriding the file's (and the environment's) `vars`.
    pub vars: Vec<(String, String)>,
    /// `--env NAME`: resolve the file for this environment.
    pub env: Option<String>,
    /// Without `env`, check every environment too (what `validate` does), so that a
    /// mistake in one is found without naming it.
    pub every_environment: bool,
    /// What this build can run; `None` checks the format alone.
    pub built: Option<Built>,
}

/// The environment an experiment was resolved for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenEnvironment {
    pub name: String,
    /// `run` needs `--confirm production` for it.
    pub production: bool,
}

/// A parsed, substituted and validated experiment.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub experiment: Experiment,
    /// Where it was read from (`-` for standard input).
    pub path: PathBuf,
    /// Warnings found on the way (never errors).
    pub warnings: Report,
    /// The document as written, after substitution, with positions.
    pub tree: Node,
    /// The environment it was resolved for (`--env`), if any.
    pub environment: Option<ChosenEnvironment>,
    /// The names of every environment the file declares (each one checked when
    /// [`Options::every_environment`] was asked).
    pub environments: Vec<String>,
}

impl Loaded {
    /// Refuses a production environment unless the user confirmed it with
    /// `--confirm production`.
    pub fn confirm(&self, confirm: Option<&str>) -> Result<(), FlagError> {
        confirm_environment(self.environment.as_ref(), confirm)
    }
}

/// A flag given with the experiment that cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error(
        "environment `{0}` is production: add `--confirm production` to run it (nothing was applied)"
    )]
    NotConfirmed(String),
    #[error("invalid --var `{0}`: write name=value")]
    Var(String),
}

/// Refuses a production `environment` unless `confirm` is `production` (what
/// `--confirm production` gives); the one rule `Loaded` and the engine's plan share.
pub fn confirm_environment(
    environment: Option<&ChosenEnvironment>,
    confirm: Option<&str>,
) -> Result<(), FlagError> {
    match (environment, confirm) {
        (Some(env), Some("production")) if env.production => Ok(()),
        (Some(env), _) if env.production => Err(FlagError::NotConfirmed(env.name.clone())),
        _ => Ok(()),
    }
}

/// Why an experiment could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Report),
    #[error("{}", unknown_environment(name, known))]
    UnknownEnvironment { name: String, known: Vec<String> },
    #[error("{}", unknown_var(name, used))]
    UnknownVar { name: String, used: Vec<String> },
}

fn unknown_environment(name: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!("--env {name}: this file declares no `environments:`; run it without --env")
    } else {
        format!(
            "--env {name}: this file has no environment `{name}`; it has {}",
            quoted(known)
        )
    }
}

fn unknown_var(name: &str, used: &[String]) -> String {
    if used.is_empty() {
        format!("--var {name}: this file uses no variables (no `vars:` and no `${{name}}`)")
    } else {
        format!(
            "--var {name}: this file never uses `${{{name}}}`; the names it uses are {}",
            quoted(used)
        )
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads, substitutes (`${name}` from `vars` then targets) and validates an experiment
/// file. `vars` (from `--var k=v`) override the file's `vars:`.
pub fn load_file(path: &Path, vars: &[(String, String)]) -> Result<Loaded, LoadError> {
    load_file_with(
        path,
        &Options {
            vars: vars.to_vec(),
            ..Options::default()
        },
    )
}

/// As [`load_file`], with everything a caller may ask. Files the experiment names
/// (`openapi`, `data.file`) are looked for beside it.
pub fn load_file_with(path: &Path, options: &Options) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    load_text(&path.display().to_string(), &text, Some(dir), options).map(|mut l| {
        l.path = path.to_owned();
        l
    })
}

/// As [`load_file`], from text; `file` names it in messages.
pub fn load_str(file: &str, text: &str, vars: &[(String, String)]) -> Result<Loaded, LoadError> {
    load_str_with(
        file,
        text,
        &Options {
            vars: vars.to_vec(),
            ..Options::default()
        },
    )
}

/// As [`load_file_with`], from text; files it names are not looked for.
pub fn load_str_with(file: &str, text: &str, options: &Options) -> Result<Loaded, LoadError> {
    load_text(file, text, None, options)
}

fn load_text(
    file: &str,
    text: &str,
    dir: Option<&Path>,
    options: &Options,
) -> Result<Loaded, LoadError> {
    let report = |diagnostics: Vec<Diagnostic>| Report {
        file: file.to_owned(),
        text: text.to_owned(),
        diagnostics,
    };
    let raw = match yaml::parse(text) {
        Ok(tree) => tree,
        Err(e) => {
            return Err(LoadError::Invalid(report(vec![Diagnostic::error(
                e.pos,
                format!("invalid YAML: {}", e.message),
            )])));
        }
    };
    // A `--var` the file never reads would be silently ignored: say so instead.
    let used = environments::variable_names(&raw);
    // `env:NAME` pairs are the engine's `${env:NAME}` values, read from the environment
    // for the names the file uses.
    let unused = |k: &String| !used.contains(k) && !k.starts_with("env:");
    if let Some((name, _)) = options.vars.iter().find(|(k, _)| unused(k)) {
        return Err(LoadError::UnknownVar {
            name: name.clone(),
            used: used.into_iter().collect(),
        });
    }
    let mut diagnostics = Vec::new();
    let envs = environments::typed(&raw, &mut diagnostics);
    let ctx = validate::Context {
        base_dir: dir,
        built: options.built.as_ref(),
    };
    let chosen = match &options.env {
        Some(name) => match envs.iter().find(|(n, _, _)| n == name) {
            Some((n, env, node)) => Some((n.clone(), env.production, *node)),
            None => {
                return Err(LoadError::UnknownEnvironment {
                    name: name.clone(),
                    known: environments::names(&raw),
                });
            }
        },
        None => None,
    };
    let (tree, experiment) = check(
        &raw,
        chosen.as_ref().map(|(_, _, node)| *node),
        &options.vars,
        &ctx,
        &mut diagnostics,
    );
    if options.env.is_none() && options.every_environment {
        // Each environment resolved on its own; what it adds to the file's own
        // mistakes is reported with its name.
        let base: std::collections::BTreeSet<Diagnostic> = diagnostics.iter().cloned().collect();
        for (name, _, node) in &envs {
            let mut found = Vec::new();
            check(&raw, Some(node), &options.vars, &ctx, &mut found);
            for mut d in found {
                if !base.contains(&d) {
                    d.message = format!("{} (environment `{name}`)", d.message);
                    diagnostics.push(d);
                }
            }
        }
    }
    diagnostics.sort();
    diagnostics.dedup();
    let report = report(diagnostics);
    match experiment {
        Some(experiment) if !report.has_errors() => Ok(Loaded {
            experiment,
            path: PathBuf::from(file),
            warnings: report,
            tree,
            environment: chosen.map(|(name, production, _)| ChosenEnvironment { name, production }),
            environments: envs.iter().map(|(name, _, _)| name.clone()).collect(),
        }),
        _ => Err(LoadError::Invalid(report)),
    }
}

/// Resolves `raw` for one environment (or none), substitutes and validates it.
fn check(
    raw: &Node,
    env: Option<&Node>,
    vars: &[(String, String)],
    ctx: &validate::Context<'_>,
    out: &mut Vec<Diagnostic>,
) -> (Node, Option<Experiment>) {
    let mut tree = environments::resolved(raw, env);
    subst::substitute(&mut tree, vars, out);
    let experiment = validate::validate_with(&tree, ctx, out);
    (tree, experiment)
}

/// The JSON Schema of the experiment format, as committed in `schema/experiment.json`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Experiment);
    serde_json::to_value(schema).unwrap_or_default()
}

/// Parses `k=v` as given to `--var`.
pub fn parse_var(s: &str) -> Result<(String, String), FlagError> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(FlagError::Var(s.to_owned())),
    }
}
