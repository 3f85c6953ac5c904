//! The console as a person uses it, in headless Chromium (Debian's `chromium`), driven
//! over the DevTools protocol as livefire-report's test drives report.html: log in with
//! a token, upload an experiment with an error and see it located, start a run that
//! pauses a process, watch the live chart grow, press STOP and confirm, and see the
//! process running again and the run aborted; a viewer gets no STOP button. Screenshots
//! of the live run go under target/ (docs/img/ with LIVEFIRE_UPDATE_SCREENSHOTS=1).

use std::path::{Path, PathBuf};

use livefire_testkit::chromium::{self, Browser, Page};
use serde_json::json;

use crate::serve::{Server, http, pause_with_probe};
use crate::support::*;

/// Logs in through the form.
pub(crate) fn log_in(page: &mut Page, token: &str) {
    page.wait_for(
        "the login form",
        "!document.getElementById('login-view').hidden",
    );
    page.eval(&format!(
        "document.getElementById('token').value = {}; document.getElementById('login-form').requestSubmit(); true",
        json!(token)
    ));
    page.wait_for("logged in", "!document.getElementById('nav').hidden");
}

#[test]
fn a_person_logs_in_finds_an_error_runs_watches_and_stops_a_drill_in_chromium() {
    let Some(bin) = chromium::find_or_skip("the console was not checked in a browser") else {
        return;
    };
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let viewer = server.token("viewer", "bob", None);
    let victim = Victim::start();
    let browser = Browser::start(&bin);
    let mut page = browser.page();
    page.goto(&format!("{}/", server.url));
    log_in(&mut page, &operator);
    assert_eq!(
        page.eval("document.getElementById('who').textContent"),
        "alice (operator)"
    );

    // An experiment with an error: shown at its file, line and column, under the line.
    page.eval("location.hash = '#experiments'; true");
    page.wait_for("the editor", "!!document.getElementById('exp-text')");
    let typo = "version: 1\ntitle: typo\ntimeline:\n  - at: 0s\n    for: 1s\n    fault: { process.pause: { target: nobody } }\n";
    page.eval(&format!(
        "document.getElementById('exp-name').value = 'typo'; document.getElementById('exp-text').value = {}; document.getElementById('upload').click(); true",
        json!(typo)
    ));
    let diag = page.wait_for(
        "the located error",
        "(() => { const d = document.getElementById('diag-0'); return d && { line: d.dataset.line, column: d.dataset.column, text: d.innerText }; })()",
    );
    assert_eq!(diag["line"], "6", "{diag}");
    assert_eq!(diag["column"], "39", "{diag}");
    let text = diag["text"].as_str().unwrap();
    assert!(text.contains("typo.yaml:6:39"), "{text}");
    assert!(text.contains("nobody"), "{text}");
    assert!(
        text.contains("fault: { process.pause: { target: nobody } }"),
        "{text}"
    );

    // A cookie session without the CSRF header cannot change anything.
    let forged = page.eval(
        "fetch('/api/runs', {method: 'POST', credentials: 'same-origin', body: '{\"experiment\":\"typo\"}'}).then(r => r.status)",
    );
    assert_eq!(forged, 403);

    // Upload the real drill, start it from its page. With traffic too: people
    // opening the console's home page, so the live page has a load to draw.
    let drill = format!(
        "{}  - at: 0s\n    for: 120s\n    load:\n      name: home\n      rate: 20/s\n      requests: [ {{ url: \"{}/\" }} ]\n",
        pause_with_probe(victim.pid(), 120),
        server.url
    );
    page.eval(&format!(
        "document.getElementById('exp-name').value = 'pause'; document.getElementById('exp-text').value = {}; document.getElementById('upload').click(); true",
        json!(drill)
    ));
    page.wait_for(
        "the experiment's page",
        "!!document.getElementById('start-run')",
    );
    page.wait_for(
        "its plan",
        "document.querySelectorAll('#plan .bar').length === 2",
    );
    page.eval("document.getElementById('start-run').click(); true");
    page.wait_for(
        "the run's page",
        "location.hash.startsWith('#run/') && !!document.getElementById('charts')",
    );
    let id = page
        .eval("decodeURIComponent(location.hash.slice(5))")
        .as_str()
        .unwrap()
        .to_owned();
    assert!(victim.wait_state('T'), "the run paused the victim");

    // The live chart grows as the journal does.
    let chart = "(() => { const s = document.querySelector('svg[data-chart=\"shell answers\"]'); return s ? Number(s.dataset.points) : 0; })()";
    let first = page.wait_for("the live chart", chart).as_u64().unwrap();
    page.wait_for(
        "the live chart updating",
        &format!("{chart} >= {}", first + 3),
    );
    // The load's two charts, as report.html draws them: requests, errors and dropped
    // sends per second; latency p50 / p90 / p99.
    page.wait_for(
        "the load's rate chart",
        "!!document.querySelector('svg[data-chart=\"home\"] path[data-series=\"rps\"]')",
    );
    page.wait_for(
        "the load's latency chart, its three percentiles drawn",
        "['p50', 'p90', 'p99'].every((p) => !!document.querySelector(`svg[data-chart=\"home latency\"] path[data-series=\"${p}\"]`))",
    );
    page.wait_for(
        "three seconds of the load",
        "Number(document.querySelector('svg[data-chart=\"home latency\"]').dataset.points) >= 3",
    );
    page.wait_for(
        "the active fault",
        "!!document.querySelector('#active-faults [data-fault=\"victim paused\"]')",
    );
    page.wait_for(
        "the condition's state",
        "!!document.querySelector('#conditions [data-condition=\"shell answers\"]')",
    );
    let shots = screenshots();
    page.screenshot(&shots.join("serve-live-run.png"));

    // STOP, confirmed in the dialog.
    page.eval("document.getElementById('stop').click(); true");
    page.wait_for(
        "the confirmation",
        "document.getElementById('confirm-stop').open",
    );
    page.eval("document.getElementById('confirm-stop-yes').click(); true");
    page.wait_for(
        "the run aborted",
        "document.getElementById('verdict') && document.getElementById('verdict').textContent === 'aborted'",
    );
    page.wait_for(
        "the rollback complete",
        "document.getElementById('rollback').textContent.includes('rollback complete')",
    );
    assert!(victim.running(), "STOP rolled the pause back");
    page.eval("location.hash = '#runs'; true");
    let row = page.wait_for(
        "the run in the list",
        &format!(
            "(() => {{ const r = document.querySelector('tr[data-run=\"{id}\"]'); return r && r.textContent; }})()"
        ),
    );
    assert!(row.as_str().unwrap().contains("aborted"), "{row}");
    page.eval(&format!("location.hash = '#run/{id}'; true"));
    page.wait_for("the ended run's page", "document.getElementById('verdict') && document.getElementById('verdict').textContent === 'aborted'");
    page.wait_for("its charts", &format!("{chart} > 0"));
    page.screenshot(&shots.join("serve-run-stopped.png"));
    publish(&shots, &["serve-live-run.png", "serve-run-stopped.png"]);
    assert!(page.complaints().is_empty(), "{:?}", page.complaints());

    // A viewer sees the run but gets no STOP button, and the API refuses it.
    page.eval("document.getElementById('logout').click(); true");
    log_in(&mut page, &viewer);
    page.eval(&format!("location.hash = '#run/{id}'; true"));
    page.wait_for("the run's page", "!!document.getElementById('charts')");
    assert_eq!(page.eval("!!document.getElementById('stop')"), false);
    let (status, _, _) = http(
        &server.addr(),
        "POST",
        &format!("/api/runs/{id}/stop"),
        Some(&viewer),
        None,
    );
    assert_eq!(status, 403);
}

