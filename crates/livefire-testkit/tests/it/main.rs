//! The skip helpers as `cargo test` runs them: this binary runs itself as a child (with
//! libtest's output capture on, as always) and reads what reached its stderr. And
//! `http::read_message` on messages that arrive a few bytes at a time.

use std::process::Command;

/// The helpers called for real; they do something only when the parent asks for it,
/// so a plain `cargo test` of this crate skips nothing.
#[test]
fn child_skips() {
    match std::env::var("LIVEFIRE_TESTKIT_CHILD").as_deref() {
        Ok("missing") => {
            livefire_testkit::skip_missing("pg_ctl not found", "apt-get install postgresql")
        }
        Ok("unsupported") => livefire_testkit::skip_unsupported("io_uring_setup failed: EPERM"),
        _ => {}
    }
}

/// Runs `child_skips` in a child with `CI` set to `ci` (or unset); exit success, stdout
/// and stderr.
fn child(which: &str, ci: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_skips", "--exact", "--test-threads=1"])
        .env("LIVEFIRE_TESTKIT_CHILD", which)
        .env_remove("CI");
    if let Some(ci) = ci {
        cmd.env("CI", ci);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_skip_shows_in_cargo_test_output_with_its_test_name_and_reason() {
    // (which helper, CI, passes, a line that must be shown)
    let cases = [
        (
            "missing",
            None,
            true,
            "SKIPPED child_skips: pg_ctl not found (install: apt-get install postgresql)",
        ),
        (
            "missing",
            Some("false"),
            true,
            "SKIPPED child_skips: pg_ctl not found",
        ),
        (
            "unsupported",
            None,
            true,
            "SKIPPED child_skips: io_uring_setup failed: EPERM",
        ),
        (
            "unsupported",
            Some("true"),
            true,
            "SKIPPED child_skips: io_uring_setup failed: EPERM",
        ),
        (
            "missing",
            Some("true"),
            false,
            "under CI=true this is a failure, not a skip",
        ),
        (
            "missing",
            Some("1"),
            false,
            "child_skips cannot run: pg_ctl not found",
        ),
    ];
    for (which, ci, passes, shown) in cases {
        let (ok, out, err) = child(which, ci);
        assert_eq!(ok, passes, "{which} with CI={ci:?}:\n{out}\n{err}");
        assert!(
            out.contains(shown) || err.contains(shown),
            "{which} with CI={ci:?}: `{shown}` not shown:\nstdout:\n{out}\nstderr:\n{err}"
        );
    }
}

#[test]
fn nothing_is_said_when_nothing_is_skipped() {
    let (ok, out, err) = child("none", Some("true"));
    assert!(ok, "{out}\n{err}");
    assert!(
        !out.contains("SKIPPED") && !err.contains("SKIPPED"),
        "{out}\n{err}"
    );
}

/// A reader that hands out its bytes a few at a time, as a socket may.
struct Trickle<'a>(&'a [u8], usize);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(buf.len()).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// (bytes on the wire, (head, body) read, or None when the peer closed first)
type WireCase = (&'static [u8], Option<(&'static str, &'static [u8])>);

#[test]
fn read_message_takes_the_head_and_exactly_content_length_bytes() {
    let cases: [WireCase; 5] = [
        (
            b"POST /hook HTTP/1.1\r\nContent-Length: 4\r\n\r\n{}{}",
            Some(("POST /hook HTTP/1.1\r\nContent-Length: 4", b"{}{}")),
        ),
        // What follows the body (a next request, stray bytes) is not part of it.
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokGET / HTTP/1.1\r\n\r\n",
            Some(("HTTP/1.1 200 OK\r\ncontent-length: 2", b"ok")),
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            Some(("GET / HTTP/1.1\r\nHost: x", b"")),
        ),
        (b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort", None),
        (b"GET / HTTP/1.1\r\nHost:", None),
    ];
    for (wire, want) in cases {
        for step in [1, 3, 4096] {
            let got = livefire_testkit::http::read_message(&mut Trickle(wire, step)).unwrap();
            let got = got.as_ref().map(|(h, b)| (h.as_str(), b.as_slice()));
            assert_eq!(
                got,
                want,
                "{:?} read {step} bytes at a time",
                String::from_utf8_lossy(wire)
            );
        }
    }
}
