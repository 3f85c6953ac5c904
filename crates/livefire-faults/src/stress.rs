//! The `livefire stress-worker` process behind `cpu.stress` and `memory.stress`: how it
//! is started, found again and stopped, and what it does.
//!
//! Design: the work runs in a child process (`livefire stress-worker ...`, a hidden
//! subcommand), in its own process group, never in livefire itself, so that stopping
//! it is one SIGKILL and it cannot take livefire down with it. Its command line carries
//! a token that `prepare` draws before it exists; the undo record names that token
//! (`UndoRecord::StressWorker`), so the record is in the ledger before the worker runs
//! and `livefire recover` finds exactly it by scanning /proc (argv[1] is
//! `stress-worker` and the token follows `--token`). The worker bounds itself twice: it
//! exits when the process that started it is gone (it polls its parent pid every
//! 100 ms, which holds whichever thread spawned it, unlike PR_SET_PDEATHSIG) and at its
//! deadline (the fault's end plus a grace, so the engine's own rollback normally stops
//! it first).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use livefire_core::exit::Exit;
use livefire_core::undo::ProcessId;
use nix::libc::SIGKILL;

use crate::process;

/// The hidden subcommand of the `livefire` binary that runs a worker.
pub const SUBCOMMAND: &str = "stress-worker";

/// How long past the fault's end a worker may run if nothing stopped it.
pub const GRACE: Duration = Duration::from_secs(10);

/// The bound of a worker started without a deadline (a library caller that gave none).
pub const DEFAULT_BOUND: Duration = Duration::from_secs(3600);

/// How long `apply` waits for a worker to say it holds its load.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How often the worker looks at its parent and its deadline.
const POLL: Duration = Duration::from_millis(100);

/// The period of a partial `load`: busy for `load` of it, asleep for the rest.
const PERIOD: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum StressError {
    #[error(
        "cannot find the livefire program to start a stress worker ({0}): run livefire from its installed path"
    )]
    Program(String),
    #[error("cannot start the stress worker {program}: {reason}")]
    Spawn { program: String, reason: String },
    #[error("the stress worker exited before it held its load: {0}")]
    Failed(String),
    #[error("the stress worker did not hold its load within {0:?}; it was stopped")]
    NotReady(Duration),
    #[error("stress worker {token} (pid {pid}) did not stop after SIGKILL")]
    Unkillable { token: String, pid: u32 },
    #[error(transparent)]
    Process(#[from] process::ProcessError),
}

/// What the worker itself refuses or fails at (its stderr, which the fault reports), and
/// what livefire cannot read about the machine's memory.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkerError {
    #[error("`{0}` needs a value")]
    NoValue(String),
    #[error("`{flag} {value}`: not a number")]
    NotANumber { flag: String, value: String },
    #[error("`--cpus`: `{0}` is not a CPU number")]
    NotACpu(String),
    #[error("unknown argument `{0}`")]
    Unknown(String),
    #[error("`{0}` is missing")]
    Missing(&'static str),
    #[error("cannot hold {0} bytes here")]
    TooLarge(u64),
    #[error("cannot allocate {bytes} bytes: {reason}")]
    Allocate { bytes: u64, reason: String },
    #[error("cannot pin a worker to CPU {cpu}: {reason}")]
    Pin { cpu: u32, reason: String },
    #[error("cannot read /proc/meminfo: {0}")]
    MemInfo(String),
    #[error("/proc/meminfo has no {0}")]
    MemInfoField(&'static str),
}

/// What a worker does.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// `workers` threads, each busy for `load` (0 < load <= 1) of every period,
    /// pinned round-robin to `cpus` when some are named.
    Cpu {
        workers: u32,
        load: f64,
        cpus: Vec<u32>,
    },
    /// Hold `bytes` of memory, every page written.
    Memory { bytes: u64 },
}

/// A worker's whole command line after the subcommand.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerArgs {
    /// What the undo record names.
    pub token: String,
    /// The process that started it: the worker exits when this is no longer its parent.
    pub parent: u32,
    /// The worker exits after this long.
    pub bound: Duration,
    pub work: Work,
}

