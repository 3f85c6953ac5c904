//! The console's Trends and game-day pages in headless Chromium: a drill run four times
//! draws its time to recover, margins and findings; a game day started from the console
//! shows an operator the facilitator's board and the responders' page (its mark button
//! records a mark through the console), and a viewer the page without buttons; an admin
//! makes and revokes tokens on the Tokens page.
//! Screenshots go where `crate::serve_ui::screenshot` puts them.

use livefire_testkit::chromium::{self, Browser};
use serde_json::json;

use crate::serve::{Server, wait_run};
use crate::serve_pages::{Web, gameday_experiment, trend_experiment};
use crate::serve_ui::{log_in, screenshot};
use crate::support::*;

#[test]
fn the_trends_page_draws_an_experiments_runs_in_chromium() {
    let Some(bin) = chromium::find_or_skip("the Trends page was not checked in a browser") else {
        return;
    };
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let web = Web::start();
    let (status, body) = server.put_experiment(
        &operator,
        "drill",
        &trend_experiment(web.child.id(), web.port),
    );
    assert_eq!(status, 201, "{body}");
    let runs = 4;
    for _ in 0..runs {
        let (status, run) = server.json(
            "POST",
            "/api/runs",
            &operator,
            Some(json!({"experiment": "drill"})),
        );
        assert_eq!(status, 201, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        wait_run(&server, &operator, &id, |v| v["run"]["state"] == "ended");
    }
    let browser = Browser::start(&bin);
    let mut page = browser.page();
    page.goto(&format!("{}/", server.url));
    log_in(&mut page, &operator);
    // From the nav's Trends, the list of experiments, then this one's trends.
    page.eval("document.getElementById('nav-trends').click(); true");
    page.wait_for(
        "the experiments to pick from",
        "!!document.querySelector('#trends-index a[data-experiment=\"drill\"]')",
    );
    page.eval("document.querySelector('#trends-index a[data-experiment=\"drill\"]').click(); true");
    page.wait_for(
        "the trend table",
        &format!("document.querySelectorAll('#trends tr[data-run]').length === {runs}"),
    );
    // And from the experiment's page, its Trends link.
    page.eval("location.hash = '#experiment/drill'; true");
    page.wait_for(
        "the Trends link",
        "!!document.getElementById('trends-link')",
    );
    page.eval("document.getElementById('trends-link').click(); true");
    page.wait_for(
        "the trend table",
        &format!("document.querySelectorAll('#trends tr[data-run]').length === {runs}"),
    );
    // One dot per run on the time-to-recover line, and on the margin's.
    let dots = |chart: &str, series: &str| {
        format!("document.querySelectorAll('#{chart} circle[data-series=\"{series}\"]').length")
    };
    assert_eq!(page.eval(&dots("chart-recover", "server paused")), runs);
    assert_eq!(page.eval(&dots("chart-margin", "p99 under 500ms")), runs);
    assert_eq!(page.eval(&dots("chart-findings", "findings")), runs);
    let row = page.eval("document.querySelector('#trends tr[data-run]').textContent");
    assert!(
        row.as_str().unwrap().contains(" s"),
        "a time to recover: {row}"
    );
    assert!(page.complaints().is_empty(), "{:?}", page.complaints());
    screenshot(&mut page, "serve-trends.png");
}

#[test]
fn a_game_day_in_the_console_marks_for_operators_and_only_shows_to_viewers_in_chromium() {
    let Some(bin) = chromium::find_or_skip("the game-day pages were not checked in a browser")
    else {
        return;
    };
    let server = Server::start();
    let operator = server.token("operator", "alice", None);
    let viewer = server.token("viewer", "carol", None);
    let victim = Victim::start();
    let (status, body) = server.put_experiment(&operator, "gd", &gameday_experiment(victim.pid()));
    assert_eq!(status, 201, "{body}");
    let browser = Browser::start(&bin);
    let mut page = browser.page();
    page.goto(&format!("{}/", server.url));
    log_in(&mut page, &operator);
    page.eval("location.hash = '#experiment/gd'; true");
    page.wait_for("the start button", "!!document.getElementById('start-run')");
    page.eval("document.getElementById('start-run').click(); true");
    page.wait_for(
        "the run's link to its game day",
        "!!document.getElementById('gameday-link')",
    );
    let id = page
        .eval("decodeURIComponent(location.hash.slice(5))")
        .as_str()
        .unwrap()
        .to_owned();
    page.eval("document.getElementById('gameday-link').click(); true");
    // The facilitator's board: the curveball with its kind and target, active.
    page.wait_for(
        "the active curveball on the board",
        "(() => { const r = document.querySelector('#curveballs tr[data-curveball=\"1\"]'); return !!r && r.textContent.includes('process.pause') && r.textContent.includes('ACTIVE'); })()",
    );
    // The responders' page in its frame: mark as bob with its button.
    let frame = "document.getElementById('responders').contentDocument";
    page.wait_for(
        "the responders' page in its frame",
        &format!("(() => {{ const d = {frame}; return !!d && !!d.getElementById('who') && d.getElementById('who').options.length > 1; }})()"),
    );
    page.eval(&format!(
        "(() => {{ const d = {frame}; const w = d.getElementById('who'); w.value = 'bob'; w.dispatchEvent(new Event('change')); d.getElementById('mark-detected').click(); return true; }})()"
    ));
    page.wait_for(
        "the mark recorded",
        &format!("{frame}.getElementById('mark-result').textContent.includes('detected by bob')"),
    );
    page.wait_for(
        "the mark on the board",
        "document.getElementById('facilitator-events').textContent.includes('bob marked detected')",
    );
    screenshot(&mut page, "serve-gameday.png");
    assert!(page.complaints().is_empty(), "{:?}", page.complaints());

    // A viewer: the page without buttons, no board.
    page.eval("document.getElementById('logout').click(); true");
    log_in(&mut page, &viewer);
    page.eval(&format!("location.hash = '#gameday/{id}'; true"));
    page.wait_for(
        "the responders' page for a viewer",
        &format!(
            "(() => {{ const d = {frame}; return !!d && !!d.getElementById('conditions'); }})()"
        ),
    );
    assert_eq!(page.eval("!!document.getElementById('facilitator')"), false);
    assert_eq!(
        page.eval(&format!("{frame}.querySelector('section.marking').hidden")),
        true
    );
    let (status, _) = server.json("POST", &format!("/api/runs/{id}/stop"), &operator, None);
    assert_eq!(status, 202);
    wait_run(&server, &operator, &id, |v| v["run"]["state"] == "ended");
    assert!(victim.running());
}

/// An admin manages tokens from the console: makes one (shown once, and it works for
/// its role), revokes one (refused from then on); an operator sees no Tokens page.
#[test]
fn an_admin_makes_and_revokes_tokens_on_the_tokens_page_in_chromium() {
    let Some(bin) = chromium::find_or_skip("the Tokens page was not checked in a browser") else {
        return;
    };
    let server = Server::start();
    let admin = server.token("admin", "root", None);
    let operator = server.token("operator", "alice", None);
    let browser = Browser::start(&bin);
    let mut page = browser.page();
    page.goto(&format!("{}/", server.url));
    log_in(&mut page, &admin);
    page.wait_for(
        "the Tokens link for an admin",
        "!document.getElementById('nav-tokens').hidden",
    );
    page.eval("document.getElementById('nav-tokens').click(); true");
    page.wait_for(
        "the token list",
        "!!document.querySelector('#tokens tr[data-token=\"alice\"]')",
    );
    page.eval(
        "document.getElementById('new-token-name').value = 'dana'; document.getElementById('new-token-role').value = 'viewer'; document.getElementById('new-token-expires').value = '1d'; document.querySelector('#token-form button[type=submit]').click(); true",
    );
    let dana = page.wait_for(
        "the new token, shown once",
        "(() => { const c = document.getElementById('new-token-value'); return c ? c.textContent : false; })()",
    );
    let dana = dana.as_str().expect("the token").to_owned();
    let (status, _) = server.json("GET", "/api/runs", &dana, None);
    assert_eq!(status, 200, "the new viewer token reads");
    let (status, _) = server.json("GET", "/api/tokens", &dana, None);
    assert_eq!(status, 403, "and only reads");
    // A name already taken says so, in the form.
    page.eval(
        "document.getElementById('new-token-name').value = 'alice'; document.querySelector('#token-form button[type=submit]').click(); true",
    );
    page.wait_for(
        "the refusal",
        "document.getElementById('new-token').className === 'error' && document.getElementById('new-token').textContent.includes('alice')",
    );
    // Revoke alice's token (confirmed): the list says so, and the API refuses it.
    page.eval("window.confirm = () => true; location.hash = '#tokens'; true");
    page.wait_for(
        "the revoke button",
        "!!document.querySelector('button[data-revoke=\"alice\"]')",
    );
    page.eval("document.querySelector('button[data-revoke=\"alice\"]').click(); true");
    page.wait_for(
        "alice revoked",
        "(() => { const r = document.querySelector('#tokens tr[data-token=\"alice\"]'); return !!r && r.textContent.includes('revoked'); })()",
    );
    let (status, _) = server.json("GET", "/api/runs", &operator, None);
    assert_eq!(status, 401, "a revoked token is refused");
    assert!(page.complaints().is_empty(), "{:?}", page.complaints());
    // An operator has no Tokens link, and the page says it is for admins.
    let other = server.token("operator", "erin", None);
    page.eval("document.getElementById('logout').click(); true");
    log_in(&mut page, &other);
    assert_eq!(
        page.eval("document.getElementById('nav-tokens').hidden"),
        true
    );
    page.eval("location.hash = '#tokens'; true");
    page.wait_for(
        "the refusal for an operator",
        "!!document.getElementById('tokens-refused')",
    );
}
