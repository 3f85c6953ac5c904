//! `watch:` commands: every mistake in one is reported where it is written, and a good
//! one reads as written, with `${name}` filled in.

use livefire_spec::load_str;

use crate::errors::{HEAD, check};

/// What is wrong, the `watch:` entries, the errors as (line:col, fragment).
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The file head, an empty timeline, then `watch:` whose entries start on line 5.
fn with_watch(entries: &str) -> String {
    format!("{HEAD}timeline: []\nwatch:\n{entries}")
}

#[test]
fn mistakes_in_a_watch_are_located() {
    let cases: &[Case] = &[
        (
            "an unknown key",
            "  - name: a\n    command: \"true\"\n    fires_when: { exit_nonzero: true }\n    evry: 1s\n",
            &[("8:5", "unknown field `evry`")],
        ),
        (
            "an unknown way to fire",
            "  - name: a\n    command: \"true\"\n    fires_when: { exit_code: 1 }\n",
            &[("7:19", "unknown field `exit_code`")],
        ),
        (
            "no command",
            "  - name: a\n    fires_when: { exit_nonzero: true }\n",
            &[("5:5", "missing field `command`")],
        ),
        (
            "an empty command",
            "  - name: a\n    command: \"\"\n    fires_when: { exit_nonzero: true }\n",
            &[("6:14", "the command is empty")],
        ),
        (
            "a program that is not installed",
            "  - name: a\n    command: \"no-such-alert-check --all\"\n    fires_when: { exit_nonzero: true }\n",
            &[("6:14", "program `no-such-alert-check` not found")],
        ),
        (
            "an interval without a unit",
            "  - name: a\n    command: \"true\"\n    every: 5\n    fires_when: { exit_nonzero: true }\n",
            &[("7:12", "a duration needs a unit")],
        ),
        (
            "an interval of zero",
            "  - name: a\n    command: \"true\"\n    every: 0s\n    fires_when: { exit_nonzero: true }\n",
            &[("7:12", "`every: 0s` would never wait")],
        ),
        (
            "a timeout of zero",
            "  - name: a\n    command: \"true\"\n    timeout: 0s\n    fires_when: { exit_nonzero: true }\n",
            &[("7:14", "`timeout: 0s` would never wait")],
        ),
        (
            "both ways to fire",
            "  - name: a\n    command: \"true\"\n    fires_when: { exit_nonzero: true, stdout_contains: ALERT }\n",
            &[("7:17", "has both `exit_nonzero` and `stdout_contains`")],
        ),
        (
            "neither way to fire",
            "  - name: a\n    command: \"true\"\n    fires_when: {}\n",
            &[("7:17", "needs one of `exit_nonzero: true`")],
        ),
        (
            "no `fires_when` at all",
            "  - name: a\n    command: \"true\"\n",
            &[("5:5", "missing field `fires_when`")],
        ),
        (
            "a way to fire that never fires",
            "  - name: a\n    command: \"true\"\n    fires_when: { exit_nonzero: false }\n",
            &[("7:33", "`exit_nonzero: false` would never fire")],
        ),
        (
            "empty text to look for",
            "  - name: a\n    command: \"true\"\n    fires_when: { stdout_contains: \"\" }\n",
            &[("7:36", "would fire on every run")],
        ),
        (
            "two watches with one name",
            "  - { name: a, command: \"true\", fires_when: { exit_nonzero: true } }\n  - { name: a, command: \"true\", fires_when: { exit_nonzero: true } }\n",
            &[("6:13", "duplicate watch name `a`")],
        ),
        (
            "a name people cannot type",
            "  - { name: \"disk alert\", command: \"true\", fires_when: { exit_nonzero: true } }\n",
            &[("5:13", "watch name `disk alert` may use only")],
        ),
        (
            "a user this machine lacks",
            "  - { name: a, command: \"true\", user: no-such-user-lf, fires_when: { exit_nonzero: true } }\n",
            &[("5:39", "user `no-such-user-lf` does not exist")],
        ),
    ];
    for (what, entries, expected) in cases {
        eprintln!("case: {what}");
        check(&with_watch(entries), expected);
    }
}

#[test]
fn a_watch_reads_as_written_with_names_filled_in() {
    let text = format!(
        "{HEAD}targets:\n  api: {{ http: \"http://127.0.0.1:18080\" }}\ntimeline: []\nwatch:\n  - name: orders-alert\n    command: \"curl -fsS ${{api}}/health\"\n    every: 2s\n    timeout: 3s\n    fires_when: {{ stdout_contains: CRITICAL }}\n"
    );
    let loaded = load_str("exp.yaml", &text, &[]).expect("a valid watch loads");
    let w = &loaded.experiment.watch[0];
    assert_eq!(w.name, "orders-alert");
    assert_eq!(w.command, "curl -fsS http://127.0.0.1:18080/health");
    assert_eq!(w.every.map(|d| d.0.as_secs()), Some(2));
    assert_eq!(w.timeout.map(|d| d.0.as_secs()), Some(3));
    assert_eq!(w.fires_when.stdout_contains.as_deref(), Some("CRITICAL"));
    assert_eq!(w.fires_when.exit_nonzero, None);
}
