//! `livefire sandbox up|down|status|rejoin|restart`: a replicated PostgreSQL (or a
//! SQLite file), the token service, the orders API and the failover helper on one
//! machine, every piece recorded in DIR/sandbox.json as soon as it exists, so `down`
//! stops all of it and an `up` that fails half-way stops what it started, newest first.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::SandboxError;
use crate::pg::{self, Cluster, Role, RunAs};
use crate::proc::{self, ProcId};
use crate::state::{PgNode, Sandbox, Service};

/// How `up` starts its own services: this program and the arguments that lead to the
/// sandbox subcommands (`livefire sandbox ...`, or `livefire-sandbox ...`).
#[derive(Debug, Clone)]
pub struct Launcher {
    pub program: PathBuf,
    pub prefix: Vec<String>,
}

/// Which store `up` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreChoice {
    /// PostgreSQL when its binaries are found, else SQLite (saying what it skipped).
    Auto,
    /// A primary and a streaming replica; an error when the binaries are missing.
    Postgres,
    /// One SQLite file: no replication, no failover.
    Sqlite,
}

/// What `up` is asked to start.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub dir: PathBuf,
    pub store: StoreChoice,
    pub defects: bool,
    pub failover_after: Duration,
    pub api_listen: Option<String>,
    pub token_listen: Option<String>,
    /// host:port the orders API calls for authorization (a proxy in front of the
    /// token service); default the token service itself.
    pub token_via: Option<String>,
    /// PostgreSQL's bin directory; default: found on PATH or under the usual roots.
    pub pg_bin: Option<PathBuf>,
    pub launcher: Launcher,
}

/// The one package that brings the full drill (PostgreSQL primary, replica, failover).
pub const PG_PACKAGE: &str = "postgresql";

/// How long a service may take to answer its health check after it starts.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// Starts the sandbox in `opts.dir`. On any error, what was started is stopped again
/// (newest first) before the error is returned.
pub fn up(opts: &UpOptions, out: &mut dyn Write) -> Result<Sandbox, SandboxError> {
    std::fs::create_dir_all(&opts.dir)
        .map_err(|e| SandboxError::io(format!("cannot create {}", opts.dir.display()), e))?;
    let dir = std::fs::canonicalize(&opts.dir)
        .map_err(|e| SandboxError::io(format!("cannot resolve {}", opts.dir.display()), e))?;
    clear_previous(&dir, out)?;

    let bin = match (&opts.pg_bin, opts.store) {
        (_, StoreChoice::Sqlite) => None,
        (Some(b), _) => {
            if !pg::PROGRAMS.iter().all(|p| b.join(p).is_file()) {
                return Err(SandboxError::NoPostgres(format!(
                    "{} lacks some of {}",
                    b.display(),
                    pg::PROGRAMS.join(", ")
                )));
            }
            Some(b.clone())
        }
        (None, choice) => {
            let found = pg::installed();
            if found.is_none() && choice == StoreChoice::Postgres {
                return Err(SandboxError::NoPostgres(
                    "none on PATH or under /usr/lib/postgresql/*/bin".into(),
                ));
            }
            if found.is_none() {
                writeln!(
                    out,
                    "no PostgreSQL server binaries found (PATH, /usr/lib/postgresql/*/bin): \
                     the orders API runs on SQLite, and the replica, the failover helper and \
                     the database failover drill are skipped.\n\
                     For the full drill install one package: apt-get install {PG_PACKAGE}"
                )
                .ok();
            }
            found
        }
    };

    let mut sb = Sandbox {
        v: 1,
        dir: dir.clone(),
        store: if bin.is_some() { "postgres" } else { "sqlite" }.into(),
        up: false,
        bin_dir: bin.clone(),
        pg_user: None,
        postgres: Vec::new(),
        dsn: None,
        sqlite: None,
        services: Vec::new(),
        tokens: vec![("alice".into(), new_token()), ("bob".into(), new_token())],
        defects: opts.defects,
    };
    sb.save()?;
    match start_all(&mut sb, opts, out) {
        Ok(()) => {
            sb.up = true;
            sb.save()?;
            Ok(sb)
        }
        Err(e) => {
            writeln!(
                out,
                "up failed: {e}\nstopping what it started, newest first"
            )
            .ok();
            for problem in stop_all(&mut sb, out) {
                writeln!(out, "  could not stop: {problem}").ok();
            }
            Err(e)
        }
    }
}

