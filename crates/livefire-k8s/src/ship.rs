//! What a run ships to its pods: the experiment file's text as written (its
//! `${env:NAME}` still placeholders), and the files it reads by relative path (load
//! data, OpenAPI documents), read from the coordinator's disk.

use std::path::Path;
use std::time::{Duration, SystemTime};

use livefire_engine::plan::Plan;

use crate::render::{Run, ShippedFile};

/// Why the run cannot be shipped; nothing was applied.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// The split run of `plan` (planned from the file whose text is `text`).
pub struct Split<'a> {
    pub plan: &'a Plan,
    pub text: &'a str,
    pub run_id: &'a str,
    pub count: u32,
    pub start_at: SystemTime,
    pub vars: &'a [(String, String)],
    pub env: Option<&'a str>,
}

impl Split<'_> {
    /// The [`Run`] to render: reads the files the experiment names by relative path.
    /// A file named by absolute path is shipped under that path as written, which
    /// `render` refuses with what to do.
    pub fn run(&self) -> Result<Run, ShipError> {
        let mut files = Vec::new();
        for path in referenced_files(self.plan) {
            let on_disk = self.plan.dir.join(&path);
            let bytes = if Path::new(&path).is_absolute() {
                Vec::new()
            } else {
                std::fs::read(&on_disk).map_err(|source| ShipError::Read {
                    path: on_disk.display().to_string(),
                    source,
                })?
            };
            files.push(ShippedFile { path, bytes });
        }
        Ok(Run {
            run_id: self.run_id.to_owned(),
            title: self.plan.title.clone(),
            experiment: self.text.to_owned(),
            files,
            vars: self.vars.to_vec(),
            env: self.env.map(str::to_owned),
            seed: self.plan.settings.seed,
            count: self.count,
            start_at: self.start_at,
            secret_env: self.plan.secrets.iter().map(|s| s.name.clone()).collect(),
            max_duration: self.plan.settings.max_duration.max(Duration::from_secs(1)),
        })
    }
}

/// The local files the experiment's loads and campaigns read, each once, in timeline
/// order, as written in the file (relative to its folder).
pub fn referenced_files(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in &plan.experiment.timeline {
        let data = a
            .load
            .as_ref()
            .and_then(|l| l.data.as_ref())
            .map(|d| d.file.clone());
        let openapi = a
            .fuzz
            .as_ref()
            .map(|f| f.openapi.clone())
            .filter(|o| !o.starts_with("http://") && !o.starts_with("https://"));
        for path in data.into_iter().chain(openapi) {
            if !out.contains(&path) {
                out.push(path);
            }
        }
    }
    out
}
