//! Every experiment snippet in the docs validates as written: a user copies them.

use crate::support::*;

/// What a fragment needs around it to be a file: a target for `${api}` and, for a
/// list of activities, the `timeline:` key.
const PREFIX: &str = "version: 1\ntitle: a snippet of the docs\ntargets: { api: { http: \"http://127.0.0.1:9\" } }\n";

#[test]
fn every_yaml_snippet_in_the_docs_validates() {
    let mut files = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for doc in files {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (n, block) in text.split("```yaml\n").skip(1).enumerate() {
            let Some((yaml, _)) = block.split_once("```") else {
                continue;
            };
            let file_text = if yaml.contains("version: 1") {
                yaml.to_owned()
            } else if yaml.trim_start().starts_with('-') {
                format!("{PREFIX}timeline:\n{yaml}")
            } else if yaml.contains("timeline:") {
                format!("{PREFIX}{yaml}")
            } else {
                // Conditions on their own: give them the load they name.
                format!(
                    "{PREFIX}{yaml}timeline:\n  - {{ at: 0s, for: 10s, load: {{ name: browse, rate: 10/s, requests: [ {{ url: \"${{api}}/\" }} ] }} }}\n"
                )
            };
            let name = format!("{}-{n}.yaml", doc.file_stem().unwrap().to_string_lossy());
            let file = write(dir.path(), &name, &file_text);
            let (code, _, err) = run(livefire().arg("validate").arg(&file));
            assert_eq!(
                code,
                0,
                "yaml block {n} of {} does not validate:\n{file_text}\n{err}",
                doc.display()
            );
            checked += 1;
        }
    }
    // The guide's main example, its two fragments and load.md's guardrail at least.
    assert!(checked >= 4, "only {checked} snippets found");
}
