//! End-to-end tests of the `livefire` binary: real processes, real sockets.

mod load;
mod support;
mod validate;
