//! Which resource each target of a plan names, and whether a pending undo record in the
//! ledger touches it: the one judgement of "the same target" that `livefire run` and the
//! console share. A process is the same by pid and start time, a PostgreSQL cluster by
//! `data_dir` (saved pages) or by the server its DSN reaches (roles, sessions), a proxy by
//! its listen address or API URL and name, a network namespace by name, the host by
//! being the host (nftables tables and qdiscs outside a namespace, stress workers,
//! commands; a stress fault without `target:` claims it too), a path by the files
//! under it. An `http` target is only probed and loaded,
//! never changed, so nothing holds it.

use std::path::{Path, PathBuf};

use livefire_core::undo::{ProcessId, ProxyOwner, UndoRecord};
use livefire_spec::Target;

use crate::ledger::Pending;

/// One target of a plan as the resource it names.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The target's name as the file writes it.
    pub target: String,
    /// The resource for people: `pid 4242`, `PostgreSQL cluster /srv/pg`, `path /srv/data`.
    pub what: String,
    /// Names of the resource, equal for the same resource whatever the file calls it
    /// (a run going now holds these).
    pub keys: Vec<String>,
    process: Option<ProcessId>,
    spec: Target,
}

/// A target held by a pending ledger entry.
#[derive(Debug, Clone, Copy)]
pub struct Held<'a> {
    pub claim: &'a Claim,
    pub entry: &'a Pending,
}

impl Claim {
    /// The claim of target `name`; `process` is the process a `process` target resolved
    /// to (its pid and start time are its identity). `None` for an `http` target, or a
    /// `process` target without its process.
    pub fn of(name: &str, t: &Target, process: Option<ProcessId>) -> Option<Claim> {
        let (what, keys) = if t.process.is_some() {
            let p = process?;
            (
                format!("pid {}", p.pid),
                vec![livefire_faults::process::resource(p)],
            )
        } else if let Some(pg) = &t.postgres {
            let mut keys: Vec<String> = pg_endpoints(&pg.dsn)
                .iter()
                .map(|(h, p)| format!("postgres-at:{h}:{p}"))
                .collect();
            let what = match &pg.data_dir {
                Some(d) => {
                    keys.insert(0, format!("postgres:{}", normal(d)));
                    format!("PostgreSQL cluster {d}")
                }
                None => "PostgreSQL".to_owned(),
            };
            if keys.is_empty() {
                keys.push(format!("postgres-dsn:{}", pg.dsn));
            }
            (what, keys)
        } else if let Some(px) = &t.proxy {
            match (&px.listen, &px.api, &px.name) {
                (Some(l), _, _) => (format!("proxy {l}"), vec![format!("proxy:{l}")]),
                (None, Some(api), Some(n)) => (
                    format!("proxy `{n}` at {api}"),
                    vec![format!("proxy-api:{}/{n}", api.trim_end_matches('/'))],
                ),
                _ => ("proxy".to_owned(), vec![format!("proxy-target:{name}")]),
            }
        } else if let Some(ns) = &t.netns {
            (
                format!("network namespace `{ns}`"),
                vec![format!("netns={ns}")],
            )
        } else if t.host.is_some() {
            ("the host".to_owned(), vec!["host".to_owned()])
        } else if let Some(p) = &t.path {
            (format!("path {p}"), vec![format!("path:{}", normal(p))])
        } else {
            // `http`: probed and loaded, never changed.
            return None;
        };
        Some(Claim {
            target: name.to_owned(),
            what,
            keys,
            process,
            spec: t.clone(),
        })
    }

    /// The machine livefire runs on, as a fault without a `target:` acts on it
    /// (`cpu.stress`, `memory.stress`), named by its activity as people read
    /// it: held by what holds a `host` target (stress workers, commands, tables and
    /// qdiscs outside a namespace).
    pub fn this_machine(activity: &str) -> Claim {
        Claim {
            target: activity.to_owned(),
            what: "this machine: a fault without `target:` acts on it".to_owned(),
            keys: vec!["host".to_owned()],
            process: None,
            spec: Target {
                host: Some(Default::default()),
                ..Default::default()
            },
        }
    }

    /// Whether the pending entry `e` changes (or will change back) this claim's resource.
    pub fn held_by(&self, e: &Pending) -> bool {
        if let Some(p) = self.process {
            // A process fault names the process in its resources whatever its undo is
            // (a kill's undo is the target's `restart:` command).
            if e.resources.contains(&livefire_faults::process::resource(p)) {
                return true;
            }
        }
        self.touched_by(&e.record)
    }

