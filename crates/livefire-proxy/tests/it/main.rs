//! Integration tests of livefire-proxy: real sockets on 127.0.0.1, ephemeral ports.

/// The admin HTTP API against Toxiproxy's contract.
mod api;
/// The API body parsers under malformed input: never a panic.
mod api_fuzz;
/// L7 faults on plain HTTP/1.1: http.abort and http.delay.
mod http_faults;
/// The io_uring data plane: hand-over both ways, buffers running out.
mod plane;
/// Runtime changes: add / remove / update under traffic, enable / disable.
mod runtime;
/// Shared helpers: upstream servers and a proxy in front of them.
mod support;
/// The toxics' semantics, measured through real connections.
mod toxics;