impl WorkerArgs {
    /// The arguments after `stress-worker`, as [`WorkerArgs::parse`] reads them back.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--token".to_owned(),
            self.token.clone(),
            "--parent".to_owned(),
            self.parent.to_string(),
            "--for-ms".to_owned(),
            self.bound.as_millis().to_string(),
        ];
        match &self.work {
            Work::Cpu {
                workers,
                load,
                cpus,
            } => {
                a.extend([
                    "cpu".to_owned(),
                    "--workers".to_owned(),
                    workers.to_string(),
                ]);
                a.extend(["--load".to_owned(), load.to_string()]);
                if !cpus.is_empty() {
                    let list: Vec<String> = cpus.iter().map(u32::to_string).collect();
                    a.extend(["--cpus".to_owned(), list.join(",")]);
                }
            }
            Work::Memory { bytes } => {
                a.extend(["memory".to_owned(), "--bytes".to_owned(), bytes.to_string()])
            }
        }
        a
    }

    /// Reads what [`WorkerArgs::to_args`] wrote.
    pub fn parse(args: &[String]) -> Result<WorkerArgs, WorkerError> {
        let mut token = None;
        let mut parent = None;
        let mut bound = None;
        let mut what = None;
        let (mut workers, mut load, mut cpus, mut bytes) = (None, None, Vec::new(), None);
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| WorkerError::NoValue(flag.clone()))
            };
            let num = |v: String| {
                v.parse::<u64>().map_err(|_| WorkerError::NotANumber {
                    flag: flag.clone(),
                    value: v.clone(),
                })
            };
            match flag.as_str() {
                "--token" => token = Some(value()?),
                "--parent" => parent = Some(num(value()?)? as u32),
                "--for-ms" => bound = Some(Duration::from_millis(num(value()?)?)),
                "cpu" | "memory" => what = Some(flag.clone()),
                "--workers" => workers = Some(num(value()?)? as u32),
                "--load" => {
                    let v = value()?;
                    load = Some(v.parse::<f64>().map_err(|_| WorkerError::NotANumber {
                        flag: "--load".into(),
                        value: v.clone(),
                    })?)
                }
                "--cpus" => {
                    for c in value()?.split(',') {
                        cpus.push(c.parse().map_err(|_| WorkerError::NotACpu(c.to_owned()))?);
                    }
                }
                "--bytes" => bytes = Some(num(value()?)?),
                other => return Err(WorkerError::Unknown(other.to_owned())),
            }
        }
        let missing = WorkerError::Missing;
        let work = match what.as_deref() {
            Some("cpu") => Work::Cpu {
                workers: workers.ok_or_else(|| missing("--workers"))?,
                load: load
                    .filter(|l| *l > 0.0 && *l <= 1.0)
                    .ok_or_else(|| missing("--load (0 < load <= 1)"))?,
                cpus,
            },
            Some("memory") => Work::Memory {
                bytes: bytes.ok_or_else(|| missing("--bytes"))?,
            },
            _ => return Err(missing("cpu or memory")),
        };
        Ok(WorkerArgs {
            token: token.ok_or_else(|| missing("--token"))?,
            parent: parent.ok_or_else(|| missing("--parent"))?,
            bound: bound.ok_or_else(|| missing("--for-ms"))?,
            work,
        })
    }
}

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Names the `livefire` program that runs workers, for callers that are not the
/// `livefire` binary themselves (tests that apply faults in-process). Without it the
/// running program is used. The first call wins.
pub fn set_program(path: impl Into<PathBuf>) {
    let _ = PROGRAM.set(path.into());
}

fn program() -> Result<PathBuf, StressError> {
    match PROGRAM.get() {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe().map_err(|e| StressError::Program(e.to_string())),
    }
}

/// The start of the tokens of `kind`'s workers (or fill files) for `activity`: what a
/// verify looks for, so that a `Prepared` of the same activity sees what a run applied
/// (as the conformance harness does). Only `[A-Za-z0-9.]` of the name is kept, the rest
/// becomes `_`, so `-` only separates parts and one activity's prefix never starts
/// another's.
pub(crate) fn token_prefix(kind: &str, activity: &str) -> String {
    let slug: String = activity
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("livefire-{kind}-{slug}-")
}

