//! The one conformance harness (docs/specs/fault.md): every built fault kind, on real
//! processes and real sockets, goes through
//! - in this process, as the engine calls the faults crate: prepare changes nothing;
//!   apply; verify applied; undo from the record after a trip through JSON; verify clean;
//! - in one real `livefire run` holding every kind at once: verify applied; the run is
//!   halted and rolls back; verify clean;
//! - in another: verify applied; `kill -9` of livefire leaves the faults behind;
//!   `livefire recover` (a fresh process reading the ledger); verify clean.
//!
//! "Verify" is the kind's own `Prepared::verify` (the process is stopped, the toxic is
//! on the proxy, ...); for proxies "clean" also means a request through the proxy gets
//! the upstream's own answer again. A new kind is one line in [`KINDS`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use livefire_core::undo::UndoRecord;
use livefire_faults::{Prepared, Seen, Targets};
use livefire_spec::{Fault, Target};

use crate::support::*;

/// What a case's fault acts on; the harness makes one of each per case.
#[derive(Debug, Clone, Copy, PartialEq)]
enum On {
    /// A `sleep 300` started by the test, named by pid.
    Process,
    /// A `sleep 300` named by its pidfile, whose `restart:` starts a new one.
    Restartable,
    /// Nothing: `{flag}` in the attributes is a file the harness watches.
    Flag,
    /// A proxy in front of a `livefire sandbox http`: one the test owns in-process (as a
    /// run owns its proxies), or one on a `livefire proxy` server.
    Proxy,
    /// This machine (`host: {}`), for a stress worker; the worker stops by itself when
    /// the process that started it dies, so a crashed run leaves nothing to recover.
    Host,
    /// A directory of the test's (`path:`), for `disk.fill`.
    Path,
    /// A network namespace the harness makes (`lf-c-PID-N`), holding a veth pair `v0`,
    /// `v1`. Needs root, nft, ip and tc: without them these cases skip loudly.
    Netns,
    /// A PostgreSQL server of its own (`livefire_testkit::pg`: data checksums, a free
    /// port, run as `postgres` when the test is root) holding an `orders` table of
    /// several pages. Without PostgreSQL's programs the case is skipped, saying so.
    /// `{role}` and `{table}` in the attributes are a role that may log in and a table,
    /// both named after the case's target.
    Postgres,
}

/// Every built fault kind, one line each: the kind, what it acts on, its attributes.
const KINDS: &[(&str, On, &str)] = &[
    ("process.kill", On::Restartable, ""),
    ("process.pause", On::Process, ""),
    ("process.restart", On::Restartable, ""),
    (
        "command",
        On::Flag,
        r#"apply: "touch {flag}", rollback: "rm {flag}""#,
    ),
    ("proxy.latency", On::Proxy, "latency: 300ms, jitter: 10ms"),
    ("proxy.bandwidth", On::Proxy, "rate: 16"),
    ("proxy.slow_close", On::Proxy, "delay: 200ms"),
    ("proxy.timeout", On::Proxy, "timeout: 1s"),
    ("proxy.reset_peer", On::Proxy, "timeout: 10ms"),
    ("proxy.slicer", On::Proxy, "average_size: 8, delay: 1ms"),
    ("proxy.limit_data", On::Proxy, "bytes: 1KiB"),
    ("proxy.down", On::Proxy, ""),
    ("proxy.drop", On::Proxy, "rate: 50%"),
    ("proxy.corrupt", On::Proxy, "rate: 1%"),
    ("http.abort", On::Proxy, "status: 503"),
    ("http.delay", On::Proxy, "delay: 200ms"),
    ("cpu.stress", On::Host, "cores: 1, load: 20%"),
    ("memory.stress", On::Host, "size: 32MiB"),
    ("disk.fill", On::Path, "size: 1MiB"),
    (
        "net.partition",
        On::Netns,
        r#"peers: ["10.78.0.9", "10.79.0.0/16"]"#,
    ),
    ("net.loss", On::Netns, "rate: 30%"),
    ("net.bandwidth", On::Netns, "rate: 1MiB"),
    ("postgres.corrupt", On::Postgres, "table: orders, page: 1"),
    ("postgres.revoke_login", On::Postgres, "role: {role}"),
    (
        "postgres.terminate_connections",
        On::Postgres,
        "role: {role}, every: 200ms",
    ),
    (
        "postgres.exhaust_connections",
        On::Postgres,
        "keep_free: 10",
    ),
    ("postgres.lock_table", On::Postgres, "table: {table}"),
];

