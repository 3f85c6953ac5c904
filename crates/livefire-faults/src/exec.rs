//! Running a fault's shell commands (`sh -c`), as another user when asked, with a time
//! limit that kills the command's whole process group.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot start `{run}`: {source}")]
    Spawn { run: String, source: std::io::Error },
    #[error("user `{0}` does not exist on this machine")]
    NoUser(String),
    #[error("`{run}` did not finish within {ms} ms and was killed")]
    Timeout { run: String, ms: u64 },
    #[error("`{run}` exited with {code}{output}")]
    Failed {
        run: String,
        code: String,
        /// The last lines of its stderr and stdout, as `; stderr: ...; stdout: ...`, or
        /// `, printing nothing`.
        output: String,
    },
}

/// How many lines of a failed command's stderr and stdout its error shows.
pub const TAIL_LINES: usize = 5;
/// At most this many characters of each.
const TAIL_CHARS: usize = 600;

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Output {
    pub run: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Ok if it exited 0.
    pub fn check(&self) -> Result<(), ExecError> {
        if self.code == Some(0) {
            return Ok(());
        }
        Err(ExecError::Failed {
            run: self.run.clone(),
            code: self
                .code
                .map_or("a signal".to_string(), |c| format!("code {c}")),
            output: self.tails(),
        })
    }

    /// `; stderr: <last lines>; stdout: <last lines>` for what it printed, so the reason
    /// a command failed is in the message; `, printing nothing` when it printed nothing.
    fn tails(&self) -> String {
        let mut out = String::new();
        for (name, text) in [("stderr", &self.stderr), ("stdout", &self.stdout)] {
            if let Some(t) = tail(text) {
                out.push_str(&format!("; {name}: {t}"));
            }
        }
        if out.is_empty() {
            out.push_str(", printing nothing");
        }
        out
    }
}

/// The last [`TAIL_LINES`] non-blank lines of `text`, joined with ` | `, at most
/// [`TAIL_CHARS`] characters (the end kept); `None` when there are none.
fn tail(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    let mut shown = String::new();
    if lines.len() > TAIL_LINES {
        shown.push_str("... | ");
    }
    shown.push_str(&lines[lines.len().saturating_sub(TAIL_LINES)..].join(" | "));
    let count = shown.chars().count();
    if count > TAIL_CHARS {
        let kept: String = shown.chars().skip(count - TAIL_CHARS).collect();
        shown = format!("...{kept}");
    }
    Some(shown)
}

/// uid and gid of `user`, from /etc/passwd.
pub fn lookup_user(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// A `sh -c` command with livefire's own folder first on PATH, so that `livefire ...`
/// in an experiment means this livefire.
pub fn shell(run: &str, user: Option<&str>, cwd: Option<&str>) -> Result<Command, ExecError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(run).stdin(Stdio::null());
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_owned()))
    {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir];
        dirs.extend(std::env::split_paths(&path));
        if let Ok(joined) = std::env::join_paths(dirs) {
            cmd.env("PATH", joined);
        }
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if let Some(user) = user {
        let (uid, gid) = lookup_user(user).ok_or_else(|| ExecError::NoUser(user.to_owned()))?;
        cmd.uid(uid).gid(gid);
    }
    // Its own process group, so a timeout can stop everything it started.
    cmd.process_group(0);
    Ok(cmd)
}

/// Runs `run` to completion, or kills its process group after `timeout_ms`.
pub fn run(
    run: &str,
    user: Option<&str>,
    cwd: Option<&str>,
    timeout_ms: u64,
) -> Result<Output, ExecError> {
    let mut child = shell(run, user, cwd)?
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ExecError::Spawn {
            run: run.to_owned(),
            source,
        })?;
    // Read both pipes on threads so a chatty command cannot block on a full pipe.
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    // A command that starts a daemon may leave it holding the pipes: after the command
    // exits, its output is collected for a short while only.
    let (out_tx, out_rx) = std::sync::mpsc::channel();
    let (err_tx, err_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.take(1 << 20).read_to_string(&mut s);
        }
        let _ = out_tx.send(s);
    });
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.take(1 << 20).read_to_string(&mut s);
        }
        let _ = err_tx.send(s);
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= Duration::from_millis(timeout_ms) => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.wait();
                return Err(ExecError::Timeout {
                    run: run.to_owned(),
                    ms: timeout_ms,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(source) => {
                return Err(ExecError::Spawn {
                    run: run.to_owned(),
                    source,
                });
            }
        }
    };
    Ok(Output {
        run: run.to_owned(),
        code: status.code(),
        stdout: out_rx
            .recv_timeout(Duration::from_millis(500))
            .unwrap_or_default(),
        stderr: err_rx
            .recv_timeout(Duration::from_millis(500))
            .unwrap_or_default(),
    })
}
