//! `livefire load --json` output and its committed JSON Schema (schema/load.json).

use std::path::Path;

use clap::Parser;
use livefire_load::cli::{LoadArgs, command};

use crate::server::{Opts, start};

fn committed() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schema/load.json");
    if std::env::var_os("LIVEFIRE_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&livefire_load::summary_schema()).unwrap();
        std::fs::write(&path, text + "\n").unwrap();
    }
    serde_json::from_str(&std::fs::read_to_string(&path).expect("schema/load.json exists"))
        .expect("schema/load.json is JSON")
}

#[test]
fn committed_schema_is_current() {
    assert_eq!(
        committed(),
        livefire_load::summary_schema(),
        "schema/load.json is stale: run `LIVEFIRE_BLESS=1 cargo test -p livefire-load --test it schema`"
    );
}

#[derive(Parser)]
struct Top {
    #[command(flatten)]
    load: LoadArgs,
}

#[test]
fn real_json_output_validates_and_reads_back() {
    let validator = jsonschema::validator_for(&committed()).expect("a valid JSON Schema");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(start(Opts::default()));
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A healthy load, and one where nothing answers (nulls where nothing was measured).
    for url in [srv.url("/ok"), format!("http://127.0.0.1:{dead}/")] {
        let top = Top::try_parse_from(["load", &url, "-r", "50", "-d", "200ms", "--json"]).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(command(&top.load, &mut out, &mut err).code(), 0);
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let errs: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{}: {e}", e.instance_path))
            .collect();
        assert!(
            errs.is_empty(),
            "{url}: does not match schema/load.json:\n{}",
            errs.join("\n")
        );
        let back: livefire_load::LoadSummary = serde_json::from_value(doc).unwrap();
        assert_eq!(back.intended, 10);
    }
    drop(srv);
}