/// Kinds whose effect is sessions livefire holds: `kill -9` of livefire ends them (its
/// sockets close), so after the kill they are clean, not applied (docs/specs/fault.md).
const HELD_BY_LIVEFIRE: &[&str] = &[
    "postgres.terminate_connections",
    "postgres.exhaust_connections",
    "postgres.lock_table",
];

/// The two harness tests apply every kind under the same activity names, and some kinds
/// are found machine-wide by that name (a stress worker in /proc, an nftables table): run
/// at once, each would see the other's fault as its own. They take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn every_kind_applies_verifies_and_undoes_from_its_record() {
    let _turn = one_at_a_time();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // A run's proxies live on its runtime (taking one up again starts a listener there).
    let _inside = rt.enter();
    let world = World::new(Owner::InProcess(&rt));
    for case in &world.cases {
        let kind = case.kind;
        let before = world.seen(case, None);
        assert!(
            before.clean,
            "{kind}: not clean before anything: {before:?}"
        );
        let prepared = world.prepare(case);
        let after_prepare = world.seen(case, Some(&prepared));
        assert!(
            after_prepare.clean && !after_prepare.applied,
            "{kind}: prepare must change nothing: {after_prepare:?}"
        );
        prepared
            .apply(Some(&world.dir().to_string_lossy()))
            .unwrap_or_else(|e| panic!("{kind}: apply: {e}"));
        world.wait(&[case], &[&prepared], "applied", |s| s.applied);
        if let Some(record) = prepared.undo_after_apply() {
            // The record as a fresh process reads it from the ledger.
            let json = serde_json::to_string(record).unwrap();
            let fresh: UndoRecord = serde_json::from_str(&json).unwrap();
            assert_eq!(&fresh, record, "{kind}: the undo record survives JSON");
            livefire_faults::undo_with(&fresh, Some(&world.live))
                .unwrap_or_else(|e| panic!("{kind}: undo: {e}"));
        }
        world.wait(&[case], &[&prepared], "clean after undo", |s| s.clean);
    }
}

#[test]
fn every_kind_is_rolled_back_by_its_run_and_by_recover_after_kill_9() {
    let _turn = one_at_a_time();
    let world = World::new(Owner::Server);
    let cases: Vec<&Case> = world.cases.iter().collect();
    let file = world.home.file(&world.experiment());

    // A run that ends (here: halted) rolls every kind back.
    let prepared = world.prepare_all();
    let run = world.start_run(&file);
    world.wait(&cases, &refs(&prepared), "applied by the run", |s| {
        s.applied
    });
    let (code, _, err) = crate::support::run(world.home.livefire().arg("halt"));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = finish(run);
    assert_eq!(code, 2, "a halted run exits 2: {err}");
    world.wait(&cases, &refs(&prepared), "clean after the run", |s| s.clean);
    assert_eq!(
        world.home.ledger_index(),
        "",
        "the run left nothing pending"
    );

    // kill -9 leaves every fault behind; `livefire recover` undoes them from the ledger.
    let prepared = world.prepare_all();
    let mut run = world.start_run(&file);
    world.wait(&cases, &refs(&prepared), "applied by the run", |s| {
        s.applied
    });
    run.kill().unwrap();
    let _ = run.wait();
    let (ended, left): (Vec<_>, Vec<_>) = cases
        .iter()
        .zip(&prepared)
        .partition(|(c, _)| c.on == On::Host || HELD_BY_LIVEFIRE.contains(&c.kind));
    let (ended_cases, ended_prepared): (Vec<&Case>, Vec<&Prepared>) = ended.into_iter().unzip();
    world.wait(
        &ended_cases,
        &ended_prepared,
        "stopped by itself with its crashed run",
        |s| s.clean,
    );
    for (case, p) in left {
        let seen = world.seen(case, Some(p));
        assert!(
            seen.applied,
            "{}: a crashed run leaves its fault behind: {seen:?}",
            case.kind
        );
    }
    let (code, out, err) = crate::support::run(world.home.livefire().arg("recover"));
    assert_eq!(code, 0, "{out}{err}");
    world.wait(&cases, &refs(&prepared), "clean after recover", |s| s.clean);
    assert_eq!(world.home.ledger_index(), "", "recover emptied the ledger");
}

