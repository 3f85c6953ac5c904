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

pub use error::{ProxyError, ToxicError};
pub use http::HttpMatch;
pub use proxy::{DirectionStats, Proxy, ProxyConfig, ProxyStats};
pub use server::{ProxyArgs, ServeError, run};
pub use toxic::{Stream, TOXIC_TYPES, Toxic, ToxicKind};
