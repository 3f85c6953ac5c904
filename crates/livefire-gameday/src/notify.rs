//! The `notify:` hook of a game day: each curveball's start and end (with what it is:
//! this is the facilitator's channel) and each mark, as one JSON message, given to a
//! command on stdin and/or POSTed to a URL (a chat room's incoming webhook reads its
//! `text`). It follows the journal on a thread of its own, so a slow or failing hook
//! never holds the run up; a failed delivery is a warning in the journal, never an abort.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use livefire_core::events::Event;
use livefire_engine::journal::Journal;
use serde_json::{Value, json};

use crate::live::{CurveballChange, Live, MarkView, PERSON_AWAY, PERSON_NO_ACCESS};
use crate::tail::Tail;

/// How long a delivery may take unless `notify.timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the hook's thread looks at the journal.
const POLL: Duration = Duration::from_millis(200);

/// Where messages go.
#[derive(Debug, Clone)]
pub struct Hook {
    /// Run with `sh -c` in `cwd`, the message on stdin.
    pub command: Option<String>,
    /// POSTed the message as `application/json`.
    pub url: Option<String>,
    pub timeout: Duration,
    pub cwd: PathBuf,
}

/// The hook's thread, following a run's journal; dropping it delivers what is left and
/// stops it.
#[derive(Debug)]
pub struct Notifier {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Notifier {
    /// Follows `journal_path` and tells `hook`; failures go to `journal` as warnings.
    pub fn start(hook: Hook, journal_path: &Path, journal: Journal) -> std::io::Result<Notifier> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = journal_path.to_owned();
        let thread = std::thread::Builder::new()
            .name("livefire-notify".into())
            .spawn(move || follow(&hook, &path, &journal, &flag))?;
        Ok(Notifier {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn follow(hook: &Hook, path: &Path, journal: &Journal, stop: &AtomicBool) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            journal.emit(Event::Warning {
                message: format!(
                    "notify: cannot start ({e}): the game day runs without telling the hook"
                ),
            });
            return;
        }
    };
    let mut tail = Tail::new(path);
    let mut told = Live::default();
    loop {
        // Read once more after the stop: what the run wrote last is told too.
        let last = stop.load(Ordering::SeqCst);
        if tail.refresh() {
            let now = tail.live();
            for m in messages(now, &told) {
                if let Err(why) = deliver(hook, &m, &rt) {
                    journal.emit(Event::Warning {
                        message: format!(
                            "notify: `{}` not told: {why}; the game day goes on",
                            m["text"].as_str().unwrap_or_default()
                        ),
                    });
                }
            }
            told = now.clone();
        }
        if last {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// The messages for what `now` holds that `before` did not, in journal order.
pub fn messages(now: &Live, before: &Live) -> Vec<Value> {
    let head = |event: &str, t_ms: u64, text: String| {
        json!({
            "event": event,
            "run_id": now.run_id(),
            "t_ms": t_ms,
            "text": text,
        })
    };
    let mut out: Vec<(u64, Value)> = Vec::new();
    for c in now.curveball_changes(before) {
        let mut m = head(
            &format!("curveball_{}", c.state),
            c.t_ms,
            curveball_text(&c),
        );
        m["curveball"] = c.curveball.clone().into();
        m["kind"] = c.kind.clone().into();
        m["target"] = c.target.clone().into();
        m["for_ms"] = c.for_ms.into();
        if let Some(r) = &c.responder {
            m["responder"] = r.clone().into();
        }
        out.push((c.t_ms, m));
    }
    for mark in now.new_marks(before) {
        let mut m = head("mark", mark.t_ms, mark_text(mark));
        m["mark"] = mark.mark.label().into();
        m["responder"] = mark.responder.clone().into();
        m["note"] = mark.note.clone().into();
        m["via"] = mark.via.clone().into();
        out.push((mark.t_ms, m));
    }
    out.sort_by_key(|(t, _)| *t);
    out.into_iter().map(|(_, m)| m).collect()
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1e3)
}

fn curveball_text(c: &CurveballChange) -> String {
    let at = secs(c.t_ms);
    match (c.state, c.kind.as_str(), &c.responder) {
        ("started", PERSON_AWAY, Some(r)) => format!(
            "{}: started at t = {at}: {r}, step out now for {}; your marks are refused until it ends",
            c.curveball,
            secs(c.for_ms)
        ),
        ("started", PERSON_NO_ACCESS, Some(r)) => format!(
            "{}: started at t = {at}: {r} has no access for {}",
            c.curveball,
            secs(c.for_ms)
        ),
        ("started", _, _) => format!(
            "{}: started at t = {at}, for {}",
            c.curveball,
            secs(c.for_ms)
        ),
        (_, PERSON_AWAY, Some(r)) => format!("{}: ended at t = {at}: {r} is back", c.curveball),
        _ => format!("{}: ended at t = {at}", c.curveball),
    }
}

fn mark_text(m: &MarkView) -> String {
    format!(
        "{} marked {} at t = {}{}",
        m.responder,
        m.mark.label(),
        secs(m.t_ms),
        m.note
            .as_ref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default()
    )
}

/// Tells every place of `hook` one message; the first failure says why.
fn deliver(hook: &Hook, message: &Value, rt: &tokio::runtime::Runtime) -> Result<(), String> {
    let body = serde_json::to_vec(message).unwrap_or_default();
    let mut failures = Vec::new();
    if let Some(cmd) = &hook.command
        && let Err(e) = run_command(cmd, &hook.cwd, &body, hook.timeout)
    {
        failures.push(e);
    }
    if let Some(url) = &hook.url
        && let Err(e) = rt.block_on(post(url, body, hook.timeout))
    {
        failures.push(e);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

fn run_command(cmd: &str, cwd: &Path, body: &[u8], timeout: Duration) -> Result<(), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("`{cmd}` did not start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its stdin is fine: a broken pipe is not a failure.
        let _ = stdin.write_all(body);
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{cmd}` took longer than {}; it was killed",
                    secs(timeout.as_millis() as u64)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("`{cmd}`: {e}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        use std::io::Read;
        let _ = s.read_to_string(&mut err);
    }
    let err: String = err.trim().chars().take(300).collect();
    Err(format!(
        "`{cmd}` {status}{}",
        if err.is_empty() {
            String::new()
        } else {
            format!(": {err}")
        }
    ))
}

async fn post(url: &str, body: Vec<u8>, timeout: Duration) -> Result<(), String> {
    use livefire_load::client::{Client, Conns, Key, Outgoing};
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let key = Key::of(&uri).map_err(|e| format!("{url}: {e}"))?;
    let client = Client::new(livefire_load::config::HttpVersion::Http1, false, key.https);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let req = Outgoing {
        key: Arc::new(key),
        method: http::Method::POST,
        uri,
        headers,
        body: body.into(),
    };
    let mut conns = Conns::default();
    match tokio::time::timeout(timeout, client.send(&mut conns, req, false)).await {
        Err(_) => Err(format!(
            "{url} did not answer within {}",
            secs(timeout.as_millis() as u64)
        )),
        Ok(Err(outcome)) => Err(format!("{url}: {}", outcome.as_str())),
        Ok(Ok(a)) if (200..300).contains(&a.status) => Ok(()),
        Ok(Ok(a)) => Err(format!("{url} answered {}", a.status)),
    }
}
