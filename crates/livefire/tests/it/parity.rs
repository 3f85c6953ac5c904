//! `validate` catches what `run` refuses: every input that `run` refuses without
//! needing the target alive is refused by `validate` too, at FILE:LINE:COL, and by `run`
//! with exit 3 before anything is applied. And `--env`, on both.

use crate::support::*;

const HEAD: &str = "version: 1\ntitle: parity\n";

/// (what, file body after HEAD, line:col, message fragment). Each must be refused by
/// `validate` at that place and by `run` with exit 3 and the same located line.
const REFUSED: &[(&str, &str, &str, &str)] = &[
    (
        "an https probe",
        "hypothesis:\n  - { name: up, probe: { http: { url: \"https://127.0.0.1:1/\" } }, expect: { status: 200 } }\ntimeline: []\n",
        "4:39",
        "https:// probes are not built",
    ),
    (
        "a fuzz spec file without base_url",
        "timeline:\n  - { at: 0s, for: 1s, fuzz: { openapi: spec.json } }\n",
        "4:41",
        "set `base_url`",
    ),
    (
        "a fuzz spec file that does not exist",
        "timeline:\n  - { at: 0s, for: 1s, fuzz: { openapi: missing.json, base_url: \"http://127.0.0.1:1\" } }\n",
        "4:41",
        "OpenAPI file `missing.json` does not exist",
    ),
    (
        "a load data file that does not exist",
        "timeline:\n  - { at: 0s, for: 1s, load: { rate: 1/s, data: { file: rows.csv }, requests: [ { url: \"http://127.0.0.1:1/\" } ] } }\n",
        "4:57",
        "data file `rows.csv` does not exist",
    ),
    (
        "a net.partition peer that is not an address",
        "targets:\n  ns: { netns: lf-parity }\ntimeline:\n  - { at: 0s, for: 1s, fault: { net.partition: { target: ns, peers: [db.internal] } } }\n",
        "6:70",
        "peer `db.internal` is not an address",
    ),
    (
        "a net.bandwidth rate of zero",
        "targets:\n  ns: { netns: lf-parity }\ntimeline:\n  - { at: 0s, for: 1s, fault: { net.bandwidth: { target: ns, rate: 0B } } }\n",
        "6:68",
        "a rate of 0 would stop all traffic",
    ),
    (
        "a scenario that draws more curveballs than its pool holds",
        "targets:\n  w: { process: { pid: 4242 } }\ntimeline: []\nscenario:\n  draw: 2\n  window: [0s, 1s]\n  duration: [1s, 1s]\n  pool: [ { fault: { process.pause: { target: w } } } ]\n",
        "7:9",
        "`draw: 2` needs that many curveballs in `pool` (it has 1)",
    ),
    (
        "a curveball weighted 0",
        "targets:\n  w: { process: { pid: 4242 } }\ntimeline: []\nscenario:\n  draw: 1\n  window: [0s, 5s]\n  duration: [1s, 2s]\n  pool: [ { weight: 0, fault: { process.pause: { target: w } } } ]\n",
        "10:21",
        "`weight` must be positive",
    ),
    (
        "a scenario window shorter than a curveball",
        "targets:\n  w: { process: { pid: 4242 } }\ntimeline: []\nscenario:\n  draw: 1\n  window: [1s, 2s]\n  duration: [2s, 3s]\n  pool: [ { fault: { process.pause: { target: w } } } ]\n",
        "8:11",
        "`window` lasts 1s but a curveball lasts at least 2s",
    ),
    (
        "a curveball on an unknown target",
        "targets:\n  w: { process: { pid: 4242 } }\ntimeline: []\nscenario:\n  draw: 1\n  window: [0s, 5s]\n  duration: [1s, 2s]\n  pool: [ { fault: { process.pause: { target: nope } } } ]\n",
        "10:47",
        "unknown target `nope`",
    ),
    (
        "two curveballs that could stack on one target",
        "targets:\n  w: { process: { pid: 4242 } }\ntimeline: []\nscenario:\n  draw: 2\n  window: [0s, 5s]\n  duration: [1s, 2s]\n  pool: [ { fault: { process.pause: { target: w } } }, { fault: { process.kill: { target: w } } } ]\n",
        "10:65",
        "acts on target `w`: faults on one target cannot stack",
    ),
    (
        "a responder listed twice",
        "timeline: []\nscenario:\n  draw: 1\n  window: [0s, 5s]\n  duration: [1s, 2s]\n  responders: [alice, alice]\n  pool: [ { fault: { command: { apply: \"true\" } } } ]\n",
        "8:23",
        "responder `alice` is listed twice",
    ),
    (
        "a curveball that could overlap a timeline fault on its target",
        "targets:\n  w: { process: { pid: 4242 } }\ntimeline:\n  - { at: 8s, for: 2s, fault: { process.kill: { target: w } } }\nscenario:\n  draw: 1\n  window: [0s, 9s]\n  duration: [1s, 2s]\n  pool: [ { fault: { process.pause: { target: w } } } ]\n",
        "11:20",
        "could overlap the timeline's `process.kill w` at 8s on target `w`",
    ),
    (
        "a human curveball on the timeline",
        "timeline:\n  - { at: 0s, for: 1s, fault: { person.away: { responder: alice } } }\n",
        "4:33",
        "`person.away` is a game-day curveball: put it in `scenario.pool`",
    ),
    (
        "a human curveball about someone not a responder",
        "timeline: []\nscenario:\n  draw: 1\n  window: [0s, 5s]\n  duration: [1s, 2s]\n  responders: [alice]\n  pool: [ { fault: { person.away: { responder: carol } } } ]\n",
        "9:48",
        "unknown responder `carol`; the scenario's responders are alice",
    ),
    (
        "split-run settings with no segment alive",
        "settings: { segments: { min_alive: 0 } }\ntimeline: []\n",
        "3:36",
        "`segments.min_alive` must be at least 1",
    ),
    (
        "a page to corrupt on a cluster whose files are not named",
        "targets:\n  db: { postgres: { dsn: \"postgres://a@127.0.0.1:1/d\" } }\ntimeline:\n  - { at: 0s, for: 1s, fault: { postgres.corrupt: { target: db, table: t } } }\n",
        "6:61",
        "target `db` must declare its `data_dir`",
    ),
    (
        "a second top-level timeline",
        "timeline: []\ntimeline: []\n",
        "4:1",
        "duplicate key `timeline`",
    ),
    (
        "a bare number bounding an error rate",
        "guardrails:\n  - { metric: l.error_rate, below: 20 }\ntimeline:\n  - { at: 0s, for: 1s, load: { name: l, rate: 1/s, requests: [ { url: \"http://127.0.0.1:1/\" } ] } }\n",
        "4:36",
        "write `20%`",
    ),
    (
        "two pauses of one process at once",
        "targets:\n  w: { process: { pid: 4242 } }\ntimeline:\n  - { at: 0s, for: 5s, fault: { process.pause: { target: w } } }\n  - { at: 1s, for: 5s, fault: { process.pause: { target: w } } }\n",
        "7:31",
        "cannot stack",
    ),
];

