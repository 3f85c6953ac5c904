//! The plan: each activity's display name and kind, settings with defaults filled in,
//! `${env:NAME}` resolved, and what is refused before anything runs.

use std::path::PathBuf;
use std::time::Duration;

use livefire_engine::plan::{Body, Check, Plan, PlanError, Window, plan};

const TARGETS: &str = "targets:
  auth-link: { proxy: { listen: \"127.0.0.1:1\", upstream: \"127.0.0.1:2\" } }
  worker: { process: { pid: 4242 } }
  api: { http: \"http://127.0.0.1:3\" }
";

/// Writes `text` as an experiment in a fresh folder and plans it.
fn planned(text: &str) -> (tempfile::TempDir, Result<Plan, PlanError>) {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("exp.yaml");
    std::fs::write(&file, text).unwrap();
    let p = plan(&file, &[], None);
    (dir, p)
}

fn experiment(timeline: &str) -> String {
    format!("version: 1\ntitle: t\n{TARGETS}timeline:\n{timeline}")
}

#[test]
fn each_activity_is_named_for_people_and_keeps_its_id() {
    // (timeline entry, display name, kind, target)
    let cases = [
        (
            "{ at: 0s, for: 1s, fault: { proxy.down: { target: auth-link } } }",
            "proxy.down auth-link",
            "proxy.down",
            "auth-link",
        ),
        (
            "{ at: 0s, for: 1s, fault: { process.pause: { target: worker } } }",
            "process.pause worker",
            "process.pause",
            "worker",
        ),
        (
            "{ at: 0s, for: 1s, name: primary paused, fault: { process.pause: { target: worker } } }",
            "primary paused",
            "process.pause",
            "worker",
        ),
        (
            "{ at: 0s, for: 1s, load: { name: browse, rate: 5/s, requests: [ { url: \"${api}/\" } ] } }",
            "load browse",
            "load",
            "browse",
        ),
        (
            "{ at: 0s, for: 1s, load: { rate: 5/s, requests: [ { url: \"${api}/\" } ] } }",
            "load load",
            "load",
            "load",
        ),
        (
            "{ at: 0s, for: 1s, fuzz: { name: api-fuzz, openapi: \"${api}/openapi.json\" } }",
            "fuzz api-fuzz",
            "fuzz",
            "api-fuzz",
        ),
        (
            "{ at: 0s, for: 1s, fault: { command: { apply: \"true\", rollback: \"true\" } } }",
            "command",
            "command",
            "",
        ),
    ];
    for (entry, name, kind, target) in cases {
        let (_dir, p) = planned(&experiment(&format!("  - {entry}\n")));
        let p = p.unwrap_or_else(|e| panic!("{entry}: {e}"));
        let a = &p.activities[0];
        assert_eq!(
            (a.id.as_str(), a.name.as_str(), a.kind, a.target.as_str()),
            ("timeline[0]", name, kind, target),
            "{entry}"
        );
    }
}

#[test]
fn two_activities_with_one_name_are_told_apart_in_timeline_order() {
    let (_dir, p) = planned(&experiment(
        "  - { at: 0s, for: 1s, fault: { process.pause: { target: worker } } }\n  - { at: 5s, for: 1s, fault: { process.pause: { target: worker } } }\n",
    ));
    let names: Vec<String> = p.unwrap().activities.into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["process.pause worker", "process.pause worker #2"]);
}

#[test]
fn settings_get_their_documented_defaults_and_written_values_win() {
    let timeline = "  - { at: 10s, for: 20s, fault: { process.pause: { target: worker } } }\n";
    let (_dir, p) = planned(&experiment(timeline));
    let s = p.unwrap().settings;
    assert!(s.seed_drawn);
    assert_eq!(s.max_duration, Duration::from_secs(30 + 300));
    assert_eq!(s.out, PathBuf::from(".livefire/runs"));
    assert_eq!(s.probe_every, Duration::from_secs(1));
    assert_eq!(s.settle, Duration::from_secs(30));
    assert_eq!(s.fail_on, livefire_spec::FailOn::High);

    let written = format!(
        "version: 1\ntitle: t\nsettings: {{ seed: 7, max_duration: 1m, out: elsewhere, probe_every: 250ms, settle: 5s, fail_on: none }}\n{TARGETS}timeline:\n{timeline}"
    );
    let (_dir, p) = planned(&written);
    let s = p.unwrap().settings;
    assert_eq!((s.seed, s.seed_drawn), (7, false));
    assert_eq!(s.max_duration, Duration::from_secs(60));
    assert_eq!(s.out, PathBuf::from("elsewhere"));
    assert_eq!(s.probe_every, Duration::from_millis(250));
    assert_eq!(s.settle, Duration::from_secs(5));
    assert_eq!(s.fail_on, livefire_spec::FailOn::None);
}

#[test]
fn conditions_are_named_and_their_windows_and_cadence_filled_in() {
    let text = format!(
        "version: 1\ntitle: t\nsettings: {{ probe_every: 2s }}\n{TARGETS}hypothesis:\n  - {{ name: health, probe: {{ tcp: {{ address: \"127.0.0.1:3\" }} }}, expect: {{ ok: true }}, tolerate: 3s }}\n  - {{ name: p99, metric: browse.latency.p99, below: 300ms }}\nguardrails:\n  - {{ metric: browse.error_rate, below: 20%, for: 5s }}\n  - {{ probe: {{ tcp: {{ address: \"127.0.0.1:3\" }} }}, expect: {{ ok: true }}, for: 10s, every: 500ms }}\ntimeline:\n  - {{ at: 0s, for: 1s, load: {{ name: browse, rate: 5/s, requests: [ {{ url: \"${{api}}/\" }} ] }} }}\n"
    );
    let (_dir, p) = planned(&text);
    let p = p.unwrap();
    let got: Vec<(String, Duration, Duration, String)> = p
        .conditions
        .iter()
        .map(|c| {
            let check = match &c.check {
                Check::Probe { fail_for, .. } => format!("probe, trips after {fail_for:?}"),
                Check::Metric { metric, window, .. } => match window {
                    Window::Last(d) => format!("{metric} over the last {d:?}"),
                    Window::SinceStart => format!("{metric} since the start"),
                },
            };
            (c.name.clone(), c.every, c.tolerate, check)
        })
        .collect();
    let s = Duration::from_secs;
    assert_eq!(
        got,
        [
            ("health".into(), s(2), s(3), "probe, trips after 0ns".into()),
            (
                "p99".into(),
                s(2),
                s(0),
                "browse.latency.p99 since the start".into()
            ),
            (
                "guardrails[0]".into(),
                s(2),
                s(0),
                "browse.error_rate over the last 5s".into()
            ),
            (
                "guardrails[1]".into(),
                Duration::from_millis(500),
                s(0),
                "probe, trips after 10s".into()
            ),
        ]
    );
    assert_eq!(p.load_names(), ["browse"]);
    assert!(matches!(&p.activities[0].body, Body::Load(c) if c.name == "browse"));
}

#[test]
fn env_values_are_filled_in_and_kept_as_secrets_to_mask() {
    // SAFETY of the test: the variable name is unique to this test.
    let name = "LIVEFIRE_PLAN_TEST_TOKEN";
    unsafe_set_env(name, "s3cret-value");
    let text = experiment(&format!(
        "  - {{ at: 0s, for: 1s, load: {{ name: browse, rate: 5/s, requests: [ {{ url: \"${{api}}/\", headers: {{ Authorization: \"Bearer ${{env:{name}}}\" }} }} ] }} }}\n# a comment that mentions ${{env:LIVEFIRE_PLAN_TEST_UNSET}} needs nothing\n"
    ));
    let (_dir, p) = planned(&text);
    let p = p.unwrap();
    let Body::Load(c) = &p.activities[0].body else {
        panic!("a load")
    };
    assert_eq!(c.requests[0].headers[0].1, "Bearer s3cret-value");
    assert_eq!(p.secrets.len(), 1);
    assert_eq!(
        livefire_engine::plan::Secret::mask_all(&p.secrets, "Bearer s3cret-value".into()),
        format!("Bearer ${{env:{name}}}")
    );
}

#[test]
fn what_cannot_run_is_refused_before_anything_runs() {
    // (timeline entry or whole file, what the message must say)
    let cases = [
        (
            experiment(
                "  - { at: 0s, for: 1s, load: { name: idle, rate: 0/s, requests: [ { url: \"${api}/\" } ] } }\n",
            ),
            "load `idle` would send nothing",
        ),
        (
            experiment(
                "  - { at: 0s, for: 1s, fuzz: { name: f, openapi: \"${api}/openapi.json\", rate: 0/s } }\n",
            ),
            "fuzz `f`: a rate cap of 0/s sends nothing",
        ),
        (
            experiment(
                "  - { at: 0s, for: 1s, load: { name: b, rate: 5/s, requests: [ { url: \"${api}/\", headers: { X: \"${env:LIVEFIRE_PLAN_TEST_NEVER_SET}\" } } ] } }\n",
            ),
            "environment variable(s) not set: LIVEFIRE_PLAN_TEST_NEVER_SET",
        ),
    ];
    for (text, want) in cases {
        let (_dir, p) = planned(&text);
        let err = p.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(want), "want `{want}`, got `{err}`");
    }
}

/// Sets a variable for this process; the tests above use names no other test reads.
fn unsafe_set_env(name: &str, value: &str) {
    // SAFETY: no other thread of this test binary reads or writes this variable.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(name, value);
    }
}

