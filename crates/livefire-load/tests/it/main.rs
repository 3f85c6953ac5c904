//! Integration tests of the load engine against real local HTTP servers started by the
//! tests (hyper on 127.0.0.1, ephemeral ports).

// A local hyper server with paths that answer, fail, stall and echo.
mod server;
// Open and closed executors: counts, determinism, segments, drops, cancel.
mod executors;
// Latency measured from the intended send time shows a server stall.
mod latency;
// Outcomes: refused connections, timeouts, statuses, checks.
mod outcomes;
// Templates, data rows, JSON bodies, headers, HTTP/2.
mod requests;
// `livefire load` flags and summary.
mod cli;
// The lean HTTP/1.1 client: framings, closes, garbage.
mod h1;
// HTTPS with rustls: both versions, and an untrusted certificate.
mod tls;
// Source addresses: which local addresses the server sees, and refusals.
mod source;
// Write tracking over HTTP: acked, lost, duplicated.
mod writes;
// PostgreSQL loads against a real server started by the test.
mod postgres;
// `--json` output against the committed schema/load.json.
mod schema;
