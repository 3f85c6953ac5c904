//! `livefire proxy`: the standalone server (admin API plus the proxies it manages), with
//! its flags. The binary only parses flags and calls [`run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{Registry, serve};

/// Flags of `livefire proxy` (Toxiproxy's `-host`, `-port`, `-config`).
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Address the admin API listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the admin API (Toxiproxy's default).
    #[arg(long, default_value_t = 8474)]
    pub port: u16,
    /// JSON file of proxies to create at start: the body of `POST /populate`, e.g.
    /// `[{"name": "redis", "listen": "127.0.0.1:26379", "upstream": "127.0.0.1:6379"}]`.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Why the server could not start. All of these are setup errors: nothing was done.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("listen tcp {addr}: {source}: pass --host/--port to choose a free address")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("could not start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Binds the admin API, loads `--config`, calls `ready` with the bound address, then
/// serves until `cancel` fires.
pub async fn run_until(
    args: &ProxyArgs,
    cancel: CancellationToken,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let addr = format!("{}:{}", bracket(&args.host), args.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let registry = Arc::new(Registry::new());
    if let Some(path) = &args.config {
        let cfg_err = |message: String| ServeError::Config {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| cfg_err(format!("{e}: pass an existing JSON file")))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| cfg_err(format!("line {}, column {}: {e}", e.line(), e.column())))?;
        match registry.populate(&value) {
            Ok((status, body)) if status.is_success() => {
                let n = body
                    .as_ref()
                    .and_then(|b| b.get("proxies"))
                    .and_then(|p| p.as_array())
                    .map_or(0, Vec::len);
                tracing::info!(proxies = n, config = %path.display(), "populated proxies from config");
            }
            Ok((_, body)) => {
                let msg = body
                    .as_ref()
                    .and_then(|b| b.get("error"))
                    .and_then(|e| e.as_str())
                    .unwrap_or("could not create the proxies")
                    .to_string();
                return Err(cfg_err(msg));
            }
            Err(e) => return Err(cfg_err(e.message)),
        }
    }
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    ready(bound);
    serve(listener, registry.clone(), cancel).await;
    registry.clear();
    Ok(())
}

/// Runs the server on its own runtime until Ctrl-C or SIGTERM. `ready` is told the
/// admin address once it listens (the CLI prints it).
pub fn run(args: ProxyArgs, ready: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    // On one core (or pinned to one) a multi-thread scheduler only adds cross-thread
    // bookkeeping to every wake-up; the single-threaded one does the same work cheaper.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = if cores <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = builder.enable_all().build().map_err(ServeError::Runtime)?;
    rt.block_on(async {
        let cancel = CancellationToken::new();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            stopper.cancel();
        });
        run_until(&args, cancel, ready).await
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
