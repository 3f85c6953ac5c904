//! report.html as a reader sees it: opened in headless Chromium (Debian's `chromium`),
//! driven over the DevTools protocol so the test sees every console message and every
//! network request; the charts and the verdict must be there, nothing may be fetched,
//! nothing may complain, and a screenshot is saved.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::*;

/// Finds Chromium on PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A headless Chromium with a private profile, killed when dropped.
struct Browser {
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
    fn start(bin: &Path) -> Browser {
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

    /// The DevTools WebSocket of the first page.
    fn page(&self) -> Page {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        // Read the headers, then exactly Content-Length bytes (the server may keep
        // the connection open).
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let body = loop {
            let n = s
                .read(&mut chunk)
                .expect("an answer from the DevTools server");
            assert!(n > 0, "the DevTools server closed the connection early");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            let Some(end) = text.find("\r\n\r\n") else {
                continue;
            };
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .expect("a Content-Length");
            if buf.len() >= end + 4 + len {
                break String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            }
        };
        let list: Value = serde_json::from_str(&body).expect("a JSON target list");
        let url = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools WebSocket");
        Page {
            ws,
            next_id: 0,
            events: Vec::new(),
        }
    }
}

/// One page, spoken to over the DevTools protocol; every event is kept.
struct Page {
    ws: tungstenite::WebSocket<TcpStream>,
    next_id: u64,
    events: Vec<Value>,
}

impl Page {
    /// Reads one message, or `None` after the socket's short read timeout.
    fn read(&mut self) -> Option<Value> {
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

    fn call(&mut self, method: &str, params: Value) -> Value {
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

    /// Keeps events coming in for `d` (late console messages, late requests).
    fn pump_until(&mut self, d: Duration, stop: impl Fn(&Value) -> bool) -> bool {
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

    /// Console errors and warnings, uncaught exceptions, browser log errors.
    fn complaints(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e["method"].as_str()? {
                "Runtime.consoleAPICalled"
                    if matches!(
                        e["params"]["type"].as_str(),
                        Some("error" | "warning" | "assert")
                    ) =>
                {
                    Some(format!("console: {}", e["params"]["args"]))
                }
                "Runtime.exceptionThrown" => {
                    Some(format!("exception: {}", e["params"]["exceptionDetails"]))
                }
                "Log.entryAdded"
                    if matches!(
                        e["params"]["entry"]["level"].as_str(),
                        Some("error" | "warning")
                    ) =>
                {
                    Some(format!("log: {}", e["params"]["entry"]["text"]))
                }
                _ => None,
            })
            .collect()
    }

    /// Every URL the page asked for.
    fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
            .collect()
    }
}

/// What the page showed, and what it did.
struct Visit {
    dom: Value,
    complaints: Vec<String>,
    /// Requests other than the page itself.
    requests: Vec<String>,
    screenshot: PathBuf,
}

fn visit(bin: &Path, html: &Path, shot_name: &str) -> Visit {
    let browser = Browser::start(bin);
    let mut page = browser.page();
    for domain in ["Runtime", "Log", "Network", "Page"] {
        page.call(&format!("{domain}.enable"), json!({}));
    }
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
    );
    let url = format!("file://{}", html.display());
    page.call("Page.navigate", json!({ "url": url }));
    assert!(
        page.pump_until(Duration::from_secs(60), |e| e["method"]
            == "Page.loadEventFired"),
        "the page did not finish loading within 60 s"
    );
    page.pump_until(Duration::from_millis(700), |_| false);
    let probe = r#"JSON.stringify({
        verdict: (document.getElementById('verdict') || {}).textContent || null,
        charts: [...document.querySelectorAll('figure.chart')].map(f => f.dataset.chart),
        drawn: [...document.querySelectorAll('svg.chart')].filter(s => s.getBoundingClientRect().width > 500 && s.getBoundingClientRect().height > 40).length,
        series: document.querySelectorAll('svg.chart path.series').length,
        rows: document.querySelectorAll('#conditions tr').length
    })"#;
    let result = page.call(
        "Runtime.evaluate",
        json!({ "expression": probe, "returnByValue": true }),
    );
    let dom: Value =
        serde_json::from_str(result["result"]["value"].as_str().expect("a string")).unwrap();
    let metrics = page.call("Page.getLayoutMetrics", json!({}));
    let size = &metrics["cssContentSize"];
    let shot = page.call(
        "Page.captureScreenshot",
        json!({
            "format": "png",
            "captureBeyondViewport": true,
            "clip": { "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1 }
        }),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(shot_name);
    std::fs::write(&screenshot, &png).unwrap();
    Visit {
        dom,
        complaints: page.complaints(),
        requests: page.requests().into_iter().filter(|u| *u != url).collect(),
        screenshot,
    }
}

#[test]
fn real_reports_open_in_chromium_with_charts_verdict_no_errors_and_no_network() {
    let Some(bin) = chromium() else {
        livefire_testkit::skip_missing(
            "chromium is not on PATH, so report.html was not checked in a browser",
            "apt-get install chromium",
        );
        return;
    };
    // (fixture, verdict, charts that must be drawn, at least this many chart lines)
    let cases: [(&str, &str, &[&str], u64); 3] = [
        (
            "held-load",
            "held",
            &[
                "events",
                "conditions",
                "probe-latency",
                "throughput",
                "latency",
                "error-rate",
            ],
            6,
        ),
        (
            "aborted-guardrail",
            "aborted",
            &[
                "events",
                "conditions",
                "throughput",
                "latency",
                "error-rate",
                "errors-by-kind",
            ],
            6,
        ),
        ("fuzz-finding", "deviated", &["events"], 0),
    ];
    for (name, verdict, charts, lines) in cases {
        let run = Run::fixture(name);
        run.report();
        let v = visit(
            &bin,
            &run.file("report.html"),
            &format!("report-{name}.png"),
        );
        eprintln!("{name}: screenshot saved to {}", v.screenshot.display());
        assert_eq!(v.dom["verdict"], verdict, "{name}: {}", v.dom);
        for c in charts {
            assert!(
                v.dom["charts"].as_array().unwrap().iter().any(|x| x == c),
                "{name}: chart {c} not on the page: {}",
                v.dom
            );
        }
        assert_eq!(
            v.dom["drawn"].as_u64(),
            Some(v.dom["charts"].as_array().unwrap().len() as u64),
            "{name}: every chart is drawn at a readable size: {}",
            v.dom
        );
        assert!(
            v.dom["series"].as_u64().unwrap() >= lines,
            "{name}: {}",
            v.dom
        );
        assert!(v.dom["rows"].as_u64().unwrap() >= 2, "{name}: {}", v.dom);
        assert!(
            v.complaints.is_empty(),
            "{name}: the page complained: {:#?}",
            v.complaints
        );
        assert!(
            v.requests.is_empty(),
            "{name}: the page fetched: {:#?}",
            v.requests
        );
        let png = std::fs::read(&v.screenshot).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "{name}: a real screenshot"
        );
    }
}

/// The checks above can fail: a page that tries to fetch something is caught.
#[test]
fn a_page_that_tries_to_fetch_is_caught() {
    let Some(bin) = chromium() else {
        livefire_testkit::skip_missing(
            "chromium is not on PATH, so the browser checks were not tried",
            "apt-get install chromium",
        );
        return;
    };
    let run = Run::fixture("held-pause");
    run.report();
    let html = run.read("report.html").replace(
        "<footer>",
        r#"<img src="http://127.0.0.1:9/pixel.png" alt=""><footer>"#,
    );
    let tampered = run.file("tampered.html");
    std::fs::write(&tampered, html).unwrap();
    let v = visit(&bin, &tampered, "report-tampered.png");
    eprintln!("caught: {:?} {:?}", v.complaints, v.requests);
    assert!(
        !v.complaints.is_empty() || !v.requests.is_empty(),
        "an external image went unnoticed"
    );
}
