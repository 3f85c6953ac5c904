//! Chaos plus fuzzing: a campaign runs while a fault is active, and a defect that shows
//! only under degradation (authorization failing open while the auth service is
//! unreachable) is found, named after the fault active at the time, and fails the run.

#[path = "../../../livefire-fuzz/tests/it/target.rs"]
mod target;

use crate::support::*;

/// Runs a fuzz campaign (`api-fuzz`, auth_enforced, 6 s) against the defective target,
/// which asks its auth service through the run's proxy `auth-link`, with `fault` (one
/// timeline entry) on the timeline too. Returns the run's exit code, stdout and stderr.
fn run_fail_open(home: &Home, fault: &str) -> (i32, String, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let link = free_port();
    let (dep, app) = rt.block_on(async {
        let dep = target::AuthDep::start().await;
        let app = target::start(
            target::Mode::Defective,
            Some(format!("127.0.0.1:{link}").parse().unwrap()),
            "127.0.0.1:0",
        )
        .await;
        (dep, app)
    });
    let file = home.file(&format!(
        "version: 1\ntitle: auth fails open\nsettings: {{ seed: 7 }}\ntargets:\n  auth-link: {{ proxy: {{ listen: \"127.0.0.1:{link}\", upstream: \"{}\" }} }}\ntimeline:\n  - {{ at: 0s, for: 6s, fuzz: {{ name: api-fuzz, openapi: \"{}/openapi.yaml\", checks: [auth_enforced], rate: 200/s }} }}\n  - {fault}\n",
        dep.addr,
        app.base_url()
    ));
    let result = run(&mut home.run(&file));
    drop(app);
    drop(dep);
    result
}

#[test]
fn auth_failing_open_while_its_dependency_is_down_is_a_critical_finding_naming_the_fault() {
    let home = Home::new();
    // The target asks its auth service through the run's proxy, which the fault takes down.
    let (code, out, err) = run_fail_open(
        &home,
        "{ at: 2s, for: 2s, name: auth down, fault: { proxy.down: { target: auth-link } } }",
    );
    assert_eq!(code, 1, "a critical finding fails the run\n{out}{err}");
    // The hypothesis (none) held: the run failed on findings, and says which.
    assert!(out.contains("verdict: failed: findings (exit 1)"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("  - ")
            && l.contains("critical finding")
            && l.contains("auth_enforced on GET /account during auth down")),
        "{out}"
    );
    assert_eq!(home.summary()["verdict"], "failed");
    let journal = home.journal();
    let findings: Vec<serde_json::Value> = journal
        .lines()
        .filter(|l| l.contains("\"type\":\"finding\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // GET /account fails open only while its auth service is unreachable (the target
    // also has an always-open operation, found with no fault active).
    let open = findings
        .iter()
        .find(|f| {
            f["finding"]["rule"] == "auth_enforced" && f["finding"]["operation"] == "GET /account"
        })
        .unwrap_or_else(|| panic!("no auth_enforced finding on GET /account in {findings:?}"));
    assert_eq!(open["severity"], "critical");
    assert_eq!(open["fails"], true);
    assert_eq!(
        open["finding"]["active_faults"],
        serde_json::json!(["auth down"]),
        "{open}"
    );
    assert!(
        open["finding"]["curl"]
            .as_str()
            .unwrap()
            .starts_with("curl"),
        "{open}"
    );
    let always = findings
        .iter()
        .find(|f| f["finding"]["operation"] == "GET /admin/users")
        .expect("the always-open operation");
    assert_eq!(
        always["finding"]["active_faults"],
        serde_json::json!([]),
        "found before the fault: {always}"
    );
    assert!(home.run_dir().join("findings.sarif").exists());
    assert!(journal.contains("\"type\":\"campaign_ended\""));
    // The window of the fail-open finding: it appeared with the fault active and ended
    // when the fault was rolled back.
    let windows: Vec<serde_json::Value> = journal
        .lines()
        .filter(|l| l.contains("\"type\":\"finding_window\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let account = windows
        .iter()
        .find(|w| w["operation"] == "GET /account" && w["rule"] == "auth_enforced")
        .unwrap_or_else(|| panic!("no window for GET /account in {windows:?}"));
    assert_eq!(
        account["faults_at_first"],
        serde_json::json!(["auth down"]),
        "{account}"
    );
    assert_eq!(
        account["ended_after"],
        serde_json::json!(["auth down"]),
        "{account}"
    );
    let always = windows
        .iter()
        .find(|w| w["operation"] == "GET /admin/users")
        .expect("a window for the always-open operation");
    assert_eq!(always["ended_after"], serde_json::json!([]), "{always}");
}

// Regression: a reproducer carried `'...${env:API_TOKEN}...'` in single quotes, which no
// shell fills in, so it did not run as pasted.
#[test]
fn reproducers_read_the_experiments_secrets_from_the_environment_and_run_as_pasted() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let home = Home::new();
    let app = rt.block_on(target::start(target::Mode::Defective, None, "127.0.0.1:0"));
    let file = home.file(&format!(
        "version: 1\ntitle: notes leak\nsettings: {{ seed: 7 }}\ntimeline:\n  - at: 0s\n    for: 4s\n    fuzz:\n      name: api-fuzz\n      openapi: \"{}/openapi.yaml\"\n      checks: [object_access]\n      rate: 200/s\n      auth: {{ header: Authorization, value: \"Bearer ${{env:LF_ALICE}}\" }}\n      second_identity: {{ header: Authorization, value: \"Bearer ${{env:LF_BOB}}\" }}\n",
        app.base_url()
    ));
    let (code, out, err) = run(home
        .run(&file)
        .env("LF_ALICE", target::ALICE_TOKEN)
        .env("LF_BOB", target::BOB_TOKEN));
    assert_eq!(code, 1, "bob reads alice's note: a finding\n{out}{err}");
    let journal = home.journal();
    assert!(
        !journal.contains(target::BOB_TOKEN),
        "a secret in the journal"
    );
    let finding = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["type"] == "finding" && e["finding"]["rule"] == "object_access")
        .unwrap_or_else(|| panic!("no object_access finding:\n{journal}"));
    let curl = finding["finding"]["curl"].as_str().unwrap().to_owned();
    assert!(curl.contains("\"${LF_BOB}\""), "{curl}");
    // As pasted, with the variable exported: bob reads alice's note again.
    let (code, stdout, stderr) = run(std::process::Command::new("sh")
        .arg("-c")
        .arg(&curl)
        .env("LF_BOB", target::BOB_TOKEN));
    assert_eq!(code, 0, "{curl}\n{stderr}");
    assert!(stdout.starts_with("HTTP/1.1 200"), "{curl}\n{stdout}");
    // Without it, the shell names the variable and sends nothing.
    let (code, _, stderr) = run(std::process::Command::new("sh")
        .arg("-c")
        .arg(&curl)
        .env_remove("LF_BOB"));
    assert_ne!(code, 0);
    assert!(stderr.contains("export LF_BOB"), "{stderr}");
}

// Regression: fuzz runs never appeared in `livefire runs`.
#[test]
fn a_fuzz_run_is_listed_by_runs_with_its_findings() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let home = Home::new();
    let app = rt.block_on(target::start(target::Mode::Defective, None, "127.0.0.1:0"));
    let out = home.path().join("fuzz-results");
    let (code, stdout, err) = run(home
        .livefire()
        .arg("fuzz")
        .arg(format!("{}/openapi.yaml", app.base_url()))
        .args(["--base-url", &app.base_url(), "-d", "2s", "--seed", "7"])
        .args(["--checks", "server_error"])
        .arg("--out")
        .arg(&out));
    assert!(code == 0 || code == 1, "{stdout}{err}");
    let dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    let findings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("findings.json")).unwrap()).unwrap();
    let n = findings["findings"].as_array().unwrap().len();
    assert!(n > 0, "the planted server_error is found");
    let cwd = home.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let (code, stdout, err) = run(home.livefire().current_dir(&cwd).arg("runs"));
    assert_eq!(code, 0, "{err}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not listed:\n{stdout}"));
    let count = if n == 1 {
        "fuzz: 1 finding".to_owned()
    } else {
        format!("fuzz: {n} findings")
    };
    assert!(line.contains(&count), "{line}");
    // `report` on it says where its results are instead of "not found".
    let (code, _, err) = run(home.livefire().current_dir(&cwd).arg("report").arg(&id));
    assert_eq!(code, 3);
    assert!(err.contains("findings.json"), "{err}");
}

