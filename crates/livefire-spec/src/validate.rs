//! Typing and checking the document: each section (and each list entry) is typed on
//! its own so that one mistake does not hide the next, then the rules that types cannot
//! state (exactly one kind, known targets, unique names) are checked with positions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::de::from_node;
use crate::diag::Diagnostic;
use crate::types::*;
use crate::yaml::{Node, Pos};

const TOP_LEVEL: &[&str] = &[
    "version",
    "title",
    "settings",
    "vars",
    "environments",
    "targets",
    "setup",
    "hypothesis",
    "guardrails",
    "timeline",
    "scenario",
    "rollbacks",
    "watch",
];

/// What this build of livefire can run, for the checks that `run` would otherwise be
/// the first to make. The answers live with the crates that build the kinds: livefire-spec
/// cannot call into them, so they are handed in.
#[derive(Debug, Clone, Copy)]
pub struct Built {
    /// Whether a fault's kind is built: the fault catalog's own answer
    /// (`livefire_faults::is_built`), so building a kind is one arm in its match and no
    /// list elsewhere.
    pub faults: fn(&Fault) -> bool,
    /// Whether `https://` probes are built.
    pub https_probes: bool,
    /// Whether `scenario:` (game days) is built.
    pub scenario: bool,
}

/// What validation knows besides the document.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The experiment file's folder: files it names (`openapi`, `data.file`) must exist
    /// there. `None` skips those checks.
    pub base_dir: Option<&'a Path>,
    /// What this build can run; `None` checks the format alone.
    pub built: Option<&'a Built>,
}

/// Types and checks `tree` as a format alone; see [`validate_with`].
pub fn validate(tree: &Node, out: &mut Vec<Diagnostic>) -> Option<Experiment> {
    validate_with(tree, &Context::default(), out)
}

/// Types and checks `tree`; returns the experiment when it could be typed at all.
pub fn validate_with(
    tree: &Node,
    ctx: &Context<'_>,
    out: &mut Vec<Diagnostic>,
) -> Option<Experiment> {
    let Some(entries) = tree.entries() else {
        out.push(Diagnostic::error(
            tree.pos,
            format!(
                "expected a mapping with `version`, `title` and `timeline`, found {}",
                tree.describe()
            ),
        ));
        return None;
    };
    let mut seen = BTreeSet::new();
    for (k, _) in entries {
        let key = k.as_str().unwrap_or_default();
        if TOP_LEVEL.contains(&key) && !seen.insert(key) {
            // Only the first would be read: a second `hypothesis:` list would never be
            // checked.
            out.push(Diagnostic::error(
                k.pos,
                format!(
                    "duplicate key `{key}`: only the first would be read; merge the two into one"
                ),
            ));
        }
        if !TOP_LEVEL.contains(&key) {
            out.push(Diagnostic::error(
                k.pos,
                format!("unknown field `{key}`, expected one of {}", list(TOP_LEVEL)),
            ));
        }
    }
    let before = out.len();
    let version: Option<u32> = required(tree, "version", out);
    let title: Option<String> = required(tree, "title", out);
    let settings: Settings = optional(tree, "settings", out).unwrap_or_default();
    let vars: BTreeMap<String, String> = optional(tree, "vars", out).unwrap_or_default();
    let targets: BTreeMap<String, Target> = map_each(tree.get("targets"), out);
    let mut index = Index::default();
    let setup: Vec<SetupProcess> = list_each(tree.get("setup"), out, &mut index.setup);
    let hypothesis: Vec<Condition> = list_each(tree.get("hypothesis"), out, &mut index.hypothesis);
    let guardrails: Vec<Condition> = list_each(tree.get("guardrails"), out, &mut index.guardrails);
    let timeline: Vec<Activity> = match tree.get("timeline") {
        Some(node) => list_each(Some(node), out, &mut index.timeline),
        None if tree.get("scenario").is_some() => Vec::new(),
        None => {
            out.push(Diagnostic::error(
                tree.pos,
                "missing field `timeline`: list the activities (it may be `[]`)",
            ));
            Vec::new()
        }
    };
    // A timeline entry that failed to type may hide more mistakes in its other fields:
    // type those on their own, so that every error shows at once.
    if let Some(items) = tree.get("timeline").and_then(Node::items) {
        for (i, item) in items.iter().enumerate() {
            if index.timeline.contains(&i) || item.entries().is_none() {
                continue;
            }
            let _: Option<crate::values::Duration> = optional(item, "at", out);
            let _: Option<crate::values::Duration> = optional(item, "for", out);
            let _: Option<Load> = optional(item, "load", out);
            let _: Option<Fuzz> = optional(item, "fuzz", out);
            if let Some(fault) = optional::<Fault>(item, "fault", out) {
                index.partial_faults.push((i, fault));
            }
        }
    }
    let scenario: Option<Scenario> = optional(tree, "scenario", out);
    let rollbacks: Vec<RollbackStep> = list_each(tree.get("rollbacks"), out, &mut index.rollbacks);
    let watch: Vec<Watch> = list_each(tree.get("watch"), out, &mut index.watch);
    if let Some(v) = version
        && v != 1
    {
        let pos = at(tree, &[K("version")]);
        let msg = if v > 1 {
            format!(
                "experiment version {v} is newer than this livefire understands (1): upgrade livefire"
            )
        } else {
            format!("unsupported version {v}: write `version: 1`")
        };
        out.push(Diagnostic::error(pos, msg));
    }
    let typed_ok = out.len() == before;
    let experiment = Experiment {
        version: version.unwrap_or(1),
        title: title.unwrap_or_default(),
        settings,
        vars,
        environments: BTreeMap::new(),
        targets,
        setup,
        hypothesis,
        guardrails,
        timeline,
        scenario,
        rollbacks,
        watch,
    };
    Checker {
        tree,
        exp: &experiment,
        out,
        index,
        ctx,
    }
    .check();
    typed_ok.then_some(experiment)
}

/// Whether `dsn` reads as a PostgreSQL connection string: a URL, or key/value pairs
/// naming a host. Its details are PostgreSQL's client's to judge.
fn is_dsn(dsn: &str) -> bool {
    dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") || dsn.contains("host=")
}

