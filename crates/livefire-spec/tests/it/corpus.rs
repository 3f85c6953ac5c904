//! Replays the fuzzer's inputs (fuzz/seeds, the minimized fuzz/corpus/experiment and the
//! fuzz/regressions it caught) through the parser: each must come back as `Ok` or a
//! rendered error, never a panic, a stack overflow or a runaway allocation.

use std::path::{Path, PathBuf};

/// What the `experiment` fuzz target does with one input (fuzz/fuzz_targets/experiment.rs).
fn exercise(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(tree) = livefire_spec::yaml::parse(&text) {
        let _ = tree.to_json();
    }
    let vars = [("port".to_owned(), "18080".to_owned())];
    match livefire_spec::load_str("fuzz.yaml", &text, &vars) {
        Ok(loaded) => {
            let _ = loaded.warnings.to_string();
        }
        Err(e) => {
            let rendered = e.to_string();
            assert!(!rendered.is_empty(), "an error renders as nothing");
        }
    }
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs every file of `dir` on its own thread with the test harness's default stack
/// (2 MiB), so that deep recursion shows up here as it would for a user, and names the
/// files that panicked.
fn replay(dir: &str) -> usize {
    let files = files(&fuzz_dir().join(dir));
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).expect("a readable corpus file");
        let outcome = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || exercise(&data))
            .expect("a thread")
            .join();
        if outcome.is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "inputs that panicked: {failed:#?}");
    files.len()
}

#[test]
fn seeds_parse_or_fail_cleanly() {
    // Hand-made nasty inputs: deep nesting, aliases, huge numbers, bad UTF-8, `${`.
    assert!(replay("seeds") >= 30);
}

#[test]
fn fuzz_corpus_parses_or_fails_cleanly() {
    // The minimized corpus of `cargo fuzz run experiment` (docs/fuzzing.md).
    assert!(replay("corpus/experiment") >= 100);
}

#[test]
fn fuzz_regressions_parse_or_fail_cleanly() {
    // Inputs that crashed the parser once; each is named after what it caught.
    assert!(replay("regressions") >= 2);
}
