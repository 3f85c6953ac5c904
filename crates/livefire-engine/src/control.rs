//! The control socket of an active run (`$LIVEFIRE_HOME/active/<run-id>.sock`): one line
//! in, one line out. `halt` stops the run (full rollback, exit 2); `status` says where
//! it is. `livefire halt` is the client.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// Serves the socket until the listener is dropped; each `halt` is sent on `halt`.
pub fn serve(
    path: &Path,
    halt: mpsc::UnboundedSender<()>,
    status: impl Fn() -> String + Send + Sync + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    let status = std::sync::Arc::new(status);
    Ok(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let halt = halt.clone();
            let status = status.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(r).read_line(&mut line).await.is_err() {
                    return;
                }
                let reply = match line.trim() {
                    "halt" => {
                        let _ = halt.send(());
                        "halting: rolling back every fault\n".to_string()
                    }
                    "status" => format!("{}\n", status()),
                    other => format!("unknown command `{other}`: send `halt` or `status`\n"),
                };
                let _ = w.write_all(reply.as_bytes()).await;
            });
        }
    }))
}

/// The sockets of active runs.
pub fn active_runs() -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(crate::home::active_dir()) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sock"))
        .collect();
    v.sort();
    v
}

/// Sends one command to a run's socket and returns its reply.
pub async fn send(socket: &Path, command: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket).await?;
    stream.write_all(format!("{command}\n").as_bytes()).await?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).await?;
    Ok(reply)
}
