//! End-to-end tests of the `livefire` binary: real processes, real sockets.

mod fuzz;
mod proxy;
mod report;
mod run;
mod safety;
mod support;
mod validate;
