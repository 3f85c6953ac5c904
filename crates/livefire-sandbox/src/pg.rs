//! PostgreSQL from the local binaries: finding them, running them as an unprivileged
//! user when livefire runs as root (PostgreSQL refuses root), and the cluster
//! operations the sandbox needs (initdb, start, stop, base backup, promote, rewind),
//! plus asking a server what it is (primary or standby).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::SandboxError;

/// The programs the sandbox runs, all from one bin directory.
pub const PROGRAMS: [&str; 5] = ["initdb", "pg_ctl", "pg_basebackup", "pg_rewind", "postgres"];

/// Where to look for PostgreSQL's `*/bin` directories besides PATH:
/// `LIVEFIRE_PG_ROOTS` (colon-separated), else Debian's and the PGDG RPMs' places.
pub fn default_roots() -> Vec<PathBuf> {
    match std::env::var_os("LIVEFIRE_PG_ROOTS") {
        Some(v) => std::env::split_paths(&v).collect(),
        None => vec![PathBuf::from("/usr/lib/postgresql"), PathBuf::from("/usr")],
    }
}

/// This machine's PostgreSQL bin directory: [`find_bin_dir`] on `$PATH` and the
/// default roots. What the sandbox uses, and what tests ask before they need one.
pub fn installed() -> Option<PathBuf> {
    find_bin_dir(std::env::var_os("PATH"), &default_roots())
}

/// The bin directory holding every program in [`PROGRAMS`]: the real directory of a
/// `pg_ctl` found on `path` (Debian links only a few programs onto PATH), else the
/// newest `ROOT/*/bin` (`/usr/lib/postgresql/16/bin`, `/usr/pgsql-16/bin`).
pub fn find_bin_dir(path: Option<OsString>, roots: &[PathBuf]) -> Option<PathBuf> {
    let complete = |dir: &Path| PROGRAMS.iter().all(|p| dir.join(p).is_file());
    if let Some(path) = path {
        for dir in std::env::split_paths(&path) {
            let Ok(real) = std::fs::canonicalize(dir.join("pg_ctl")) else {
                continue;
            };
            if let Some(bin) = real.parent().filter(|d| complete(d)) {
                return Some(bin.to_owned());
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.trim_start_matches("pgsql-").parse::<u32>();
            let bin = e.path().join("bin");
            if let Ok(v) = version
                && complete(&bin)
            {
                found.push((v, bin));
            }
        }
    }
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// The user PostgreSQL runs as: `postgres` when livefire is root, else livefire's own.
#[derive(Debug, Clone)]
pub struct RunAs {
    /// None: this process's own user.
    pub switch: Option<(u32, u32)>,
    pub name: String,
}

impl RunAs {
    pub fn detect() -> Result<RunAs, SandboxError> {
        if !nix::unistd::geteuid().is_root() {
            let name = nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map_or_else(|| "self".to_string(), |u| u.name);
            return Ok(RunAs { switch: None, name });
        }
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .ok_or(SandboxError::NoPostgresUser)?;
        Ok(RunAs {
            switch: Some((user.uid.as_raw(), user.gid.as_raw())),
            name: user.name,
        })
    }

    /// Gives `path` (and everything under it) to this user, so PostgreSQL can write it.
    pub fn own(&self, path: &Path) -> Result<(), SandboxError> {
        let Some((uid, gid)) = self.switch else {
            return Ok(());
        };
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
                .map_err(|e| SandboxError::io(format!("cannot chown {}", p.display()), e))?;
            if p.is_dir() && !p.is_symlink() {
                for e in std::fs::read_dir(&p)
                    .map_err(|e| SandboxError::io(format!("cannot read {}", p.display()), e))?
                    .flatten()
                {
                    stack.push(e.path());
                }
            }
        }
        Ok(())
    }

    /// `program` as this user, in `cwd` (a directory it may enter), in a process group
    /// of its own so a Ctrl-C meant for livefire does not reach the servers.
    pub fn command(&self, program: &Path, cwd: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(cwd).stdin(Stdio::null()).process_group(0);
        if let Some((uid, gid)) = self.switch {
            c.uid(uid).gid(gid);
            c.env("HOME", cwd).env("USER", &self.name);
        }
        c
    }
}

/// One PostgreSQL cluster of the sandbox: its data directory and where it listens.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub bin: PathBuf,
    pub data: PathBuf,
    pub port: u16,
    /// `cluster_name`, which a standby also sends as its application_name.
    pub name: String,
    /// The folder for its Unix socket and its log (owned by the server's user).
    pub run_dir: PathBuf,
}

