//! Every kind of mistake is reported at its line and column, all at once.

use livefire_spec::{LoadError, load_str};

/// Loads `text` and returns its diagnostics as `LINE:COL: message` lines.
fn errors(text: &str) -> Vec<String> {
    match load_str("exp.yaml", text, &[]) {
        Ok(_) => Vec::new(),
        Err(LoadError::Invalid(report)) => report
            .errors()
            .map(|d| format!("{}:{}: {}", d.pos.line, d.pos.col, d.message))
            .collect(),
        Err(e) => vec![e.to_string()],
    }
}

/// Asserts that each (line:col, fragment) appears among the errors, and no others.
pub(crate) fn check(text: &str, expected: &[(&str, &str)]) {
    let got = errors(text);
    for (at, fragment) in expected {
        assert!(
            got.iter()
                .any(|g| g.starts_with(&format!("{at}: ")) && g.contains(fragment)),
            "expected an error at {at} containing {fragment:?}; got:\n{}",
            got.join("\n")
        );
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "unexpected extra errors:\n{}",
        got.join("\n")
    );
}

pub(crate) const HEAD: &str = "version: 1\ntitle: t\n";

#[test]
fn syntax_error_is_located() {
    check("version: 1\ntitle: [unclosed\n", &[("3:1", "invalid YAML")]);
}

