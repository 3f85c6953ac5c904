//! The experiment file's types: the whole format of EXPERIMENT.md, including kinds that
//! later parts of livefire run. The fault kinds are one closed enum, so every kind is
//! listed in exactly one place.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::values::{Duration, Percent, Quantity, Rate, Share, Size, SourceAddress, ToxTime};

/// One experiment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Format version; this livefire reads version 1.
    pub version: u32,
    /// What the experiment shows, in a sentence.
    pub title: String,
    #[serde(default)]
    pub settings: Settings,
    /// Default values of `${name}` variables; `--var name=value` overrides them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// The same file in every environment: `--env NAME` picks one, whose `vars`,
    /// `targets` and `settings` override the file's key by key. Resolved away when the
    /// file is loaded: a loaded experiment holds none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, Environment>,
    /// Everything the experiment may touch; nothing else is ever touched.
    #[serde(default)]
    pub targets: BTreeMap<String, Target>,
    /// Processes livefire starts before the run and stops after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup: Vec<SetupProcess>,
    /// The steady state: what must hold before, during and after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hypothesis: Vec<Condition>,
    /// Conditions that abort the run at once when they do not hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<Condition>,
    /// Activities (faults, loads, fuzz campaigns) on one clock.
    pub timeline: Vec<Activity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<Scenario>,
    /// Extra steps after every fault is undone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollbacks: Vec<RollbackStep>,
    /// The team's own alert checks, run while the timeline runs: detectors in the
    /// report beside the hypothesis. They judge nothing: a watch that fires is a sign
    /// that the team's alerting would have noticed, not a deviation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<Watch>,
}

impl Experiment {
    /// The metric prefix of each load and fuzz activity, by timeline index: its `name`,
    /// else `load`, `load-2`, ... and `fuzz`, `fuzz-2`, ... in timeline order.
    pub fn workload_names(&self) -> Vec<(usize, String)> {
        let (mut loads, mut fuzzes) = (0, 0);
        let numbered = |base: &str, n: u32| {
            if n == 1 {
                base.to_owned()
            } else {
                format!("{base}-{n}")
            }
        };
        self.timeline
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                if let Some(l) = &a.load {
                    loads += 1;
                    return Some((i, l.name.clone().unwrap_or_else(|| numbered("load", loads))));
                }
                let f = a.fuzz.as_ref()?;
                fuzzes += 1;
                Some((
                    i,
                    f.name.clone().unwrap_or_else(|| numbered("fuzz", fuzzes)),
                ))
            })
            .collect()
    }
}

/// One environment of `environments:`: what it overrides, key by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// `run` refuses this environment without `--confirm production`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub production: bool,
    /// Variables of this environment; they override the file's `vars`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Targets of this environment; each replaces the file's target of its name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, Target>,
    /// Settings of this environment; each key overrides the file's.
    #[serde(default)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Seed of every random choice; random (and journaled) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Hard cap on the run; default: timeline end + 5 min.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Duration>,
    /// Parent folder of run folders; default `.livefire/runs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    /// Default probe interval; default 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_every: Option<Duration>,
    /// How long the hypothesis may take to hold again after rollback; default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<Duration>,
    /// Lowest finding severity that fails the verdict; default high.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on: Option<FailOn>,
    /// For split runs, which are not built yet: refused by validation until they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<SegmentSettings>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentSettings {
    pub min_alive: u32,
}

/// A named thing under test. Exactly one of the kind keys is set; `restart` and
/// `user` apply to process targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Shell command that brings a killed process back (`sh -c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// User to run `restart` as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The kinds of target, for messages and compatibility checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Http,
    Process,
    Postgres,
    Proxy,
    Netns,
    Host,
    Path,
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Http => "http",
            TargetKind::Process => "process",
            TargetKind::Postgres => "postgres",
            TargetKind::Proxy => "proxy",
            TargetKind::Netns => "netns",
            TargetKind::Host => "host",
            TargetKind::Path => "path",
        }
    }
}

