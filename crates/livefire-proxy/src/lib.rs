//! livefire-proxy: a fault-injecting TCP proxy whose toxics and admin API follow
//! Toxiproxy's, so existing Toxiproxy clients drive it unchanged.
//!
//! The library side is [`Proxy`]: start one with [`Proxy::start`], change its toxics
//! with [`Proxy::add_toxic`] / [`Proxy::update_toxic`] / [`Proxy::remove_toxic`] (open
//! connections feel the change at once), take it down with [`Proxy::set_enabled`], and
//! drop it to stop it. No global state, no printing: logs go through `tracing`.

pub mod api;
mod error;
mod http;
mod link;
mod proxy;
pub mod server;
mod toxic;
#[cfg(target_os = "linux")]
mod uring;

pub use error::{IoUringUnavailable, ProxyError, ToxicError};
pub use http::HttpMatch;
pub use proxy::{DirectionStats, Proxy, ProxyConfig, ProxyStats};
pub use server::{ProxyArgs, ServeError, run};
pub use toxic::{Stream, TOXIC_TYPES, Toxic, ToxicKind};

/// Connections the io_uring data plane has forwarded since the process started, or
/// `None` when this process forwards on the epoll path (io_uring missing or refused by
/// the kernel, or `LIVEFIRE_PROXY_IO=epoll`). Starts the plane if it has not started.
pub fn io_uring_connections() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        uring::plane().map(|_| uring::adopted_total())
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Why this process forwards on the epoll path: the step of starting the io_uring data
/// plane that failed, with the kernel's error (or `LIVEFIRE_PROXY_IO=epoll`). `None`
/// when io_uring forwards. Starts the plane if it has not started.
pub fn io_uring_unavailable() -> Option<IoUringUnavailable> {
    #[cfg(target_os = "linux")]
    {
        uring::unavailable().cloned()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Some(IoUringUnavailable::Refused(
            "io_uring exists only on Linux".into(),
        ))
    }
}
