//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for tests
//! of livefire's web pages as a person sees them: every console message, exception and
//! network request is kept, so a test can say the page complained or fetched nothing.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// Chromium on PATH, or `None` after [`crate::skip_missing`] said so (which fails the
/// test under `CI=true`); `what` says what was not checked ("the console was not checked
/// in a browser").
pub fn find_or_skip(what: &str) -> Option<PathBuf> {
    let found = find();
    if found.is_none() {
        crate::skip_missing(
            &format!("chromium is not on PATH, so {what}"),
            "apt-get install chromium",
        );
    }
    found
}

/// Chromium on PATH, under any of the names distributions give it.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// A headless Chromium with a private profile, killed when dropped.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    port: u16,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts `bin` (from [`find`]) with a 1200x1000 window, and waits until its DevTools
    /// server listens.
    pub fn start(bin: &Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--window-size=1200,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes its port to DevToolsActivePort once it listens.
        let file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse::<u16>().ok())
            {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not start its DevTools server within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        Browser {
            child,
            _profile: profile,
            port,
        }
    }

    /// The DevTools WebSocket of the first page, with the `Runtime`, `Page` and `Log`
    /// domains on (a test that wants requests adds `Network.enable`).
    pub fn page(&self) -> Page {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        // Exactly Content-Length bytes: the DevTools server may keep the connection open.
        let (_, body) = crate::http::read_message(&mut s)
            .expect("an answer from the DevTools server")
            .expect("the DevTools server closed the connection early");
        let list: Value = serde_json::from_slice(&body).expect("a JSON target list");
        let url = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        // A patient handshake (a busy machine answers it late, and a read timing out
        // mid-handshake fails it), then short reads, so `read` can return `None`.
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools WebSocket");
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut page = Page {
            ws,
            next_id: 0,
            events: Vec::new(),
        };
        for domain in ["Runtime", "Page", "Log"] {
            page.call(&format!("{domain}.enable"), json!({}));
        }
        page
    }
}

/// One page, spoken to over the DevTools protocol; every event is kept.
pub struct Page {
    ws: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
    events: Vec<Value>,
}

impl Page {
    /// Reads one message, or `None` after the socket's short read timeout.
    pub fn read(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(tungstenite::Message::Text(t)) => serde_json::from_str(t.as_str()).ok(),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection: {e}"),
        }
    }

    /// Calls `method` and returns its result (up to 60 s); events read meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.ws.send(tungstenite::Message::text(msg)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(v) = self.read() {
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
                self.events.push(v);
            }
        }
        panic!("no answer to {method} within 60 s");
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its JSON value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "awaitPromise": true, "returnByValue": true }),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "`{expr}` threw: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until `expr` is truthy (up to 60 s); returns its last value.
    pub fn wait_for(&mut self, what: &str, expr: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.eval(expr);
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not seen within 60 s; page: {}",
                self.eval("document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens `url` and waits until the document is complete.
    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for("the page", "document.readyState === 'complete'");
    }

    /// Saves what the window shows as a PNG at `path`, creating its folder.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        save_png(&shot, path);
    }

    /// Saves the whole page, beyond the window, as a PNG at `path`.
    pub fn screenshot_full_page(&mut self, path: &Path) {
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let shot = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1 }
            }),
        );
        save_png(&shot, path);
    }

    /// Presses the element `selector` finds with the mouse, at its centre, as a person
    /// does (it must be visible and not covered).
    pub fn click(&mut self, selector: &str) {
        let rect = self.eval(&format!(
            "(() => {{ const r = document.querySelector({selector:?}).getBoundingClientRect(); return {{ x: r.x + r.width / 2, y: r.y + r.height / 2 }}; }})()"
        ));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": rect["x"], "y": rect["y"], "button": "left", "clickCount": 1 }),
            );
        }
    }

    /// Keeps reading events for `d` (late console messages, late requests).
    pub fn pump_quiet(&mut self, d: Duration) {
        self.pump_until(d, |_| false);
    }

    /// Keeps reading events for up to `d`, until one satisfies `stop`; whether one did.
    pub fn pump_until(&mut self, d: Duration, stop: impl Fn(&Value) -> bool) -> bool {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            if let Some(v) = self.read() {
                let done = stop(&v);
                self.events.push(v);
                if done {
                    return true;
                }
            }
        }
        false
    }

    /// Console errors and uncaught exceptions so far.
    pub fn complaints(&self) -> Vec<String> {
        self.complaints_at(&["error"], &[])
    }

    /// Console errors, warnings and failed asserts, uncaught exceptions, and the
    /// browser's own log errors and warnings (a blocked or failed request) so far.
    pub fn complaints_and_warnings(&self) -> Vec<String> {
        self.complaints_at(&["error", "warning", "assert"], &["error", "warning"])
    }

    fn complaints_at(&self, console: &[&str], log: &[&str]) -> Vec<String> {
        let among = |v: &Value, levels: &[&str]| v.as_str().is_some_and(|l| levels.contains(&l));
        self.events
            .iter()
            .filter_map(|e| match e["method"].as_str()? {
                "Runtime.consoleAPICalled" if among(&e["params"]["type"], console) => {
                    Some(format!("console: {}", e["params"]["args"]))
                }
                "Runtime.exceptionThrown" => {
                    Some(format!("exception: {}", e["params"]["exceptionDetails"]))
                }
                "Log.entryAdded" if among(&e["params"]["entry"]["level"], log) => {
                    Some(format!("log: {}", e["params"]["entry"]["text"]))
                }
                _ => None,
            })
            .collect()
    }

    /// Every URL the page asked for (needs `Network.enable`).
    pub fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Decodes a `Page.captureScreenshot` result and writes it to `path`.
fn save_png(shot: &Value, path: &Path) {
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("base64 screenshot data");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, png).unwrap();
}
