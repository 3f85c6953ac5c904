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

/// Why the io_uring data plane is not running (connections then stay on epoll).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum IoUringUnavailable {
    /// `LIVEFIRE_PROXY_IO=epoll` asked for the epoll path.
    #[error("LIVEFIRE_PROXY_IO=epoll is set")]
    Disabled,
    /// The kernel would not set up a ring with the flags the plane needs: too old
    /// (SINGLE_ISSUER and DEFER_TASKRUN need Linux 6.1), `kernel.io_uring_disabled`,
    /// a seccomp filter, or not Linux.
    #[error("{0}")]
    Refused(String),
    /// The ring was set up but a later step failed. A kernel that takes the setup flags
    /// has every feature the plane uses, so this is a bug in the plane or a kernel that
    /// restricts io_uring further.
    #[error("{0}")]
    Failed(String),
}
