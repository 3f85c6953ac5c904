//! Diagnostics as a user reads them on stderr: the libraries report through `tracing`
//! and the binary prints each as one `livefire: ...` line, undecorated.

use crate::support::{Home, free_port, run};

/// The number of stderr lines that carry `needle`, and each of them.
fn lines_with<'a>(stderr: &'a str, needle: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(needle)).collect()
}

// Regression guard for routing the engine's messages through tracing: a prefix added
// twice, a level, a timestamp or a target in front would change what users read.
#[test]
fn a_setup_error_is_one_plain_livefire_line() {
    let home = Home::new();
    let port = free_port();
    let file = home.file(&format!(
        "version: 1\ntitle: t\nsetup:\n  - {{ name: w, command: \"sleep 30\", ready: {{ tcp: {{ address: \"127.0.0.1:{port}\" }} }}, timeout: 1s }}\ntimeline:\n  - {{ at: 0s, for: 1s, fault: {{ process.pause: {{ target: w }} }} }}\n"
    ));
    let (code, _, err) = run(&mut home.run(&file));
    assert_eq!(code, 3, "{err}");
    let lines = lines_with(&err, "was not ready");
    assert_eq!(lines.len(), 1, "said once: {err}");
    assert!(
        lines[0].starts_with("livefire: setup `w` was not ready within 1s"),
        "undecorated: {err}"
    );
    assert!(lines[0].ends_with("(nothing was applied)"), "{err}");
    for line in err.lines() {
        assert!(
            !line.contains("livefire: livefire:"),
            "doubled prefix: {err}"
        );
        for decoration in [" WARN ", " ERROR ", " INFO ", "livefire_engine"] {
            assert!(!line.contains(decoration), "`{decoration}` in: {err}");
        }
    }
}