fn start_all(sb: &mut Sandbox, opts: &UpOptions, out: &mut dyn Write) -> Result<(), SandboxError> {
    let mut store_args: Vec<String> = Vec::new();
    if let Some(bin) = sb.bin_dir.clone() {
        let who = RunAs::detect()?;
        sb.pg_user = Some(who.name.clone());
        let run_dir = sb.dir.join("pg");
        if who.switch.is_some() {
            reachable_by_others(&sb.dir)?;
        }
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| SandboxError::io(format!("cannot create {}", run_dir.display()), e))?;
        who.own(&run_dir)?;
        let primary = Cluster {
            bin: bin.clone(),
            data: run_dir.join("primary"),
            port: proc::free_port().map_err(|e| SandboxError::io("no free port".into(), e))?,
            name: "primary".into(),
            run_dir: run_dir.clone(),
        };
        record_node(sb, &primary)?;
        writeln!(
            out,
            "initdb primary (data checksums) in {}",
            primary.data.display()
        )
        .ok();
        primary.initdb(&who)?;
        primary.start(&who)?;
        record_pid(sb, &primary)?;
        let rt = runtime()?;
        for sql in ["create role app login", "create database orders owner app"] {
            rt.block_on(pg::execute(&primary.admin_dsn(), sql))?;
        }

        let replica = Cluster {
            port: proc::free_port().map_err(|e| SandboxError::io("no free port".into(), e))?,
            data: run_dir.join("replica"),
            name: "replica".into(),
            ..primary.clone()
        };
        record_node(sb, &replica)?;
        writeln!(out, "pg_basebackup replica from primary").ok();
        replica.base_backup(&who, &primary)?;
        replica.start(&who)?;
        record_pid(sb, &replica)?;
        wait_streaming(&rt, &primary, &replica.name)?;
        // Synchronous replication from here on: a commit is acknowledged once the
        // replica has it, so promoting the replica loses no acknowledged write.
        for sql in [
            "alter system set synchronous_standby_names = 'replica'",
            "select pg_reload_conf()",
        ] {
            rt.block_on(pg::execute(&primary.admin_dsn(), sql))?;
        }
        let dsn = format!(
            "postgres://app@127.0.0.1:{},127.0.0.1:{}/orders?target_session_attrs=read-write&connect_timeout=2",
            primary.port, replica.port
        );
        sb.dsn = Some(dsn.clone());
        sb.save()?;
        store_args.extend(["--dsn".into(), dsn]);
    } else {
        let file = sb.dir.join("orders.sqlite");
        sb.sqlite = Some(file.clone());
        sb.save()?;
        store_args.extend(["--sqlite".into(), file.to_string_lossy().into_owned()]);
    }

    let token_listen = listen_or_free(&opts.token_listen)?;
    let mut token_args = vec!["token".to_string(), "--listen".into(), token_listen.clone()];
    for (user, token) in &sb.tokens {
        token_args.extend(["--token".into(), format!("{user}={token}")]);
    }
    spawn(
        sb,
        &opts.launcher,
        "token",
        Some(token_listen.clone()),
        token_args,
    )?;

    let api_listen = listen_or_free(&opts.api_listen)?;
    let mut api_args = vec![
        "service".to_string(),
        "--listen".into(),
        api_listen.clone(),
        "--token-addr".into(),
        opts.token_via.clone().unwrap_or(token_listen),
    ];
    api_args.extend(store_args);
    if opts.defects {
        api_args.push("--defects".into());
    }
    spawn(sb, &opts.launcher, "orders", Some(api_listen), api_args)?;

    if sb.store == "postgres" {
        let args = vec![
            "failover".to_string(),
            "--dir".into(),
            sb.dir.to_string_lossy().into_owned(),
            "--after".into(),
            format!("{}ms", opts.failover_after.as_millis()),
        ];
        spawn(sb, &opts.launcher, "failover", None, args)?;
    }
    Ok(())
}

