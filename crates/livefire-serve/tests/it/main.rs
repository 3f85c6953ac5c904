//! livefire-serve's library parts without a server: tokens and roles against a real
//! store. The HTTP end to end (runs, STOP, the UI in Chromium, the fuzzer) is in
//! `crates/livefire/tests/it/serve.rs` and `serve_ui.rs`, which need the `livefire` binary.

/// Tokens: made, stored hashed, refused when unknown, expired or revoked; roles ordered.
mod tokens;
