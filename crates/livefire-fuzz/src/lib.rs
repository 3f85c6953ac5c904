//! livefire-fuzz: the OpenAPI-driven API fuzzer and security checks.
//!
//! `spec` loads an OpenAPI 3.0/3.1 document, `generate` turns each operation into requests
//! (boundary values first), `http` sends them with bounded time and size.

pub mod error;
pub mod generate;
pub mod http;
pub mod render;
pub mod schema;
pub mod spec;

pub use error::FuzzError;
