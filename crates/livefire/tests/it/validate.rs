//! `livefire validate` and `livefire schema` as a user runs them.

use crate::support::*;

#[test]
fn invalid_file_exits_3_with_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.yaml",
        "version: 1\ntitle: t\ntimeline:\n  - at: 0s\n    for: 5\n    fault: { process.pause: { target: ghost } }\n",
    );
    let (code, _, err) = run(livefire().arg("validate").arg(&file));
    assert_eq!(code, 3, "{err}");
    let name = file.display().to_string();
    assert!(
        err.contains(&format!("{name}:5:10: error: a duration needs a unit")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{name}:6:39: error: unknown target `ghost`")),
        "{err}"
    );
    assert!(err.contains("2 errors"), "{err}");
}

#[test]
fn valid_example_exits_0_and_var_overrides() {
    let (code, out, err) = run(livefire()
        .arg("validate")
        .arg(repo().join("examples/pause-a-worker.yaml")));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "v.yaml",
        "version: 1\ntitle: t\ntargets:\n  api: { http: \"${url}\" }\ntimeline: []\n",
    );
    let (code, _, err) = run(livefire().arg("validate").arg(&file));
    assert_eq!(code, 3, "an unset variable is an error");
    assert!(err.contains("unknown name `url`"), "{err}");
    let (code, _, err) = run(livefire()
        .arg("validate")
        .arg(&file)
        .args(["--var", "url=http://127.0.0.1:1"]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn missing_file_and_bad_flag_exit_3_with_advice() {
    let (code, _, err) = run(livefire().args(["validate", "/no/such/file.yaml"]));
    assert_eq!(code, 3);
    assert!(err.contains("cannot read /no/such/file.yaml"), "{err}");
    let (code, _, err) = run(livefire().args(["validate", "x.yaml", "--var", "novalue"]));
    assert_eq!(code, 3);
    assert!(err.contains("write name=value"), "{err}");
}

#[test]
fn schema_prints_the_committed_schema() {
    let (code, out, _) = run(livefire().arg("schema"));
    assert_eq!(code, 0);
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schema/experiment.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, committed);
}
