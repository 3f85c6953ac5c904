//! report.html as a reader sees it: opened in headless Chromium (Debian's `chromium`),
//! driven over the DevTools protocol so the test sees every console message and every
//! network request; the charts and the verdict must be there, nothing may be fetched,
//! nothing may complain, and a screenshot is saved.

use std::path::{Path, PathBuf};
use std::time::Duration;

use livefire_testkit::chromium::{self, Browser};
use serde_json::{Value, json};

use crate::support::*;

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
    page.call("Network.enable", json!({}));
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
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join(shot_name);
    page.screenshot_full_page(&screenshot);
    Visit {
        dom,
        complaints: page.complaints_and_warnings(),
        requests: page.requests().into_iter().filter(|u| *u != url).collect(),
        screenshot,
    }
}

#[test]
fn real_reports_open_in_chromium_with_charts_verdict_no_errors_and_no_network() {
    let Some(bin) = chromium::find_or_skip("report.html was not checked in a browser") else {
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
    let Some(bin) = chromium::find_or_skip("the browser checks were not tried") else {
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
