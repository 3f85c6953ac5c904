//! Which targets a run would hold, for every kind of target, and whether something
//! holds one already: a run of this server going now (by the claim each target makes),
//! or an undo record in the ledger that touches the same resource (a process by pid and
//! start time, a PostgreSQL cluster by data_dir or DSN, a proxy by its listen address or
//! API and name, a network namespace or the host, a path and what is under it). An
//! `http` target is only probed and loaded, never changed, so nothing holds it.

use std::path::Path;

use livefire_core::undo::{ProcessId, ProxyOwner, UndoRecord};
use livefire_engine::ledger::Pending;
use livefire_spec::Target;

/// A target of the plan as the console holds it: its name, its claim (the same string
/// for the same resource, whatever the YAML calls it) and, for a process, which one.
#[derive(Debug, Clone)]
pub struct Claim {
    pub target: String,
    pub key: String,
    process: Option<ProcessId>,
    spec: Target,
}

/// Resolves the plan's targets into claims (a process target must be running: its pid
/// and start time are its identity). `Err` says why a target cannot be resolved.
pub fn claims(plan: &livefire_engine::plan::Plan) -> Result<Vec<Claim>, String> {
    let mut out = Vec::new();
    for (name, t) in &plan.targets {
        let mut process = None;
        let key = if let Some(sel) = &t.process {
            let p = livefire_faults::process::resolve(name, sel).map_err(|e| e.to_string())?;
            process = Some(p);
            livefire_faults::process::resource(p)
        } else if let Some(pg) = &t.postgres {
            match &pg.data_dir {
                Some(d) => format!("postgres:{}", normal(d)),
                None => format!("postgres-dsn:{}", pg.dsn),
            }
        } else if let Some(px) = &t.proxy {
            match (&px.listen, &px.api, &px.name) {
                (Some(l), _, _) => format!("proxy:{l}"),
                (None, Some(api), Some(n)) => format!("proxy-api:{api}/{n}"),
                _ => format!("proxy-target:{name}"),
            }
        } else if let Some(ns) = &t.netns {
            format!("netns={ns}")
        } else if t.host.is_some() {
            "host".to_owned()
        } else if let Some(p) = &t.path {
            format!("path:{}", normal(p))
        } else {
            // `http`: probed and loaded, never changed.
            continue;
        };
        out.push(Claim {
            target: name.clone(),
            key,
            process,
            spec: t.clone(),
        });
    }
    Ok(out)
}

/// The first undo record in `pending` that touches one of `claims`: (target, entry).
pub fn in_ledger<'a>(claims: &[Claim], pending: &'a [Pending]) -> Option<(String, &'a Pending)> {
    claims.iter().find_map(|c| {
        pending
            .iter()
            .find(|e| touches(c, &e.record))
            .map(|e| (c.target.clone(), e))
    })
}

/// Whether the undo record `r` changes the resource the target of `c` names.
fn touches(c: &Claim, r: &UndoRecord) -> bool {
    let t = &c.spec;
    match r {
        UndoRecord::Signal { process, .. } => c
            .process
            .is_some_and(|p| p.pid == process.pid && p.start_time == process.start_time),
        UndoRecord::ProxyToxic { owner, proxy, .. } | UndoRecord::ProxyEnable { owner, proxy } => {
            t.proxy.as_ref().is_some_and(|px| match owner {
                ProxyOwner::Run { listen } => px.listen.as_deref() == Some(listen.as_str()),
                ProxyOwner::Api { url } => {
                    px.api.as_deref().map(|a| a.trim_end_matches('/'))
                        == Some(url.trim_end_matches('/'))
                        && px.name.as_deref().is_none_or(|n| n == proxy)
                }
            })
        }
        UndoRecord::NftTable { netns, .. } | UndoRecord::Qdisc { netns, .. } => match netns {
            Some(n) => t.netns.as_deref() == Some(n.as_str()),
            None => t.host.is_some(),
        },
        UndoRecord::StressWorker { .. } | UndoRecord::Command { .. } => t.host.is_some(),
        UndoRecord::FillFile { path, .. } => t
            .path
            .as_deref()
            .is_some_and(|p| Path::new(&normal(path)).starts_with(normal(p))),
        UndoRecord::PostgresLogin { dsn, .. } | UndoRecord::PostgresSessions { dsn, .. } => {
            t.postgres.as_ref().is_some_and(|pg| &pg.dsn == dsn)
        }
        UndoRecord::SavedPage { pg, .. } => t.postgres.as_ref().is_some_and(|target| {
            target.data_dir.as_deref().map(normal) == Some(normal(&pg.data_dir))
        }),
        UndoRecord::KubernetesRun { .. } => false,
    }
}

/// The runs going now that hold one of `claims`: (run, target).
pub fn in_live<'a>(
    claims: &[Claim],
    live: impl IntoIterator<Item = (&'a String, &'a std::collections::BTreeSet<String>)>,
) -> Option<(String, String)> {
    for (run, held) in live {
        if let Some(c) = claims.iter().find(|c| held.contains(&c.key)) {
            return Some((run.clone(), c.target.clone()));
        }
    }
    None
}

/// A path without a trailing `/` (and `.` parts), so `/srv/data/` and `/srv/data` agree.
fn normal(p: &str) -> String {
    let path: std::path::PathBuf = Path::new(p).components().collect();
    path.display().to_string()
}