#[test]
fn the_progress_line_and_the_finding_name_an_unnamed_fault_by_kind_and_target() {
    let home = Home::new();
    // The fault has no `name:`: people read its kind and target.
    let (code, out, err) = run_fail_open(
        &home,
        "{ at: 2s, for: 3s, fault: { proxy.down: { target: auth-link } } }",
    );
    assert_eq!(code, 1, "a critical finding fails the run\n{out}{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("active: proxy.down auth-link")),
        "the progress line names the fault:\n{err}"
    );
    assert!(!err.contains("timeline["), "{err}");
    let journal = home.journal();
    let events: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |kind: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in the journal"))
    };
    let applied = at("fault_applied");
    assert_eq!(applied["activity"], "proxy.down auth-link");
    let started = events
        .iter()
        .find(|e| e["type"] == "activity_started" && e["kind"] == "proxy.down")
        .unwrap();
    assert_eq!(started["id"], "timeline[1]", "the id stays beside the name");
    let (applied_t, rolled_back_t) = (
        applied["t"].as_u64().unwrap(),
        at("fault_rolled_back")["t"].as_u64().unwrap(),
    );
    let campaign_t = events
        .iter()
        .find(|e| e["type"] == "activity_started" && e["kind"] == "fuzz")
        .unwrap()["t"]
        .as_u64()
        .unwrap();
    let open = events
        .iter()
        .find(|e| {
            e["type"] == "finding"
                && e["finding"]["rule"] == "auth_enforced"
                && e["finding"]["operation"] == "GET /account"
        })
        .unwrap_or_else(|| panic!("no auth_enforced finding on GET /account:\n{journal}"));
    assert_eq!(
        open["finding"]["active_faults"],
        serde_json::json!(["proxy.down auth-link"]),
        "{open}"
    );
    // The faults are those active when the finding's first request was sent: that
    // send time lies within the fault's window on the run's clock (a few ms of slack
    // for the campaign's own start stamp), and before the finding was seen.
    let (sent, seen) = (
        open["finding"]["sent_ms"].as_u64().unwrap(),
        open["finding"]["at_ms"].as_u64().unwrap(),
    );
    assert!(sent <= seen, "sent {sent} ms, seen {seen} ms");
    let sent_t = campaign_t + sent;
    assert!(
        sent_t + 20 >= applied_t && sent_t <= rolled_back_t + 20,
        "sent at {sent_t} ms, the fault ran from {applied_t} to {rolled_back_t} ms"
    );
}
