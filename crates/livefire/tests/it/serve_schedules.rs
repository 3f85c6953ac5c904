//! `livefire serve` schedules and approvals over real HTTP: a schedule fires a run that
//! pauses a real process and the run list names the schedule; the next firing, its
//! target still held, is skipped with the reason; schedules survive a restart and the
//! firings missed meanwhile are logged; bad cron is 400 and a viewer is 403. With
//! `--require-approval`, a production run waits for a second person: the owner of a
//! schedule made from the shell (`--owner`) cannot approve its firings, a firing while
//! the previous request waits is skipped, decisions keep their reason, requests expire,
//! and others see variables' names only.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::{Server, wait_run};
use crate::support::*;

/// Polls `GET path` until `done` holds (up to 60 s); returns the last answer.
fn wait_for(server: &Server, token: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = server.json("GET", path, token, None);
        assert_eq!(status, 200, "{v}");
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pauses `pid` for `secs`; the activity is named by the variable `label`, and the file
/// has a staging and a production environment.
pub fn pause_in_environments(pid: u32, secs: u32) -> String {
    format!(
        "version: 1\ntitle: pause in environments\nvars: {{ label: \"victim paused\" }}\nenvironments:\n  staging: {{}}\n  prod: {{ production: true }}\ntargets:\n  victim: {{ process: {{ pid: {pid} }} }}\ntimeline:\n  - at: 0s\n    for: {secs}s\n    name: \"${{label}}\"\n    fault: {{ process.pause: {{ target: victim }} }}\n"
    )
}

fn upload(server: &Server, token: &str, name: &str, text: &str) {
    let (status, body) = server.put_experiment(token, name, text);
    assert!(status == 201 || status == 200, "{body}");
}

fn stop_and_wait(server: &Server, token: &str, id: &str) {
    let (status, v) = server.json("POST", &format!("/api/runs/{id}/stop"), token, None);
    assert_eq!(status, 202, "{v}");
    let v = wait_run(server, token, id, |v| v["run"]["state"] == "ended");
    assert_eq!(v["run"]["state"], "ended", "{v}");
}

/// The audit lines of `subject`, as (who, action, detail).
/// Polls the audit log of `subject` (up to 60 s) for a `skip` whose detail contains
/// `why`; returns that line (who, action, detail), or fails naming what was there.
fn wait_for_skip(
    server: &Server,
    token: &str,
    subject: &str,
    why: &str,
) -> (String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = audit_of(server, token, subject);
        if let Some(l) = lines
            .iter()
            .find(|(_, action, detail)| action == "skip" && detail.contains(why))
        {
            return l.clone();
        }
        assert!(Instant::now() < deadline, "no skipped firing: {lines:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn audit_of(server: &Server, token: &str, subject: &str) -> Vec<(String, String, String)> {
    let (_, v) = server.json("GET", "/api/audit", token, None);
    v.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["subject"] == subject)
        .map(|a| {
            (
                a["who"].as_str().unwrap_or("").to_owned(),
                a["action"].as_str().unwrap_or("").to_owned(),
                a["detail"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn bad_schedules_are_refused_saying_why_and_only_admins_make_them() {
    let server = Server::start();
    let admin = server.token("admin", "root", None);
    let operator = server.token("operator", "alice", None);
    let viewer = server.token("viewer", "bob", None);
    let victim = Victim::start();
    upload(
        &server,
        &admin,
        "pause",
        &pause_in_environments(victim.pid(), 1),
    );
    let body = |cron: &str, extra: Value| {
        let mut v = json!({"name": "monthly", "cron": cron, "experiment": "pause"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    // (token, body, status, words the answer holds)
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            &viewer,
            body("0 9 1 * *", json!({})),
            403,
            "needs the admin role",
        ),
        (
            &operator,
            body("0 9 1 * *", json!({})),
            403,
            "needs the admin role",
        ),
        (
            &admin,
            body("every month", json!({})),
            400,
            "cron `every month`",
        ),
        (&admin, body("61 * * * *", json!({})), 400, "write 5 fields"),
        (&admin, body("* * * *", json!({})), 400, "4 field(s)"),
        (&admin, body("0 0 30 2 *", json!({})), 400, "never fires"),
        (
            &admin,
            body("0 9 1 * *", json!({"experiment": "nope"})),
            404,
            "no experiment named `nope`",
        ),
        (
            &admin,
            body("0 9 1 * *", json!({"env": "moon"})),
            400,
            "moon",
        ),
        (
            &admin,
            body("0 9 1 * *", json!({"vars": {"nope": "1"}})),
            400,
            "nope",
        ),
        (
            &admin,
            body("0 9 1 * *", json!({"vars": {"label": "two\nlines"}})),
            400,
            "one-line value",
        ),
        (
            &admin,
            body("0 9 1 * *", json!({"vars": ["label"]})),
            400,
            "`vars` is an object",
        ),
        (
            &admin,
            body("0 9 1 * *", json!({"environment": "prod"})),
            400,
            "unknown field `environment`",
        ),
        (
            &admin,
            body("0 9 1 * *", json!({"timezone": "Europe/Paris"})),
            400,
            "unknown field `timezone`",
        ),
        (
            &admin,
            json!({"cron": "0 9 1 * *"}),
            400,
            "(env and vars optional)",
        ),
        (
            &admin,
            body(
                "0 9 1 * *",
                json!({"env": "prod", "vars": {"label": "monthly drill"}}),
            ),
            201,
            "\"next\"",
        ),
        (&admin, body("0 9 1 * *", json!({})), 409, "exists already"),
    ];
    for (token, body, want, words) in cases {
        let (status, v) = server.json("POST", "/api/schedules", token, Some(body.clone()));
        assert_eq!(status, want, "{body}: {v}");
        assert!(
            v.to_string().contains(words),
            "{body}: `{words}` not in {v}"
        );
    }
    // Nothing refused was stored; the one made is listed with its next firing (the 1st
    // of a month, 09:00 UTC).
    let (status, list) = server.json("GET", "/api/schedules", &viewer, None);
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["env"], "prod");
    // Others see the variable's name, not its value.
    assert_eq!(list[0]["vars"]["label"], "***");
    let next = list[0]["next"].as_str().unwrap();
    assert!(next.contains("-01T09:00:00"), "{next}");
    // A viewer cannot delete it; an admin can, and it is in the audit log.
    let (status, _) = server.json("DELETE", "/api/schedules/monthly", &viewer, None);
    assert_eq!(status, 403);
    let (status, _) = server.json("DELETE", "/api/schedules/monthly", &admin, None);
    assert_eq!(status, 200);
    let (status, _) = server.json("DELETE", "/api/schedules/monthly", &admin, None);
    assert_eq!(status, 404);
    let actions: Vec<String> = audit_of(&server, &viewer, "schedule:monthly")
        .into_iter()
        .map(|(who, action, _)| format!("{action} by {who}"))
        .collect();
    assert_eq!(
        actions,
        ["delete by root (admin)", "create by root (admin)"]
    );
}

#[test]
fn a_schedule_fires_runs_named_after_it_and_skips_a_firing_while_its_target_is_held() {
    let server = Server::start();
    let admin = server.token("admin", "root", None);
    let victim = Victim::start();
    upload(
        &server,
        &admin,
        "pause",
        &pause_in_environments(victim.pid(), 120),
    );
    // Every 2 seconds (the optional seconds field), in production (no --require-approval:
    // it starts directly), with a variable.
    let (status, v) = server.json(
        "POST",
        "/api/schedules",
        &admin,
        Some(
            json!({"name": "often", "cron": "*/2 * * * * *", "experiment": "pause",
                    "env": "prod", "vars": {"label": "scheduled pause"}}),
        ),
    );
    assert_eq!(status, 201, "{v}");
    let runs = wait_for(&server, &admin, "/api/runs", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    });
    let run = &runs[0];
    assert_eq!(run["started_by"], "schedule often", "{runs}");
    assert_eq!(run["experiment"], "pause");
    let id = run["id"].as_str().unwrap().to_owned();
    assert!(
        victim.wait_state('T'),
        "the scheduled run paused the victim"
    );
    // A later firing finds the victim held by that run: skipped, with the reason, not
    // dropped. (One while the run was still starting names its start slot instead.)
    let held = format!("held by run {id}");
    let skipped = wait_for_skip(&server, &admin, "schedule:often", &held);
    assert_eq!(skipped.0, "schedule often");
    assert!(
        skipped.2.contains("a run is already active on its targets"),
        "{skipped:?}"
    );
    let (_, s) = server.json("GET", "/api/schedules/often", &admin, None);
    assert!(
        s["last_result"]
            .as_str()
            .unwrap_or("")
            .starts_with("skipped"),
        "{s}"
    );
    let (status, _) = server.json("DELETE", "/api/schedules/often", &admin, None);
    assert_eq!(status, 200);
    stop_and_wait(&server, &admin, &id);
    assert!(victim.running());
    // The run is recorded like any other: its journal names the schedule, the
    // environment and the variable.
    let (status, _, journal) = server.call(
        "GET",
        &format!("/api/runs/{id}/files/journal.jsonl"),
        Some(&admin),
        None,
    );
    assert_eq!(status, 200);
    assert!(
        journal.contains("scheduled pause"),
        "the variable reached the run"
    );
    let starts: Vec<Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "audit" && v["action"] == "start")
        .collect();
    assert_eq!(starts.len(), 1, "{journal}");
    assert_eq!(starts[0]["who"], "schedule often");
    assert!(
        starts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("environment `prod`"),
        "{}",
        starts[0]
    );
}

#[test]
fn schedules_survive_a_restart_and_firings_missed_meanwhile_are_logged_not_run() {
    let server = Server::start();
    let admin = server.token("admin", "root", None);
    let victim = Victim::start();
    upload(
        &server,
        &admin,
        "pause",
        &pause_in_environments(victim.pid(), 1),
    );
    let (status, v) = server.json(
        "POST",
        "/api/schedules",
        &admin,
        Some(json!({"name": "monthly", "cron": "0 9 1 * *", "experiment": "pause"})),
    );
    assert_eq!(status, 201, "{v}");
    let mut server = server;
    let home = std::mem::replace(&mut server.home, Home::new());
    drop(server);
    // While no server runs: one every second, made from the shell, as `token create`.
    let data = home.path().join("data");
    let (code, out, err) = run(home
        .livefire()
        .args(["serve", "--data"])
        .arg(&data)
        .args([
            "schedule",
            "create",
            "--name",
            "tick",
            "--cron",
            "* * * * * *",
        ])
        .args(["--experiment", "pause", "--var", "label=ticked"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("schedule `tick` made"), "{out}");
    // A bad one from the shell is refused the same way.
    let (code, _, err) = run(home
        .livefire()
        .args(["serve", "--data"])
        .arg(&data)
        .args([
            "schedule",
            "create",
            "--name",
            "bad",
            "--cron",
            "0 25 * * *",
        ])
        .args(["--experiment", "pause"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("cron `0 25 * * *`"), "{err}");
    // At least one second passes with no server: `tick` misses firings.
    std::thread::sleep(Duration::from_millis(2100));
    let again = Server::start_in(home);
    let said = again.stderr();
    assert!(said.contains("schedule `tick`: missed"), "{said}");
    assert!(said.contains("not run late"), "{said}");
    let (status, _) = again.json("DELETE", "/api/schedules/tick", &admin, None);
    assert_eq!(status, 200);
    let (_, list) = again.json("GET", "/api/schedules", &admin, None);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["monthly"], "{list}");
    assert_eq!(list[0]["cron"], "0 9 1 * *");
    assert_eq!(list[0]["created_by"], "root (admin)");
    let missed = audit_of(&again, &admin, "schedule:tick");
    assert!(
        missed
            .iter()
            .any(|(who, action, _)| action == "missed" && who == "livefire serve"),
        "{missed:?}"
    );
    // The CLI lists what the API made.
    let (code, out, _) = run(again
        .home
        .livefire()
        .args(["serve", "--data"])
        .arg(again.home.path().join("data"))
        .args(["schedule", "list"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("monthly\t0 9 1 * *\texperiment `pause`"),
        "{out}"
    );
}

#[test]
fn with_require_approval_a_production_run_waits_for_a_second_person() {
    let server = Server::start_with(Home::new(), &["--require-approval"]);
    let alice = server.token("operator", "alice", None);
    let bob = server.token("operator", "bob", None);
    let viewer = server.token("viewer", "carol", None);
    let victim = Victim::start();
    upload(
        &server,
        &alice,
        "pause",
        &pause_in_environments(victim.pid(), 120),
    );
    let ask = |env: &str| {
        server.json(
            "POST",
            "/api/runs",
            &alice,
            Some(json!({"experiment": "pause", "env": env, "vars": {"label": "approved pause"}})),
        )
    };
    let (status, v) = ask("prod");
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["state"], "awaiting approval");
    let id = v["approval"]["id"].as_str().unwrap().to_owned();
    let (_, pending) = server.json("GET", "/api/approvals", &viewer, None);
    assert_eq!(pending[0]["id"], id.as_str(), "{pending}");
    assert_eq!(pending[0]["state"], "awaiting approval");
    assert_eq!(pending[0]["requested_by"], "alice (operator)");
    assert_ne!(victim.state(), 'T', "nothing runs before the approval");
    let (_, runs) = server.json("GET", "/api/runs", &viewer, None);
    assert_eq!(runs, json!([]), "no run yet");
    // Alice cannot approve her own; a viewer cannot approve at all.
    let approve = format!("/api/approvals/{id}/approve");
    let (status, v) = server.json("POST", &approve, &alice, None);
    assert_eq!(status, 403, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("a second person"),
        "{v}"
    );
    let (status, v) = server.json("POST", &approve, &viewer, None);
    assert_eq!(status, 403, "{v}");
    // Bob approves: the run starts, as alice's, in prod with her variable.
    let (status, v) = server.json("POST", &approve, &bob, None);
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["state"], "approved");
    assert_eq!(v["decided_by"], "bob (operator)");
    let run_id = v["run_id"].as_str().unwrap().to_owned();
    assert!(victim.wait_state('T'), "the approved run paused the victim");
    let (_, run) = server.json("GET", &format!("/api/runs/{run_id}"), &viewer, None);
    assert_eq!(run["run"]["started_by"], "alice (operator)", "{run}");
    // A second approval is refused: it was decided.
    let (status, _) = server.json("POST", &approve, &bob, None);
    assert_eq!(status, 409);
    stop_and_wait(&server, &bob, &run_id);
    assert!(victim.running());
    let (_, _, journal) = server.call(
        "GET",
        &format!("/api/runs/{run_id}/files/journal.jsonl"),
        Some(&viewer),
        None,
    );
    assert!(
        journal.contains("approved pause"),
        "the variable reached the run"
    );
    let approvals: Vec<Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "audit" && v["action"] == "approve")
        .collect();
    assert_eq!(approvals.len(), 1, "{journal}");
    assert_eq!(approvals[0]["who"], "bob (operator)");
    // A rejected one never runs, and the rejection is in the audit log.
    let (status, v) = ask("prod");
    assert_eq!(status, 202, "{v}");
    let second = v["approval"]["id"].as_str().unwrap().to_owned();
    let (status, v) = server.json(
        "POST",
        &format!("/api/approvals/{second}/reject"),
        &bob,
        Some(json!({"reason": "not during the sale"})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "rejected");
    assert_eq!(v["reason"], "not during the sale");
    let (status, _) = server.json(
        "POST",
        &format!("/api/approvals/{second}/approve"),
        &bob,
        None,
    );
    assert_eq!(status, 409);
    let lines = audit_of(&server, &viewer, &format!("approval:{second}"));
    assert!(
        lines.iter().any(|(who, action, detail)| action == "reject"
            && who == "bob (operator)"
            && detail.contains("reason: not during the sale")),
        "{lines:?}"
    );
    assert!(victim.running(), "a rejected run changes nothing");
    // What is approved is the text asked for: an upload in between is 409.
    let (status, v) = ask("prod");
    assert_eq!(status, 202, "{v}");
    let third = v["approval"]["id"].as_str().unwrap().to_owned();
    upload(
        &server,
        &alice,
        "pause",
        &pause_in_environments(victim.pid(), 60),
    );
    let (status, v) = server.json(
        "POST",
        &format!("/api/approvals/{third}/approve"),
        &bob,
        None,
    );
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("uploaded again"),
        "{v}"
    );
    assert!(victim.running(), "nothing ran");
    // An environment not marked production starts at once.
    let (status, v) = ask("staging");
    assert_eq!(status, 201, "{v}");
    let staging = v["id"].as_str().unwrap().to_owned();
    assert!(victim.wait_state('T'));
    stop_and_wait(&server, &alice, &staging);
    assert!(victim.running());
}

/// `livefire serve schedule create` against the server's store, as an admin at the shell.
fn shell_schedule(server: &Server, args: &[&str]) -> (i32, String, String) {
    run(server
        .home
        .livefire()
        .args(["serve", "--data"])
        .arg(server.home.path().join("data"))
        .args(["schedule", "create"])
        .args(args))
}

#[test]
fn a_shell_schedule_in_production_has_an_owner_who_cannot_approve_it_and_waits_one_request_at_a_time()
 {
    let server = Server::start_with(Home::new(), &["--require-approval"]);
    let root = server.token("admin", "root", None);
    let alice = server.token("operator", "alice", None);
    let bob = server.token("operator", "bob", None);
    server.token("viewer", "vic", None);
    server.token("operator", "gone", None);
    let (code, _, err) = run(server
        .home
        .livefire()
        .args(["serve", "--data"])
        .arg(server.home.path().join("data"))
        .args(["token", "revoke", "gone"]));
    assert_eq!(code, 0, "{err}");
    let victim = Victim::start();
    upload(
        &server,
        &alice,
        "pause",
        &pause_in_environments(victim.pid(), 120),
    );
    let often = [
        "--name",
        "often",
        "--cron",
        "*/2 * * * * *",
        "--experiment",
        "pause",
        "--env",
        "prod",
        "--var",
        "label=the secret label",
    ];
    // (extra flags, words of the refusal): nothing is stored.
    let refused: [(&[&str], &str); 4] = [
        (&[], "pass --owner TOKEN"),
        (
            &["--owner", "nobody"],
            "--owner `nobody`: no token has this name",
        ),
        (&["--owner", "vic"], "this token is a viewer"),
        (&["--owner", "gone"], "this token is revoked"),
    ];
    for (extra, words) in refused {
        let args: Vec<&str> = often.iter().chain(extra).copied().collect();
        let (code, out, err) = shell_schedule(&server, &args);
        assert_eq!(code, 3, "{extra:?}: {out}{err}");
        assert!(err.contains(words), "{extra:?}: `{words}` not in {err}");
    }
    let (_, list) = server.json("GET", "/api/schedules", &root, None);
    assert_eq!(list, json!([]), "a refused schedule is not stored");
    // Made for alice: she is its owner.
    let args: Vec<&str> = often.iter().chain(&["--owner", "alice"]).copied().collect();
    let (code, out, err) = shell_schedule(&server, &args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("schedule `often` made"), "{out}");
    let (_, s) = server.json("GET", "/api/schedules/often", &root, None);
    assert_eq!(s["owner"], "alice", "{s}");

    // Its first firing asks for approval; the next ones, while that waits, are skipped
    // with the reason instead of asking again.
    let (_, _, skipped) = wait_for_skip(&server, &root, "schedule:often", "");
    // Every firing while the request waits is skipped the same way: the schedule's last
    // result says so too.
    let (_, s) = server.json("GET", "/api/schedules/often", &root, None);
    assert!(
        s["last_result"]
            .as_str()
            .unwrap_or("")
            .starts_with("skipped: the approval for the firing at"),
        "{s}"
    );
    let (status, _) = server.json("DELETE", "/api/schedules/often", &root, None);
    assert_eq!(status, 200);
    let (_, pending) = server.json("GET", "/api/approvals", &bob, None);
    let pending = pending.as_array().unwrap();
    assert_eq!(
        pending.len(),
        1,
        "one request, not one a firing: {pending:?}"
    );
    let a = &pending[0];
    let id = a["id"].as_str().unwrap().to_owned();
    assert_eq!(a["state"], "awaiting approval");
    assert_eq!(a["requested_by"], "schedule often");
    assert_eq!(a["requester"], "alice");
    assert!(
        skipped.contains(&format!(
            "the approval for the firing at {} ({id}) still waits, asked of an operator or admin other than `alice`",
            a["requested"].as_str().unwrap()
        )),
        "{skipped}"
    );
    let fired: Vec<(String, String, String)> = audit_of(&server, &root, "schedule:often")
        .into_iter()
        .filter(|(_, action, _)| action == "fire")
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(fired[0].2.contains(&id), "{fired:?}");

    // Others see the variable's name, never its value.
    assert_eq!(a["vars"], json!({"label": "***"}));
    let (_, audit) = server.json("GET", "/api/audit", &root, None);
    let audit = audit.to_string();
    assert!(audit.contains("label=***"), "{audit}");
    assert!(!audit.contains("the secret label"), "{audit}");

    // Alice owns the schedule: she may not approve its run.
    let approve = format!("/api/approvals/{id}/approve");
    let (status, v) = server.json("POST", &approve, &alice, None);
    assert_eq!(status, 403, "{v}");
    let said = v["error"].as_str().unwrap();
    assert!(
        said.contains("schedule `often`, which is yours") && said.contains("a second person"),
        "{v}"
    );
    // A body other than a reason is refused, and decides nothing.
    let bad: [(&[u8], u16, &str); 4] = [
        (
            br#"{"reason": "ok", "force": true}"#,
            400,
            "unknown field `force`",
        ),
        (b"approve it", 400, "the body is not JSON"),
        (br#"{"reason": 42}"#, 400, "`reason` is text"),
        (&[b' '; 2 << 20], 413, "larger than"),
    ];
    for (body, want, words) in bad {
        let (status, _, said) = server.call("POST", &approve, Some(&bob), Some(body));
        assert_eq!(status, want, "{said}");
        assert!(said.contains(words), "`{words}` not in {said}");
    }
    let (_, a) = server.json("GET", &format!("/api/approvals/{id}"), &bob, None);
    assert_eq!(a["state"], "awaiting approval", "{a}");
    assert_ne!(victim.state(), 'T', "nothing runs before the approval");

    // Bob approves, saying why: the reason is in the approvals list, the audit log and
    // the run's journal.
    let (status, v) = server.json(
        "POST",
        &approve,
        &bob,
        Some(json!({"reason": "drill window agreed with the on-call"})),
    );
    assert_eq!(status, 201, "{v}");
    let run_id = v["run_id"].as_str().unwrap().to_owned();
    assert!(victim.wait_state('T'), "the approved run paused the victim");
    let (_, list) = server.json("GET", "/api/approvals", &alice, None);
    assert_eq!(
        list[0]["reason"], "drill window agreed with the on-call",
        "{list}"
    );
    assert!(
        audit_of(&server, &root, &format!("approval:{id}"))
            .iter()
            .any(|(who, action, detail)| action == "approve"
                && who == "bob (operator)"
                && detail.contains("drill window agreed")),
        "the approval and its reason are in the audit log"
    );
    stop_and_wait(&server, &bob, &run_id);
    assert!(victim.running());
    let (_, _, journal) = server.call(
        "GET",
        &format!("/api/runs/{run_id}/files/journal.jsonl"),
        Some(&alice),
        None,
    );
    let approved: Vec<Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "audit" && v["action"] == "approve")
        .collect();
    assert_eq!(approved.len(), 1, "{journal}");
    assert!(
        approved[0]["detail"]
            .as_str()
            .unwrap()
            .contains("reason: drill window agreed with the on-call"),
        "{}",
        approved[0]
    );
    let starts: Vec<Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "audit" && v["action"] == "start")
        .collect();
    assert!(
        starts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("with label=***"),
        "{}",
        starts[0]
    );
}

#[test]
fn a_request_nobody_decides_within_approval_expires_expires_and_never_runs() {
    let server = Server::start_with(
        Home::new(),
        &["--require-approval", "--approval-expires", "1s"],
    );
    let alice = server.token("operator", "alice", None);
    let bob = server.token("operator", "bob", None);
    let victim = Victim::start();
    upload(
        &server,
        &alice,
        "pause",
        &pause_in_environments(victim.pid(), 120),
    );
    let (status, v) = server.json(
        "POST",
        "/api/runs",
        &alice,
        Some(json!({"experiment": "pause", "env": "prod"})),
    );
    assert_eq!(status, 202, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("the request expires at"),
        "{v}"
    );
    let id = v["approval"]["id"].as_str().unwrap().to_owned();
    let a = wait_for(&server, &bob, &format!("/api/approvals/{id}"), |a| {
        a["state"] != "awaiting approval"
    });
    assert_eq!(a["state"], "expired", "{a}");
    let (status, v) = server.json("POST", &format!("/api/approvals/{id}/approve"), &bob, None);
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("expired at"), "{v}");
    let lines = audit_of(&server, &bob, &format!("approval:{id}"));
    assert!(
        lines
            .iter()
            .any(|(who, action, _)| action == "expire" && who == "livefire serve"),
        "{lines:?}"
    );
    let (_, runs) = server.json("GET", "/api/runs", &bob, None);
    assert_eq!(runs, json!([]), "an expired request never runs");
    assert_ne!(victim.state(), 'T');
}

/// Regression: a schedule made from the shell outside production, whose experiment is
/// then uploaded again with that environment marked production, has no owner to keep
/// from approving: its firings are skipped saying so, and nobody is asked.
#[test]
fn a_schedule_without_an_owner_token_does_not_fire_into_production() {
    let server = Server::start_with(Home::new(), &["--require-approval"]);
    let alice = server.token("operator", "alice", None);
    let victim = Victim::start();
    upload(
        &server,
        &alice,
        "pause",
        &pause_in_environments(victim.pid(), 1),
    );
    let (code, _, err) = shell_schedule(
        &server,
        &[
            "--name",
            "ownerless",
            "--cron",
            "*/2 * * * * *",
            "--experiment",
            "pause",
            "--env",
            "staging",
        ],
    );
    assert_eq!(code, 0, "outside production no owner is needed: {err}");
    let moved = pause_in_environments(victim.pid(), 1)
        .replace("staging: {}", "staging: { production: true }");
    upload(&server, &alice, "pause", &moved);
    wait_for_skip(&server, &alice, "schedule:ownerless", "no owner token");
    let (_, pending) = server.json("GET", "/api/approvals", &alice, None);
    assert_eq!(pending, json!([]), "nobody was asked");
}
