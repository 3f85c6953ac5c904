//! The one integration-test binary of livefire-fuzz.
//!
//! - `target`: the planted-defect service and its spec (test support, no tests).
//! - `http1`: a small keep-alive server answering by method and path (test support).
//! - `target_self`: the target's planted defects fire and its correct mode does not
//!   (checked with a raw TCP client, so fuzzer tests stand on a known target).
//! - `spec`: loading specs (formats, versions, files, URLs, refs) and located errors.
//! - `generate`: seeded, reproducible generation; boundary values first.
//! - `rules`: each rule finds its planted defect; the correct service yields nothing.
//! - `judged`: an undeclared success is a finding, an undeclared 4xx to invalid input
//!   or a 404 for nothing is not; an answer as slow as it was asked to be is not slow.
//! - `grouping`: one defect on several methods is one finding, an asked-for 500 is
//!   none, a burst of `slow` is one slowdown naming what was in flight.
//! - `httpbin`: a live httpbin (PyPI, under gunicorn) fuzzed from its own Swagger 2.0
//!   document; skipped without `target/httpbin-venv` (`.ci/run` makes it).
//! - `prepared`: an operation's cases are prepared when the campaign reaches it (they
//!   carry the ids created before); optional headers ride on few requests, with the
//!   value their schema declares.
//! - `campaign`: same seed same requests, the rate cap, hostile answers.
//! - `cli`: `livefire fuzz` exit codes, terminal output, SARIF and JSON files.
//! - `reproducer`: curl reproducers run through `sh -c` send the same request, secrets
//!   read from the environment.

mod campaign;
mod cli;
mod generate;
mod grouping;
mod http1;
mod httpbin;
mod judged;
mod prepared;
mod reproducer;
mod rules;
mod spec;
mod target;
mod target_self;
