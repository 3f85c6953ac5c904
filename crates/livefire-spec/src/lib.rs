//! The experiment file: its types, parsing with source positions, validation that
//! reports every error at once as `FILE:LINE:COL: message`, variable substitution, and
//! the JSON Schema of the format.
//!
//! This crate does no I/O besides reading the experiment file (and, for validation,
//! looking up programs and users on this machine).

pub mod de;
pub mod diag;
mod subst;
pub mod types;
pub mod validate;
pub mod values;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Report, Severity};
pub use types::*;
pub use yaml::{Node, Pos};

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
}

/// Reads, substitutes (`${name}` from `vars` then targets) and validates an experiment
/// file. `vars` (from `--var k=v`) override the file's `vars:`.
pub fn load_file(path: &Path, vars: &[(String, String)]) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    load_str(&path.display().to_string(), &text, vars).map(|mut l| {
        l.path = path.to_owned();
        l
    })
}

/// As [`load_file`], from text; `file` names it in messages.
pub fn load_str(file: &str, text: &str, vars: &[(String, String)]) -> Result<Loaded, LoadError> {
    let report = |diagnostics: Vec<Diagnostic>| Report {
        file: file.to_owned(),
        text: text.to_owned(),
        diagnostics,
    };
    let mut tree = match yaml::parse(text) {
        Ok(tree) => tree,
        Err(e) => {
            return Err(LoadError::Invalid(report(vec![Diagnostic::error(
                e.pos,
                format!("invalid YAML: {}", e.message),
            )])));
        }
    };
    let mut diagnostics = Vec::new();
    subst::substitute(&mut tree, vars, &mut diagnostics);
    let experiment = validate::validate(&tree, &mut diagnostics);
    diagnostics.sort();
    diagnostics.dedup();
    let report = report(diagnostics);
    match experiment {
        Some(experiment) if !report.has_errors() => Ok(Loaded {
            experiment,
            path: PathBuf::from(file),
            warnings: report,
            tree,
        }),
        _ => Err(LoadError::Invalid(report)),
    }
}

/// The JSON Schema of the experiment format, as committed in `schema/experiment.json`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Experiment);
    serde_json::to_value(schema).unwrap_or_default()
}

/// Parses `k=v` as given to `--var`.
pub fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("invalid --var `{s}`: write name=value")),
    }
}