/// One fault of each `postgres.*` kind, to ask `Built::faults` whether any is built
/// (the postgres target attributes only they read are refused until one is).
fn postgres_kinds() -> [Fault; 5] {
    let target = String::new;
    [
        Fault::PostgresCorrupt(PostgresCorrupt {
            target: target(),
            table: String::new(),
            page: None,
            mode: None,
        }),
        Fault::PostgresRevokeLogin(PostgresRole {
            target: target(),
            role: String::new(),
        }),
        Fault::PostgresTerminateConnections(PostgresTerminate {
            target: target(),
            role: None,
            database: None,
            application_name: None,
            every: None,
        }),
        Fault::PostgresExhaustConnections(PostgresExhaust {
            target: target(),
            keep_free: None,
        }),
        Fault::PostgresLockTable(PostgresLockTable {
            target: target(),
            table: String::new(),
            mode: None,
        }),
    ]
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn push_de(out: &mut Vec<Diagnostic>, e: crate::de::DeError, fallback: Pos) {
    out.push(Diagnostic::error(e.pos.unwrap_or(fallback), e.message));
}

fn required<T: DeserializeOwned>(tree: &Node, key: &str, out: &mut Vec<Diagnostic>) -> Option<T> {
    match tree.get(key) {
        Some(node) => from_node(node).map_err(|e| push_de(out, e, node.pos)).ok(),
        None => {
            out.push(Diagnostic::error(
                tree.pos,
                format!("missing field `{key}`"),
            ));
            None
        }
    }
}

fn optional<T: DeserializeOwned>(tree: &Node, key: &str, out: &mut Vec<Diagnostic>) -> Option<T> {
    let node = tree.get(key)?;
    if node.is_null() {
        return None;
    }
    from_node(node).map_err(|e| push_de(out, e, node.pos)).ok()
}

/// Types each entry of a list on its own; returns the typed entries and, for each, its
/// index in the document (entries that failed to type are skipped).
fn list_each<T: DeserializeOwned>(
    node: Option<&Node>,
    out: &mut Vec<Diagnostic>,
    index: &mut Vec<usize>,
) -> Vec<T> {
    let Some(node) = node.filter(|n| !n.is_null()) else {
        return Vec::new();
    };
    let Some(items) = node.items() else {
        out.push(Diagnostic::error(
            node.pos,
            format!("expected a list, found {}", node.describe()),
        ));
        return Vec::new();
    };
    let mut typed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Ok(t) = from_node(item).map_err(|e| push_de(out, e, item.pos)) {
            typed.push(t);
            index.push(i);
        }
    }
    typed
}

fn map_each<T: DeserializeOwned>(
    node: Option<&Node>,
    out: &mut Vec<Diagnostic>,
) -> BTreeMap<String, T> {
    let Some(node) = node.filter(|n| !n.is_null()) else {
        return BTreeMap::new();
    };
    let Some(entries) = node.entries() else {
        out.push(Diagnostic::error(
            node.pos,
            format!("expected a mapping of names, found {}", node.describe()),
        ));
        return BTreeMap::new();
    };
    let mut map = BTreeMap::new();
    for (k, v) in entries {
        let Some(name) = k.as_str() else { continue };
        if map.contains_key(name) {
            out.push(Diagnostic::error(k.pos, format!("duplicate name `{name}`")));
            continue;
        }
        if let Ok(t) = from_node(v).map_err(|e| push_de(out, e, v.pos)) {
            map.insert(name.to_owned(), t);
        }
    }
    map
}

/// A step in a path through the document.
#[derive(Clone, Copy)]
enum Seg<'a> {
    K(&'a str),
    I(usize),
}
use Seg::{I, K};

