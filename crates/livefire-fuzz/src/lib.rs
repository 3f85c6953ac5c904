//! livefire-fuzz: the OpenAPI-driven API fuzzer and security checks.
//!
//! `spec` loads an OpenAPI 3.0/3.1 document (Swagger 2.0 via `swagger`), `generate` turns each operation into
//! requests (boundary values first), `http` sends them with bounded time and size,
//! `checks` applies the rules, and `campaign::run` ties it together for the engine:
//! a plain `FuzzConfig`, a cancellation token, and a callback per `Finding`.

pub mod auth;
pub mod campaign;
pub mod checks;
pub mod cli;
pub mod error;
pub mod finding;
pub mod generate;
pub mod group;
pub mod http;
pub mod render;
pub mod sarif;
pub mod schema;
pub mod signatures;
pub mod spec;
pub mod swagger;

pub use auth::{AuthConfig, LoginRequest};
pub use campaign::{FuzzConfig, Sighting, Summary, run, run_spec};
pub use error::FuzzError;
pub use finding::{Finding, Instance, Rule, Severity};
pub use tokio_util::sync::CancellationToken;