#[test]
fn unknown_fields_are_errors_at_the_key() {
    check(
        &format!("{HEAD}timline: []\ntimeline: []\n"),
        &[("3:1", "unknown field `timline`")],
    );
    check(
        &format!(
            "{HEAD}timeline:\n  - at: 0s\n    fro: 5s\n    fault: {{ command: {{ apply: \"true\" }} }}\n"
        ),
        &[("5:5", "unknown field `fro`")],
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let text = format!(
        "{HEAD}targets:\n  w: {{ process: {{ pid: 4242 }} }}\ntimeline:\n  - at: 5\n    for: 10s\n    fault: {{ process.pause: {{ target: w }} }}\n  - at: 0s\n    for: 1s\n    fault: {{ process.pause: {{ target: nope }} }}\n  - at: 0s\n    for: 1s\n    fault: {{ process.pauze: {{ target: w }} }}\n"
    );
    check(
        &text,
        &[
            ("6:9", "a duration needs a unit"),
            ("11:39", "unknown target `nope`"),
            ("14:14", "unknown variant `process.pauze`"),
        ],
    );
}

#[test]
fn wrong_types_and_bad_values() {
    check(
        "version: one\ntitle: t\ntimeline: []\n",
        &[("1:10", "invalid type")],
    );
    check(
        &format!("{HEAD}settings: {{ probe_every: fast }}\ntimeline: []\n"),
        &[("3:26", "invalid duration `fast`")],
    );
    check(
        &format!(
            "{HEAD}timeline:\n  - at: 0s\n    for: 5s\n    load: {{ rate: 200/d, requests: [ {{ url: \"http://127.0.0.1:1/\" }} ] }}\n"
        ),
        &[("6:19", "invalid rate `200/d`")],
    );
}

#[test]
fn bad_source_addresses_are_located() {
    let load = |sources: &str, body: &str| {
        format!(
            "{HEAD}timeline:\n  - at: 0s\n    for: 5s\n    load:\n      vus: 10\n      source_addresses: {sources}\n{body}"
        )
    };
    let http = "      requests: [ { url: \"http://127.0.0.1:1/\" } ]\n";
    check(
        &load("[127.0.0.2, 127.0.0.999]", http),
        &[("8:37", "invalid source address `127.0.0.999`")],
    );
    check(
        &load("[0.0.0.0]", http),
        &[("8:26", "invalid source address `0.0.0.0`")],
    );
    check(
        &load("[127.0.0.2, \"::2\"]", http),
        &[(
            "8:37",
            "source address ::2 is not of the family of 127.0.0.2",
        )],
    );
    check(
        &load(
            "[127.0.0.2]",
            "      postgres: { dsn: \"postgres://app@127.0.0.1:5432/db\" }\n      statements: [ { sql: \"select 1\" } ]\n",
        ),
        &[("8:7", "`source_addresses` applies to HTTP loads only")],
    );
}

#[test]
fn unknown_names_in_substitutions() {
    check(
        &format!(
            "{HEAD}targets:\n  api: {{ http: \"http://127.0.0.1:8080\" }}\nhypothesis:\n  - name: up\n    probe: {{ http: {{ url: \"${{apj}}/health\" }} }}\n    expect: {{ status: 200 }}\ntimeline: []\n"
        ),
        &[("7:27", "unknown name `apj`")],
    );
}

#[test]
fn variables_and_targets_are_substituted() {
    let text = format!(
        "{HEAD}vars: {{ port: \"8080\" }}\ntargets:\n  api: {{ http: \"http://127.0.0.1:${{port}}\" }}\nhypothesis:\n  - name: up\n    probe: {{ http: {{ url: \"${{api}}/health?q=${{random.word}}\" }} }}\n    expect: {{ status: 200 }}\ntimeline: []\n"
    );
    let loaded = load_str("exp.yaml", &text, &[("port".into(), "9090".into())]).unwrap();
    let livefire_spec::Probe::Http(h) = loaded.experiment.hypothesis[0].probe.as_ref().unwrap()
    else {
        panic!("not an http probe")
    };
    assert_eq!(h.url, "http://127.0.0.1:9090/health?q=${random.word}");
}

#[test]
fn fault_on_the_wrong_kind_of_target() {
    check(
        &format!(
            "{HEAD}targets:\n  api: {{ http: \"http://127.0.0.1:8080\" }}\ntimeline:\n  - at: 0s\n    for: 1s\n    fault: {{ process.pause: {{ target: api }} }}\n"
        ),
        &[(
            "8:39",
            "`process.pause` acts on a process target; `api` is a http target",
        )],
    );
}

#[test]
fn conditions_need_one_shape() {
    check(
        &format!(
            "{HEAD}hypothesis:\n  - name: a\n    probe: {{ tcp: {{ address: \"127.0.0.1:1\" }} }}\n  - name: b\n    metric: load.rps\n    below: 5\n  - probe: {{ tcp: {{ address: \"127.0.0.1:1\" }} }}\n    expect: {{ status: 200 }}\ntimeline: []\n"
        ),
        &[
            ("4:5", "needs `expect`"),
            ("7:13", "names no workload"),
            ("9:5", "needs a `name`"),
            ("10:15", "`status` does not apply to a `tcp` probe"),
        ],
    );
}

#[test]
fn restart_program_must_exist() {
    check(
        &format!(
            "{HEAD}targets:\n  w: {{ process: {{ pid: 4242 }}, restart: \"/no/such/program --up\" }}\ntimeline: []\n"
        ),
        &[("4:41", "program `/no/such/program` not found")],
    );
}

#[test]
fn newer_version_says_so() {
    check(
        "version: 2\ntitle: t\ntimeline: []\n",
        &[("1:10", "newer than this livefire understands")],
    );
}

#[test]
fn duplicate_keys_are_errors() {
    check(
        &format!(
            "{HEAD}timeline:\n  - at: 0s\n    at: 1s\n    for: 1s\n    fault: {{ command: {{ apply: \"true\" }} }}\n"
        ),
        &[("5:5", "duplicate key `at`")],
    );
}

#[test]
fn rendering_shows_the_offending_line_with_a_caret() {
    let Err(LoadError::Invalid(report)) =
        load_str("exp.yaml", "version: 1\ntitle: t\ntimline: []\n", &[])
    else {
        panic!("expected errors")
    };
    let text = report.to_string();
    assert!(
        text.contains("exp.yaml:3:1: error: unknown field `timline`"),
        "{text}"
    );
    assert!(text.contains("3 | timline: []\n  | ^\n"), "{text}");
}

#[test]
fn an_unknown_corruption_mode_is_refused_where_it_is_written() {
    check(
        &format!(
            "{HEAD}targets:\n  db: {{ postgres: {{ dsn: \"postgres://127.0.0.1/x\", data_dir: /tmp/pg }} }}\ntimeline:\n  - at: 0s\n    for: 1s\n    fault: {{ postgres.corrupt: {{ target: db, table: orders, mode: shred }} }}\n"
        ),
        &[(
            "8:67",
            "unknown variant `shred`, expected one of `zero`, `flip`, `torn_header`",
        )],
    );
}