/// A token no other worker has: its prefix, livefire's pid, the time, a counter.
pub(crate) fn new_token(kind: &str, activity: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}{}-{nanos:x}-{}",
        token_prefix(kind, activity),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// How long a worker applied now may run: until `until` plus [`GRACE`], or
/// [`DEFAULT_BOUND`] without a deadline.
pub(crate) fn bound(until: Option<Instant>) -> Duration {
    match until {
        Some(u) => u.saturating_duration_since(Instant::now()) + GRACE,
        None => DEFAULT_BOUND,
    }
}

/// Starts a worker and waits until it says it holds its load. Returns its pid. A thread
/// reaps it when it exits, so a stopped worker leaves no zombie behind a live run.
pub(crate) fn spawn(args: &WorkerArgs) -> Result<u32, StressError> {
    let program = program()?;
    let mut child = Command::new(&program)
        .arg(SUBCOMMAND)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C meant for livefire does not reach it; the
        // engine's rollback stops it.
        .process_group(0)
        .spawn()
        .map_err(|e| StressError::Spawn {
            program: program.display().to_string(),
            reason: e.to_string(),
        })?;
    let pid = child.id();
    let stdout = child.stdout.take();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        if let Some(out) = stdout {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let _ = tx.send(line);
    });
    let said = rx.recv_timeout(READY_TIMEOUT);
    if matches!(&said, Ok(line) if line.trim() == "ready") {
        std::thread::spawn(move || child.wait());
        return Ok(pid);
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    match said {
        Err(_) => Err(StressError::NotReady(READY_TIMEOUT)),
        Ok(_) => Err(StressError::Failed(match err.trim() {
            "" => "it printed nothing".to_owned(),
            e => e.to_owned(),
        })),
    }
}

/// The running workers started with `token` (at most one: the token is unique).
pub fn find(token: &str) -> Vec<ProcessId> {
    find_where(|t| t == token)
}

/// The running workers whose token starts with `prefix`.
pub(crate) fn find_prefix(prefix: &str) -> Vec<ProcessId> {
    find_where(|t| t.starts_with(prefix))
}

fn find_where(token: impl Fn(&str) -> bool) -> Vec<ProcessId> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid > 1 && pid != std::process::id())
        .filter(|&pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.get(1) == Some(&SUBCOMMAND.as_bytes())
                && args
                    .windows(2)
                    .any(|w| w[0] == b"--token" && std::str::from_utf8(w[1]).is_ok_and(&token))
        })
        .filter_map(|pid| {
            let start_time = process::start_time(pid)?;
            let p = ProcessId { pid, start_time };
            process::alive(p).then_some(p)
        })
        .collect()
}

/// Stops the worker started with `token`: SIGKILL, then waits until it is gone.
pub(crate) fn stop(token: &str) -> Result<String, StressError> {
    let found = find(token);
    if found.is_empty() {
        return Ok(format!(
            "stress worker {token} is not running; nothing to undo"
        ));
    }
    for p in &found {
        match process::signal(*p, SIGKILL) {
            Ok(()) | Err(process::ProcessError::Gone { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for p in &found {
        process::wait_gone(*p, Duration::from_secs(10));
        if process::alive(*p) {
            return Err(StressError::Unkillable {
                token: token.to_owned(),
                pid: p.pid,
            });
        }
    }
    let pids: Vec<String> = found.iter().map(|p| p.pid.to_string()).collect();
    Ok(format!(
        "stress worker {token} stopped (pid {})",
        pids.join(", ")
    ))
}

/// The resident memory of a process, in bytes (`VmRSS`), or `None` if it is gone.
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `livefire stress-worker ARGS`: does the work until its parent is gone or its bound
/// ran out. Prints `ready` on stdout once it holds its load; errors on stderr.
pub fn worker_main(args: &[String]) -> Exit {
    let args = match WorkerArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "stress-worker: {e}");
            return Exit::Invalid;
        }
    };
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // Held until the worker exits.
    let mut _held: Vec<u8> = Vec::new();
    let mut threads = Vec::new();
    match &args.work {
        Work::Memory { bytes } => match hold(*bytes) {
            Ok(v) => _held = v,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "{e}");
                return Exit::Invalid;
            }
        },
        Work::Cpu {
            workers,
            load,
            cpus,
        } => {
            let (tx, rx) = mpsc::channel();
            for i in 0..*workers {
                let cpu = (!cpus.is_empty()).then(|| cpus[i as usize % cpus.len()]);
                let (stop, tx, load) = (stop.clone(), tx.clone(), *load);
                threads.push(std::thread::spawn(move || {
                    let pinned = cpu.map(pin).transpose();
                    let ok = pinned.is_ok();
                    let _ = tx.send(pinned);
                    drop(tx);
                    if ok {
                        burn(load, &stop);
                    }
                }));
            }
            drop(tx);
            // One answer per thread; each drops its sender once it answered.
            for pinned in rx {
                if let Err(e) = pinned {
                    let _ = writeln!(std::io::stderr(), "{e}");
                    return Exit::Invalid;
                }
            }
        }
    }
    let mut out = std::io::stdout();
    let _ = out.write_all(b"ready\n");
    let _ = out.flush();
    while std::os::unix::process::parent_id() == args.parent && started.elapsed() < args.bound {
        std::thread::sleep(POLL);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    Exit::Ok
}