/// Regression: the dry-run plan's columns were 28 and 18 characters wide whatever the
/// names, so a longer name pushed its row's kind and target out of line with the rest.
#[test]
fn the_dry_run_plan_keeps_its_columns_in_line_whatever_the_names() {
    // (display names of two activities, one per case)
    let cases = [
        ("short", "also short"),
        ("the auth link goes down for the whole window", "short"),
        ("größere Ausfälle überall im Netz, lang", "kurz"),
    ];
    for (long, short) in cases {
        let (_dir, p) = planned(&experiment(&format!(
            "  - {{ at: 0s, for: 1s, name: {long:?}, fault: {{ proxy.down: {{ target: auth-link }} }} }}\n  - {{ at: 90m, for: 1s, name: {short:?}, fault: {{ process.pause: {{ target: worker }} }} }}\n"
        )));
        let text = livefire_engine::plan::render(&p.unwrap());
        let lines: Vec<&str> = text.lines().collect();
        let header = lines.iter().position(|l| l.contains("activity")).unwrap();
        // Where each column starts on a line, in characters.
        let column = |line: &str, cell: &str| {
            let at = line
                .find(cell)
                .unwrap_or_else(|| panic!("`{cell}` not in `{line}`"));
            line[..at].chars().count()
        };
        let rows = [
            (lines[header], ["activity", "kind", "target"]),
            (lines[header + 1], [long, "proxy.down", "auth-link"]),
            (lines[header + 2], [short, "process.pause", "worker"]),
        ];
        for (i, name) in ["activity", "kind", "target"].iter().enumerate() {
            let at: Vec<usize> = rows.iter().map(|(l, cells)| column(l, cells[i])).collect();
            assert!(
                at.iter().all(|&c| c == at[0]),
                "the {name} column is not in line ({at:?}):\n{text}"
            );
        }
        // The stop column is right-aligned: `1h30m1s` ends where `stop` ends.
        let end = |line: &str, cell: &str| column(line, cell) + cell.chars().count();
        let stop = rows[2].0.split_whitespace().nth(1).unwrap();
        assert_eq!(end(rows[0].0, "stop"), end(rows[2].0, stop), "{text}");
    }
}
