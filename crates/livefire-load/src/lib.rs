//! The load engine: executors described as data (open model at a rate, closed model with
//! virtual users) driving one worker loop, an HTTP/1.1 and HTTP/2 client, templates,
//! checks, and one-second metric windows published live to a `WindowStore`.
//!
//! The engine calls [`run`] with a [`LoadConfig`]; `livefire load` (the [`cli`] module)
//! builds the same config from flags.

pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod data;
mod h1;
pub mod limits;
pub mod pg;
mod recorder;
pub mod report;
pub mod run;
pub mod schedule;
pub mod template;
pub mod writes;

pub use config::{
    Body, Check, Executor, HttpVersion, JsonExpect, LoadConfig, PostgresLoad, RequestSpec, Segment,
    SqlStatement, Stage, TrackWrite,
};
pub use data::DataSet;
pub use report::{LatencySummary, LoadReport, LoadSummary, summary_schema};
pub use run::{run, run_with_writes};
pub use writes::{
    KeysRead, RunsRead, RunsUpdate, WriteCounts, WriteKeys, WriteLog, merge_runs, verify_writes,
};

/// Everything that can stop a load before it starts. Once running, failures of requests
/// are measurements (outcomes), never errors.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The configuration is invalid; the message says which field and what to do.
    #[error("{0}")]
    Config(String),
    /// A template could not be parsed.
    #[error("request `{request}`: {message}")]
    Template { request: String, message: String },
    /// The data file is missing or malformed.
    #[error("data file {path}: {source}")]
    Data {
        path: String,
        source: crate::data::DataError,
    },
    /// A PostgreSQL DSN that does not parse.
    #[error(transparent)]
    Dsn(#[from] crate::pg::DsnError),
}