/// Stops everything `sb` records, newest first: the services, then the servers. The
/// record says `up: false` afterwards. Returns what could not be stopped.
pub fn stop_all(sb: &mut Sandbox, out: &mut dyn Write) -> Vec<String> {
    let mut problems = Vec::new();
    for s in sb.services.iter().rev() {
        if s.pid.alive() {
            if s.pid.stop(Duration::from_secs(5)) {
                let _ = std::fs::remove_file(pidfile(sb, &s.name));
                writeln!(out, "stopped {} (pid {})", s.name, s.pid.pid).ok();
            } else {
                problems.push(format!("{} (pid {})", s.name, s.pid.pid));
            }
        }
    }
    if !sb.postgres.is_empty() {
        match (RunAs::detect(), clusters(sb)) {
            (Ok(who), Ok(nodes)) => {
                for n in nodes.iter().rev() {
                    let pid = n.postmaster();
                    match n.stop(&who) {
                        Ok(()) => {
                            if let Some(p) = pid {
                                writeln!(out, "stopped PostgreSQL {} (pid {})", n.name, p.pid).ok();
                            }
                        }
                        Err(e) => problems.push(format!("PostgreSQL {}: {e}", n.name)),
                    }
                }
            }
            (Err(e), _) | (_, Err(e)) => problems.push(e.to_string()),
        }
    }
    sb.up = false;
    if let Err(e) = sb.save() {
        problems.push(e.to_string());
    }
    problems
}

/// `down`: stops the sandbox in `dir`. Files stay (logs, data) until the next `up`.
pub fn down(dir: &Path, out: &mut dyn Write) -> Result<(), SandboxError> {
    let Some(mut sb) = Sandbox::load(dir)? else {
        writeln!(out, "no sandbox in {}: nothing to stop", dir.display()).ok();
        return Ok(());
    };
    let problems = stop_all(&mut sb, out);
    if problems.is_empty() {
        writeln!(out, "sandbox in {} is down", sb.dir.display()).ok();
        Ok(())
    } else {
        Err(SandboxError::Setup(format!(
            "could not stop: {}; stop them by hand",
            problems.join(", ")
        )))
    }
}

/// One line of `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentStatus {
    pub name: String,
    pub kind: String,
    pub address: Option<String>,
    pub pid: Option<u32>,
    pub answers: bool,
    pub detail: String,
}

/// Asks every component whether it answers.
pub fn status(dir: &Path) -> Result<(Sandbox, Vec<ComponentStatus>), SandboxError> {
    let sb = Sandbox::load(dir)?.ok_or_else(|| SandboxError::NotUp(dir.to_owned()))?;
    let mut lines = Vec::new();
    if !sb.postgres.is_empty() {
        let rt = runtime()?;
        for n in clusters(&sb)? {
            let role = rt.block_on(pg::role(n.port, Duration::from_secs(2)));
            lines.push(ComponentStatus {
                name: n.name.clone(),
                kind: "postgres".into(),
                address: Some(format!("127.0.0.1:{}", n.port)),
                pid: n.postmaster().map(|p| p.pid),
                answers: role.is_some(),
                detail: match role {
                    Some(r) => r.describe().into(),
                    None if n.postmaster().is_some() => "running, not answering".into(),
                    None => "not running".into(),
                },
            });
        }
    }
    for s in &sb.services {
        let alive = s.pid.alive();
        let (answers, detail) = match (&s.listen, alive) {
            (_, false) => (false, "not running".to_string()),
            (Some(l), true) => match proc::http_get(l, "/health", Duration::from_secs(3)) {
                Some((200, _)) => (true, "healthy".into()),
                Some((code, body)) => (true, format!("answers {code}: {}", body.trim())),
                None => (false, "running, not answering".into()),
            },
            (None, true) => (true, "running".into()),
        };
        lines.push(ComponentStatus {
            name: s.name.clone(),
            kind: if s.listen.is_some() { "http" } else { "helper" }.into(),
            address: s.listen.as_ref().map(|l| format!("http://{l}")),
            pid: alive.then_some(s.pid.pid),
            answers,
            detail,
        });
    }
    Ok((sb, lines))
}