impl Cluster {
    pub fn log(&self) -> PathBuf {
        self.run_dir.join(format!("{}.log", self.name))
    }

    /// The keyword/value DSN of this server alone, as the superuser.
    pub fn admin_dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=2",
            self.port
        )
    }

    fn run(&self, who: &RunAs, program: &str, args: &[&str]) -> Result<String, SandboxError> {
        let path = self.bin.join(program);
        let out = who
            .command(&path, &self.run_dir)
            .args(args)
            .output()
            .map_err(|e| SandboxError::io(format!("cannot run {}", path.display()), e))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(SandboxError::Command {
                cmd: format!("{program} {}", args.join(" ")),
                detail: tail(
                    &format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
                    12,
                ),
            });
        }
        Ok(stdout)
    }

    /// A new cluster with data checksums (so corruption is detected and pg_rewind works)
    /// and the settings every sandbox node shares. Per-node settings (port, socket,
    /// name) go on the command line at start, because pg_rewind copies the config files
    /// of the other node.
    pub fn initdb(&self, who: &RunAs) -> Result<(), SandboxError> {
        let data = self.data.to_string_lossy().into_owned();
        self.run(
            who,
            "initdb",
            &[
                "-D",
                &data,
                "--data-checksums",
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)
            .map_err(|e| SandboxError::io(format!("cannot read {}", conf.display()), e))?;
        text.push_str(
            "\n# livefire sandbox\n\
             listen_addresses = '127.0.0.1'\n\
             wal_level = replica\n\
             max_wal_senders = 10\n\
             wal_keep_size = '256MB'\n\
             hot_standby = on\n\
             max_connections = 100\n",
        );
        std::fs::write(&conf, text)
            .map_err(|e| SandboxError::io(format!("cannot write {}", conf.display()), e))
    }

    /// A standby of `primary`: a base backup that writes standby.signal and
    /// primary_conninfo (-R).
    pub fn base_backup(&self, who: &RunAs, primary: &Cluster) -> Result<(), SandboxError> {
        let data = self.data.to_string_lossy().into_owned();
        let port = primary.port.to_string();
        self.run(
            who,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &data,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ],
        )
        .map(|_| ())
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self, who: &RunAs) -> Result<(), SandboxError> {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c cluster_name={}",
            self.port,
            self.run_dir.display(),
            self.name
        );
        let data = self.data.to_string_lossy().into_owned();
        let log = self.log().to_string_lossy().into_owned();
        self.run(
            who,
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &opts, "-w", "-t", "60", "start",
            ],
        )
        .map_err(|e| match e {
            SandboxError::Command { cmd, detail } => SandboxError::Command {
                cmd,
                detail: format!(
                    "{detail}\n{}",
                    tail(&std::fs::read_to_string(self.log()).unwrap_or_default(), 8)
                ),
            },
            e => e,
        })
        .map(|_| ())
    }

    /// `pg_ctl stop -m fast`; if that fails, SIGKILL to the postmaster (its backends
    /// exit when it is gone).
    pub fn stop(&self, who: &RunAs) -> Result<(), SandboxError> {
        let Some(postmaster) = self.postmaster() else {
            return Ok(());
        };
        let data = self.data.to_string_lossy().into_owned();
        let fast = self.run(
            who,
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "-t", "30", "stop"],
        );
        // pg_ctl returns once postmaster.pid is gone, which the postmaster removes just
        // before it exits: wait for the process itself, and end it if it lingers.
        if postmaster.wait_gone(Duration::from_secs(10)) || postmaster.stop(Duration::from_secs(5))
        {
            Ok(())
        } else {
            Err(fast.err().unwrap_or(SandboxError::Setup(format!(
                "the {} server (pid {}) did not stop",
                self.name, postmaster.pid
            ))))
        }
    }

    /// `pg_ctl promote`: the standby becomes a primary.
    pub fn promote(&self, who: &RunAs) -> Result<(), SandboxError> {
        let data = self.data.to_string_lossy().into_owned();
        self.run(who, "pg_ctl", &["-D", &data, "-w", "-t", "30", "promote"])
            .map(|_| ())
    }

    /// Rewinds this (stopped) cluster to follow `source`, a running primary, and makes it
    /// its standby (-R writes standby.signal and primary_conninfo). pg_rewind runs crash
    /// recovery first when the server was killed.
    pub fn rewind_to(&self, who: &RunAs, source: &Cluster) -> Result<String, SandboxError> {
        let data = self.data.to_string_lossy().into_owned();
        let src = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            source.port
        );
        self.run(
            who,
            "pg_rewind",
            &[
                "--target-pgdata",
                &data,
                "--source-server",
                &src,
                "--write-recovery-conf",
                // The sandbox is disposable: no flush of the whole data directory (seconds
                // on a busy disk) before the node starts.
                "--no-sync",
            ],
        )
    }

    /// The running postmaster, from the first line of postmaster.pid.
    pub fn postmaster(&self) -> Option<crate::proc::ProcId> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        crate::proc::ProcId::of(pid).filter(|p| p.alive())
    }

    /// Server processes still working in this data directory after their postmaster
    /// was killed (backends notice its death a moment later). PostgreSQL refuses to
    /// start, and pg_rewind to recover, while any of them holds the shared memory.
    pub fn leftovers(&self) -> Vec<crate::proc::ProcId> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == self.data)
            })
            .filter_map(crate::proc::ProcId::of)
            .filter(|p| p.alive())
            .collect()
    }

    /// After a kill: waits up to 10 s for [`Cluster::leftovers`] to exit, kills the
    /// rest, then removes postmaster.pid if it names a postmaster that is gone. A killed
    /// postmaster can stay a zombie until its new parent reaps it, and PostgreSQL takes
    /// a pid that still exists, even a zombie's, for a running server.
    pub fn clear_after_kill(&self) {
        self.end_leftovers();
        if self.postmaster().is_none() && self.leftovers().is_empty() {
            let _ = std::fs::remove_file(self.data.join("postmaster.pid"));
            // The socket's lock file names the same postmaster, and is refused the same way.
            let lock = self.run_dir.join(format!(".s.PGSQL.{}.lock", self.port));
            let _ = std::fs::remove_file(lock);
        }
    }

    fn end_leftovers(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            if std::time::Instant::now() >= deadline {
                for p in left {
                    p.signal(nix::sys::signal::Signal::SIGKILL);
                    p.wait_gone(Duration::from_secs(2));
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True when the data directory says it is a standby (it will follow a primary).
    pub fn is_standby_configured(&self) -> bool {
        self.data.join("standby.signal").exists()
    }
}

/// What a server answered when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Standby,
}

impl Role {
    pub fn describe(self) -> &'static str {
        match self {
            Role::Primary => "primary (read-write)",
            Role::Standby => "standby (read-only, replicating)",
        }
    }
}