impl Target {
    /// The kinds this target declares (exactly one when valid).
    pub fn kinds(&self) -> Vec<TargetKind> {
        let mut k = Vec::new();
        if self.http.is_some() {
            k.push(TargetKind::Http)
        }
        if self.process.is_some() {
            k.push(TargetKind::Process)
        }
        if self.postgres.is_some() {
            k.push(TargetKind::Postgres)
        }
        if self.proxy.is_some() {
            k.push(TargetKind::Proxy)
        }
        if self.netns.is_some() {
            k.push(TargetKind::Netns)
        }
        if self.host.is_some() {
            k.push(TargetKind::Host)
        }
        if self.path.is_some() {
            k.push(TargetKind::Path)
        }
        k
    }

    /// What `${name}` stands for, if this kind of target has an address.
    pub fn address(&self) -> Option<&str> {
        if let Some(url) = &self.http {
            return Some(url);
        }
        if let Some(pg) = &self.postgres {
            return Some(&pg.dsn);
        }
        self.proxy.as_ref().and_then(|p| p.listen.as_deref())
    }
}

/// How to find a process: exactly one of `pid`, `pidfile` (its first line), `name`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pidfile: Option<String>,
    /// Exactly one running process whose name, or basename of argv[0] or argv[1], is this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresTarget {
    pub dsn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A run-owned proxy (`listen` + `upstream`) or one on an existing server (`api` + `name`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostTarget {}

/// A process the experiment starts itself; it becomes a `process` target of its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupProcess {
    pub name: String,
    /// Run with `sh -c`.
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<Ready>,
    /// How long it may take to become ready; default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory; default: the experiment file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `restart` for the process target this creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Ready {
    Http(ReadyHttp),
    Tcp(ReadyTcp),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadyHttp {
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadyTcp {
    pub address: String,
}

/// A hypothesis condition or a guardrail: a probe with `expect`, or a metric with one
/// comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Quantity>,
    /// Probe interval; default `settings.probe_every`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// During faults, a hypothesis probe may fail this long in a row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerate: Option<Duration>,
    /// Window of a metric condition, or how long a guardrail probe must fail in a row.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Duration>,
}

/// A comparison of a metric against a bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Comparison {
    Below,
    Above,
    AtMost,
    AtLeast,
    Equals,
}

impl Comparison {
    pub fn name(self) -> &'static str {
        match self {
            Comparison::Below => "below",
            Comparison::Above => "above",
            Comparison::AtMost => "at_most",
            Comparison::AtLeast => "at_least",
            Comparison::Equals => "equals",
        }
    }

    /// Whether `value` satisfies this comparison against `bound`.
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Comparison::Below => value < bound,
            Comparison::Above => value > bound,
            Comparison::AtMost => value <= bound,
            Comparison::AtLeast => value >= bound,
            Comparison::Equals => (value - bound).abs() <= f64::EPSILON * bound.abs().max(1.0),
        }
    }
}