/// The position of the deepest node along `path` that exists.
fn at(tree: &Node, path: &[Seg]) -> Pos {
    let mut node = tree;
    for seg in path {
        let next = match seg {
            K(k) => node.get(k),
            I(i) => node.items().and_then(|items| items.get(*i)),
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node.pos
}

/// The position of the key `key` inside the node at `path` (for "this key is wrong").
fn key_at(tree: &Node, path: &[Seg], key: &str) -> Pos {
    let mut node = tree;
    for seg in path {
        let next = match seg {
            K(k) => node.get(k),
            I(i) => node.items().and_then(|items| items.get(*i)),
        };
        match next {
            Some(n) => node = n,
            None => return node.pos,
        }
    }
    node.key(key).map(|k| k.pos).unwrap_or(node.pos)
}

/// For each typed list, the document index of each entry.
#[derive(Default)]
struct Index {
    setup: Vec<usize>,
    hypothesis: Vec<usize>,
    guardrails: Vec<usize>,
    timeline: Vec<usize>,
    rollbacks: Vec<usize>,
    watch: Vec<usize>,
    /// Faults of timeline entries that failed to type as a whole, by document index.
    partial_faults: Vec<(usize, Fault)>,
}

struct Checker<'a> {
    tree: &'a Node,
    exp: &'a Experiment,
    out: &'a mut Vec<Diagnostic>,
    index: Index,
    ctx: &'a Context<'a>,
}

impl Checker<'_> {
    /// The document index of the `i`th typed entry of `section`.
    fn ix(&self, section: &str, i: usize) -> usize {
        let index = match section {
            "setup" => &self.index.setup,
            "hypothesis" => &self.index.hypothesis,
            "guardrails" => &self.index.guardrails,
            "timeline" => &self.index.timeline,
            "watch" => &self.index.watch,
            _ => &self.index.rollbacks,
        };
        index.get(i).copied().unwrap_or(i)
    }

    fn err(&mut self, pos: Pos, msg: impl Into<String>) {
        self.out.push(Diagnostic::error(pos, msg));
    }

    fn warn(&mut self, pos: Pos, msg: impl Into<String>) {
        self.out.push(Diagnostic::warning(pos, msg));
    }

    fn check(&mut self) {
        self.check_targets();
        self.check_setup();
        let workloads = self.check_timeline();
        for (section, required_name) in [("hypothesis", true), ("guardrails", false)] {
            let conditions = if section == "hypothesis" {
                &self.exp.hypothesis
            } else {
                &self.exp.guardrails
            };
            let mut names = BTreeSet::new();
            for (i, c) in conditions.iter().enumerate() {
                let i = self.ix(section, i);
                let path = [K(section), I(i)];
                match &c.name {
                    Some(n) if !names.insert(n.clone()) => self.err(
                        at(self.tree, &[K(section), I(i), K("name")]),
                        format!("duplicate {section} name `{n}`"),
                    ),
                    None if required_name => self.err(
                        at(self.tree, &path),
                        "a hypothesis condition needs a `name` (reports and `compare` use it)",
                    ),
                    _ => {}
                }
                self.check_condition(c, &path, &workloads);
            }
        }
        for (i, fault) in std::mem::take(&mut self.index.partial_faults) {
            self.check_fault(&fault, &[K("timeline"), I(i), K("fault")]);
        }
        self.check_scenario();
        self.check_settings();
        self.check_overlaps();
        self.check_built();
        for (i, step) in self.exp.rollbacks.iter().enumerate() {
            let i = self.ix("rollbacks", i);
            let RollbackStep::Command(c) = step;
            self.check_user(
                c.user.as_deref(),
                &[K("rollbacks"), I(i), K("command"), K("user")],
            );
        }
        self.check_watch();
    }

    /// `watch:` entries: a unique name people can read in the detectors table, a
    /// command whose program exists, intervals that wait, and exactly one way to fire.
    fn check_watch(&mut self) {
        let mut names = BTreeSet::new();
        for (i, w) in self.exp.watch.iter().enumerate() {
            let i = self.ix("watch", i);
            let path = |key| [K("watch"), I(i), K(key)];
            self.check_name(&w.name, at(self.tree, &path("name")), "watch");
            if !names.insert(w.name.clone()) {
                self.err(
                    at(self.tree, &path("name")),
                    format!(
                        "duplicate watch name `{}`: each watch is its own row of the detectors table; rename one",
                        w.name
                    ),
                );
            }
            self.check_program(&w.command, &path("command"));
            self.check_user(w.user.as_deref(), &path("user"));
            for (key, d) in [("every", w.every), ("timeout", w.timeout)] {
                if d.is_some_and(|d| d.0.is_zero()) {
                    self.err(
                        at(self.tree, &path(key)),
                        format!("`{key}: 0s` would never wait: give a duration such as `5s`"),
                    );
                }
            }
            let fires = [K("watch"), I(i), K("fires_when")];
            let f = &w.fires_when;
            match (f.exit_nonzero, &f.stdout_contains) {
                (Some(_), Some(_)) => self.err(
                    at(self.tree, &fires),
                    "`fires_when` has both `exit_nonzero` and `stdout_contains`: keep the one your alert uses",
                ),
                (None, None) => self.err(
                    at(self.tree, &fires),
                    "`fires_when` needs one of `exit_nonzero: true` (the command exits non-zero when the alert fires) or `stdout_contains: TEXT`",
                ),
                (Some(false), None) => self.err(
                    at(self.tree, &[K("watch"), I(i), K("fires_when"), K("exit_nonzero")]),
                    "`exit_nonzero: false` would never fire: write `exit_nonzero: true`, or use `stdout_contains: TEXT`",
                ),
                (None, Some(text)) if text.is_empty() => self.err(
                    at(self.tree, &[K("watch"), I(i), K("fires_when"), K("stdout_contains")]),
                    "`stdout_contains: \"\"` would fire on every run: give the text the alert prints",
                ),
                _ => {}
            }
        }
    }

    fn check_targets(&mut self) {
        for (name, t) in &self.exp.targets {
            let path = [K("targets"), K(name)];
            self.check_name(name, key_at(self.tree, &[K("targets")], name), "target");
            let kinds = t.kinds();
            if kinds.len() != 1 {
                let found: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                self.err(
                    at(self.tree, &path),
                    format!(
                        "target `{name}` must have exactly one of `http`, `process`, `postgres`, `proxy`, `netns`, `host`, `path`; found {}",
                        if found.is_empty() { "none".to_string() } else { found.join(", ") }
                    ),
                );
            }
            if let Some(url) = &t.http
                && !is_url(url)
            {
                self.err(
                    at(self.tree, &[K("targets"), K(name), K("http")]),
                    format!("`{url}` is not an http:// or https:// URL"),
                );
            }
            if let Some(p) = &t.process {
                let n = [p.pid.is_some(), p.pidfile.is_some(), p.name.is_some()]
                    .iter()
                    .filter(|b| **b)
                    .count();
                if n != 1 {
                    self.err(
                        at(self.tree, &[K("targets"), K(name), K("process")]),
                        "a process target needs exactly one of `pid`, `pidfile`, `name`",
                    );
                }
                if p.pid == Some(0) || p.pid == Some(1) {
                    self.err(
                        at(self.tree, &[K("targets"), K(name), K("process"), K("pid")]),
                        "pid 0 and 1 are never a target",
                    );
                }
            }
            if (t.restart.is_some() || t.user.is_some()) && t.process.is_none() {
                let key = if t.restart.is_some() {
                    "restart"
                } else {
                    "user"
                };
                self.err(
                    key_at(self.tree, &path, key),
                    format!("`{key}` applies to process targets only"),
                );
            }
            if let Some(restart) = &t.restart {
                self.check_program(restart, &[K("targets"), K(name), K("restart")]);
            }
            self.check_user(t.user.as_deref(), &[K("targets"), K(name), K("user")]);
            if let Some(p) = &t.proxy {
                let own = p.listen.is_some() || p.upstream.is_some();
                let ext = p.api.is_some() || p.name.is_some();
                let ok = (own && !ext && p.listen.is_some() && p.upstream.is_some())
                    || (ext && !own && p.api.is_some() && p.name.is_some());
                if !ok {
                    self.err(
                        at(self.tree, &[K("targets"), K(name), K("proxy")]),
                        "a proxy target needs `listen` and `upstream` (a proxy the run owns) or `api` and `name` (an existing proxy server)",
                    );
                }
                for key in ["listen", "upstream"] {
                    let v = if key == "listen" {
                        &p.listen
                    } else {
                        &p.upstream
                    };
                    if let Some(addr) = v
                        && !is_host_port(addr)
                    {
                        self.err(
                            at(self.tree, &[K("targets"), K(name), K("proxy"), K(key)]),
                            format!("`{addr}` is not HOST:PORT"),
                        );
                    }
                }
            }
            if let Some(pg) = &t.postgres {
                if !is_dsn(&pg.dsn) {
                    self.err(at(self.tree, &[K("targets"), K(name), K("postgres"), K("dsn")]), format!("`{}` is not a PostgreSQL connection string (postgres://user@host:port/db)", pg.dsn));
                }
                self.check_user(
                    pg.user.as_deref(),
                    &[K("targets"), K(name), K("postgres"), K("user")],
                );
            }
        }
    }

    fn check_setup(&mut self) {
        let mut names = BTreeSet::new();
        for (i, s) in self.exp.setup.iter().enumerate() {
            let i = self.ix("setup", i);
            let pos = at(self.tree, &[K("setup"), I(i), K("name")]);
            self.check_name(&s.name, pos, "setup process");
            if !names.insert(s.name.clone()) {
                self.err(pos, format!("duplicate setup name `{}`", s.name));
            } else if self.exp.targets.contains_key(&s.name) {
                self.err(pos, format!("setup `{}` has the name of a target: a setup process becomes a target of its name", s.name));
            }
            // A setup process runs in its `cwd:` (as given), else the file's folder.
            let cwd = match &s.cwd {
                Some(c) => Some(Path::new(c.as_str())),
                None => self.ctx.base_dir,
            };
            self.check_program_in(&s.command, cwd, &[K("setup"), I(i), K("command")]);
            if let Some(r) = &s.restart {
                self.check_program(r, &[K("setup"), I(i), K("restart")]);
            }
            self.check_user(s.user.as_deref(), &[K("setup"), I(i), K("user")]);
            if let Some(Ready::Tcp(t)) = &s.ready
                && !is_host_port(&t.address)
            {
                self.err(
                    at(
                        self.tree,
                        &[K("setup"), I(i), K("ready"), K("tcp"), K("address")],
                    ),
                    format!("`{}` is not HOST:PORT", t.address),
                );
            }
        }
    }

    /// Checks the timeline; returns the metric prefixes the workloads publish.
    fn check_timeline(&mut self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut workloads = BTreeSet::new();
        let workload_names: BTreeMap<usize, String> =
            self.exp.workload_names().into_iter().collect();
        for (typed, a) in self.exp.timeline.iter().enumerate() {
            let i = self.ix("timeline", typed);
            if let Some(w) = workload_names.get(&typed)
                && !workloads.insert(w.clone())
            {
                let kind = if a.load.is_some() { "load" } else { "fuzz" };
                self.err(
                    at(self.tree, &[K("timeline"), I(i), K(kind), K("name")]),
                    format!("duplicate workload name `{w}`"),
                );
            }
            let path = [K("timeline"), I(i)];
            let kinds = [a.fault.is_some(), a.load.is_some(), a.fuzz.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
            if kinds != 1 {
                self.err(
                    at(self.tree, &path),
                    "a timeline entry needs exactly one of `fault`, `load`, `fuzz`",
                );
            }
            if a.for_.0.is_zero() {
                self.err(
                    at(self.tree, &[K("timeline"), I(i), K("for")]),
                    "`for` must be longer than 0s",
                );
            }
            if let Some(within) = a.noticed_within {
                let path = [K("timeline"), I(i), K("noticed_within")];
                if a.fault.is_none() {
                    self.err(
                        at(self.tree, &path),
                        "`noticed_within` applies only to a fault entry: remove it, or move it to the fault detectors must notice",
                    );
                } else if within.0.is_zero() {
                    self.err(
                        at(self.tree, &path),
                        "`noticed_within` must be longer than 0s",
                    );
                }
            }
            let name = a.name.clone().unwrap_or_else(|| format!("timeline[{i}]"));
            if !names.insert(name.clone()) {
                self.err(
                    at(self.tree, &[K("timeline"), I(i), K("name")]),
                    format!("duplicate activity name `{name}`"),
                );
            }
            if let Some(f) = &a.fault {
                self.check_fault(f, &[K("timeline"), I(i), K("fault")]);
            }
            if let Some(l) = &a.load {
                self.check_load(l, &[K("timeline"), I(i), K("load")]);
            }
            if let Some(f) = &a.fuzz {
                self.check_fuzz(f, &[K("timeline"), I(i), K("fuzz")]);
                if f.auth
                    .as_ref()
                    .is_some_and(|a| a.value.is_some() == a.login.is_some())
                {
                    self.err(
                        at(self.tree, &[K("timeline"), I(i), K("fuzz"), K("auth")]),
                        "`auth` needs exactly one of `value` and `login`",
                    );
                }
            }
        }
        workloads
    }

    fn check_load(&mut self, l: &Load, path: &[Seg]) {
        let pos = at(self.tree, path);
        let models = [l.rate.is_some(), l.vus.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if models > 1 || (models == 0 && l.stages.is_empty()) {
            self.err(pos, "a load needs exactly one of `rate` (open model) or `vus` (closed model), or `stages`");
        }
        let closed = l.vus.is_some();
        for (i, s) in l.stages.iter().enumerate() {
            let mut p = path.to_vec();
            p.extend([K("stages"), I(i), K("to")]);
            match (s.to, closed) {
                (StageTarget::Rate(_), true) if models == 1 => self.err(
                    at(self.tree, &p),
                    "stage target must be a number of VUs (the load uses `vus`)",
                ),
                // Without `vus`, a whole number is a rate per second, as on `--stage`.
                (StageTarget::Vus(n), false) => {
                    if let Err(e) = n.to_string().parse::<crate::values::Rate>() {
                        self.err(at(self.tree, &p), e.to_string());
                    }
                }
                _ => {}
            }
        }
        if l.think.is_some() && !closed {
            self.err(
                key_at(self.tree, path, "think"),
                "`think` applies to the closed model (`vus`) only",
            );
        }
        let http = !l.requests.is_empty();
        let sql = l.postgres.is_some() || !l.statements.is_empty();
        if http == sql {
            self.err(
                pos,
                "a load needs either `requests` (HTTP) or `postgres` with `statements` (SQL)",
            );
        } else if sql && (l.postgres.is_none() || l.statements.is_empty()) {
            self.err(pos, "a SQL load needs both `postgres` and `statements`");
        }
        if let Some(attrs) = l
            .postgres
            .as_ref()
            .and_then(|p| p.target_session_attrs.as_deref())
            && !matches!(attrs, "any" | "read-write")
        {
            let mut p = path.to_vec();
            p.extend([K("postgres"), K("target_session_attrs")]);
            self.err(
                at(self.tree, &p),
                format!("`target_session_attrs: {attrs}` is not built: write `read-write` (only the primary) or `any`"),
            );
        }
        if !l.source_addresses.is_empty() {
            let key = key_at(self.tree, path, "source_addresses");
            if sql {
                self.err(
                    key,
                    "`source_addresses` applies to HTTP loads only: remove it from the SQL load",
                );
            } else if let Some(i) = l
                .source_addresses
                .iter()
                .position(|a| a.0.is_ipv4() != l.source_addresses[0].0.is_ipv4())
            {
                let mut p = path.to_vec();
                p.extend([K("source_addresses"), I(i)]);
                self.err(
                    at(self.tree, &p),
                    format!(
                        "source address {} is not of the family of {}: give only IPv4 or only IPv6 addresses",
                        l.source_addresses[i], l.source_addresses[0]
                    ),
                );
            }
        }
        if let Some(d) = &l.data {
            let mut p = path.to_vec();
            p.extend([K("data"), K("file")]);
            self.check_file(&d.file, "data file", &p);
        }
        for (i, r) in l.requests.iter().enumerate() {
            let mut p = path.to_vec();
            p.extend([K("requests"), I(i)]);
            if let Some(m) = &r.method {
                let mut q = p.clone();
                q.push(K("method"));
                self.check_method(m, &q);
            }
            if !is_url(&r.url) {
                let mut q = p.clone();
                q.push(K("url"));
                self.err(
                    at(self.tree, &q),
                    format!("`{}` is not an http:// or https:// URL", r.url),
                );
            }
            if r.body.is_some() && r.json.is_some() {
                self.err(
                    at(self.tree, &p),
                    "a request has `body` or `json`, not both",
                );
            }
            for c in &r.checks {
                for path_text in c.json.keys() {
                    if !path_text.starts_with('$') {
                        self.err(
                            at(self.tree, &p),
                            format!("JSON path `{path_text}` must start with `$`"),
                        );
                    }
                }
            }
        }
    }

    fn check_fault(&mut self, f: &Fault, path: &[Seg]) {
        if let Some(responder) = f.responder() {
            let mut p = path.to_vec();
            p.extend([K(f.kind()), K("responder")]);
            let responders = self
                .exp
                .scenario
                .as_ref()
                .map(|s| s.responders.as_slice())
                .unwrap_or_default();
            if !matches!(path.first(), Some(K("scenario"))) {
                self.err(
                    key_at(self.tree, path, f.kind()),
                    format!(
                        "`{}` is a game-day curveball: put it in `scenario.pool`",
                        f.kind()
                    ),
                );
            } else if !responders.iter().any(|r| r == responder) {
                self.err(
                    at(self.tree, &p),
                    if responders.is_empty() {
                        format!(
                            "responder `{responder}` is not declared: list the people under `scenario.responders`"
                        )
                    } else {
                        format!(
                            "unknown responder `{responder}`; the scenario's responders are {}",
                            responders.join(", ")
                        )
                    },
                );
            }
            return;
        }
        if let Some((target, accepted)) = f.target() {
            let mut p = path.to_vec();
            p.extend([K(f.kind()), K("target")]);
            let pos = at(self.tree, &p);
            let setup = self.exp.setup.iter().any(|s| s.name == target);
            let kinds = match self.exp.targets.get(target) {
                Some(t) => t.kinds(),
                None if setup => vec![TargetKind::Process],
                None => {
                    let known: Vec<String> = self
                        .exp
                        .targets
                        .keys()
                        .cloned()
                        .chain(self.exp.setup.iter().map(|s| s.name.clone()))
                        .map(|k| format!("`{k}`"))
                        .collect();
                    self.err(
                        pos,
                        if known.is_empty() {
                            format!("unknown target `{target}`: declare it under `targets:`")
                        } else {
                            format!(
                                "unknown target `{target}`; declared targets: {}",
                                known.join(", ")
                            )
                        },
                    );
                    return;
                }
            };
            if !kinds.iter().any(|k| accepted.contains(k)) {
                let want: Vec<&str> = accepted.iter().map(|k| k.name()).collect();
                let have: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                self.err(
                    pos,
                    format!(
                        "`{}` acts on a {} target; `{target}` is a {} target",
                        f.kind(),
                        want.join(" or "),
                        have.join("/")
                    ),
                );
            }
            if let Fault::ProcessKill(_) | Fault::ProcessRestart(_) = f {
                let restart = self
                    .exp
                    .targets
                    .get(target)
                    .and_then(|t| t.restart.as_ref())
                    .is_some()
                    || self
                        .exp
                        .setup
                        .iter()
                        .any(|s| s.name == target && s.restart.is_some());
                if matches!(f, Fault::ProcessRestart(_)) && !restart && !setup {
                    self.err(
                        pos,
                        format!("`process.restart` needs target `{target}` to declare `restart:`"),
                    );
                }
            }
            if let Fault::PostgresCorrupt(_) = f {
                let pg = self
                    .exp
                    .targets
                    .get(target)
                    .and_then(|t| t.postgres.as_ref());
                if pg.is_some_and(|p| p.data_dir.is_none()) {
                    self.err(
                        pos,
                        format!("`postgres.corrupt` writes to the cluster's files: target `{target}` must declare its `data_dir`"),
                    );
                }
            }
            let host = self
                .exp
                .targets
                .get(target)
                .is_some_and(|t| t.host.is_some());
            self.check_net(f, path, host, pos);
        }
        let mistakes = match f {
            Fault::CpuStress(c) => c.mistakes(),
            Fault::MemoryStress(m) => m.mistakes(),
            Fault::DiskFill(d) => d.mistakes(),
            _ => Vec::new(),
        };
        for (attr, why) in mistakes {
            let mut p = path.to_vec();
            p.extend([K(f.kind()), K(attr)]);
            self.err(at(self.tree, &p), why);
        }
        let signal = match f {
            Fault::ProcessKill(k) | Fault::ProcessRestart(k) => k.signal.as_deref(),
            _ => None,
        };
        if let Some(sig) = signal
            && parse_signal(sig).is_none()
        {
            let mut p = path.to_vec();
            p.extend([K(f.kind()), K("signal")]);
            self.err(
                at(self.tree, &p),
                format!("unknown signal `{sig}`: write e.g. `SIGKILL`, `TERM` or `9`"),
            );
        }
        if let Fault::Command(c) = f {
            let mut p = path.to_vec();
            p.push(K("command"));
            let mut a = p.clone();
            a.push(K("apply"));
            self.check_program(&c.apply, &a);
            if let Some(r) = &c.rollback {
                let mut q = p.clone();
                q.push(K("rollback"));
                self.check_program(r, &q);
            }
            p.push(K("user"));
            self.check_user(c.user.as_deref(), &p);
        }
    }

    /// The `net.*` attributes types cannot state: every peer is an address, a rate is
    /// not zero, and on a `host` target a fault names what it acts on and no range
    /// that would cut the machine off.
    fn check_net(&mut self, f: &Fault, path: &[Seg], host: bool, target_pos: Pos) {
        let kind = f.kind();
        let mut p = path.to_vec();
        p.push(K(kind));
        let (peers, loss) = match f {
            Fault::NetPartition(n) => (&n.peers, None),
            Fault::NetLoss(n) => (&n.peers, Some(n.rate.0)),
            Fault::NetBandwidth(b) => {
                let mut r = p.clone();
                r.push(K("rate"));
                if b.rate.0 == 0 {
                    self.err(at(self.tree, &r), "a rate of 0 would stop all traffic: write a rate such as `1MiB` (bytes per second), or use `net.partition`");
                }
                match &b.interface {
                    Some(i) if !crate::net::is_interface_name(i) => {
                        let mut q = p.clone();
                        q.push(K("interface"));
                        self.err(at(self.tree, &q), format!("`{i}` is not a network interface name (1 to 15 characters, no `/`, `:` or spaces)"));
                    }
                    None if host => self.err(target_pos, "`net.bandwidth` on the host needs `interface` (the device to limit): it never guesses which of the machine's links to slow down"),
                    _ => {}
                }
                return;
            }
            _ => return,
        };
        if loss == Some(0.0) {
            let mut r = p.clone();
            r.push(K("rate"));
            self.err(
                at(self.tree, &r),
                "a loss rate of 0% drops nothing: write a rate such as `5%`",
            );
        }
        if host && peers.is_empty() {
            self.err(target_pos, format!("`{kind}` on the host needs explicit `peers` (it refuses to cut the whole machine off)"));
        }
        for (j, text) in peers.iter().enumerate() {
            let mut q = p.clone();
            q.extend([K("peers"), I(j)]);
            match crate::net::Peer::parse(text) {
                Err(e) => self.err(at(self.tree, &q), e.to_string()),
                Ok(peer) if host && peer.too_wide_for_host() => self.err(
                    at(self.tree, &q),
                    format!(
                        "peer `{text}` is too wide for the host (it would cut the machine off): name addresses or ranges of /{} (IPv4) or /{} (IPv6) and narrower",
                        crate::net::HOST_MIN_PREFIX_V4,
                        crate::net::HOST_MIN_PREFIX_V6
                    ),
                ),
                Ok(_) => {}
            }
        }
    }

    fn check_condition(&mut self, c: &Condition, path: &[Seg], workloads: &BTreeSet<String>) {
        let pos = at(self.tree, path);
        let comparisons = c.comparisons();
        match (&c.probe, &c.metric) {
            (Some(probe), None) => {
                if !comparisons.is_empty() {
                    self.err(pos, "`below`/`above`/`at_most`/`at_least`/`equals` apply to a `metric`; a probe states `expect`");
                }
                match &c.expect {
                    None => self.err(pos, "a probe condition needs `expect` (what the probe must show)"),
                    Some(e) => {
                        let kind = probe.kind();
                        let keys = e.keys();
                        if keys.is_empty() {
                            self.err(key_at(self.tree, path, "expect"), "`expect` is empty: say what the probe must show");
                        }
                        for (key, kinds) in keys {
                            if !kinds.contains(&kind) {
                                let mut p = path.to_vec();
                                p.push(K("expect"));
                                self.err(key_at(self.tree, &p, key), format!("`{key}` does not apply to a `{kind}` probe"));
                            }
                        }
                        for json_path in e.json.keys() {
                            if !json_path.starts_with('$') {
                                self.err(key_at(self.tree, path, "expect"), format!("JSON path `{json_path}` must start with `$`"));
                            }
                        }
                    }
                }
                let mut p = path.to_vec();
                p.push(K("probe"));
                match probe {
                    Probe::Http(h) => {
                        if let Some(m) = &h.method {
                            let mut q = p.clone();
                            q.extend([K("http"), K("method")]);
                            self.check_method(m, &q);
                        }
                        if !is_url(&h.url) {
                            p.extend([K("http"), K("url")]);
                            self.err(at(self.tree, &p), format!("`{}` is not an http:// or https:// URL", h.url));
                        }
                    }
                    Probe::Tcp(t) => {
                        if !is_host_port(&t.address) {
                            p.extend([K("tcp"), K("address")]);
                            self.err(at(self.tree, &p), format!("`{}` is not HOST:PORT", t.address));
                        }
                    }
                    Probe::Command(cmd) => {
                        p.extend([K("command"), K("run")]);
                        self.check_program(&cmd.run, &p);
                    }
                    Probe::Sql(sql) => {
                        if !is_dsn(&sql.dsn) {
                            p.extend([K("sql"), K("dsn")]);
                            self.err(at(self.tree, &p), format!("`{}` is not a PostgreSQL connection string (postgres://user@host:port/db)", sql.dsn));
                        }
                    }
                }
            }
            (None, Some(metric)) => {
                if c.expect.is_some() {
                    self.err(key_at(self.tree, path, "expect"), "`expect` applies to a `probe`; a metric states one of `below`, `above`, `at_most`, `at_least`, `equals`");
                }
                if comparisons.len() != 1 {
                    self.err(pos, format!("metric `{metric}` needs exactly one of `below`, `above`, `at_most`, `at_least`, `equals`"));
                }
                let mpos = at(self.tree, &[path[0], path[1], K("metric")]);
                match metric.split_once('.') {
                    Some(("failover", "write_gap")) => {}
                    Some((source, _)) if workloads.contains(source) => {}
                    _ => {
                        let known: Vec<String> = workloads.iter().map(|w| format!("`{w}`")).collect();
                        self.err(
                            mpos,
                            if known.is_empty() {
                                format!("metric `{metric}` names no workload: the timeline has no `load` or `fuzz`")
                            } else {
                                format!("metric `{metric}` names no workload; workloads are {}", known.join(", "))
                            },
                        );
                    }
                }
                if let Some((comparison, q)) = comparisons.first() {
                    let cpos = at(self.tree, &[path[0], path[1], K(comparison.name())]);
                    self.check_fraction(metric, q, cpos);
                    let latency = metric.contains(".latency.") || metric.ends_with("write_gap");
                    let is_duration = matches!(q, crate::values::Quantity::Duration(_));
                    if latency && !is_duration && q.value() != 0.0 {
                        self.err(mpos, format!("`{metric}` is a duration: compare it with a duration such as `300ms`"));
                    }
                }
            }
            _ => self.err(pos, "a condition needs exactly one of `probe` (with `expect`) or `metric` (with a comparison)"),
        }
        if c.tolerate.is_some() && path[0].is_key("guardrails") {
            self.err(
                key_at(self.tree, path, "tolerate"),
                "`tolerate` applies to hypothesis conditions; a guardrail uses `for`",
            );
        }
        if c.for_.is_some() && c.probe.is_some() && path[0].is_key("hypothesis") {
            // Only a metric's window and a guardrail probe read `for`.
            self.err(
                key_at(self.tree, path, "for"),
                "`for` on a hypothesis probe is not read: say how long it may fail with `tolerate`",
            );
        }
    }

    fn check_scenario(&mut self) {
        let Some(s) = &self.exp.scenario else { return };
        if s.window[0] > s.window[1] {
            self.err(
                at(self.tree, &[K("scenario"), K("window")]),
                "`window` must be [earliest, latest] with earliest <= latest",
            );
        }
        if s.duration[0] > s.duration[1] || s.duration[0].0.is_zero() {
            self.err(
                at(self.tree, &[K("scenario"), K("duration")]),
                "`duration` must be [shortest, longest], longer than 0s",
            );
        }
        if s.pool.is_empty() {
            self.err(
                at(self.tree, &[K("scenario"), K("pool")]),
                "`pool` is empty: list the curveballs to draw from",
            );
        }
        if s.pool.len() < s.draw as usize {
            self.err(
                at(self.tree, &[K("scenario"), K("draw")]),
                format!(
                    "`draw: {}` needs that many curveballs in `pool` (it has {}): a curveball is drawn at most once; draw fewer or add to the pool",
                    s.draw,
                    s.pool.len()
                ),
            );
        }
        let width = s.window[1].0.saturating_sub(s.window[0].0);
        if s.window[0] <= s.window[1] && width < s.duration[0].0 {
            self.err(
                at(self.tree, &[K("scenario"), K("window")]),
                format!(
                    "`window` lasts {} but a curveball lasts at least {}: each curveball runs inside the window; widen it or shorten `duration`",
                    crate::values::Duration(width),
                    s.duration[0]
                ),
            );
        }
        // Faults on one target cannot stack (undoing one undoes both): when more than one
        // is drawn, no two curveballs share a target.
        let mut pooled: Vec<&str> = Vec::new();
        for (i, c) in s.pool.iter().enumerate() {
            let Some((target, _)) = c.fault.target() else {
                continue;
            };
            if s.draw > 1 && pooled.contains(&target) {
                self.err(
                    at(self.tree, &[K("scenario"), K("pool"), I(i), K("fault")]),
                    format!(
                        "another curveball of the pool acts on target `{target}`: faults on one target cannot stack, so two drawn together might not run; give each curveball its own target or `draw: 1`"
                    ),
                );
            }
            pooled.push(target);
        }
        if let Some(n) = &s.notify {
            let path = [K("scenario"), K("notify")];
            if n.command.is_none() && n.url.is_none() {
                self.err(
                    at(self.tree, &path),
                    "`notify` needs a `command` or a `url` (or both) to tell",
                );
            }
            if let Some(url) = &n.url
                && !is_url(url)
            {
                self.err(
                    at(self.tree, &[K("scenario"), K("notify"), K("url")]),
                    format!("`{url}` is not an http:// or https:// URL"),
                );
            }
        }
        for (i, name) in s.responders.iter().enumerate() {
            let typeable = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !typeable {
                self.err(
                    at(self.tree, &[K("scenario"), K("responders"), I(i)]),
                    format!(
                        "responder `{name}`: use letters, digits, `-`, `_` or `.` only, a name people type after `livefire mark --as`"
                    ),
                );
            } else if s.responders[..i].contains(name) {
                self.err(
                    at(self.tree, &[K("scenario"), K("responders"), I(i)]),
                    format!("responder `{name}` is listed twice: list each person once"),
                );
            }
        }
        // A curveball may run anywhere in `window`: one on a target that a timeline fault
        // acts on while the window is open could overlap it, and a curveball's measures
        // (and its early end) must be its own.
        let (open, close) = (s.window[0].0, s.window[1].0);
        for (i, c) in s.pool.iter().enumerate() {
            let Some((target, _)) = c.fault.target() else {
                continue;
            };
            let clash = self.exp.timeline.iter().find(|a| {
                a.fault
                    .as_ref()
                    .and_then(|f| f.target())
                    .is_some_and(|(t, _)| t == target)
                    && a.at.0 < close
                    && open < a.at.0 + a.for_.0
            });
            if let (Some(a), Some(f)) = (clash, clash.and_then(|a| a.fault.as_ref())) {
                let label = match &a.name {
                    Some(n) => format!("`{n}` ({} {target})", f.kind()),
                    None => format!("`{} {target}` at {}", f.kind(), a.at),
                };
                self.err(
                    at(self.tree, &[K("scenario"), K("pool"), I(i), K("fault")]),
                    format!(
                        "this curveball ({} {target}) could overlap the timeline's {label} on target `{target}`: a curveball may run anywhere in `window` ({}–{}) and the fault runs {}–{}; move the fault or the window so they cannot meet, or give the curveball another target",
                        c.fault.kind(),
                        s.window[0],
                        s.window[1],
                        a.at,
                        crate::values::Duration(a.at.0 + a.for_.0),
                    ),
                );
            }
        }
        for (i, c) in s.pool.iter().enumerate() {
            if c.weight == Some(0) {
                self.err(
                    at(self.tree, &[K("scenario"), K("pool"), I(i), K("weight")]),
                    "`weight` must be positive: remove the curveball from the pool instead of weighting it 0",
                );
            }
            self.check_fault(&c.fault, &[K("scenario"), K("pool"), I(i), K("fault")]);
        }
    }

    fn check_settings(&mut self) {
        let end = self
            .exp
            .timeline
            .iter()
            .map(|a| a.at.0 + a.for_.0)
            .max()
            .unwrap_or_default();
        if let Some(max) = self.exp.settings.max_duration
            && max.0 < end
        {
            self.err(
                at(self.tree, &[K("settings"), K("max_duration")]),
                format!(
                    "`max_duration` ({max}) is shorter than the timeline ({})",
                    crate::values::Duration(end)
                ),
            );
        }
        // Read by split runs (`livefire run --segments N`); a run on one machine has no
        // segments to lose, so there it changes nothing.
        if self
            .exp
            .settings
            .segments
            .as_ref()
            .is_some_and(|s| s.min_alive == 0)
        {
            self.err(
                at(self.tree, &[K("settings"), K("segments"), K("min_alive")]),
                "`segments.min_alive` must be at least 1: a split run with no segment left has no load",
            );
        }
        if self.exp.settings.probe_every.is_some_and(|d| d.0.is_zero()) {
            self.err(
                at(self.tree, &[K("settings"), K("probe_every")]),
                "`probe_every` must be longer than 0s",
            );
        }
    }

    /// A fuzz campaign's spec: a file needs `base_url` (nothing else says where the API
    /// answers) and must exist beside the experiment file.
    fn check_fuzz(&mut self, f: &Fuzz, path: &[Seg]) {
        let mut p = path.to_vec();
        p.push(K("openapi"));
        let remote = f.openapi.starts_with("http://") || f.openapi.starts_with("https://");
        if !remote && !f.openapi.starts_with("${") {
            if f.base_url.is_none() {
                self.err(
                    at(self.tree, &p),
                    format!(
                        "`openapi` is a file ({}): set `base_url` to where the API answers, e.g. `base_url: \"http://127.0.0.1:8080\"`",
                        f.openapi
                    ),
                );
            }
            self.check_file(&f.openapi, "OpenAPI file", &p);
        }
        if let Some(b) = &f.base_url
            && !is_url(b)
        {
            let mut q = path.to_vec();
            q.push(K("base_url"));
            self.err(
                at(self.tree, &q),
                format!("`{b}` is not an http:// or https:// URL"),
            );
        }
    }

    /// A file the run reads, relative to the experiment file's folder.
    fn check_file(&mut self, file: &str, what: &str, path: &[Seg]) {
        let Some(dir) = self.ctx.base_dir else { return };
        if file.contains("${") {
            return;
        }
        let full = dir.join(file);
        if !full.is_file() {
            self.err(
                at(self.tree, path),
                format!(
                    "{what} `{file}` does not exist (looked for {}; a relative name is read from the experiment file's folder)",
                    full.display()
                ),
            );
        }
    }

    fn check_method(&mut self, method: &str, path: &[Seg]) {
        let token = !method.is_empty()
            && method
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
        if !token {
            self.err(
                at(self.tree, path),
                format!("`{method}` is not an HTTP method: write e.g. `GET` or `POST`"),
            );
        }
    }

    /// A bound on a fraction (`error_rate`, `rate_achieved`) is a percentage: a bare 20
    /// would read as 2000 % and never trip.
    fn check_fraction(&mut self, metric: &str, q: &crate::values::Quantity, pos: Pos) {
        use crate::values::Quantity;
        if !is_fraction_metric(metric) {
            return;
        }
        match q {
            Quantity::Percent(_) => {}
            Quantity::Number(n) if *n > 1.0 => self.err(
                pos,
                format!(
                    "`{metric}` is a fraction: a bare {n} reads as {}%; write `{n}%`",
                    percent(*n)
                ),
            ),
            Quantity::Number(n) if *n > 0.0 => self.warn(
                pos,
                format!(
                    "`{metric}` is a fraction: {n} reads as {}%; write `{}%` to say so",
                    percent(*n),
                    percent(*n)
                ),
            ),
            Quantity::Number(_) => {}
            _ => self.err(
                pos,
                format!("`{metric}` is a fraction: compare it with a percentage such as `5%`"),
            ),
        }
    }

    /// Two faults on one target whose windows overlap, where the first's undo would
    /// undo the second too (a SIGCONT resumes both pauses; enabling a proxy ends both
    /// `proxy.down`s). Faults that stack (two toxics on one proxy) are fine.
    fn check_overlaps(&mut self) {
        struct Window {
            doc: usize,
            label: String,
            start: std::time::Duration,
            end: std::time::Duration,
            group: &'static str,
            target: String,
        }
        let mut windows: Vec<Window> = Vec::new();
        for (typed, a) in self.exp.timeline.iter().enumerate() {
            let Some(f) = &a.fault else { continue };
            let (Some(group), Some((target, _))) = (exclusive_group(f), f.target()) else {
                continue;
            };
            let label = match &a.name {
                Some(n) => format!("`{n}` ({} {target})", f.kind()),
                None => format!("`{} {target}` at {}", f.kind(), a.at),
            };
            windows.push(Window {
                doc: self.ix("timeline", typed),
                label,
                start: a.at.0,
                end: a.at.0 + a.for_.0,
                group,
                target: target.to_owned(),
            });
        }
        for (j, later) in windows.iter().enumerate() {
            let clash = windows[..j].iter().find(|earlier| {
                earlier.group == later.group
                    && earlier.target == later.target
                    && earlier.start < later.end
                    && later.start < earlier.end
            });
            if let Some(earlier) = clash {
                let msg = format!(
                    "{} overlaps {} on target `{}` ({}–{} and {}–{}): they cannot stack (undoing one undoes both); move one so their windows do not overlap",
                    later.label,
                    earlier.label,
                    later.target,
                    crate::values::Duration(earlier.start),
                    crate::values::Duration(earlier.end),
                    crate::values::Duration(later.start),
                    crate::values::Duration(later.end),
                );
                let pos = at(self.tree, &[K("timeline"), I(later.doc), K("fault")]);
                self.out.push(Diagnostic::error(pos, msg));
            }
        }
    }

    /// What the file asks for that this build cannot run: `run` would refuse it, so
    /// validation does, at the place it is written.
    fn check_built(&mut self) {
        let Some(built) = self.ctx.built else { return };
        for (typed, a) in self.exp.timeline.iter().enumerate() {
            let Some(f) = &a.fault else { continue };
            if !(built.faults)(f) {
                let i = self.ix("timeline", typed);
                self.err(
                    key_at(self.tree, &[K("timeline"), I(i), K("fault")], f.kind()),
                    format!(
                        "fault `{}` is not built in this livefire yet: `livefire run` refuses it",
                        f.kind()
                    ),
                );
            }
        }
        let pool = self.exp.scenario.iter().flat_map(|s| s.pool.iter());
        for (i, c) in pool.enumerate() {
            if !(built.faults)(&c.fault) {
                self.err(
                    key_at(
                        self.tree,
                        &[K("scenario"), K("pool"), I(i), K("fault")],
                        c.fault.kind(),
                    ),
                    format!(
                        "fault `{}` is not built in this livefire yet: `livefire run` refuses it",
                        c.fault.kind()
                    ),
                );
            }
        }
        for section in ["hypothesis", "guardrails"] {
            let conditions = if section == "hypothesis" {
                &self.exp.hypothesis
            } else {
                &self.exp.guardrails
            };
            for (typed, c) in conditions.iter().enumerate() {
                let Some(probe) = &c.probe else { continue };
                let i = self.ix(section, typed);
                if let Probe::Http(h) = probe
                    && h.url.starts_with("https://")
                    && !built.https_probes
                {
                    self.out.push(Diagnostic::error(
                        at(self.tree, &[K(section), I(i), K("probe"), K("http"), K("url")]),
                        "https:// probes are not built in this livefire yet: `livefire run` refuses them; probe over http:// or with `tcp`",
                    ));
                }
            }
        }
        if self.exp.scenario.is_some() && !built.scenario {
            self.err(
                key_at(self.tree, &[], "scenario"),
                "`scenario` (game days) is not built in this livefire yet: `livefire run` refuses it",
            );
        }
        // Attributes only postgres faults read: without them they would do nothing.
        if !postgres_kinds().iter().any(built.faults) {
            for (name, t) in &self.exp.targets {
                let Some(pg) = &t.postgres else { continue };
                for (key, set) in [
                    ("data_dir", pg.data_dir.is_some()),
                    ("bin_dir", pg.bin_dir.is_some()),
                    ("user", pg.user.is_some()),
                ] {
                    if set {
                        self.err(
                            key_at(self.tree, &[K("targets"), K(name), K("postgres")], key),
                            format!("`{key}` is read by postgres.* faults, which this livefire does not build yet: remove it"),
                        );
                    }
                }
            }
        }
    }

    fn check_name(&mut self, name: &str, pos: Pos, what: &str) {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !ok {
            self.err(
                pos,
                format!("{what} name `{name}` may use only letters, digits, `-`, `_` and `.`"),
            );
        }
    }

    /// A command's program must exist (a `restart` that cannot run is caught now, not
    /// during rollback). `run` runs commands in the experiment file's folder, so a
    /// relative path is looked for there, wherever `validate` is run from.
    fn check_program(&mut self, command: &str, path: &[Seg]) {
        self.check_program_in(command, self.ctx.base_dir, path);
    }

    /// As [`Self::check_program`], for a command run in `dir` (`None`: not known here,
    /// so a relative path is left to the run).
    fn check_program_in(&mut self, command: &str, dir: Option<&Path>, path: &[Seg]) {
        let Some(program) = first_word(command) else {
            self.err(at(self.tree, path), "the command is empty");
            return;
        };
        match program_exists(&program, dir) {
            Found::Yes => {}
            Found::No => self.err(
                at(self.tree, path),
                format!("program `{program}` not found: install it or give its full path"),
            ),
            Found::NotIn(full) => self.err(
                at(self.tree, path),
                format!(
                    "program `{program}` not found (looked for {}; a relative path is run from the folder the command runs in)",
                    full.display()
                ),
            ),
        }
    }

    fn check_user(&mut self, user: Option<&str>, path: &[Seg]) {
        let Some(user) = user else { return };
        if !user_exists(user) {
            self.err(
                at(self.tree, path),
                format!("user `{user}` does not exist on this machine"),
            );
        }
    }
}

impl Seg<'_> {
    fn is_key(&self, key: &str) -> bool {
        matches!(self, K(k) if *k == key)
    }
}

/// A fraction as a percentage, without float noise (0.05 is 5, not 5.000000000000001).
fn percent(fraction: f64) -> f64 {
    (fraction * 100.0 * 1e6).round() / 1e6
}

/// Metrics that are fractions (0..1) of something: their bounds are percentages.
fn is_fraction_metric(metric: &str) -> bool {
    metric.ends_with(".error_rate") || metric.ends_with(".rate_achieved")
}

/// Fault kinds whose undo would also undo another fault of the same group on the same
/// target, so two of them must not overlap. `None`: the kind stacks.
fn exclusive_group(f: &Fault) -> Option<&'static str> {
    Some(match f {
        Fault::ProcessKill(_) | Fault::ProcessPause(_) | Fault::ProcessRestart(_) => "process",
        Fault::ProxyDown(_) => "proxy.down",
        Fault::NetBandwidth(_) => "net.bandwidth",
        Fault::PostgresCorrupt(_) => "postgres.corrupt",
        _ => return None,
    })
}

