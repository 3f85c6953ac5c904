//! Undo records: what the ledger holds for each applied fault. Each variant carries
//! enough to roll back from a fresh process (`livefire recover`), and names the
//! resource it touches so a new run can refuse to touch it while it is pending.

use serde::{Deserialize, Serialize};

/// The version of the undo-record format; the ledger refuses records it does not know.
pub const UNDO_VERSION: u32 = 1;

/// A process, identified so that a reused pid is never mistaken for it: the start time
/// (clock ticks since boot, `/proc/PID/stat` field 22) must match too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub start_time: u64,
}

/// One variant per fault family. Closed and versioned: later fault families add
/// variants (proxy toxic, nftables table, qdisc, stress child, file, saved page,
/// PostgreSQL role, Kubernetes objects).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UndoRecord {
    /// Send `signal` to the process (SIGCONT after a pause).
    Signal { process: ProcessId, signal: i32 },
    /// Run a shell command (a `restart:` after a kill, a `command` fault's rollback).
    Command {
        run: String,
        user: Option<String>,
        cwd: Option<String>,
        timeout_ms: u64,
    },
    /// Remove a toxic from a proxy.
    ProxyToxic {
        owner: ProxyOwner,
        proxy: String,
        toxic: String,
    },
    /// Enable a proxy that a fault took down.
    ProxyEnable { owner: ProxyOwner, proxy: String },
    /// Stop the `livefire stress-worker` process (`cpu.stress`, `memory.stress`) whose
    /// command line carries `token`. A token, not a pid: the record is written before the
    /// worker exists, and a token the worker was started with cannot name another process.
    StressWorker { token: String },
    /// Delete the file a `disk.fill` wrote, only if it is still ours: it starts with
    /// `marker` and is no longer than `size` bytes.
    FillFile {
        path: String,
        marker: String,
        size: u64,
    },
    /// Delete livefire's own nftables table (family `inet`) in a network namespace
    /// (`None`: the host's), only while its comment is still `token`: a table of the same
    /// name that another run made is never touched.
    NftTable {
        netns: Option<String>,
        table: String,
        token: String,
    },
    /// Delete the root qdisc livefire put on each device of a network namespace (`None`:
    /// the host's), only where it is still livefire's (kind `tbf`, handle `handle`); the
    /// kernel then gives the device back its default qdisc, which is what was there.
    Qdisc {
        netns: Option<String>,
        devices: Vec<String>,
        handle: u16,
    },
    /// Let a PostgreSQL role log in again (`postgres.revoke_login`), if it could before.
    /// `dsn` is the target's, without its password (the ledger holds no secret: a fresh
    /// process takes it from `PGPASSWORD`).
    PostgresLogin {
        dsn: String,
        role: String,
        had_login: bool,
    },
    /// Close the sessions a fault holds open (`postgres.exhaust_connections`,
    /// `postgres.lock_table`) or stop one that repeats (`postgres.terminate_connections`
    /// with `every`). They are written here before they exist, so they are named by what
    /// they will carry: `application_name` = `tag`, started at or after `since` (the
    /// server's clock at prepare). In the process that holds them they are closed; from a
    /// fresh process exactly the backends so named are terminated.
    PostgresSessions {
        dsn: String,
        tag: String,
        since: String,
        /// What the sessions are for, for people: `40 connections held`, `table orders locked`.
        what: String,
    },
    /// Put back a page of a PostgreSQL relation's file that `postgres.corrupt` damaged.
    /// The page's bytes can only be read once the server is stopped (before that the
    /// server may hold a newer copy in memory), which is after this record is in the
    /// ledger: so `apply` saves them, fsync'd, in the file `copy` before it writes any
    /// damage, and undo reads them there. No copy means nothing was damaged.
    SavedPage {
        /// The cluster: stopped and started around the write, with `bin_dir`'s `pg_ctl`
        /// as `user` (PostgreSQL refuses root).
        pg: PgCluster,
        /// The relation's file (absolute, under the data directory).
        file: String,
        /// The page's offset in `file` and its length, in bytes.
        offset: u64,
        len: u64,
        /// The saved copy: the page as it was and the damage written (JSON).
        copy: String,
    },
    /// Delete a split run's Kubernetes objects (its Indexed Job, whose pods go with it,
    /// and its ConfigMap), found by the run's label `livefire.dev/run=run` in
    /// `namespace`, through the kubeconfig `context` (`None`: the current context, or
    /// the in-cluster configuration). `cluster` is the API's URL, for people.
    KubernetesRun {
        context: Option<String>,
        cluster: String,
        namespace: String,
        run: String,
    },
}

