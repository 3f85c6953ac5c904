//! Output piped into a reader that has gone (`livefire schema | head -1`, a pager quit
//! early): the command ends quietly, killed by SIGPIPE like `cat`, never a panic.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use crate::support::livefire;

#[test]
fn printing_into_a_closed_pipe_ends_quietly() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/quickstart.yaml"
    );
    for argv in [vec!["schema"], vec!["version"], vec!["validate", example]] {
        let (reader, writer) = std::io::pipe().unwrap();
        // The reader is gone before the command writes anything.
        drop(reader);
        let out = livefire()
            .args(&argv)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "livefire {argv:?} panicked on a closed pipe:\n{stderr}"
        );
        assert_eq!(
            out.status.signal(),
            Some(nix::libc::SIGPIPE),
            "livefire {argv:?} should end by SIGPIPE, got {:?}:\n{stderr}",
            out.status
        );
    }
}
