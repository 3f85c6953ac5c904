//! End-to-end tests of the `livefire` binary: real processes, real sockets.

mod fuzz;
/// `livefire load`, the ad-hoc command.
mod load;
mod proxy;
/// `livefire proxy`, the standalone server: its errors, and Toxiproxy's Python client.
mod proxy_server;
mod report;
mod run;
mod safety;
mod support;
mod validate;
