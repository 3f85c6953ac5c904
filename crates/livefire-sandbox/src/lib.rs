//! Local targets for livefire's examples, demos and tests, so an experiment runs on one
//! machine: `livefire sandbox up` starts a replicated PostgreSQL (or a SQLite file when
//! PostgreSQL is not installed), a token service, the demo orders API and a failover
//! helper; `down` stops all of it; `livefire sandbox http` is a dependency-free HTTP
//! server for the smallest examples.

pub mod cli;
pub mod failover;
mod http;
pub mod pg;
pub mod proc;
pub mod sandbox;
pub mod service;
pub mod state;
pub mod store;
pub mod token;
mod web;

use std::path::PathBuf;

pub use http::serve_http;
pub use sandbox::{Launcher, StoreChoice, UpOptions};
pub use state::Sandbox;

/// Why a sandbox command failed. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "no PostgreSQL server binaries ({0}): install the `postgresql` package \
         (apt-get install postgresql), or run with --store sqlite"
    )]
    NoPostgres(String),
    #[error(
        "running as root, and there is no `postgres` user to run PostgreSQL as (it refuses \
         to run as root): install the `postgresql` package, which creates it, or run as \
         another user"
    )]
    NoPostgresUser,
    #[error("no sandbox in {0}: start one with `livefire sandbox up --dir {0}`")]
    NotUp(PathBuf),
    #[error(
        "a sandbox is running in {dir} ({what}): stop it with `livefire sandbox down --dir {dir}`, \
         or choose another --dir"
    )]
    AlreadyUp { dir: PathBuf, what: String },
    #[error("`{cmd}` failed:\n{detail}")]
    Command { cmd: String, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

impl SandboxError {
    pub(crate) fn io(what: String, source: std::io::Error) -> SandboxError {
        SandboxError::Io { what, source }
    }
}
