//! `cpu.stress`: `cores` busy threads in one `livefire stress-worker` process, each busy
//! for `load` of every 100 ms, optionally pinned to `cpus`; the undo record stops the
//! worker by its token (see `stress.rs` for why a token and how the worker bounds itself).
//! Verify: the worker runs; clean once it is gone.

use livefire_core::undo::UndoRecord;
use livefire_spec::CpuStress;

use super::host_target;
use crate::stress::{self, Work, WorkerArgs};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets};

const KIND: &str = "cpu.stress";

pub(crate) struct Cpu<'a>(pub &'a CpuStress);

impl Cpu<'_> {
    fn load(&self) -> f64 {
        self.0.load.map_or(1.0, |p| p.0)
    }
}

impl Kind for Cpu<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        host_target(targets, self.0.target.as_deref(), KIND)?;
        let refuse = |why: String| Err(FaultError::Refused { kind: KIND, why });
        let allowed = stress::allowed_cpus();
        if let Some((_, why)) = self.0.mistakes().into_iter().next() {
            return refuse(why);
        }
        if !allowed.is_empty() && self.0.cores as usize > allowed.len() {
            return refuse(format!(
                "`cores: {}` is more than the {} CPUs livefire may run on: name at most {}",
                self.0.cores,
                allowed.len(),
                allowed.len()
            ));
        }
        if let Some(cpu) = self.0.cpus.iter().find(|c| !allowed.contains(c)) {
            let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
            return refuse(format!(
                "CPU {cpu} in `cpus` is not one livefire may run on (those are {})",
                list.join(", ")
            ));
        }
        Ok(())
    }

    fn prepare(&self, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
        let token = stress::new_token("cpu", activity);
        let record = UndoRecord::StressWorker {
            token: token.clone(),
        };
        Ok(Prepared::new(
            KIND,
            self.0.target.as_deref().unwrap_or(""),
            Some(record.clone()),
            vec![record.resource()],
            Burn {
                prefix: stress::token_prefix("cpu", activity),
                token,
                workers: self.0.cores,
                load: self.load(),
                cpus: self.0.cpus.clone(),
            },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Burn {
    token: String,
    /// What verify looks for: any worker of this activity (see `stress::token_prefix`).
    prefix: String,
    workers: u32,
    load: f64,
    cpus: Vec<u32>,
}

impl Action for Burn {
    fn apply(&self, cx: &Cx<'_>) -> Result<String, FaultError> {
        let pid = stress::spawn(&WorkerArgs {
            token: self.token.clone(),
            parent: std::process::id(),
            bound: stress::bound(cx.until),
            work: Work::Cpu {
                workers: self.workers,
                load: self.load,
                cpus: self.cpus.clone(),
            },
        })?;
        let (workers, load, cpus) = (self.workers, self.load, &self.cpus);
        let pinned = if cpus.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = cpus.iter().map(u32::to_string).collect();
            format!(", pinned to CPUs {}", list.join(","))
        };
        Ok(format!(
            "{workers} workers burn {}% of a core each{pinned} (stress worker pid {pid})",
            load * 100.0
        ))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        Ok(Some(worker_seen(&self.prefix, |_| true)))
    }
}

/// What a stress kind's verify sees: a worker whose token starts with `prefix` runs
/// (and `holds`), or none does.
pub(crate) fn worker_seen(prefix: &str, holds: impl Fn(u32) -> bool) -> Seen {
    let found = stress::find_prefix(prefix);
    match found.first() {
        Some(p) => Seen {
            applied: holds(p.pid),
            clean: false,
            detail: format!(
                "stress worker pid {} runs (rss {})",
                p.pid,
                stress::rss(p.pid).map_or("?".into(), super::bytes)
            ),
        },
        None => Seen {
            applied: false,
            clean: true,
            detail: format!("no stress worker {prefix}* runs"),
        },
    }
}
