//! What used to be accepted silently and wrong is refused where it is written: a second
//! top-level key, a bare number bounding a fraction, overlapping faults that cannot
//! stack, fields nothing reads, files that do not exist, `--var` names nothing uses.

use livefire_spec::{Fault, LoadError, Options, load_file_with, load_str, load_str_with};

const HEAD: &str = "version: 1\ntitle: t\n";

/// Loads `text` and returns its diagnostics as `LINE:COL: severity: message` lines.
fn diagnostics(text: &str) -> Vec<String> {
    let report = match load_str("exp.yaml", text, &[]) {
        Ok(loaded) => loaded.warnings,
        Err(LoadError::Invalid(report)) => report,
        Err(e) => return vec![e.to_string()],
    };
    report
        .diagnostics
        .iter()
        .map(|d| {
            let kind = match d.severity {
                livefire_spec::Severity::Error => "error",
                livefire_spec::Severity::Warning => "warning",
            };
            format!("{}:{}: {kind}: {}", d.pos.line, d.pos.col, d.message)
        })
        .collect()
}

/// Each case: the document after HEAD, then (line:col, severity, fragment) expected;
/// nothing else may be reported.
#[test]
fn silent_acceptances_are_located() {
    let pause = |at: &str, name: &str| {
        format!(
            "  - {{ at: {at}, for: 10s, name: {name}, fault: {{ process.pause: {{ target: w }} }} }}\n"
        )
    };
    let worker = "targets:\n  w: { process: { pid: 4242 } }\n";
    let link = "targets:\n  link: { proxy: { listen: \"127.0.0.1:19101\", upstream: \"127.0.0.1:9101\" } }\n";
    let load = "  - { at: 0s, for: 10s, load: { name: browse, rate: 10/s, requests: [ { url: \"http://127.0.0.1:1/\" } ] } }\n";
    type Expected = Vec<(&'static str, &'static str, &'static str)>;
    let cases: Vec<(&str, String, Expected)> = vec![
        (
            "a second top-level list is not dropped",
            "hypothesis:\n  - { name: a, probe: { tcp: { address: \"127.0.0.1:1\" } }, expect: { ok: true } }\nhypothesis:\n  - { name: b, probe: { tcp: { address: \"127.0.0.1:1\" } }, expect: { ok: true } }\ntimeline: []\n".to_string(),
            vec![("5:1", "error", "duplicate key `hypothesis`")],
        ),
        (
            "a sql probe's dsn that is not a connection string",
            "hypothesis:\n  - { name: db, probe: { sql: { dsn: orders, query: \"select 1\" } }, expect: { rows: 1 } }\ntimeline: []\n".to_string(),
            vec![("4:38", "error", "`orders` is not a PostgreSQL connection string")],
        ),
        (
            "a bare 20 on an error rate reads as 2000 %",
            format!("guardrails:\n  - {{ metric: browse.error_rate, below: 20 }}\ntimeline:\n{load}"),
            vec![("4:41", "error", "a bare 20 reads as 2000%; write `20%`")],
        ),
        (
            "a fraction written as one is accepted with a warning",
            format!("guardrails:\n  - {{ metric: browse.rate_achieved, at_least: 0.95 }}\ntimeline:\n{load}"),
            vec![("4:47", "warning", "0.95 reads as 95%")],
        ),
        (
            "a percentage on a fraction is what it means",
            format!("guardrails:\n  - {{ metric: browse.error_rate, below: 20% }}\ntimeline:\n{load}"),
            vec![],
        ),
        (
            "a rate is no bound for a fraction",
            format!("guardrails:\n  - {{ metric: browse.error_rate, below: 5/s }}\ntimeline:\n{load}"),
            vec![("4:41", "error", "compare it with a percentage")],
        ),
        (
            "two pauses of one process overlap",
            format!("{worker}timeline:\n{}{}", pause("0s", "first"), pause("5s", "second")),
            vec![(
                "7:46",
                "error",
                "`second` (process.pause w) overlaps `first` (process.pause w) on target `w`",
            )],
        ),
        (
            "a pause after a pause ended is fine",
            format!("{worker}timeline:\n{}{}", pause("0s", "first"), pause("10s", "second")),
            vec![],
        ),
        (
            "a kill inside a pause overlaps",
            format!(
                "{worker}timeline:\n{}  - {{ at: 2s, for: 1s, fault: {{ process.kill: {{ target: w }} }} }}\n",
                pause("0s", "first")
            ),
            vec![("7:31", "error", "`process.kill w` at 2s overlaps `first`")],
        ),
        (
            "two downs of one proxy overlap",
            format!(
                "{link}timeline:\n  - {{ at: 0s, for: 10s, fault: {{ proxy.down: {{ target: link }} }} }}\n  - {{ at: 1s, for: 10s, fault: {{ proxy.down: {{ target: link }} }} }}\n"
            ),
            vec![("7:32", "error", "cannot stack")],
        ),
        (
            "two toxics on one proxy stack",
            format!(
                "{link}timeline:\n  - {{ at: 0s, for: 10s, fault: {{ proxy.latency: {{ target: link, latency: 100ms }} }} }}\n  - {{ at: 1s, for: 10s, fault: {{ proxy.drop: {{ target: link, rate: 5% }} }} }}\n"
            ),
            vec![],
        ),
        (
            "split runs need a segment alive",
            "settings:\n  segments: { min_alive: 0 }\ntimeline: []\n".to_string(),
            vec![("4:26", "error", "`segments.min_alive` must be at least 1")],
        ),
        (
            "split-run settings are accepted",
            "settings:\n  segments: { min_alive: 2 }\ntimeline: []\n".to_string(),
            vec![],
        ),
        (
            "a request timeout nothing reads is unknown",
            "timeline:\n  - { at: 0s, for: 1s, load: { rate: 1/s, requests: [ { url: \"http://127.0.0.1:1/\", timeout: 1s } ] } }\n".to_string(),
            vec![("4:85", "error", "unknown field `timeout`")],
        ),
        (
            "a fuzz spec file needs base_url",
            "timeline:\n  - { at: 0s, for: 1s, fuzz: { openapi: api.json } }\n".to_string(),
            vec![("4:41", "error", "set `base_url`")],
        ),
        (
            "`ok` on a command probe would be ignored",
            "hypothesis:\n  - { name: c, probe: { command: { run: \"true\" } }, expect: { ok: false } }\ntimeline: []\n".to_string(),
            vec![("4:63", "error", "`ok` does not apply to a `command` probe")],
        ),
        (
            "`for` on a hypothesis probe would be ignored",
            "hypothesis:\n  - { name: c, probe: { tcp: { address: \"127.0.0.1:1\" } }, expect: { ok: true }, for: 5s }\ntimeline: []\n".to_string(),
            vec![("4:82", "error", "`for` on a hypothesis probe is not read")],
        ),
        (
            "a session attribute the load does not honour",
            "timeline:\n  - { at: 0s, for: 1s, load: { rate: 1/s, postgres: { dsn: \"postgres://a@127.0.0.1:1/d\", target_session_attrs: read-only }, statements: [ { sql: \"select 1\" } ] } }\n".to_string(),
            vec![("4:112", "error", "`target_session_attrs: read-only` is not built")],
        ),
        (
            "an HTTP method must be one",
            "timeline:\n  - { at: 0s, for: 1s, load: { rate: 1/s, requests: [ { method: \"GE T\", url: \"http://127.0.0.1:1/\" } ] } }\n".to_string(),
            vec![("4:65", "error", "`GE T` is not an HTTP method")],
        ),
        (
            "resource faults that would do nothing, or leave the system no margin",
            "targets:\n  s: { path: /tmp }\ntimeline:\n  - { at: 0s, for: 1s, fault: { cpu.stress: { cores: 0, load: 0% } } }\n  - { at: 0s, for: 1s, fault: { disk.fill: { target: s, size: 1MiB, level: 50%, keep_free: 1MiB } } }\n  - { at: 0s, for: 1s, fault: { memory.stress: { size: 0B, keep_available: 1MiB } } }\n  - { at: 0s, for: 1s, fault: { disk.fill: { target: s, size: 1KiB, level: 100% } } }\n".to_string(),
            vec![
                ("6:54", "error", "`cores: 0` burns nothing"),
                ("6:63", "error", "`load` must be above 0% and at most 100% of a core"),
                ("7:76", "error", "name `size` or `level`, not both"),
                ("7:92", "error", "`keep_free: 1MiB` is below the floor of 16MiB"),
                ("8:56", "error", "`size: 0` holds nothing"),
                ("8:76", "error", "`keep_available: 1MiB` is below the floor of 64MiB"),
                ("9:63", "error", "`size: 1KiB` fills nothing: name at least 4KiB"),
                ("9:76", "error", "`level` must be above 0% and below 100%, not 100%"),
                ("9:76", "error", "name `size` or `level`, not both"),
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (what, body, expected) in cases {
        let got = diagnostics(&format!("{HEAD}{body}"));
        let wanted: Vec<bool> = expected
            .iter()
            .map(|(at, sev, fragment)| {
                got.iter()
                    .any(|g| g.starts_with(&format!("{at}: {sev}: ")) && g.contains(fragment))
            })
            .collect();
        if wanted.iter().any(|ok| !ok) || got.len() != expected.len() {
            failures.push(format!("{what}:\n  expected {expected:?}\n  got {got:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn files_an_experiment_names_must_exist_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exp.yaml");
    let text = format!(
        "{HEAD}timeline:\n  - {{ at: 0s, for: 1s, fuzz: {{ openapi: api.json, base_url: \"http://127.0.0.1:1\" }} }}\n  - {{ at: 0s, for: 1s, load: {{ rate: 1/s, data: {{ file: rows.csv }}, requests: [ {{ url: \"http://127.0.0.1:1/\" }} ] }} }}\n"
    );
    std::fs::write(&file, &text).unwrap();
    let Err(LoadError::Invalid(report)) = load_file_with(&file, &Options::default()) else {
        panic!("missing files were accepted");
    };
    let shown = report.to_string();
    let name = file.display();
    assert!(
        shown.contains(&format!(
            "{name}:4:41: error: OpenAPI file `api.json` does not exist"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "{name}:5:57: error: data file `rows.csv` does not exist"
        )),
        "{shown}"
    );
    // Once they are there, relative to the file's folder and not to the working
    // directory, the same file is valid.
    std::fs::write(dir.path().join("api.json"), "{}").unwrap();
    std::fs::write(dir.path().join("rows.csv"), "a\n1\n").unwrap();
    load_file_with(&file, &Options::default()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_var_the_file_never_uses_is_refused_with_the_names_it_uses() {
    let text = format!(
        "{HEAD}vars: {{ port: \"1\" }}\ntargets:\n  api: {{ http: \"http://${{host}}:${{port}}\" }}\ntimeline: []\n"
    );
    let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let err = load_str("exp.yaml", &text, &vars(&[("host", "h"), ("prot", "2")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--var prot: this file never uses `${prot}`; the names it uses are `host`, `port`"
    );
    let loaded = load_str("exp.yaml", &text, &vars(&[("host", "h"), ("port", "2")])).unwrap();
    assert_eq!(
        loaded.experiment.targets["api"].http.as_deref(),
        Some("http://h:2")
    );
}

#[test]
fn not_built_kinds_are_refused_where_written_when_the_build_is_known() {
    let built = livefire_spec::Built {
        faults: |f| matches!(f, Fault::ProcessPause(_)),
        https_probes: false,
        scenario: false,
    };
    let text = format!(
        "{HEAD}targets:\n  ns: {{ netns: lf }}\nhypothesis:\n  - {{ name: up, probe: {{ http: {{ url: \"https://example.com/\" }} }}, expect: {{ status: 200 }} }}\ntimeline:\n  - {{ at: 0s, for: 1s, fault: {{ net.loss: {{ target: ns, rate: 5% }} }} }}\n"
    );
    // The format alone accepts it: it is this build that cannot run it.
    load_str("exp.yaml", &text, &[]).unwrap_or_else(|e| panic!("{e}"));
    let options = Options {
        built: Some(built),
        ..Options::default()
    };
    let Err(LoadError::Invalid(report)) = load_str_with("exp.yaml", &text, &options) else {
        panic!("not-built kinds were accepted");
    };
    let got: Vec<String> = report
        .errors()
        .map(|d| format!("{}:{}: {}", d.pos.line, d.pos.col, d.message))
        .collect();
    let expect = [
        "6:39: https:// probes are not built",
        "8:33: fault `net.loss` is not built",
    ];
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expect) {
        assert!(g.starts_with(e), "{g} does not start with {e}");
    }
}