/// An http(s) URL, or one whose start is filled at run time (an unknown name there is
/// reported by substitution already).
fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("${")
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    }
}

/// The program a `sh -c` command runs first, skipping `VAR=value` assignments and
/// `exec`. Returns `None` for an empty command.
pub(crate) fn first_word(command: &str) -> Option<String> {
    command
        .split_whitespace()
        .find(|w| (!w.contains('=') || w.starts_with('=')) && *w != "exec")
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_owned())
}

/// Shell built-ins and keywords that need no program on disk.
const SHELL_WORDS: &[&str] = &[
    "cd", "echo", "exit", "export", "kill", "printf", "read", "sleep", "test", "true", "false",
    "[", ":", ".", "set", "trap", "wait", "if", "for", "while", "until", "case", "{", "(", "!",
];

/// Whether a command's program is there.
enum Found {
    Yes,
    /// Not on PATH, or an absolute path that does not exist.
    No,
    /// A relative path, not in the folder the command runs in: where it looked.
    NotIn(PathBuf),
}

/// Looks `program` up as `sh -c` would when run in `dir`: a name on PATH, a path with a
/// `/` relative to `dir` (not to where livefire itself runs).
fn program_exists(program: &str, dir: Option<&Path>) -> Found {
    let found = |yes: bool| if yes { Found::Yes } else { Found::No };
    if SHELL_WORDS.contains(&program) || program == "livefire" {
        return Found::Yes;
    }
    if program.contains('/') {
        let path = Path::new(program);
        if path.is_absolute() {
            return found(path.exists());
        }
        let Some(dir) = dir else { return Found::Yes };
        let full = dir.join(path.strip_prefix(".").unwrap_or(path));
        return if full.exists() {
            Found::Yes
        } else {
            Found::NotIn(full)
        };
    }
    found(
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        }),
    )
}

fn user_exists(user: &str) -> bool {
    // /etc/passwd is what getpwnam reads on the machines livefire targets; reading it
    // keeps this crate free of libc.
    std::fs::read_to_string("/etc/passwd")
        .map(|p| p.lines().any(|l| l.split(':').next() == Some(user)))
        .unwrap_or(true)
}

/// Signal number from `SIGKILL`, `KILL`, `kill` or `9`.
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = s.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ABRT" => 6,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "CONT" => 18,
        "STOP" => 19,
        _ => return None,
    })
}