/// `rejoin NODE`: brings a stopped PostgreSQL node back without ever making a second
/// primary: as it was when the other node is still a standby (nothing was promoted),
/// else rewound and started as a standby of the other node, the primary now.
pub fn rejoin(dir: &Path, name: &str, out: &mut dyn Write) -> Result<(), SandboxError> {
    let sb = Sandbox::load(dir)?.ok_or_else(|| SandboxError::NotUp(dir.to_owned()))?;
    let nodes = clusters(&sb)?;
    let Some(node) = nodes.iter().find(|n| n.name == name) else {
        return Err(SandboxError::Setup(format!(
            "no PostgreSQL node `{name}` in this sandbox: it has {}",
            if nodes.is_empty() {
                "none (the store is SQLite)".to_string()
            } else {
                nodes
                    .iter()
                    .map(|n| n.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )));
    };
    let who = RunAs::detect()?;
    let _lock = Lock::take(&sb)?;
    let rt = runtime()?;
    if node.postmaster().is_some() {
        let role = rt.block_on(pg::role(node.port, Duration::from_secs(2)));
        writeln!(
            out,
            "{name} is running ({}): nothing to do",
            role.map_or("not answering yet", Role::describe)
        )
        .ok();
        return Ok(());
    }
    node.clear_after_kill();
    let others: Vec<(&Cluster, Option<Role>)> = nodes
        .iter()
        .filter(|n| n.name != name)
        .map(|n| (n, rt.block_on(pg::role(n.port, Duration::from_secs(2)))))
        .collect();
    if let Some((primary, _)) = others.iter().find(|(_, r)| *r == Some(Role::Primary)) {
        if !node.is_standby_configured() {
            writeln!(
                out,
                "{} is the primary now: rewinding {name} to follow it",
                primary.name
            )
            .ok();
            // A promoted server records its new timeline in pg_control only at its next
            // checkpoint; before it, pg_rewind sees one timeline and rewinds nothing.
            rt.block_on(pg::execute(&primary.admin_dsn(), "checkpoint"))?;
            node.rewind_to(&who, primary)?;
        }
        node.start(&who)?;
        writeln!(out, "{name} is back as a standby of {}", primary.name).ok();
        return Ok(());
    }
    if others.iter().all(|(_, r)| *r == Some(Role::Standby)) && !others.is_empty() {
        // Nothing was promoted: the node comes back as what it was.
        node.start(&who)?;
        let what = if node.is_standby_configured() {
            "a standby"
        } else {
            "the primary (no standby was promoted)"
        };
        writeln!(out, "{name} is back as {what}").ok();
        return Ok(());
    }
    Err(SandboxError::Setup(format!(
        "cannot rejoin {name}: no other node answers, so it is unknown whether one was promoted; \
         start the other node first (`livefire sandbox rejoin {}`)",
        others.first().map_or("replica", |(n, _)| n.name.as_str())
    )))
}

/// `restart NAME`: stops the service NAME if it runs and starts it again with the
/// command line it was first started with.
pub fn restart(dir: &Path, name: &str, out: &mut dyn Write) -> Result<(), SandboxError> {
    let mut sb = Sandbox::load(dir)?.ok_or_else(|| SandboxError::NotUp(dir.to_owned()))?;
    let Some(idx) = sb.services.iter().position(|s| s.name == name) else {
        if sb.node(name).is_some() {
            return Err(SandboxError::Setup(format!(
                "{name} is a PostgreSQL node: use `livefire sandbox rejoin {name}`"
            )));
        }
        return Err(SandboxError::Setup(format!(
            "no service `{name}` in this sandbox: it has {}",
            sb.services
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let old = sb.services.remove(idx);
    old.pid.stop(Duration::from_secs(5));
    if let Some(listen) = &old.listen {
        // A killed multi-threaded process shows as a zombie while its other threads
        // still close its files: wait until its address is free again.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpListener::bind(listen).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let launcher = Launcher {
        program: PathBuf::from(&old.argv[0]),
        prefix: Vec::new(),
    };
    let from = log_len(&old.log);
    let child = launch(&launcher, &old.argv[1..], &old.log)?;
    let svc = Service { pid: child, ..old };
    sb.services.insert(idx, svc.clone());
    sb.save()?;
    write_pidfile(&sb, &svc)?;
    wait_ready(&svc, from)?;
    writeln!(out, "restarted {name} (pid {})", svc.pid.pid).ok();
    Ok(())
}

/// The sandbox's PostgreSQL nodes as clusters to act on.
pub fn clusters(sb: &Sandbox) -> Result<Vec<Cluster>, SandboxError> {
    let bin = sb.bin_dir.clone().ok_or_else(|| {
        SandboxError::Setup(format!(
            "the sandbox in {} has no PostgreSQL (its store is {})",
            sb.dir.display(),
            sb.store
        ))
    })?;
    Ok(sb
        .postgres
        .iter()
        .map(|n| Cluster {
            bin: bin.clone(),
            data: n.data_dir.clone(),
            port: n.port,
            name: n.name.clone(),
            run_dir: n.run_dir.clone(),
        })
        .collect())
}

/// An exclusive lock on DIR/pg/sandbox.lock, held while a node is promoted or
/// rejoined, so the failover helper and `rejoin` never decide at the same time.
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl Lock {
    pub fn take(sb: &Sandbox) -> Result<Lock, SandboxError> {
        let path = sb.dir.join("pg").join("sandbox.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| SandboxError::io(format!("cannot open {}", path.display()), e))?;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o666));
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| SandboxError::io(format!("cannot lock {}", path.display()), e.into()))
    }
}

/// Refuses a folder that holds a live sandbox or data `up` did not make; removes the
/// data of a previous sandbox that is down.
fn clear_previous(dir: &Path, out: &mut dyn Write) -> Result<(), SandboxError> {
    match Sandbox::load(dir)? {
        Some(old) => {
            let live: Vec<String> = old
                .services
                .iter()
                .filter(|s| s.pid.alive())
                .map(|s| format!("{} (pid {})", s.name, s.pid.pid))
                .chain(clusters(&old).unwrap_or_default().iter().filter_map(|c| {
                    c.postmaster()
                        .map(|p| format!("PostgreSQL {} (pid {})", c.name, p.pid))
                }))
                .collect();
            if !live.is_empty() {
                return Err(SandboxError::AlreadyUp {
                    dir: dir.to_owned(),
                    what: live.join(", "),
                });
            }
            for n in &old.postgres {
                if n.data_dir.starts_with(dir) {
                    remove(&n.data_dir)?;
                }
            }
            if let Some(f) = old.sqlite.as_ref().filter(|f| f.starts_with(dir)) {
                for suffix in ["", "-wal", "-shm"] {
                    let p = PathBuf::from(format!("{}{suffix}", f.display()));
                    if p.exists() {
                        std::fs::remove_file(&p).map_err(|e| {
                            SandboxError::io(format!("cannot remove {}", p.display()), e)
                        })?;
                    }
                }
            }
            writeln!(
                out,
                "cleared the previous sandbox's data in {}",
                dir.display()
            )
            .ok();
        }
        None => {
            let pg = dir.join("pg");
            if pg.exists() {
                return Err(SandboxError::Setup(format!(
                    "{} exists but no sandbox.json says it is a sandbox's: remove it or choose another --dir",
                    pg.display()
                )));
            }
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), SandboxError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SandboxError::io(
            format!("cannot remove {}", path.display()),
            e,
        )),
    }
}

/// When PostgreSQL runs as another user, it must be able to reach DIR: every folder
/// above it must be searchable by others; DIR itself is made so.
fn reachable_by_others(dir: &Path) -> Result<(), SandboxError> {
    for a in dir.ancestors().skip(1) {
        let mode = std::fs::metadata(a)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        if mode & 0o001 == 0 {
            return Err(SandboxError::Setup(format!(
                "PostgreSQL runs as the `postgres` user, which cannot reach {} ({} is not searchable by others): \
                 choose a --dir under /tmp",
                dir.display(),
                a.display()
            )));
        }
    }
    let meta = std::fs::metadata(dir)
        .map_err(|e| SandboxError::io(format!("cannot read {}", dir.display()), e))?;
    let mode = meta.permissions().mode();
    if mode & 0o001 == 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o001))
            .map_err(|e| SandboxError::io(format!("cannot chmod {}", dir.display()), e))?;
    }
    Ok(())
}

fn record_node(sb: &mut Sandbox, c: &Cluster) -> Result<(), SandboxError> {
    sb.postgres.push(PgNode {
        name: c.name.clone(),
        port: c.port,
        data_dir: c.data.clone(),
        run_dir: c.run_dir.clone(),
        dsn: format!("postgres://app@127.0.0.1:{}/orders", c.port),
        pid: None,
    });
    sb.save()
}

fn record_pid(sb: &mut Sandbox, c: &Cluster) -> Result<(), SandboxError> {
    let pid = c.postmaster();
    if let Some(n) = sb.postgres.iter_mut().find(|n| n.name == c.name) {
        n.pid = pid;
    }
    sb.save()
}

/// Waits until the primary reports `standby` streaming.
fn wait_streaming(
    rt: &tokio::runtime::Runtime,
    primary: &Cluster,
    standby: &str,
) -> Result<(), SandboxError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let sql = format!(
        "select count(*) from pg_stat_replication where application_name = '{standby}' and state = 'streaming'"
    );
    loop {
        if let Ok(msgs) = rt.block_on(pg::execute(&primary.admin_dsn(), &sql)) {
            let streaming = msgs.iter().any(|m| {
                matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("1"))
            });
            if streaming {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(SandboxError::Setup(format!(
                "the {standby} did not start streaming from the primary within 30 s: see {}",
                primary.run_dir.join(format!("{standby}.log")).display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn listen_or_free(listen: &Option<String>) -> Result<String, SandboxError> {
    match listen {
        Some(l) => Ok(l.clone()),
        None => proc::free_port()
            .map(|p| format!("127.0.0.1:{p}"))
            .map_err(|e| SandboxError::io("no free port".into(), e)),
    }
}

/// Starts a service, records it, and waits until it is ready.
fn spawn(
    sb: &mut Sandbox,
    launcher: &Launcher,
    name: &str,
    listen: Option<String>,
    args: Vec<String>,
) -> Result<(), SandboxError> {
    let log = sb.dir.join(format!("{name}.log"));
    let from = log_len(&log);
    let full: Vec<String> = launcher.prefix.iter().cloned().chain(args).collect();
    let pid = launch(launcher, &full, &log)?;
    let svc = Service {
        name: name.into(),
        listen,
        argv: std::iter::once(launcher.program.to_string_lossy().into_owned())
            .chain(full)
            .collect(),
        log,
        pid,
    };
    sb.services.push(svc.clone());
    sb.save()?;
    write_pidfile(sb, &svc)?;
    wait_ready(&svc, from)
}

/// DIR/NAME.pid: the service's pid as its first line, for an experiment's `process`
/// target (`pidfile:`), like PostgreSQL's postmaster.pid.
pub fn pidfile(sb: &Sandbox, name: &str) -> PathBuf {
    sb.dir.join(format!("{name}.pid"))
}

fn write_pidfile(sb: &Sandbox, svc: &Service) -> Result<(), SandboxError> {
    let path = pidfile(sb, &svc.name);
    std::fs::write(&path, format!("{}\n", svc.pid.pid))
        .map_err(|e| SandboxError::io(format!("cannot write {}", path.display()), e))
}

/// How long `log` is now: a restarted service's readiness is read after this point.
fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |m| m.len())
}

/// What was written to `log` after byte `from`.
fn log_since(log: &Path, from: u64) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default()).into_owned()
}

/// Runs `program args` detached (own process group, output appended to `log`).
fn launch(launcher: &Launcher, args: &[String], log: &Path) -> Result<ProcId, SandboxError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| SandboxError::io(format!("cannot open {}", log.display()), e))?;
    let err = file
        .try_clone()
        .map_err(|e| SandboxError::io(format!("cannot open {}", log.display()), e))?;
    let child = Command::new(&launcher.program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| SandboxError::io(format!("cannot start {}", launcher.program.display()), e))?;
    ProcId::of(child.id()).ok_or_else(|| {
        SandboxError::Setup(format!(
            "{} exited at once: see {}",
            launcher.program.display(),
            log.display()
        ))
    })
}

/// Waits for a service's health check (HTTP services) or its first line (the failover
/// helper) written to its log after byte `from`; an error with the end of its log if
/// it exits or does not get ready.
fn wait_ready(svc: &Service, from: u64) -> Result<(), SandboxError> {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if !svc.pid.alive() {
            return Err(SandboxError::Setup(format!(
                "the {} service exited; the end of {}:\n{}",
                svc.name,
                svc.log.display(),
                pg::tail(&log_since(&svc.log, from), 8)
            )));
        }
        let ready = match &svc.listen {
            Some(l) => matches!(
                proc::http_get(l, "/health", Duration::from_secs(2)),
                Some((200, _))
            ),
            None => log_since(&svc.log, from).contains("watching"),
        };
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(SandboxError::Setup(format!(
                "the {} service did not get ready within {} s; the end of {}:\n{}",
                svc.name,
                READY_WITHIN.as_secs(),
                svc.log.display(),
                pg::tail(&log_since(&svc.log, from), 8)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, SandboxError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SandboxError::io("cannot start a runtime".into(), e))
}

/// 24 random hex characters.
fn new_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..24)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}