/// `bytes` of memory with every page written (a value that is not zero, so no page
/// stays shared with the zero page).
fn hold(bytes: u64) -> Result<Vec<u8>, WorkerError> {
    let n = usize::try_from(bytes).map_err(|_| WorkerError::TooLarge(bytes))?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|e| WorkerError::Allocate {
        bytes,
        reason: e.to_string(),
    })?;
    // Copied a chunk at a time: std's copy is fast even in a debug build of livefire.
    let chunk = [0xa5u8; 1 << 16];
    while v.len() < n {
        let k = chunk.len().min(n - v.len());
        v.extend_from_slice(&chunk[..k]);
    }
    Ok(std::hint::black_box(v))
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: u32) -> Result<(), WorkerError> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu as usize)
        .and_then(|()| nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set))
        .map_err(|e| WorkerError::Pin {
            cpu,
            reason: e.to_string(),
        })
}

/// Busy for `load` of every [`PERIOD`], asleep for the rest, until `stop`.
fn burn(load: f64, stop: &AtomicBool) {
    let busy = PERIOD.mul_f64(load);
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        let mut x: u64 = 1;
        while start.elapsed() < busy {
            for _ in 0..1000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        if let Some(rest) = PERIOD.checked_sub(start.elapsed())
            && !rest.is_zero()
        {
            std::thread::sleep(rest);
        }
    }
}

/// The CPUs this process may run on (its affinity mask).
pub(crate) fn allowed_cpus() -> Vec<u32> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .map(|c| c as u32)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// What memory the system has (`MemTotal`) and could give a new process now:
/// `MemAvailable`, or less when livefire's cgroup (v2) has less room under its limit.
pub(crate) fn memory() -> Result<(u64, u64), WorkerError> {
    let info = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| WorkerError::MemInfo(e.to_string()))?;
    let field = |name: &'static str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .ok_or(WorkerError::MemInfoField(name))
    };
    let total = field("MemTotal:")?;
    let mut available = field("MemAvailable:")?;
    if let Some(room) = cgroup_room() {
        available = available.min(room);
    }
    Ok((total, available))
}

/// The least room left under a `memory.max` of livefire's cgroup or its ancestors.
fn cgroup_room() -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cg.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let mut dir = PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let mut room: Option<u64> = None;
    for _ in 0..64 {
        let max = std::fs::read_to_string(dir.join("memory.max")).ok();
        let current = std::fs::read_to_string(dir.join("memory.current")).ok();
        if let (Some(max), Some(current)) = (max, current)
            && let (Ok(max), Ok(current)) =
                (max.trim().parse::<u64>(), current.trim().parse::<u64>())
        {
            let here = max.saturating_sub(current);
            room = Some(room.map_or(here, |r| r.min(here)));
        }
        if !dir.pop() || dir == std::path::Path::new("/sys/fs") {
            break;
        }
    }
    room
}