#[test]
fn a_second_person_approves_a_production_run_and_an_admin_makes_a_schedule_in_chromium() {
    let Some(bin) = chromium::find_or_skip("approvals and schedules were not checked in a browser")
    else {
        return;
    };
    let server = Server::start_with(Home::new(), &["--require-approval"]);
    let alice = server.token("operator", "alice", None);
    let bob = server.token("operator", "bob", None);
    let root = server.token("admin", "root", None);
    let victim = Victim::start();
    let (status, _, body) = http(
        &server.addr(),
        "PUT",
        "/api/experiments/pause",
        Some(&alice),
        Some(crate::serve_schedules::pause_in_environments(victim.pid(), 120).as_bytes()),
    );
    assert_eq!(status, 201, "{body}");
    let browser = Browser::start(&bin);
    let mut page = browser.page();
    page.goto(&format!("{}/", server.url));

    // Alice asks for a run in prod: it waits, and she has no Approve button.
    log_in(&mut page, &alice);
    page.eval("location.hash = '#experiment/pause'; true");
    page.wait_for(
        "the environment field",
        "!!document.getElementById('run-env')",
    );
    page.eval("document.getElementById('run-env').value = 'prod'; document.getElementById('start-run').click(); true");
    let said = page.wait_for(
        "the answer",
        "document.getElementById('start-error').textContent.includes('approves') && document.getElementById('start-error').textContent",
    );
    assert!(said.as_str().unwrap().contains("production"), "{said}");
    page.eval("location.hash = '#runs'; true");
    let row = page.wait_for(
        "the waiting run",
        "(() => { const r = document.querySelector('#approvals tr[data-approval]'); return r && r.textContent; })()",
    );
    assert!(row.as_str().unwrap().contains("you asked"), "{row}");
    assert_eq!(
        page.eval("!!document.querySelector('#approvals button.approve')"),
        false
    );
    assert_ne!(victim.state(), 'T', "nothing runs before the approval");

    // Bob approves it: the run starts and its page opens.
    page.eval("document.getElementById('logout').click(); true");
    log_in(&mut page, &bob);
    page.eval("location.hash = '#runs'; true");
    page.wait_for(
        "the Approve button",
        "!!document.querySelector('#approvals button.approve')",
    );
    page.eval("document.querySelector('#approvals button.approve').click(); true");
    page.wait_for(
        "the run's page",
        "location.hash.startsWith('#run/') && !!document.getElementById('charts')",
    );
    assert!(victim.wait_state('T'), "the approved run paused the victim");
    let id = page
        .eval("decodeURIComponent(location.hash.slice(5))")
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, _) = http(
        &server.addr(),
        "POST",
        &format!("/api/runs/{id}/stop"),
        Some(&bob),
        None,
    );
    assert_eq!(status, 202);
    // A 202 is the stop asked for: the run is aborted, and its pause rolled back, once
    // the run has ended.
    let ended = crate::serve::wait_run(&server, &bob, &id, |v| v["run"]["state"] == "ended");
    assert_eq!(ended["run"]["verdict"], "aborted", "{ended}");
    assert_eq!(ended["pending_undo"], json!([]), "{ended}");
    assert!(victim.running(), "STOP rolled the pause back");

    // Alice asks again; Bob rejects it and the page asks him why: the reason is shown
    // with the decision, and nothing runs.
    let (status, v) = server.json(
        "POST",
        "/api/runs",
        &alice,
        Some(json!({"experiment": "pause", "env": "prod"})),
    );
    assert_eq!(status, 202, "{v}");
    page.eval("location.hash = '#experiments'; true");
    page.eval("location.hash = '#runs'; true");
    page.wait_for(
        "the Reject button",
        "!!document.querySelector('#approvals button.reject')",
    );
    page.eval("document.querySelector('#approvals button.reject').click(); true");
    page.wait_for(
        "the reason asked for",
        "!!document.querySelector('#reject-dialog[open] #reject-reason')",
    );
    // No reason, no rejection: the form will not submit empty.
    page.eval("document.getElementById('reject-confirm').click(); true");
    assert_eq!(
        page.eval("!!document.querySelector('#reject-dialog[open]')"),
        true
    );
    page.eval("document.getElementById('reject-reason').value = 'not during the sale'; document.getElementById('reject-confirm').click(); true");
    let row = page.wait_for(
        "the decision with its reason",
        "(() => { const r = document.querySelector('#decided td.reason'); return r && r.textContent.includes('sale') && r.parentElement.textContent; })()",
    );
    let row = row.as_str().unwrap();
    assert!(
        row.contains("rejected") && row.contains("bob (operator)"),
        "{row}"
    );
    assert!(victim.running(), "a rejected run changes nothing");

    // An admin makes a monthly schedule on the Schedules page.
    page.eval("document.getElementById('logout').click(); true");
    log_in(&mut page, &root);
    page.eval("location.hash = '#schedules'; true");
    page.wait_for(
        "the schedule form",
        "!!document.querySelector('#schedule-experiment option[value=\"pause\"]')",
    );
    page.eval("document.getElementById('schedule-name').value = 'monthly'; document.getElementById('schedule-cron').value = '0 9 1 * *'; document.getElementById('schedule-create').click(); true");
    let row = page.wait_for(
        "the schedule in the list",
        "(() => { const r = document.querySelector('tr[data-schedule=\"monthly\"]'); return r && r.textContent; })()",
    );
    let row = row.as_str().unwrap();
    assert!(
        row.contains("0 9 1 * *") && row.contains("root (admin)"),
        "{row}"
    );
    assert!(
        row.contains("-01T09:00:00"),
        "the next firing is shown: {row}"
    );
    assert!(page.complaints().is_empty(), "{:?}", page.complaints());
}

/// Where screenshots are saved on every run: under target/, so a test run leaves the
/// git tree as it was.
fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of `page` as `name` under target/ (and into docs/img/ when
/// LIVEFIRE_UPDATE_SCREENSHOTS=1 says so).
pub(crate) fn screenshot(page: &mut Page, name: &str) {
    let dir = screenshots();
    page.screenshot(&dir.join(name));
    publish(&dir, &[name]);
}

/// Copies the screenshots into docs/img/ when LIVEFIRE_UPDATE_SCREENSHOTS=1 says so.
fn publish(dir: &Path, names: &[&str]) {
    if std::env::var("LIVEFIRE_UPDATE_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let docs = repo().join("docs/img");
    for name in names {
        std::fs::copy(dir.join(name), docs.join(name)).unwrap();
    }
}
