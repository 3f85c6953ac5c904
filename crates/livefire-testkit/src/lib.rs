//! Test helpers shared by livefire's crates: a test that cannot run here says so where
//! `cargo test` shows it, and under `CI=true` fails instead when `.ci/run` installs
//! what it needs.
//!
//! `eprintln!` in a test goes to libtest's capture and is shown only when the test
//! fails, so a skipped test would look like a passed one. These helpers write to the
//! process's stderr directly (`std::io::stderr().write_all`), which libtest does not
//! capture.
//!
//! `http::read_message` reads one HTTP/1.1 message off a socket. Behind features, the
//! things several crates' tests start for real: `chromium` (a
//! headless browser driven over DevTools) and `pg` (a PostgreSQL server of the test's
//! own).

use std::io::Write;

#[cfg(feature = "chromium")]
pub mod chromium;
pub mod http;
#[cfg(feature = "pg")]
pub mod pg;

/// The test needs something `.ci/run` installs (a package, a venv). Outside CI: prints
/// `SKIPPED <test>: <what> (install: <install>)` and returns, and the caller returns.
/// Under `CI=true`: panics, because a prerequisite CI installs must have run there.
///
/// `what` says what is missing ("PostgreSQL server binaries not found under
/// /usr/lib/postgresql"); `install` how to get it ("apt-get install postgresql").
#[track_caller]
pub fn skip_missing(what: &str, install: &str) {
    let test = test_name();
    if in_ci() {
        panic!(
            "{test} cannot run: {what} (install: {install}); .ci/run installs it, so under \
             CI=true this is a failure, not a skip"
        );
    }
    say(&format!("SKIPPED {test}: {what} (install: {install})"));
}

/// The test needs something of the machine that no package provides (a kernel feature
/// turned off, an environment that makes the test moot). Prints
/// `SKIPPED <test>: <why>` and returns, also under `CI=true`: `.ci/run` cannot install
/// it, and failing there would only make CI depend on the host's kernel.
pub fn skip_unsupported(why: &str) {
    say(&format!("SKIPPED {}: {why}", test_name()));
}

/// Whether this is a CI run (`CI=true` or `CI=1`, as CI services and `.ci/run` set it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The running test's name: libtest names the thread it runs a test on after the test.
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => "this test".to_owned(),
    }
}

/// One line on the process's real stderr, past libtest's capture.
fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    // Nothing useful can be done if stderr is gone; the skip itself still happens.
    let _ = err.write_all(format!("{line}\n").as_bytes());
    let _ = err.flush();
}
