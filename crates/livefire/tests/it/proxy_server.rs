//! `livefire proxy` (the standalone server) as a user runs it: a real process, driven
//! over HTTP, and by Toxiproxy's own Python client (toxiproxy-python from PyPI).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// A `livefire proxy` child, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(extra: &[&str]) -> Server {
    start_server_logging(extra, Stdio::inherit())
}

/// A `livefire proxy` child whose log (stderr) goes to `stderr`.
fn start_server_logging(extra: &[&str], stderr: Stdio) -> Server {
    let mut child = livefire()
        .args(["proxy", "--host", "127.0.0.1", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("livefire starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server { child, addr }
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serves_the_api_and_loads_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "proxies.json",
        r#"[{"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379"}]"#,
    );
    let server = start_server(&["--config", cfg.to_str().unwrap()]);
    let out = get(&server.addr, "/proxies");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains(r#""name":"redis""#), "{out}");
    assert!(get(&server.addr, "/version").contains(r#""version""#));
}

/// Disabling a proxy (what `proxy.down` does) stops its listener on purpose: the
/// server's log must not call that a failure.
#[test]
fn disabling_a_proxy_logs_no_accept_failure() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let server = start_server_logging(&[], std::fs::File::create(&log).unwrap().into());
    let created = send(
        &server.addr,
        "POST",
        "/proxies",
        r#"{"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}"#,
    );
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    for enabled in [false, true, false] {
        let out = send(
            &server.addr,
            "POST",
            "/proxies/db",
            &format!(r#"{{"enabled": {enabled}}}"#),
        );
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
    // The listing answered after the toggles: the log has whatever they wrote.
    assert!(get(&server.addr, "/proxies").contains(r#""enabled":false"#));
    drop(server);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains("accept failed"),
        "disabling a proxy logged a failure:\n{logged}"
    );
}

fn send(addr: &str, method: &str, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn occupied_port_and_bad_config_exit_3() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let (code, _, err) = run(livefire().args(["proxy", "--port", &port]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("listen tcp 127.0.0.1:") && err.contains("--port"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(livefire()
        .args(["proxy", "--port", "0", "--config"])
        .arg(dir.path().join("nope.json")));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nope.json"), "{err}");
    let bad = write(
        dir.path(),
        "bad.json",
        "[{\"name\": \"a\",\n \"upstream\": }]",
    );
    let (code, _, err) = run(livefire()
        .args(["proxy", "--port", "0", "--config"])
        .arg(&bad));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("line 2"), "{err}");
}

/// The venv holding toxiproxy-python: `$LIVEFIRE_PY_VENV`, else `target/py-compat-venv`
/// (what `.ci/run` prepares). Created here when missing; `Err` saying what failed when
/// that is impossible.
fn python_with_toxiproxy() -> Result<PathBuf, String> {
    let venv = std::env::var_os("LIVEFIRE_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/py-compat-venv"));
    let py = venv.join("bin/python");
    let has_client = |py: &Path| {
        Command::new(py)
            .args(["-c", "import toxiproxy"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_client(&py) {
        return Ok(py);
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        return Err(format!("python3 -m venv {} failed", venv.display()));
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "toxiproxy-python"])
        .status();
    if !status.is_ok_and(|s| s.success()) || !has_client(&py) {
        return Err("pip install toxiproxy-python failed (no PyPI access?)".into());
    }
    Ok(py)
}

#[test]
fn toxiproxy_python_client_drives_livefire_proxy() {
    let py = match python_with_toxiproxy() {
        Ok(py) => py,
        Err(why) => {
            livefire_testkit::skip_missing(
                &why,
                "apt-get install python3-venv, with PyPI reachable; .ci/run prepares target/py-compat-venv",
            );
            return;
        }
    };
    let server = start_server(&[]);
    let (host, port) = server.addr.rsplit_once(':').unwrap();
    let script = repo().join("crates/livefire/tests/it/py/toxiproxy_compat.py");
    let (code, out, err) = run(Command::new(py).arg(script).args([host, port]));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("COMPAT OK"), "{out}");
    assert!(out.contains("with latency"), "{out}");
}
