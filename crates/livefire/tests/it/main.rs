//! End-to-end tests of the `livefire` binary: real processes, real sockets.

/// Every built fault kind through one harness: apply, verify, undo, recover.
mod conformance;
/// The corruption drill (examples/db-corruption.yaml) on a real sandbox: who noticed, undone
/// byte for byte.
mod corruption;
/// `livefire demo`: the quickstart drill on the sandbox, and nothing left running after it.
mod demo;
/// What the libraries report reaches stderr as one `livefire: ...` line each.
mod diagnostics;
/// The docs' experiment snippets, validated as a user copies them.
mod docs;
/// The failover drill (examples/db-failover.yaml) on a real sandbox, measured end to end.
mod drill;
mod fuzz;
/// Game days: seeded curveballs replayed by `--dry-run`, applied and hidden by `run`.
mod gameday;
/// `livefire gameday` live: the responders' page, its API and stream, and marks.
mod gameday_live;
/// The responders' page in Chromium: the mark button, nothing hidden in the page.
mod gameday_page;
/// `livefire load`, the ad-hoc command.
mod load;
/// net.* faults refused before anything is applied.
mod net;
/// `noticed_within`: a fault detectors must notice in time, or the hypothesis fails.
mod noticed;
/// `validate` refuses what `run` refuses, located; `--env` on both.
mod parity;
mod pipes;
mod proxy;
/// `livefire proxy`, the standalone server: its errors, and Toxiproxy's Python client.
mod proxy_server;
/// `livefire recover`: --list, --forget, gone processes, stale control sockets.
mod recover;
mod report;
/// cpu.stress and memory.stress burn and hold (measured from /proc); bad input refused.
mod resources;
mod run;
mod safety;
/// Split runs on local segments: totals, exact percentiles, lost segments, guardrails.
mod segments;
/// `livefire serve`: tokens and roles, located errors, runs started and stopped over HTTP,
/// a server killed mid-run, the API fuzzed.
mod serve;
/// `livefire serve`'s live-page stream: many clients of one run, a slow one, late ones,
/// `Last-Event-ID`.
mod serve_events;
/// `livefire serve`: 409 for a held target of any kind, Trends, game days in the console.
mod serve_pages;
/// `livefire serve` schedules (fired, skipped, kept across a restart, missed ones logged)
/// and approvals of production runs by a second person.
mod serve_schedules;
/// The console in headless Chromium: log in, a located error, a live run, STOP.
mod serve_ui;
/// The console's Trends and game-day pages in headless Chromium.
mod serve_ui_pages;
mod support;
/// One grammar of durations, rates, percentages and sizes: the file and the flags agree.
mod units;
mod validate;
/// The verdict and its reasons, as a user reads them at the end of a run.
mod verdicts;
/// `watch:` commands: the team's own alert checks as detectors of a real run.
mod watch;
