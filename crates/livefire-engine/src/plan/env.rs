//! `${env:NAME}`: found in the file's text, read from the environment once, and handed
//! to the file's substitution as variables named `env:NAME`, so they are filled in the
//! document before it is typed, like every other `${name}`.

use super::PlanError;

/// A value that came from the environment: masked as `${env:NAME}` wherever the run
/// writes (journal, run folder, reproducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    pub value: String,
}

impl Secret {
    /// `text` with every secret value replaced by `${env:NAME}`.
    pub fn mask_all(secrets: &[Secret], text: String) -> String {
        secrets.iter().fold(text, |t, s| {
            if s.value.is_empty() {
                t
            } else {
                t.replace(s.value.as_str(), &format!("${{env:{}}}", s.name))
            }
        })
    }
}

/// `(env:NAME, value)` pairs for the file's substitution, as `--var` pairs are.
pub type EnvVars = Vec<(String, String)>;

/// The `env:NAME` variables for substitution and the secrets they carry. Lines that are
/// YAML comments are skipped, so a commented-out line needs no variable. An unset
/// variable is an error naming every one that is missing.
pub fn resolve(text: &str) -> Result<(EnvVars, Vec<Secret>), PlanError> {
    let mut names = names(text);
    names.sort();
    names.dedup();
    let (mut vars, mut secrets, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    for name in names {
        match std::env::var(&name) {
            Ok(value) => {
                vars.push((format!("env:{name}"), value.clone()));
                secrets.push(Secret { name, value });
            }
            Err(_) => missing.push(name),
        }
    }
    if !missing.is_empty() {
        return Err(PlanError::EnvMissing(missing));
    }
    Ok((vars, secrets))
}

/// Every `NAME` of `${env:NAME}` outside comment lines.
fn names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(start) = rest.find("${env:") {
            let after = &rest[start + 6..];
            let Some(end) = after.find('}') else { break };
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}
