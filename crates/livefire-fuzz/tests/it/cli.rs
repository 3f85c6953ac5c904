//! `livefire fuzz` as a user runs it: exit codes, terminal findings, the SARIF file.

use clap::Parser;
use livefire_fuzz::cli::{FuzzArgs, command};

use crate::rules::spec_file;
use crate::target::{self, Mode};

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    args: FuzzArgs,
}

/// `livefire fuzz ARGV` with a livefire home of its own, so a test never adds to the
/// user's `~/.livefire/runs.jsonl`.
fn fuzz(argv: &[&str]) -> (u8, String, String) {
    let home = tempfile::tempdir().unwrap();
    fuzz_in(home.path(), argv)
}

/// `livefire fuzz ARGV` with `home` as its livefire home.
fn fuzz_in(home: &std::path::Path, argv: &[&str]) -> (u8, String, String) {
    let mut full = vec!["fuzz"];
    full.extend_from_slice(argv);
    let mut w = Wrapper::try_parse_from(full).expect("flags parse");
    w.args.home = home.to_owned();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = command(&w.args, &mut out, &mut err).code();
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn only_run_folder(out: &std::path::Path) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn findings_exit_1_with_sarif_and_json() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = rt.block_on(target::start(Mode::Defective, None, "127.0.0.1:0"));
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_file(&dir);
    let out = dir.path().join("runs");
    let home = dir.path().join("home");
    let base = t.base_url();
    let (code, stdout, stderr) = fuzz_in(
        &home,
        &[
            &spec,
            "--base-url",
            &base,
            "-d",
            "2s",
            "--seed",
            "5",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("HIGH     server_error       GET /items"),
        "{stdout}"
    );
    assert!(stdout.contains("repro: curl "), "{stdout}");
    assert!(stderr.contains("seed 5"), "{stderr}");
    let run = only_run_folder(&out);
    let sarif: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("findings.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "server_error" && r["level"] == "error"),
        "{results:?}"
    );
    // Results point at the operation's line in the spec.
    let line = results
        .iter()
        .find(|r| r["ruleId"] == "server_error")
        .unwrap()["locations"][0]["physicalLocation"]["region"]["startLine"]
        .as_u64()
        .unwrap();
    assert_eq!(
        target::SPEC_YAML
            .lines()
            .nth(line as usize - 1)
            .unwrap()
            .trim(),
        "/items:"
    );
    let findings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("findings.json")).unwrap()).unwrap();
    assert_eq!(
        findings["findings"].as_array().unwrap().len(),
        results.len()
    );
    // `livefire runs` lists it from the home the command was given, not the user's.
    let index = std::fs::read_to_string(home.join("runs.jsonl")).expect("an index of runs");
    let id = run.file_name().unwrap().to_str().unwrap();
    assert!(
        index.contains(&format!("\"id\":\"{id}\"")) && index.contains("\"kind\":\"fuzz\""),
        "{index}"
    );
    drop(t);
}

#[test]
fn fail_on_threshold_and_clean_run_exit_0() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bad = rt.block_on(target::start(Mode::Defective, None, "127.0.0.1:0"));
    let good = rt.block_on(target::start(Mode::Correct, None, "127.0.0.1:0"));
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_file(&dir);
    let out = dir.path().join("runs");
    let out = out.to_str().unwrap();
    // Only a low-severity check: findings, but below the default threshold.
    let (code, stdout, _) = fuzz(&[
        &spec,
        "--base-url",
        &bad.base_url(),
        "-d",
        "1s",
        "--checks",
        "content_type",
        "--out",
        out,
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("content_type"), "{stdout}");
    let (code, _, _) = fuzz(&[
        &spec,
        "--base-url",
        &bad.base_url(),
        "-d",
        "1s",
        "--checks",
        "content_type",
        "--fail-on",
        "low",
        "--out",
        out,
    ]);
    assert_eq!(code, 1);
    let (code, stdout, _) = fuzz(&[
        &spec,
        "--base-url",
        &good.base_url(),
        "-d",
        "1s",
        "--out",
        out,
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("0 finding(s)"), "{stdout}");
}

#[test]
fn invalid_input_exits_3_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      parameters: [{in: query}]\n      responses: {'200': {description: ok}}\n").unwrap();
    let out = dir.path().join("runs");
    let (code, _, stderr) = fuzz(&[
        bad.to_str().unwrap(),
        "--base-url",
        "http://127.0.0.1:9",
        "-d",
        "1s",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 3);
    assert!(
        stderr.contains("invalid spec at #/paths/~1a/get/parameters/0: parameter has no `name`"),
        "{stderr}"
    );
    let (code, _, stderr) = fuzz(&[
        "/nope.yaml",
        "--base-url",
        "http://127.0.0.1:9",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 3);
    assert!(stderr.contains("cannot read spec /nope.yaml"), "{stderr}");
    let spec = spec_file(&dir);
    let (code, _, stderr) = fuzz(&[
        &spec,
        "--base-url",
        "https://example.com",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 3);
    assert!(stderr.contains("must start with http://"), "{stderr}");
    let (code, _, stderr) = fuzz(&[
        &spec,
        "--base-url",
        "http://127.0.0.1:9",
        "--checks",
        "object_access",
    ]);
    assert_eq!(code, 3);
    assert!(stderr.contains("needs --second-header"), "{stderr}");
    assert!(
        Wrapper::try_parse_from([
            "fuzz",
            &spec,
            "--base-url",
            "http://x",
            "--checks",
            "nonsense"
        ])
        .is_err()
    );
    assert!(
        Wrapper::try_parse_from(["fuzz", &spec, "--base-url", "http://x", "-d", "ten"]).is_err()
    );
}
