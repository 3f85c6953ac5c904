//! Shared setup: the built binary, temp dirs, running it with a timeout, and one plain
//! HTTP/1.1 client for the servers it starts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The `livefire` binary cargo built for these tests.
pub fn livefire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_livefire"))
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Writes `text` to `name` in `dir` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a command to completion and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("livefire starts");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A throwaway process to target: `sleep 300`, killed when dropped.
pub struct Victim(pub std::process::Child);

impl Victim {
    pub fn start() -> Victim {
        Victim(
            Command::new("sleep")
                .arg("300")
                .spawn()
                .expect("sleep starts"),
        )
    }
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
    /// The process state letter: `T` when stopped (paused).
    pub fn state(&self) -> char {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .and_then(|s| s.chars().next())
            .unwrap_or('?')
    }
    /// True when the process is alive and not stopped (waiting up to 2 s for a resume
    /// to show in /proc).
    pub fn running(&self) -> bool {
        let start = std::time::Instant::now();
        loop {
            let s = self.state();
            if matches!(s, 'R' | 'S' | 'D') {
                return true;
            }
            if start.elapsed() > std::time::Duration::from_secs(2) {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Waits until the process is in `state` (up to 20 s); false if it never was.
    pub fn wait_state(&self, state: char) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(20) {
            if self.state() == state {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid().to_string()])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private livefire home and run folder parent, so tests never share a ledger.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// `livefire <args>` with this home and `--out` under it for `run`.
    pub fn livefire(&self) -> Command {
        let mut cmd = livefire();
        cmd.env("LIVEFIRE_HOME", self.path().join("home"));
        cmd
    }
    pub fn run(&self, file: &Path) -> Command {
        let mut cmd = self.livefire();
        cmd.arg("run")
            .arg(file)
            .arg("--out")
            .arg(self.path().join("runs"));
        cmd
    }
    /// Writes an experiment file here.
    pub fn file(&self, text: &str) -> PathBuf {
        write(self.path(), "exp.yaml", text)
    }
    /// The one run folder's summary.json, parsed.
    pub fn summary(&self) -> serde_json::Value {
        let dir = self.run_dir();
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
    }
    pub fn run_dir(&self) -> PathBuf {
        let runs: Vec<_> = std::fs::read_dir(self.path().join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs[0].clone()
    }
    pub fn journal(&self) -> String {
        std::fs::read_to_string(self.run_dir().join("journal.jsonl")).unwrap()
    }
    /// The pending ledger lines in the home's ledger index.
    pub fn ledger_index(&self) -> String {
        let dir = self.path().join("home/ledger");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return String::new();
        };
        entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends a signal to a child process.
pub fn signal(child: &std::process::Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for a child with a generous limit; returns its exit code and output.
pub fn finish(child: std::process::Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An experiment that pauses `pid` from t=0 for `secs` seconds.
pub fn pause_experiment(pid: u32, secs: u32, extra: &str) -> String {
    format!(
        "version: 1\ntitle: pause the victim\ntargets:\n  victim: {{ process: {{ pid: {pid} }} }}\n{extra}timeline:\n  - at: 0s\n    for: {secs}s\n    name: victim paused\n    fault: {{ process.pause: {{ target: victim }} }}\n"
    )
}

/// One HTTP/1.1 exchange over a fresh connection with `Connection: close`: `headers`
/// are whole lines (`Authorization: Bearer T`), the answer waits up to `timeout`.
/// Returns (status, head, body), or why the connection failed (a server that ended).
pub fn http_exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[String],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(timeout))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    Ok(read_answer(&mut s))
}

/// Reads an HTTP answer to its end (the server closes): (status, head, body); status 0
/// when what came is not HTTP.
pub fn read_answer(s: &mut TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}
