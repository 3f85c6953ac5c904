//! The launcher: what every back end that runs segments (local child processes,
//! Kubernetes pods) does for the coordinator: start N agents of one experiment with a
//! shared start time, hand back each one's stdout lines (the segment protocol) and its
//! end, and stop them all.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use livefire_load::Segment;
use tokio::sync::mpsc;

/// The environment variable an agent reads its variables from, before its `--var`s:
/// [`LaunchSpec::vars_json`]. A process's environment is readable only by its own user
/// (and root), its command line by everyone.
pub const AGENT_VARS_ENV: &str = "LIVEFIRE_AGENT_VARS";

/// A boxed future, so `Launcher` can be used as `dyn Launcher`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the coordinator asks a back end to launch: everything an agent needs to plan
/// the same experiment the coordinator planned, and where per-segment detail goes.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The coordinator's run id (`20261203T140000Z-orders`): labels and names.
    pub run_id: String,
    /// The experiment file as the user gave it (local agents read it from here).
    pub file: PathBuf,
    /// Its text, as written: `${env:NAME}` are still placeholders, so no secret is in
    /// it (what a back end ships to another machine, e.g. in a ConfigMap).
    pub text: String,
    /// `--var NAME=VALUE` given to the coordinator.
    pub vars: Vec<(String, String)>,
    /// `--env NAME` given to the coordinator.
    pub env: Option<String>,
    /// The coordinator's seed: every agent plans with it, so all draw the same plan.
    pub seed: u64,
    /// How many segments (N >= 1).
    pub count: u32,
    /// The shared wall-clock start: `during` begins here on every segment and on the
    /// coordinator.
    pub start_at: SystemTime,
    /// Environment variables the file reads (`${env:NAME}`): each agent needs them set.
    pub secret_env: Vec<String>,
    /// The run folder's `segments/` folder: a back end may keep per-segment logs in
    /// `<segments_dir>/<i>/` (1-based `i`).
    pub segments_dir: PathBuf,
}

impl LaunchSpec {
    /// The segment `index` (0-based) of `count`.
    pub fn segment(&self, index: u32) -> Segment {
        Segment {
            index,
            count: self.count,
        }
    }

    /// The arguments of `livefire` that run segment `index` (0-based) with the
    /// experiment at `file` (the path the agent sees). The variables are not among
    /// them: a command line is what every local user sees with `ps`, so a back end hands
    /// them over its own way ([`AGENT_VARS_ENV`] set to [`LaunchSpec::vars_json`]).
    pub fn agent_args(&self, index: u32, file: &str) -> Vec<String> {
        let mut args = vec![
            "agent".to_owned(),
            "--segment".to_owned(),
            format!("{}/{}", index + 1, self.count),
            "--start-at".to_owned(),
            crate::clock::rfc3339(self.start_at),
            "--seed".to_owned(),
            self.seed.to_string(),
        ];
        if let Some(env) = &self.env {
            args.push("--env".to_owned());
            args.push(env.clone());
        }
        args.push(file.to_owned());
        args
    }

    /// The coordinator's `--var`s as the agent reads them from [`AGENT_VARS_ENV`]: a
    /// JSON list of `[name, value]` pairs, in order (so a later one overrides).
    pub fn vars_json(&self) -> String {
        serde_json::to_string(&self.vars).unwrap_or_default()
    }

    /// Where segment `index` (0-based) keeps its detail: `<segments_dir>/<index + 1>`.
    pub fn segment_dir(&self, index: u32) -> PathBuf {
        self.segments_dir.join((index + 1).to_string())
    }
}

/// What a back end reports about its segments, in the order it happens per segment:
/// `Started`, then `Line`s, then one `Exited`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentEvent {
    /// The segment was created; `detail` says where (`pid 4242`, `pod lf-abc-2`).
    Started { index: u32, detail: String },
    /// One line of the segment's stdout (the protocol: one JSON object a line).
    Line { index: u32, line: String },
    /// The segment ended (its stream is over).
    Exited { index: u32, exit: SegmentExit },
}

impl SegmentEvent {
    /// The segment (0-based) it is about.
    pub fn index(&self) -> u32 {
        match self {
            SegmentEvent::Started { index, .. }
            | SegmentEvent::Line { index, .. }
            | SegmentEvent::Exited { index, .. } => *index,
        }
    }
}

/// How a segment ended, as its back end saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentExit {
    /// It exited with status 0.
    pub success: bool,
    /// For people: `exit status 0`, `killed by SIGKILL`, the pod's reason.
    pub detail: String,
}

/// Segments that were launched: their events, until every one has `Exited`.
#[derive(Debug)]
pub struct Launched {
    pub events: mpsc::UnboundedReceiver<SegmentEvent>,
}

/// Why segments could not be launched or stopped; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// Refused before anything was created (N of zero, no cluster, missing rights).
    #[error("{0}")]
    Refused(String),
    /// Creating segment `index` (1-based in the message) failed; whatever was created
    /// was removed again.
    #[error("cannot start segment {index}/{count}: {reason}")]
    Start {
        index: u32,
        count: u32,
        reason: String,
    },
    /// Stopping or removing segments failed: something may be left running.
    #[error("cannot stop every segment: {0}")]
    Stop(String),
}

/// A back end that runs segments. Local child processes ([`super::LocalLauncher`]) and
/// Kubernetes pods (`livefire-k8s`) implement it; the coordinator only sees this.
pub trait Launcher: Send {
    /// `local`, `kubernetes`: for messages and the journal.
    fn name(&self) -> &'static str;

    /// How long before the shared start the segments must be launched so that all can
    /// start and report ready in time (the coordinator sets `start_at` = now + this).
    fn startup_allowance(&self, count: u32) -> Duration;

    /// Checks what can be checked before anything is created (N, a reachable cluster,
    /// rights, the image); creates nothing.
    fn check<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<(), LaunchError>>;

    /// Starts every segment. On an error, whatever it started is stopped and removed
    /// before it returns.
    fn launch<'a>(
        &'a mut self,
        spec: &'a LaunchSpec,
    ) -> BoxFuture<'a, Result<Launched, LaunchError>>;

    /// Stops every segment still running and removes what `launch` created, waiting up
    /// to `grace` for them to end on their own first. Safe to call more than once.
    fn stop_all<'a>(&'a mut self, grace: Duration) -> BoxFuture<'a, Result<(), LaunchError>>;

    /// What the ledger must hold while launched segments may exist, so that `livefire
    /// recover` removes them after the coordinator died: written before `launch`, done
    /// after `stop_all` succeeded. `None` (the default) when nothing can outlive the
    /// coordinator (local children die with it). Valid after a successful `check`.
    fn undo_record(&self, _spec: &LaunchSpec) -> Option<livefire_core::undo::UndoRecord> {
        None
    }
}

/// Refuses N = 0 (every back end shares it).
pub fn check_count(count: u32) -> Result<(), LaunchError> {
    if count == 0 {
        return Err(LaunchError::Refused(
            "--segments 0: a split run needs at least one segment: give --segments 1 or more"
                .into(),
        ));
    }
    Ok(())
}
