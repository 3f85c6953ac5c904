//! End-to-end tests of the `livefire` binary: real processes, real sockets.

mod load;
/// `livefire proxy`: the server process, its errors, and Toxiproxy's Python client.
mod proxy;
mod support;
mod validate;
