//! Fuzz target for the experiment parser: arbitrary bytes (as UTF-8, lossily when they
//! are not) go through `yaml::parse` + `Node::to_json` and through the whole of
//! `load_str` (parse, `${name}` substitution, typing, validation), and every error is
//! rendered. Any panic, stack overflow or runaway allocation is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(tree) = livefire_spec::yaml::parse(&text) {
        let _ = tree.to_json();
    }
    // A `--var` override, so the substitution path that mixes both sources runs too.
    let vars = [("port".to_owned(), "18080".to_owned())];
    match livefire_spec::load_str("fuzz.yaml", &text, &vars) {
        Ok(loaded) => {
            let _ = loaded.warnings.to_string();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
