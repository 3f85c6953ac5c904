//! The whole format parses: every example in the repository, and every fault kind.

use std::path::Path;

use livefire_spec::load_file;

fn examples() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_is_valid() {
    let files = examples();
    assert!(!files.is_empty(), "examples/ holds no experiment");
    for file in files {
        if let Err(e) = load_file(&file, &[]) {
            panic!("{} is invalid:\n{e}", file.display());
        }
    }
}

#[test]
fn the_reference_file_with_every_kind_parses() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/every-kind.yaml");
    let loaded = load_file(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
    let kinds: std::collections::BTreeSet<&str> = loaded
        .experiment
        .timeline
        .iter()
        .filter_map(|a| a.fault.as_ref().map(|f| f.kind()))
        .collect();
    assert_eq!(kinds.len(), 27, "every fault kind appears once: {kinds:?}");
}

#[test]
fn committed_schema_is_current() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/experiment.json");
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&committed).expect("schema/experiment.json exists"),
    )
    .expect("schema/experiment.json is JSON");
    assert_eq!(
        committed,
        livefire_spec::json_schema(),
        "schema/experiment.json is stale: run `cargo run -- schema > schema/experiment.json`"
    );
}

#[test]
fn examples_validate_against_the_committed_schema() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/experiment.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(committed).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let mut files = examples();
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/every-kind.yaml"));
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc = livefire_spec::yaml::parse(&text).unwrap().to_json();
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{}: {e}", e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not match the schema:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
}