/// Connects to the server at `port` and asks `pg_is_in_recovery()`; None when it does
/// not answer within `timeout`.
pub async fn role(port: u16, timeout: Duration) -> Option<Role> {
    let dsn = format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout={}",
        timeout.as_secs().max(1)
    );
    let ask = async {
        let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
            .await
            .ok()?;
        let task = tokio::spawn(conn);
        let row = client
            .query_one("select pg_is_in_recovery()", &[])
            .await
            .ok();
        drop(client);
        task.abort();
        let in_recovery: bool = row?.get(0);
        Some(if in_recovery {
            Role::Standby
        } else {
            Role::Primary
        })
    };
    tokio::time::timeout(timeout, ask).await.ok().flatten()
}

/// Runs `sql` (simple query protocol, several statements allowed) on `dsn`.
pub async fn execute(
    dsn: &str,
    sql: &str,
) -> Result<Vec<tokio_postgres::SimpleQueryMessage>, SandboxError> {
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .map_err(|e| SandboxError::Setup(format!("cannot connect to {dsn}: {e}")))?;
    let task = tokio::spawn(conn);
    let res = client.simple_query(sql).await.map_err(|e| {
        SandboxError::Setup(format!(
            "`{sql}` failed: {}",
            crate::store::pg_error_text(&e)
        ))
    });
    drop(client);
    task.abort();
    res
}

/// The last `n` lines of `text`, for error messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