#[test]
fn what_run_refuses_validate_refuses_at_its_place() {
    let mut failures = Vec::new();
    for (what, body, at, fragment) in REFUSED {
        let home = Home::new();
        // A fuzz spec that exists, for the case that only lacks `base_url`.
        write(home.path(), "spec.json", "{}");
        let file = home.file(&format!("{HEAD}{body}"));
        let located = format!("{}:{at}: error: ", file.display());

        let (code, _, err) = run(home.livefire().arg("validate").arg(&file));
        let line = err.lines().find(|l| l.starts_with(&located));
        if code != 3 || !line.is_some_and(|l| l.contains(fragment)) {
            failures.push(format!(
                "{what}: validate exited {code}, wanted 3 and `{located}...{fragment}`:\n{err}"
            ));
        }

        let (code, _, err) = run(&mut home.run(&file));
        if code != 3
            || !err
                .lines()
                .any(|l| l.starts_with(&located) && l.contains(fragment))
        {
            failures.push(format!(
                "{what}: run exited {code}, wanted 3 and `{located}...{fragment}`:\n{err}"
            ));
        }
        if home.path().join("runs").exists() {
            failures.push(format!("{what}: run made a run folder for a refused file"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_var_the_file_never_uses_is_refused_by_validate_and_run() {
    let home = Home::new();
    let file = home.file(&format!(
        "{HEAD}vars: {{ port: \"1\" }}\ntargets:\n  api: {{ http: \"http://127.0.0.1:${{port}}\" }}\ntimeline: []\n"
    ));
    for cmd in [
        home.livefire().arg("validate").arg(&file),
        home.run(&file).arg("--dry-run"),
    ] {
        let (code, _, err) = run(cmd.args(["--var", "prot=2"]));
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains(
                "--var prot: this file never uses `${prot}`; the names it uses are `port`"
            ),
            "{err}"
        );
    }
}

/// `--vars-file`: what `run` reads from it, `validate` reads too, so a file of
/// variables is checked before the run that would refuse it.
#[test]
fn validate_reads_a_vars_file_as_run_does() {
    let home = Home::new();
    let file = home.file(&format!(
        "{HEAD}vars: {{ port: \"1\" }}\ntargets:\n  api: {{ http: \"http://127.0.0.1:${{port}}\" }}\ntimeline: []\n"
    ));
    let vars = home.path().join("vars.txt");
    // (the vars file, exit code, what it says)
    let cases = [
        ("port=8080\n", 0, ""),
        (
            "port=8080\nprot=2\n",
            3,
            "--var prot: this file never uses `${prot}`; the names it uses are `port`",
        ),
        (
            "port=8080\nhunter2\n",
            3,
            "vars.txt:2: this line is not NAME=VALUE",
        ),
    ];
    for (text, want_code, want) in cases {
        std::fs::write(&vars, text).unwrap();
        for cmd in [
            home.livefire().arg("validate").arg(&file),
            home.run(&file).arg("--dry-run"),
        ] {
            let (code, out, err) = run(cmd.arg("--vars-file").arg(&vars));
            assert_eq!(code, want_code, "{text:?}: {out}{err}");
            // A valid file: validate says so, the dry run shows its plan.
            let want = match want {
                "" if out.starts_with("plan:") => "plan: parity",
                "" => "valid:",
                want => want,
            };
            assert!(
                out.contains(want) || err.contains(want),
                "{text:?}: {out}{err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
    }
    let (code, _, err) = run(home
        .livefire()
        .arg("validate")
        .arg(&file)
        .args(["--vars-file", "/nonexistent/vars"]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("--vars-file /nonexistent/vars: cannot read it"),
        "{err}"
    );
}

const ENVS: &str = r#"version: 1
title: environments
vars: { port: "1" }
environments:
  local: {}
  staging: { vars: { port: "2" } }
  prod: { production: true, vars: { port: "3" } }
targets:
  api: { http: "http://127.0.0.1:${port}" }
timeline: []
"#;

#[test]
fn env_picks_an_environment_and_production_needs_confirmation() {
    let home = Home::new();
    let file = home.file(ENVS);

    let (code, out, err) = run(home.livefire().arg("validate").arg(&file));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("(as written and in environments local, staging, prod): valid"),
        "{out}"
    );
    let (code, out, err) = run(home
        .livefire()
        .arg("validate")
        .arg(&file)
        .args(["--env", "staging"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(environment `staging`): valid"), "{out}");

    for cmd in [
        home.livefire().arg("validate").arg(&file),
        home.run(&file).arg("--dry-run"),
    ] {
        let (code, _, err) = run(cmd.args(["--env", "stagin"]));
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains("no environment `stagin`; it has `local`, `prod`, `staging`"),
            "{err}"
        );
    }

    // production: a plan may be looked at; a run needs --confirm production and
    // applies nothing without it.
    let (code, out, err) = run(home.run(&file).args(["--env", "prod", "--dry-run"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("plan: environments"), "{out}");
    let (code, _, err) = run(home.run(&file).args(["--env", "prod"]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("environment `prod` is production: add `--confirm production`"),
        "{err}"
    );
    assert!(
        !home.path().join("runs").exists(),
        "a refused run left a folder"
    );
    let (code, _, err) =
        run(home
            .run(&file)
            .args(["--env", "prod", "--confirm", "production", "-q"]));
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(home.run_dir().join("experiment.yaml")).unwrap();
    assert!(
        written.contains("http://127.0.0.1:3"),
        "the run used prod's variables: {written}"
    );
    // The journal, the summary and the report say which environment it ran in.
    let summary = home.summary();
    assert_eq!(summary["environment"], "prod");
    assert_eq!(summary["production"], true);
    let html = std::fs::read_to_string(home.run_dir().join("report.html")).unwrap();
    assert!(html.contains("<dd id=\"environment\">prod (production)</dd>"));
}

#[test]
fn a_mistake_in_one_environment_fails_validate_without_env() {
    let home = Home::new();
    let file = home.file(
        "version: 1\ntitle: t\nvars: { port: \"19101\" }\nenvironments:\n  local: {}\n  staging: { vars: { port: \"two\" } }\ntargets:\n  link: { proxy: { listen: \"127.0.0.1:${port}\", upstream: \"127.0.0.1:1\" } }\ntimeline: []\n",
    );
    let (code, _, err) = run(home.livefire().arg("validate").arg(&file));
    assert_eq!(code, 3, "{err}");
    // The address is written in `targets:`; the environment that breaks it is named.
    assert!(
        err.contains(&format!(
            "{}:8:28: error: `127.0.0.1:two` is not HOST:PORT (environment `staging`)",
            file.display()
        )),
        "{err}"
    );
    // Naming another environment checks that one only.
    let (code, _, err) = run(home
        .livefire()
        .arg("validate")
        .arg(&file)
        .args(["--env", "local"]));
    assert_eq!(code, 0, "{err}");
}

/// Regression: `validate` looked for a command's relative program (`restart: ./bin/up`)
/// from the folder it was run in, while `run` runs the command in the experiment file's
/// folder, so the two disagreed whenever a shell was elsewhere. From another folder, both
/// now accept what is beside the file and refuse what is only beside the shell.
#[test]
fn a_relative_program_is_looked_for_beside_the_file_from_any_folder() {
    let home = Home::new();
    let drill = home.path().join("drill");
    let elsewhere = home.path().join("elsewhere");
    for (dir, script) in [(&drill, "restart.sh"), (&elsewhere, "only-here.sh")] {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        write(&dir.join("bin"), script, "#!/bin/sh\nexit 0\n");
    }
    // (the target's `restart:`, accepted)
    let cases = [
        ("./bin/restart.sh", true),
        ("bin/restart.sh --now", true),
        ("./bin/only-here.sh", false),
    ];
    for (restart, accepted) in cases {
        let file = write(
            &drill,
            "exp.yaml",
            &format!(
                "{HEAD}targets:\n  w: {{ process: {{ pid: 4242 }}, restart: \"{restart}\" }}\ntimeline:\n  - {{ at: 0s, for: 1s, fault: {{ process.restart: {{ target: w }} }} }}\n"
            ),
        );
        let (code, out, err) = run(home
            .livefire()
            .current_dir(&elsewhere)
            .arg("validate")
            .arg(&file));
        let want = if accepted { 0 } else { 3 };
        assert_eq!(code, want, "validate, restart: {restart}\n{out}{err}");
        if !accepted {
            let located = format!("{}:4:", file.display());
            assert!(
                err.contains(&located)
                    && err.contains(&drill.join("bin/only-here.sh").display().to_string()),
                "validate says where it looked, at the line:\n{err}"
            );
        }
        let (code, out, err) = run(home
            .livefire()
            .current_dir(&elsewhere)
            .args(["run", "--dry-run"])
            .arg(&file));
        assert_eq!(code, want, "run --dry-run, restart: {restart}\n{out}{err}");
    }
}