    /// Whether the undo record `r` changes the resource this claim names.
    pub fn touched_by(&self, r: &UndoRecord) -> bool {
        let t = &self.spec;
        match r {
            UndoRecord::Signal { process, .. } => self
                .process
                .is_some_and(|p| p.pid == process.pid && p.start_time == process.start_time),
            UndoRecord::ProxyToxic { owner, proxy, .. }
            | UndoRecord::ProxyEnable { owner, proxy } => {
                t.proxy.as_ref().is_some_and(|px| match owner {
                    ProxyOwner::Run { listen } => px
                        .listen
                        .as_deref()
                        .is_some_and(|l| same_address(l, listen)),
                    ProxyOwner::Api { url } => {
                        px.listen.is_none()
                            && px.api.as_deref().map(|a| a.trim_end_matches('/'))
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
                t.postgres.as_ref().is_some_and(|pg| {
                    let (mine, theirs) = (pg_endpoints(&pg.dsn), pg_endpoints(dsn));
                    if mine.is_empty() || theirs.is_empty() {
                        // A DSN that does not parse can only be compared as written.
                        &pg.dsn == dsn
                    } else {
                        mine.iter().any(|e| theirs.contains(e))
                    }
                })
            }
            UndoRecord::SavedPage { pg, .. } => t.postgres.as_ref().is_some_and(|target| {
                target.data_dir.as_deref().map(normal) == Some(normal(&pg.data_dir))
            }),
            // A split run's own Job and ConfigMap: never a target of an experiment.
            UndoRecord::KubernetesRun { .. } => false,
        }
    }
}

/// The claims of a plan's targets. A `process` target is resolved now (it must be
/// running: its pid and start time are its identity).
pub fn claims(
    plan: &crate::plan::Plan,
) -> Result<Vec<Claim>, livefire_faults::process::ProcessError> {
    let mut out = Vec::new();
    for (name, t) in &plan.targets {
        let process = match &t.process {
            Some(sel) => Some(livefire_faults::process::resolve(name, sel)?),
            None => None,
        };
        out.extend(Claim::of(name, t, process));
    }
    out.extend(machine_claims(plan));
    Ok(out)
}

/// A claim of this machine for each stress fault of `plan` without a `target:` (it
/// acts on this machine). A `command` fault is not one: what it changes is its own
/// business, and runs with commands may go side by side.
pub fn machine_claims(plan: &crate::plan::Plan) -> Vec<Claim> {
    use livefire_spec::Fault;
    plan.activities
        .iter()
        .filter(|a| match &a.body {
            crate::plan::Body::Fault(f) => match f {
                Fault::CpuStress(c) => c.target.is_none(),
                Fault::MemoryStress(m) => m.target.is_none(),
                _ => false,
            },
            _ => false,
        })
        .map(|a| Claim::this_machine(&a.name))
        .collect()
}

/// The first of `claims` that an entry of `pending` holds, with that entry.
pub fn in_ledger<'a>(claims: &'a [Claim], pending: &'a [Pending]) -> Option<Held<'a>> {
    claims.iter().find_map(|claim| {
        pending
            .iter()
            .find(|e| claim.held_by(e))
            .map(|entry| Held { claim, entry })
    })
}

/// The servers a DSN reaches, as (host, port): every loopback name and every Unix
/// socket folder is `local` (one machine's port is one server), a missing port is 5432.
/// Empty when the DSN does not parse.
fn pg_endpoints(dsn: &str) -> Vec<(String, u16)> {
    use tokio_postgres::config::Host;
    let Ok(config) = dsn.parse::<tokio_postgres::Config>() else {
        return Vec::new();
    };
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => local_or(name),
            Host::Unix(_) => "local".to_owned(),
        })
        .collect();
    if hosts.is_empty() {
        // libpq's default: the local server's Unix socket.
        hosts.push("local".to_owned());
    }
    let ports = config.get_ports();
    hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            // One port for every host, or one per host (libpq's rule).
            let port = match ports.len() {
                0 => 5432,
                1 => ports[0],
                _ => ports.get(i).copied().unwrap_or(5432),
            };
            (h.clone(), port)
        })
        .collect()
}

/// `local` for a loopback name, else the name in lower case.
fn local_or(host: &str) -> String {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    if loopback {
        "local".to_owned()
    } else {
        h.to_ascii_lowercase()
    }
}

/// Whether two `host:port` listen addresses are the same: by their parsed socket
/// addresses when both parse, else as written.
fn same_address(a: &str, b: &str) -> bool {
    match (
        a.parse::<std::net::SocketAddr>(),
        b.parse::<std::net::SocketAddr>(),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// A path without a trailing `/` (and `.` parts), so `/srv/data/` and `/srv/data` agree.
fn normal(p: &str) -> String {
    let path: PathBuf = Path::new(p).components().collect();
    path.display().to_string()
}