impl Condition {
    /// The comparisons this condition states (exactly one when valid).
    pub fn comparisons(&self) -> Vec<(Comparison, Quantity)> {
        [
            (Comparison::Below, self.below),
            (Comparison::Above, self.above),
            (Comparison::AtMost, self.at_most),
            (Comparison::AtLeast, self.at_least),
            (Comparison::Equals, self.equals),
        ]
        .into_iter()
        .filter_map(|(c, q)| q.map(|q| (c, q)))
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Probe {
    Http(HttpProbe),
    Tcp(TcpProbe),
    Command(CommandProbe),
    Sql(SqlProbe),
}

impl Probe {
    pub fn kind(&self) -> &'static str {
        match self {
            Probe::Http(_) => "http",
            Probe::Tcp(_) => "tcp",
            Probe::Command(_) => "command",
            Probe::Sql(_) => "sql",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpProbe {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandProbe {
    pub run: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlProbe {
    pub dsn: String,
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// What a probe's sample must show. Which keys apply depends on the probe kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// JSON path (`$.a.b[0]`) to the value it must equal.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_below: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_contains: Option<String>,
}

impl Expect {
    /// The keys set, paired with the probe kinds that accept each.
    pub fn keys(&self) -> Vec<(&'static str, &'static [&'static str])> {
        let mut keys = Vec::new();
        let mut add = |set: bool, key, kinds| {
            if set {
                keys.push((key, kinds))
            }
        };
        add(self.status.is_some(), "status", &["http"][..]);
        add(self.body_contains.is_some(), "body_contains", &["http"]);
        add(!self.json.is_empty(), "json", &["http"]);
        add(
            self.latency_below.is_some(),
            "latency_below",
            &["http", "tcp", "sql", "command"],
        );
        // A command probe is judged by `exit_code` (default 0): `ok` would be ignored.
        add(self.ok.is_some(), "ok", &["http", "tcp", "sql"]);
        add(self.exit_code.is_some(), "exit_code", &["command"]);
        add(
            self.stdout_contains.is_some(),
            "stdout_contains",
            &["command"],
        );
        add(self.rows.is_some(), "rows", &["sql"]);
        add(self.value.is_some(), "value", &["sql"]);
        add(self.error_contains.is_some(), "error_contains", &["sql"]);
        keys
    }
}

/// One entry of the timeline: exactly one of `fault`, `load`, `fuzz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Activity {
    pub at: Duration,
    #[serde(rename = "for")]
    pub for_: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuzz: Option<Fuzz>,
    /// On a fault: some detector must notice it within this long after it is applied,
    /// else the hypothesis fails (a drill of detection, not only of resilience).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noticed_within: Option<Duration>,
}

/// Which way a proxy toxic acts: upstream is client to server, downstream server to client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Upstream,
    Downstream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
    Both,
}

/// Every fault kind. The names are the contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Fault {
    #[serde(rename = "process.kill")]
    ProcessKill(ProcessKill),
    #[serde(rename = "process.pause")]
    ProcessPause(TargetOnly),
    #[serde(rename = "process.restart")]
    ProcessRestart(ProcessKill),
    #[serde(rename = "command")]
    Command(CommandFault),
    #[serde(rename = "proxy.latency")]
    ProxyLatency(ProxyLatency),
    #[serde(rename = "proxy.bandwidth")]
    ProxyBandwidth(ProxyBandwidth),
    #[serde(rename = "proxy.slow_close")]
    ProxySlowClose(ProxyDelay),
    #[serde(rename = "proxy.timeout")]
    ProxyTimeout(ProxyTimeoutToxic),
    #[serde(rename = "proxy.reset_peer")]
    ProxyResetPeer(ProxyTimeoutToxic),
    #[serde(rename = "proxy.slicer")]
    ProxySlicer(ProxySlicer),
    #[serde(rename = "proxy.limit_data")]
    ProxyLimitData(ProxyLimitData),
    #[serde(rename = "proxy.down")]
    ProxyDown(TargetOnly),
    #[serde(rename = "proxy.drop")]
    ProxyDrop(ProxyRate),
    #[serde(rename = "proxy.corrupt")]
    ProxyCorrupt(ProxyRate),
    #[serde(rename = "http.abort")]
    HttpAbort(HttpAbort),
    #[serde(rename = "http.delay")]
    HttpDelay(HttpDelay),
    #[serde(rename = "net.partition")]
    NetPartition(NetPartition),
    #[serde(rename = "net.loss")]
    NetLoss(NetLoss),
    #[serde(rename = "net.bandwidth")]
    NetBandwidth(NetBandwidth),
    #[serde(rename = "cpu.stress")]
    CpuStress(CpuStress),
    #[serde(rename = "memory.stress")]
    MemoryStress(MemoryStress),
    #[serde(rename = "disk.fill")]
    DiskFill(DiskFill),
    #[serde(rename = "postgres.corrupt")]
    PostgresCorrupt(PostgresCorrupt),
    #[serde(rename = "postgres.revoke_login")]
    PostgresRevokeLogin(PostgresRole),
    #[serde(rename = "postgres.terminate_connections")]
    PostgresTerminateConnections(PostgresTerminate),
    #[serde(rename = "postgres.exhaust_connections")]
    PostgresExhaustConnections(PostgresExhaust),
    #[serde(rename = "postgres.lock_table")]
    PostgresLockTable(PostgresLockTable),
    /// A game-day curveball: a key person is gone. The responder is told (on their
    /// page, through `notify:`) to step out; their marks are refused until it ends.
    #[serde(rename = "person.away")]
    PersonAway(Person),
    /// A game-day curveball: a responder has no access; their marks are refused until it
    /// ends.
    #[serde(rename = "person.no_access")]
    PersonNoAccess(Person),
}

impl Fault {
    /// The kind as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::ProcessKill(_) => "process.kill",
            Fault::ProcessPause(_) => "process.pause",
            Fault::ProcessRestart(_) => "process.restart",
            Fault::Command(_) => "command",
            Fault::ProxyLatency(_) => "proxy.latency",
            Fault::ProxyBandwidth(_) => "proxy.bandwidth",
            Fault::ProxySlowClose(_) => "proxy.slow_close",
            Fault::ProxyTimeout(_) => "proxy.timeout",
            Fault::ProxyResetPeer(_) => "proxy.reset_peer",
            Fault::ProxySlicer(_) => "proxy.slicer",
            Fault::ProxyLimitData(_) => "proxy.limit_data",
            Fault::ProxyDown(_) => "proxy.down",
            Fault::ProxyDrop(_) => "proxy.drop",
            Fault::ProxyCorrupt(_) => "proxy.corrupt",
            Fault::HttpAbort(_) => "http.abort",
            Fault::HttpDelay(_) => "http.delay",
            Fault::NetPartition(_) => "net.partition",
            Fault::NetLoss(_) => "net.loss",
            Fault::NetBandwidth(_) => "net.bandwidth",
            Fault::CpuStress(_) => "cpu.stress",
            Fault::MemoryStress(_) => "memory.stress",
            Fault::DiskFill(_) => "disk.fill",
            Fault::PostgresCorrupt(_) => "postgres.corrupt",
            Fault::PostgresRevokeLogin(_) => "postgres.revoke_login",
            Fault::PostgresTerminateConnections(_) => "postgres.terminate_connections",
            Fault::PostgresExhaustConnections(_) => "postgres.exhaust_connections",
            Fault::PostgresLockTable(_) => "postgres.lock_table",
            Fault::PersonAway(_) => "person.away",
            Fault::PersonNoAccess(_) => "person.no_access",
        }
    }

    /// The responder a human curveball (`person.*`) is about; `None` for the faults
    /// that change a system.
    pub fn responder(&self) -> Option<&str> {
        match self {
            Fault::PersonAway(p) | Fault::PersonNoAccess(p) => Some(&p.responder),
            _ => None,
        }
    }

    /// The target this fault acts on (`command` names none: it acts through its own
    /// commands) and the target kinds it accepts.
    pub fn target(&self) -> Option<(&str, &'static [TargetKind])> {
        use TargetKind::*;
        const PROCESS: &[TargetKind] = &[Process];
        const PROXY: &[TargetKind] = &[Proxy];
        const NET: &[TargetKind] = &[Netns, Host];
        const PG: &[TargetKind] = &[Postgres];
        let (t, kinds) = match self {
            Fault::ProcessKill(f) | Fault::ProcessRestart(f) => (&f.target, PROCESS),
            Fault::ProcessPause(f) => (&f.target, PROCESS),
            Fault::Command(_) => return None,
            // A person is not a target: `responder` names one of `scenario.responders`.
            Fault::PersonAway(_) | Fault::PersonNoAccess(_) => return None,
            Fault::ProxyLatency(f) => (&f.target, PROXY),
            Fault::ProxyBandwidth(f) => (&f.target, PROXY),
            Fault::ProxySlowClose(f) => (&f.target, PROXY),
            Fault::ProxyTimeout(f) | Fault::ProxyResetPeer(f) => (&f.target, PROXY),
            Fault::ProxySlicer(f) => (&f.target, PROXY),
            Fault::ProxyLimitData(f) => (&f.target, PROXY),
            Fault::ProxyDown(f) => (&f.target, PROXY),
            Fault::ProxyDrop(f) | Fault::ProxyCorrupt(f) => (&f.target, PROXY),
            Fault::HttpAbort(f) => (&f.target, PROXY),
            Fault::HttpDelay(f) => (&f.target, PROXY),
            Fault::NetPartition(f) => (&f.target, NET),
            Fault::NetLoss(f) => (&f.target, NET),
            Fault::NetBandwidth(f) => (&f.target, NET),
            Fault::CpuStress(f) => (f.target.as_ref()?, &[Host][..]),
            Fault::MemoryStress(f) => (f.target.as_ref()?, &[Host][..]),
            Fault::DiskFill(f) => (&f.target, &[Path][..]),
            Fault::PostgresCorrupt(f) => (&f.target, PG),
            Fault::PostgresRevokeLogin(f) => (&f.target, PG),
            Fault::PostgresTerminateConnections(f) => (&f.target, PG),
            Fault::PostgresExhaustConnections(f) => (&f.target, PG),
            Fault::PostgresLockTable(f) => (&f.target, PG),
        };
        Some((t.as_str(), kinds))
    }
}

/// Who a human curveball is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// One of `scenario.responders`.
    pub responder: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetOnly {
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessKill {
    pub target: String,
    /// Signal name (`SIGKILL`, `TERM`, ...) or number; default SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandFault {
    pub apply: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Time limit of each command; default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyLatency {
    pub target: String,
    pub latency: ToxTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<ToxTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<Share>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyBandwidth {
    pub target: String,
    /// KB/s as Toxiproxy reads it.
    pub rate: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<Share>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyDelay {
    pub target: String,
    pub delay: ToxTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<Share>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyTimeoutToxic {
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ToxTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<Share>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxySlicer {
    pub target: String,
    pub average_size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_variation: Option<u64>,
    /// Microseconds as Toxiproxy reads it, or a duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<ToxTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<Share>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyLimitData {
    pub target: String,
    pub bytes: Size,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<Share>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyRate {
    pub target: String,
    pub rate: Percent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<Share>,
}

/// Which HTTP requests an L7 fault applies to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpAbort {
    pub target: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Share of matching requests; default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
    /// Only the first N matching requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<HttpMatch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpDelay {
    pub target: String,
    pub delay: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<HttpMatch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetPartition {
    pub target: String,
    /// Addresses or CIDR ranges cut off; required on a `host` target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetLoss {
    pub target: String,
    pub rate: Percent,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetBandwidth {
    pub target: String,
    /// Egress rate in bytes per second: `1MiB` means 1 MiB/s.
    pub rate: Size,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CpuStress {
    /// A `host` target; default: the machine livefire runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// How many busy workers (threads of one worker process).
    pub cores: u32,
    /// Share of each core to burn; default 100%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Percent>,
    /// Pin the workers to these CPUs (numbers as in /proc/cpuinfo), round-robin;
    /// default: unpinned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryStress {
    /// A `host` target; default: the machine livefire runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// How much memory to hold, every page touched.
    pub size: Size,
    /// What must stay available to the rest of the system (MemAvailable, or the cgroup's
    /// room); default the larger of 10% of memory and 256MiB, never below 64MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_available: Option<Size>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskFill {
    /// A `path` target: the directory the fill file is written in.
    pub target: String,
    /// How much to write; default: until `keep_free` is left. Not with `level`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Fill until the filesystem is this full (used / (used + available), as `df`
    /// shows it). Not with `size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Percent>,
    /// What must stay free for the system; default the larger of 5% of the filesystem
    /// and 16MiB, never below 16MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_free: Option<Size>,
}

/// The least `keep_available` a `memory.stress` may name: the system needs room to run.
pub const MEMORY_KEEP_FLOOR: u64 = 64 << 20;
/// The least `keep_free` a `disk.fill` may name: the system needs room to run.
pub const DISK_KEEP_FREE_FLOOR: u64 = 16 << 20;
/// The least a `disk.fill` writes: less fills nothing worth measuring.
pub const DISK_FILL_MIN: u64 = 4 << 10;

/// A refusal the attributes alone show: the attribute it is about, and why.
pub type Mistake = (&'static str, String);

impl CpuStress {
    /// What is wrong with the attributes alone (`validate` locates each; the fault's
    /// `check` refuses the first).
    pub fn mistakes(&self) -> Vec<Mistake> {
        let mut m = Vec::new();
        if self.cores == 0 {
            m.push((
                "cores",
                "`cores: 0` burns nothing: name at least 1".to_owned(),
            ));
        }
        if let Some(load) = self.load
            && !(load.0 > 0.0 && load.0 <= 1.0)
        {
            m.push((
                "load",
                format!("`load` must be above 0% and at most 100% of a core, not {load}"),
            ));
        }
        m
    }
}

impl MemoryStress {
    /// What is wrong with the attributes alone.
    pub fn mistakes(&self) -> Vec<Mistake> {
        let mut m = Vec::new();
        if self.size.0 == 0 {
            m.push((
                "size",
                "`size: 0` holds nothing: name how much memory to hold".to_owned(),
            ));
        }
        if let Some(k) = self.keep_available
            && k.0 < MEMORY_KEEP_FLOOR
        {
            m.push((
                "keep_available",
                format!(
                    "`keep_available: {k}` is below the floor of {}: the system needs room to keep running",
                    Size(MEMORY_KEEP_FLOOR)
                ),
            ));
        }
        m
    }
}

impl DiskFill {
    /// What is wrong with the attributes alone.
    pub fn mistakes(&self) -> Vec<Mistake> {
        let mut m = Vec::new();
        if let (Some(_), Some(_)) = (self.size, self.level) {
            m.push(("level", "name `size` or `level`, not both".to_owned()));
        }
        if let Some(size) = self.size
            && size.0 < DISK_FILL_MIN
        {
            m.push((
                "size",
                format!(
                    "`size: {size}` fills nothing: name at least {}",
                    Size(DISK_FILL_MIN)
                ),
            ));
        }
        if let Some(level) = self.level
            && !(level.0 > 0.0 && level.0 < 1.0)
        {
            m.push((
                "level",
                format!("`level` must be above 0% and below 100%, not {level}"),
            ));
        }
        if let Some(k) = self.keep_free
            && k.0 < DISK_KEEP_FREE_FLOOR
        {
            m.push((
                "keep_free",
                format!(
                    "`keep_free: {k}` is below the floor of {}: the system needs room to keep running",
                    Size(DISK_KEEP_FREE_FLOOR)
                ),
            ));
        }
        m
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresCorrupt {
    pub target: String,
    pub table: String,
    /// Page number in the table's first segment; default: one drawn from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// What is written over the page; default `flip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CorruptMode>,
}

/// How `postgres.corrupt` damages its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CorruptMode {
    /// Every byte zero. PostgreSQL takes an all-zero page for a new, empty one: its rows
    /// vanish and no checksum catches it (the silent kind of corruption).
    Zero,
    /// A few bytes of the page's contents inverted (seeded): a checksum failure.
    Flip,
    /// The header's free-space pointers and version overwritten, as a write torn inside
    /// the header leaves them: the page is refused even without checksums.
    TornHeader,
}

impl CorruptMode {
    pub fn name(self) -> &'static str {
        match self {
            CorruptMode::Zero => "zero",
            CorruptMode::Flip => "flip",
            CorruptMode::TornHeader => "torn_header",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresRole {
    pub target: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresTerminate {
    pub target: String,
    /// Only sessions of this role (the filters combine: a session must match each given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Only sessions on this database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Only sessions with this `application_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// Terminate again at this interval for the whole duration; default: once, at apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresExhaust {
    pub target: String,
    /// Connections left free once the server refused one; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_free: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresLockTable {
    pub target: String,
    pub table: String,
    /// Lock mode; default `ACCESS EXCLUSIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// A workload: HTTP requests (`requests`) or PostgreSQL statements (`postgres` +
/// `statements`), open model (`rate`/`stages`) or closed (`vus`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Duration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<bool>,
    /// Local addresses the load's connections are opened from, in turn (default: the
    /// kernel picks). One source address reaches one ip:port through at most ~28k
    /// ephemeral ports; more connections need more addresses (`127.0.0.2`, `127.0.0.3`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_addresses: Vec<SourceAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataFile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<Request>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresWorkload>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// A rate (open model) or a VU count (closed model).
    pub to: StageTarget,
    pub over: Duration,
}

/// A stage's end point: `500/s` for a rate, a whole number for VUs. Under `rate` (or
/// with `stages` alone) a whole number is a rate per second, as `--stage 100:30s` is
/// with `livefire load -r`; a decimal such as `0.5` is always a rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StageTarget {
    Rate(Rate),
    Vus(u32),
}

impl std::str::FromStr for StageTarget {
    type Err = crate::values::ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('/') {
            return s.parse().map(StageTarget::Rate);
        }
        if let Ok(n) = s.trim().parse() {
            return Ok(StageTarget::Vus(n));
        }
        s.parse()
            .map(StageTarget::Rate)
            .map_err(|_| crate::values::ValueError::StageTarget(s.to_owned()))
    }
}

impl std::fmt::Display for StageTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageTarget::Rate(r) => write!(f, "{r}"),
            StageTarget::Vus(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for StageTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = crate::values::ScalarText::deserialize(d)?;
        s.0.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for StageTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for StageTarget {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StageTarget".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "description": "a rate such as `500/s` (a bare number is per second under `rate`), or a number of VUs",
            "anyOf": [ { "type": "string" }, { "type": "integer", "minimum": 0 } ] })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    /// CSV with a header row, or JSON lines; relative to the experiment file.
    pub file: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_write: Option<TrackWrite>,
}

/// A check on a response; a failed check counts as an error of kind `check_failed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// JSON path to an expected value, or to `{ type: array|object|string|number|boolean|null }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub json: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackWrite {
    /// JSON path (HTTP) or column name (SQL) of the written key.
    pub key: String,
    /// URL (HTTP, with `{key}`) or SQL query (with `$1`) that reads the key back.
    pub read: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresWorkload {
    pub dsn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_session_attrs: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    pub sql: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_write: Option<TrackWrite>,
}

/// A fuzz campaign against an API described by OpenAPI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fuzz {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub openapi: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_identity: Option<Auth>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<FuzzCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FuzzCheck {
    ServerError,
    Crash,
    StatusConformance,
    ContentType,
    ResponseSchema,
    NegativeAccepted,
    AuthEnforced,
    ObjectAccess,
    Injection,
    Leak,
    Slow,
}

/// Credentials: a static header, or a login whose token is extracted and refreshed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub header: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
    /// How the token becomes the header value, e.g. `Bearer {token}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// JSON path of the token in the login response.
    pub token: String,
}

/// Seeded curveballs for game days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub draw: u32,
    pub window: [Duration; 2],
    pub duration: [Duration; 2],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// The people who respond (`[alice, bob]`): the names `livefire mark --as` takes.
    /// Marks from anyone else are refused; without the list, any name may mark.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<String>,
    /// Told of each curveball's start and end and of each mark while `livefire gameday`
    /// runs: the facilitator's channel (it names hidden curveballs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    pub pool: Vec<Curveball>,
}

/// A game day's `notify:` hook: a command given each message as JSON on stdin, a URL
/// each message is POSTed to as JSON (a chat room's incoming webhook), or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Time limit of each delivery; default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Curveball {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub fault: Fault,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum RollbackStep {
    Command(CommandStep),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandStep {
    pub run: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// A team's own alert check (`watch:`): a command run every `every` while the timeline
/// runs; each time it starts firing is journaled, with what it printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// Its row in the report's detectors table (`orders-alert`).
    pub name: String,
    /// Run with `sh -c`, in the experiment file's folder.
    pub command: String,
    /// How often it runs (default `settings.probe_every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// When the alert fires: exactly one of `exit_nonzero: true` or `stdout_contains`.
    pub fires_when: FiresWhen,
    /// Whom the command runs as; without one, as livefire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// How long one run may take (default 10s); a run that takes longer does not fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

/// When a `watch:` command fires; exactly one key is given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FiresWhen {
    /// `true`: it fires when the command exits with a status other than 0 (as
    /// Nagios-style checks do), or is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_nonzero: Option<bool>,
    /// It fires when the command's standard output contains this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_contains: Option<String>,
}
