//! Typed errors of the proxy library. Their messages start with Toxiproxy's own words
//! (clients match on them) and add what to do where Toxiproxy says nothing.

use thiserror::Error;

/// A toxic definition that cannot be used.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ToxicError {
    #[error("bad request body: {0}")]
    BadBody(String),
    #[error("invalid toxic type: use one of {}", crate::toxic::TOXIC_TYPES.join(", "))]
    InvalidType,
    #[error("stream was invalid, can be either upstream or downstream")]
    InvalidStream,
}

/// What a proxy operation can fail with.
#[derive(Debug, Error)]
pub enum ProxyError {
    #[error(transparent)]
    Toxic(#[from] ToxicError),
    #[error("toxic already exists: {0} (pick another name or update it instead)")]
    ToxicExists(String),
    #[error("toxic not found: {0}")]
    ToxicNotFound(String),
    #[error("listen tcp {addr}: {source}: choose a free address or stop what holds it")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a proxy must be started inside a tokio runtime")]
    NoRuntime,
    #[error("invalid address {addr:?}: {reason}")]
    BadAddress { addr: String, reason: String },
}