#[test]
fn the_harness_and_the_spec_list_every_built_kind() {
    // docs/specs/fault.md lists every kind the file format knows, with an example and
    // whether it is built; the catalog's match routes every kind (a kind the spec adds
    // does not compile until it does), so each must say so, and be in KINDS.
    let doc = std::fs::read_to_string(repo().join("docs/specs/fault.md")).unwrap();
    let kinds = doc
        .split("\n## Kinds\n")
        .nth(1)
        .expect("a `## Kinds` section");
    let mut documented = Vec::new();
    for line in kinds.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (kind, example, built) = (cells[1].trim_matches('`'), cells[2], cells[3]);
        let example = example.trim_matches('`');
        let fault: Fault = spec(example);
        assert_eq!(fault.kind(), kind, "{example}");
        assert_eq!(
            built, "yes",
            "docs/specs/fault.md says `{kind}` built: {built}; the catalog's match routes it"
        );
        documented.push((kind.to_string(), built == "yes"));
    }
    let schema = livefire_spec::json_schema();
    let mut known: Vec<String> = schema["$defs"]["Fault"]["oneOf"]
        .as_array()
        .expect("the schema lists the fault kinds")
        .iter()
        .flat_map(|k| k["required"].as_array().cloned().unwrap_or_default())
        .filter_map(|k| k.as_str().map(String::from))
        .collect();
    known.sort();
    let mut listed: Vec<String> = documented.iter().map(|(k, _)| k.clone()).collect();
    listed.sort();
    assert_eq!(listed, known, "docs/specs/fault.md lists every kind once");
    // The human curveballs change no system: nothing for this harness to verify.
    const HUMAN: [&str; 2] = ["person.away", "person.no_access"];
    let mut built: Vec<&str> = documented
        .iter()
        .filter(|(k, b)| *b && !HUMAN.contains(&k.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    built.sort();
    let mut harnessed: Vec<&str> = KINDS.iter().map(|(k, _, _)| *k).collect();
    harnessed.sort();
    assert_eq!(harnessed, built, "every built kind has its line in KINDS");
}

#[test]
fn a_failing_command_fault_says_what_it_printed() {
    // Regression (issue 28): the run's message ended in ": " and the output was lost.
    let home = Home::new();
    let file = home.file("version: 1\ntitle: t\ntimeline:\n  - { at: 0s, for: 1s, name: break it, fault: { command: { apply: \"echo connecting; echo db is unreachable >&2; exit 3\" } } }\n");
    let (code, out, err) = run(&mut home.run(&file));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("exited with code 3; stderr: db is unreachable; stdout: connecting"),
        "{err}"
    );
}

/// Whose proxies the proxy cases use.
enum Owner<'rt> {
    /// Started in this process, as a run starts the proxies it owns.
    InProcess(&'rt tokio::runtime::Runtime),
    /// On a `livefire proxy` server, changed through its API (so a crashed run leaves
    /// its toxics behind for `recover`).
    Server,
}

/// One line of [`KINDS`], made real.
struct Case {
    kind: &'static str,
    on: On,
    /// The target's name in the experiment (the kind, with `-` for `.`).
    target: String,
    /// The target's YAML, for the experiment and for [`Targets`].
    target_yaml: String,
    /// The fault's YAML.
    fault: String,
    /// The file a `command` case touches.
    flag: PathBuf,
    /// Where a proxy case's proxy listens.
    listen: Option<String>,
}

/// Everything the cases act on; all of it stops when dropped.
struct World {
    home: Home,
    cases: Vec<Case>,
    targets: BTreeTargets,
    live: livefire_faults::proxy::Live,
    upstream: u16,
    _children: Children,
}

type BTreeTargets = std::collections::BTreeMap<String, Target>;