/// How to stop and start one PostgreSQL cluster from a fresh process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgCluster {
    pub data_dir: String,
    pub bin_dir: String,
    pub user: Option<String>,
    /// The server's command-line options as it ran (`postmaster.opts`, the program
    /// left out): a server started with `-p PORT` on its command line comes back on it.
    pub options: String,
    /// Where the server's output goes (`pg_ctl -l`): the file it was writing to.
    pub log: String,
}

/// Whose proxy a proxy fault changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "owner", rename_all = "snake_case")]
pub enum ProxyOwner {
    /// A proxy the run started in-process; it dies with the run, and its toxics with it.
    Run { listen: String },
    /// A `livefire proxy` or Toxiproxy server, changed through its HTTP API.
    Api { url: String },
}

impl ProxyOwner {
    fn resource(&self, proxy: &str) -> String {
        match self {
            ProxyOwner::Run { listen } => format!("proxy:{listen}"),
            ProxyOwner::Api { url } => format!("proxy-api:{url}/{proxy}"),
        }
    }
}

impl UndoRecord {
    /// The resource this record touches, as "the same target" is judged.
    pub fn resource(&self) -> String {
        match self {
            UndoRecord::Signal { process, .. } => {
                format!("process:{}@{}", process.pid, process.start_time)
            }
            UndoRecord::Command { run, .. } => format!("command:{run}"),
            UndoRecord::ProxyToxic { owner, proxy, .. }
            | UndoRecord::ProxyEnable { owner, proxy } => owner.resource(proxy),
            UndoRecord::StressWorker { token } => format!("stress:{token}"),
            UndoRecord::FillFile { path, .. } => format!("file:{path}"),
            UndoRecord::NftTable { netns, table, .. } => {
                format!("nft:{}/{table}", netns_resource(netns))
            }
            UndoRecord::Qdisc { netns, devices, .. } => {
                format!("qdisc:{}/{}", netns_resource(netns), devices.join(","))
            }
            UndoRecord::SavedPage { pg, .. } => format!("postgres:{}", pg.data_dir),
            UndoRecord::PostgresLogin { dsn, role, .. } => format!("postgres-role:{dsn}#{role}"),
            UndoRecord::PostgresSessions { dsn, tag, .. } => {
                format!("postgres-sessions:{dsn}#{tag}")
            }
            UndoRecord::KubernetesRun {
                cluster,
                namespace,
                run,
                ..
            } => format!("kubernetes:{cluster}/{namespace}/{run}"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            UndoRecord::Signal { process, signal } => {
                format!("send signal {signal} to pid {}", process.pid)
            }
            UndoRecord::Command { run, user, .. } => match user {
                Some(u) => format!("run `{run}` as {u}"),
                None => format!("run `{run}`"),
            },
            UndoRecord::ProxyToxic { proxy, toxic, .. } => {
                format!("remove toxic `{toxic}` from proxy `{proxy}`")
            }
            UndoRecord::ProxyEnable { proxy, .. } => format!("enable proxy `{proxy}`"),
            UndoRecord::StressWorker { token } => format!("stop stress worker {token}"),
            UndoRecord::FillFile { path, .. } => format!("delete fill file {path}"),
            UndoRecord::NftTable { netns, table, .. } => {
                format!(
                    "delete nftables table `{table}` in {}",
                    netns_display(netns)
                )
            }
            UndoRecord::Qdisc { netns, devices, .. } => format!(
                "remove the tbf qdisc from {} in {}",
                devices.join(", "),
                netns_display(netns)
            ),
            UndoRecord::SavedPage {
                file, offset, len, ..
            } => format!("restore the {len} bytes at offset {offset} of {file}"),
            UndoRecord::PostgresLogin {
                role, had_login, ..
            } => {
                if *had_login {
                    format!("let PostgreSQL role `{role}` log in again")
                } else {
                    format!("leave PostgreSQL role `{role}` without LOGIN, as it was")
                }
            }
            UndoRecord::PostgresSessions { what, tag, .. } => {
                format!("end the PostgreSQL sessions of `{what}` (application_name {tag})")
            }
            UndoRecord::KubernetesRun { namespace, run, .. } => format!(
                "delete the Job and ConfigMap of split run {run} in Kubernetes namespace {namespace}"
            ),
        }
    }
}

/// A network namespace as a resource: its name, or `host`.
fn netns_resource(netns: &Option<String>) -> String {
    match netns {
        Some(n) => format!("netns={n}"),
        None => "host".to_owned(),
    }
}

/// A network namespace for people.
fn netns_display(netns: &Option<String>) -> String {
    match netns {
        Some(n) => format!("network namespace `{n}`"),
        None => "the host".to_owned(),
    }
}
