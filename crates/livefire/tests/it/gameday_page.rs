//! The responders' page of a real game day in headless Chromium: a responder picks
//! their name, sees the symptoms live, presses "Detected" with the mouse and the mark is
//! in the journal; while the curveball is hidden nothing in the page names it, and the
//! page fetches nothing but its own files and API.

use std::time::Duration;

use livefire_testkit::chromium::{self, Browser};
use serde_json::Value;

use crate::gameday_live::{Game, Timing, experiment_timed, journal_events};
use crate::support::*;

/// A hidden curveball (`process.pause secretsleeper`) from 8 s to 14 s: time for the
/// browser to load the page first. The timeline runs to 18 s, so its end shows too.
fn experiment(port: u16) -> String {
    let timing = Timing {
        window: (8, 14),
        ends: 18,
    };
    experiment_timed(timing, port, 1, "", "[alice, bob]", "")
}

#[test]
fn a_responder_marks_with_the_page_button_and_the_page_never_names_a_hidden_curveball() {
    let Some(bin) = chromium::find_or_skip("the responders' page was not checked in a browser")
    else {
        return;
    };
    let browser = Browser::start(&bin);
    let mut page = browser.page();
    page.call("Network.enable", serde_json::json!({}));
    let home = Home::new();
    let file = home.file(&experiment(free_port()));
    let mut game = Game::start(&home, &file);
    let origin = format!("http://{}/", game.addr);
    page.goto(&origin);
    page.wait_for(
        "the live stream",
        "document.getElementById('conn').textContent === 'live'",
    );
    // Who am I: the scenario's responders, to choose from.
    let options = page.wait_for(
        "the responders",
        "[...document.querySelectorAll('#who option')].map(o => o.value).filter(v => v).join(',')",
    );
    assert_eq!(options, "alice,bob");
    page.eval(
        "(() => { const s = document.getElementById('who'); s.value = 'alice'; s.dispatchEvent(new Event('change')); })()",
    );
    page.wait_for(
        "the hidden curveball, active",
        "document.getElementById('curveballs').innerText.includes('curveball 1: active since')",
    );
    // Hidden: the whole document and what it shows name nothing of the curveball.
    let html = page.eval("document.documentElement.outerHTML");
    let html = html.as_str().unwrap();
    for secret in ["secretsleeper", "process.pause"] {
        assert!(!html.contains(secret), "the page named `{secret}`: {html}");
    }
    assert!(
        html.contains("worker answers"),
        "symptoms are shown: {html}"
    );

    page.eval("document.getElementById('note').value = 'the batch queue stalls'");
    page.click("#mark-detected");
    let said = page.wait_for(
        "the mark recorded",
        "(t => t.includes('recorded') && t)(document.getElementById('mark-result').textContent)",
    );
    assert!(
        said.as_str()
            .unwrap()
            .starts_with("detected by alice recorded at t = "),
        "{said}"
    );
    page.wait_for(
        "the mark in the list",
        "document.getElementById('marks').innerText.includes('detected by alice: the batch queue stalls (page)')",
    );
    // Once it ended, the page names it: it was live all along.
    page.wait_for(
        "the curveball revealed",
        "document.getElementById('curveballs').innerText.includes('curveball 1: process.pause secretsleeper')",
    );
    page.screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gameday-page.png"));
    let (code, out, err) = game.finish();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    page.pump_quiet(Duration::from_millis(300));

    assert_eq!(page.complaints(), Vec::<String>::new());
    let elsewhere: Vec<String> = page
        .requests()
        .into_iter()
        .filter(|u| !u.starts_with(&origin))
        .collect();
    assert_eq!(elsewhere, Vec::<String>::new(), "fetched from elsewhere");

    // The journal holds the button's mark, taken while the curveball was active.
    let journal = journal_events(&home.run_dir());
    let marks: Vec<&Value> = journal.iter().filter(|e| e["type"] == "mark").collect();
    assert_eq!(marks.len(), 1, "{marks:?}");
    let m = marks[0];
    assert_eq!(
        (&m["mark"], &m["responder"], &m["note"], &m["via"]),
        (
            &"detected".into(),
            &"alice".into(),
            &"the batch queue stalls".into(),
            &"page".into()
        )
    );
    let t = |kind: &str| {
        journal
            .iter()
            .find(|e| {
                e["type"] == kind
                    && e["activity"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("curveball 1"))
            })
            .and_then(|e| e["t"].as_u64())
            .unwrap()
    };
    let mark_t = m["t"].as_u64().unwrap();
    assert!(t("activity_started") <= mark_t && mark_t <= t("activity_ended"));
}
