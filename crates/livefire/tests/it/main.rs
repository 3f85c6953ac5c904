//! End-to-end tests of the `livefire` binary: real processes, real sockets.

mod fuzz;
mod proxy;
mod report;
/// `livefire proxy`, the standalone server: its errors, and Toxiproxy's Python client.
mod proxy_server;
mod run;
mod safety;
mod support;
mod validate;