impl World {
    fn new(owner: Owner<'_>) -> World {
        let home = Home::new();
        let mut children = Children(Vec::new());
        let upstream = free_port();
        children.0.push(Running::Child(
            livefire()
                .args([
                    "sandbox",
                    "http",
                    "--listen",
                    &format!("127.0.0.1:{upstream}"),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        wait_port(upstream);
        let api = match owner {
            Owner::Server => {
                let port = free_port();
                children.0.push(Running::Child(
                    livefire()
                        .args(["proxy", "--port", &port.to_string()])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                ));
                wait_port(port);
                Some(port)
            }
            Owner::InProcess(_) => None,
        };
        // Stress workers are `livefire stress-worker`, also when applied in this process.
        livefire_faults::stress::set_program(env!("CARGO_BIN_EXE_livefire"));
        let mut live = livefire_faults::proxy::Live::default();
        let mut cases = Vec::new();
        let netns_ok = netns_prerequisites();
        for &(kind, on, attrs) in KINDS {
            if on == On::Netns && !netns_ok {
                continue;
            }
            let target = kind.replace('.', "-");
            let flag = home.path().join(format!("{target}.flag"));
            // A role and a table of the case's own.
            let object = target.replace('-', "_");
            let attrs = attrs
                .replace("{flag}", &flag.display().to_string())
                .replace("{role}", &object)
                .replace("{table}", &object);
            let mut listen = None;
            let target_yaml = match on {
                On::Process => {
                    let sleep = std::process::Command::new("sleep")
                        .arg("300")
                        .spawn()
                        .unwrap();
                    let pid = sleep.id();
                    children.0.push(Running::Child(sleep));
                    format!("{{ process: {{ pid: {pid} }} }}")
                }
                On::Restartable => {
                    let pidfile = home.path().join(format!("{target}.pid"));
                    let restart = format!(
                        "sleep 300 >/dev/null 2>&1 & echo $! > {}",
                        pidfile.display()
                    );
                    let (code, _, err) =
                        run(std::process::Command::new("sh").args(["-c", &restart]));
                    assert_eq!(code, 0, "{err}");
                    children.0.push(Running::Pidfile(pidfile.clone()));
                    format!(
                        "{{ process: {{ pidfile: {:?} }}, restart: {restart:?} }}",
                        pidfile.display().to_string()
                    )
                }
                On::Flag => String::new(),
                On::Host => "{ host: {} }".to_owned(),
                On::Path => {
                    let dir = home.path().join(&target);
                    std::fs::create_dir_all(&dir).unwrap();
                    format!("{{ path: {:?} }}", dir.display().to_string())
                }
                On::Netns => {
                    let ns = netns_with_veth();
                    children.0.push(Running::Netns(ns.clone()));
                    format!("{{ netns: {ns} }}")
                }
                On::Postgres => {
                    let Some(pg) = postgres(&object) else {
                        continue;
                    };
                    let (who, cluster) = (&pg.who, &pg.cluster);
                    let yaml = format!(
                        "{{ postgres: {{ dsn: {:?}, data_dir: {:?}{} }} }}",
                        cluster.admin_dsn(),
                        cluster.data.display().to_string(),
                        who.switch
                            .map(|_| format!(", user: {}", who.name))
                            .unwrap_or_default()
                    );
                    children.0.push(Running::Postgres(pg));
                    yaml
                }
                On::Proxy => match (&owner, api) {
                    (Owner::InProcess(rt), _) => {
                        let config = livefire_proxy::ProxyConfig::new(
                            &target,
                            "127.0.0.1:0",
                            format!("127.0.0.1:{upstream}"),
                        );
                        let proxy = rt.block_on(livefire_proxy::Proxy::start(config)).unwrap();
                        // The port it bound, as the experiment would have written it.
                        let addr = proxy.listen();
                        live.proxies.insert(addr.clone(), Arc::new(proxy));
                        listen = Some(addr.clone());
                        format!(
                            "{{ proxy: {{ listen: {addr:?}, upstream: \"127.0.0.1:{upstream}\" }} }}"
                        )
                    }
                    (Owner::Server, Some(api)) => {
                        let body = format!(
                            "{{\"name\":\"{target}\",\"listen\":\"127.0.0.1:0\",\"upstream\":\"127.0.0.1:{upstream}\"}}"
                        );
                        let (status, created) = http(api, "POST", "/proxies", &body);
                        assert_eq!(status, 201, "{created}");
                        let created: serde_json::Value = serde_json::from_str(&created).unwrap();
                        listen = created["listen"].as_str().map(String::from);
                        format!(
                            "{{ proxy: {{ api: \"http://127.0.0.1:{api}\", name: {target} }} }}"
                        )
                    }
                    (Owner::Server, None) => unreachable!("a server owner has an API port"),
                },
            };
            let fault = match on {
                On::Flag => format!("{kind}: {{ {attrs} }}"),
                _ if attrs.is_empty() => format!("{kind}: {{ target: {target} }}"),
                _ => format!("{kind}: {{ target: {target}, {attrs} }}"),
            };
            cases.push(Case {
                kind,
                on,
                target,
                target_yaml,
                fault,
                flag,
                listen,
            });
        }
        let targets = cases
            .iter()
            .filter(|c| c.on != On::Flag)
            .map(|c| (c.target.clone(), spec::<Target>(&c.target_yaml)))
            .collect();
        World {
            home,
            cases,
            targets,
            live,
            upstream,
            _children: children,
        }
    }

    fn dir(&self) -> &Path {
        self.home.path()
    }

    /// The targets as the engine hands them to the faults crate.
    fn fault_targets(&self) -> Targets {
        Targets {
            targets: self.targets.clone(),
            cwd: Some(self.dir().display().to_string()),
            seed: 7,
            live: self.live.clone(),
            home: Some(self.home.path().join("home")),
            ..Default::default()
        }
    }

    /// Prepares a case as the run does, under the same activity name (its kind), so its
    /// verify looks at what the run changes.
    fn prepare(&self, case: &Case) -> Prepared {
        let fault: Fault = spec(&case.fault);
        livefire_faults::prepare(&fault, &self.fault_targets(), case.kind)
            .unwrap_or_else(|e| panic!("{}: prepare: {e}", case.kind))
    }

    fn prepare_all(&self) -> Vec<Prepared> {
        self.cases.iter().map(|c| self.prepare(c)).collect()
    }

    /// One experiment holding every case at once, each named after its kind.
    fn experiment(&self) -> String {
        let mut text = String::from("version: 1\ntitle: every fault kind at once\ntargets:\n");
        for c in self.cases.iter().filter(|c| c.on != On::Flag) {
            text.push_str(&format!("  {}: {}\n", c.target, c.target_yaml));
        }
        text.push_str("timeline:\n");
        for c in &self.cases {
            text.push_str(&format!(
                "  - {{ at: 0s, for: 300s, name: {}, fault: {{ {} }} }}\n",
                c.kind, c.fault
            ));
        }
        text
    }

    fn start_run(&self, file: &Path) -> Child {
        self.home
            .run(file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// What a probe sees of `case` now. Without a `Prepared` (before prepare), only
    /// whether the world is clean.
    fn seen(&self, case: &Case, prepared: Option<&Prepared>) -> Seen {
        let mut seen = match (case.on, prepared) {
            (On::Flag, _) => {
                let on = case.flag.exists();
                Seen {
                    applied: on,
                    clean: !on,
                    detail: format!("{} exists: {on}", case.flag.display()),
                }
            }
            (_, None) => Seen {
                applied: false,
                clean: true,
                detail: String::new(),
            },
            (_, Some(p)) => p
                .verify()
                .unwrap_or_else(|e| panic!("{}: verify: {e}", case.kind))
                .unwrap_or_else(|| panic!("{}: livefire cannot verify it", case.kind)),
        };
        // Only worth asking when the fault itself says it is gone: a request through a
        // proxy that holds a toxic may take as long as the toxic says.
        if let (Some(listen), true) = (&case.listen, seen.clean) {
            let through = answer(listen);
            let direct = answer(&format!("127.0.0.1:{}", self.upstream));
            if through != direct {
                seen.clean = false;
                seen.detail.push_str(&format!(
                    "; through the proxy: {through:?}, direct: {direct:?}"
                ));
            }
        }
        seen
    }

    /// Waits until `done` holds for every case, or fails naming those for which it never
    /// did (with what was seen).
    fn wait(
        &self,
        cases: &[&Case],
        prepared: &[&Prepared],
        what: &str,
        done: impl Fn(&Seen) -> bool,
    ) {
        let start = Instant::now();
        loop {
            let pending: Vec<String> = cases
                .iter()
                .zip(prepared)
                .map(|(c, p)| (c, self.seen(c, Some(p))))
                .filter(|(_, s)| !done(s))
                .map(|(c, s)| format!("{}: {}", c.kind, s.detail))
                .collect();
            if pending.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "never {what}:\n  {}",
                pending.join("\n  ")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn refs(prepared: &[Prepared]) -> Vec<&Prepared> {
    prepared.iter().collect()
}

/// What the harness started, stopped when dropped.
struct Children(Vec<Running>);

enum Running {
    Child(Child),
    /// Held only to be dropped, which stops it.
    Postgres(#[expect(dead_code, reason = "its drop stops the server")] livefire_testkit::pg::Pg),
    /// A `sleep` started by a restart command, found through its pidfile.
    Pidfile(PathBuf),
    /// A network namespace the harness made (deleting it deletes what is in it).
    Netns(String),
}

impl Drop for Children {
    fn drop(&mut self) {
        for r in &mut self.0 {
            match r {
                Running::Child(c) => {
                    let _ = std::process::Command::new("kill")
                        .args(["-CONT", &c.id().to_string()])
                        .status();
                    let _ = c.kill();
                    let _ = c.wait();
                }
                Running::Netns(name) => {
                    let _ = std::process::Command::new("ip")
                        .args(["netns", "del", name])
                        .status();
                }
                Running::Postgres(_) => {}
                Running::Pidfile(path) => {
                    let pid = std::fs::read_to_string(&*path).unwrap_or_default();
                    let pid = pid.trim();
                    // Only the sleep it names, never a pid the kernel gave to another.
                    let comm =
                        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    if !pid.is_empty() && comm.trim() == "sleep" {
                        let _ = std::process::Command::new("kill")
                            .args(["-KILL", pid])
                            .status();
                    }
                }
            }
        }
    }
}

/// Whether this machine can run the `On::Netns` cases; says loudly when it cannot.
fn netns_prerequisites() -> bool {
    if !nix::unistd::geteuid().is_root() {
        livefire_testkit::skip_missing(
            "root, for the net.* cases (network namespaces)",
            "run the tests as root",
        );
        return false;
    }
    for (tool, package) in [("nft", "nftables"), ("ip", "iproute2"), ("tc", "iproute2")] {
        if std::process::Command::new(tool).arg("-V").output().is_err() {
            livefire_testkit::skip_missing(
                &format!("`{tool}`, for the net.* cases"),
                &format!("apt-get install {package}"),
            );
            return false;
        }
    }
    true
}

/// A new network namespace holding a veth pair (`v0`, `v1`, both up): something for
/// every net.* kind to act on.
fn netns_with_veth() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let ns = format!("lf-c-{}-{n}", std::process::id());
    for args in [
        vec!["netns", "add", &ns],
        vec![
            "-n", &ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
        ],
        vec!["-n", &ns, "link", "set", "lo", "up"],
        vec!["-n", &ns, "link", "set", "v0", "up"],
        vec!["-n", &ns, "link", "set", "v1", "up"],
    ] {
        let (code, _, err) = run(std::process::Command::new("ip").args(&args));
        assert_eq!(code, 0, "ip {}: {err}", args.join(" "));
    }
    ns
}

/// A PostgreSQL server of the case's own (the testkit's: data checksums, a free port)
/// with an `orders` table of several pages, flushed to disk, and a role that may log in
/// and a table both named `object` (the `{role}` and `{table}` of the access faults);
/// `None` after a SKIPPED line (a failure under CI) when this machine has no PostgreSQL.
fn postgres(object: &str) -> Option<livefire_testkit::pg::Pg> {
    let pg = livefire_testkit::pg::Pg::start()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(livefire_sandbox::pg::execute(
        &pg.cluster.admin_dsn(),
        &format!(
            "create table orders (id int8 primary key, item text);
             insert into orders select g, 'item ' || g from generate_series(1, 2000) g;
             checkpoint;
             create role \"{object}\" login; create table \"{object}\" (id int)"
        ),
    ))
    .unwrap();
    Some(pg)
}

fn spec<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
    let node = livefire_spec::yaml::parse(yaml).unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
    livefire_spec::de::from_node(&node).unwrap_or_else(|e| panic!("{yaml}: {e:?}"))
}

fn wait_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET /health` at `addr`: the status line and the body (by its Content-Length: the
/// sandbox keeps connections open), or why there was none.
fn answer(addr: &str) -> String {
    let mut s = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => return format!("connect: {e}"),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if let Err(e) = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n") {
        return format!("send: {e}");
    }
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return format!("closed after {status:?}"),
            Ok(_) if line == "\r\n" => break,
            Ok(_) if status.is_empty() => status = line.trim_end().to_string(),
            Ok(_) => {
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            Err(e) => return format!("read: {e}"),
        }
    }
    let mut body = vec![0; length];
    match reader.read_exact(&mut body) {
        Ok(()) => format!("{status} {}", String::from_utf8_lossy(&body)),
        Err(e) => format!("{status}, body: {e}"),
    }
}

/// One HTTP/1.1 request to a local port with Connection: close; returns (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}
