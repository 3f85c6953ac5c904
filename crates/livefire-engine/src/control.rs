//! The control socket of an active run (`$LIVEFIRE_HOME/active/<run-id>.sock`): one line
//! in, one line out. `halt` stops the run (full rollback, exit 2; `halt from WHO` says
//! who, as the console does: `halt from the console by alice`); `status` says where
//! it is; `end curveball N` rolls back a game day's curveball now, before its drawn end
//! (the facilitator's key). `livefire halt` is the client. A socket nobody listens on
//! belongs to a run that was killed (`kill -9` leaves it behind): `recover`, `halt` and
//! `runs --active` remove it.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// The command that ends curveball N early: `end curveball 2`.
pub fn end_curveball_command(n: u32) -> String {
    format!("end curveball {n}")
}

/// Serves the socket until the listener is dropped; each `halt` is sent on `halt`;
/// `end curveball N` calls `end(N)` on a blocking thread (a rollback blocks) and
/// answers with what it says.
pub fn serve(
    path: &Path,
    halt: mpsc::UnboundedSender<Option<String>>,
    status: impl Fn() -> String + Send + Sync + 'static,
    end: impl Fn(u32) -> String + Send + Sync + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    let status = std::sync::Arc::new(status);
    let end = std::sync::Arc::new(end);
    Ok(tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let halt = halt.clone();
            let status = status.clone();
            let end = end.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut line = String::new();
                if BufReader::new(r).read_line(&mut line).await.is_err() {
                    return;
                }
                let reply = match line.trim() {
                    // A liveness check (`active_runs`) connects and hangs up.
                    "" => return,
                    "halt" => {
                        let _ = halt.send(None);
                        "halting: rolling back every fault\n".to_string()
                    }
                    // `halt from the console by alice`: who stopped it, for the journal.
                    other if other.starts_with("halt from ") => {
                        let from = other["halt from ".len()..].trim();
                        let _ = halt.send(Some(from.chars().take(200).collect()));
                        "halting: rolling back every fault\n".to_string()
                    }
                    "status" => format!("{}\n", status()),
                    other => match other.strip_prefix("end curveball ").map(str::trim) {
                        Some(n) => match n.parse::<u32>() {
                            Ok(n) => {
                                let end = end.clone();
                                let said = tokio::task::spawn_blocking(move || end(n))
                                    .await
                                    .unwrap_or_else(|e| {
                                        format!("ending curveball {n} failed: {e}")
                                    });
                                format!("{said}\n")
                            }
                            Err(_) => format!(
                                "`{n}` is not a curveball number: send `end curveball N`, N as `livefire run --dry-run` numbers them\n"
                            ),
                        },
                        None => format!(
                            "unknown command `{other}`: send `halt`, `status` or `end curveball N`\n"
                        ),
                    },
                };
                let _ = w.write_all(reply.as_bytes()).await;
            });
        }
    }))
}

/// The sockets of active runs: those a run listens on. A socket nobody listens on is
/// stale (its run was killed before it could remove it) and is removed on the way.
pub fn active_runs() -> Vec<PathBuf> {
    sockets()
        .into_iter()
        .filter(|p| match probe(p) {
            Liveness::Stale => {
                let _ = std::fs::remove_file(p);
                false
            }
            Liveness::Absent => false,
            Liveness::Listening | Liveness::Unknown => true,
        })
        .collect()
}

/// Removes the sockets whose run is dead; returns the run ids it removed them for.
pub fn remove_stale() -> Vec<String> {
    sockets()
        .into_iter()
        .filter(|p| probe(p) == Liveness::Stale && std::fs::remove_file(p).is_ok())
        .map(|p| run_id_of(&p))
        .collect()
}

/// The run id a socket belongs to (its file name without `.sock`).
pub fn run_id_of(socket: &Path) -> String {
    socket
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The socket path of a run.
pub fn socket_of(run_id: &str) -> PathBuf {
    crate::home::active_dir().join(format!("{run_id}.sock"))
}

/// Whether a run may be alive: something listens on its socket (or the socket cannot
/// be judged, which is the safe answer).
pub fn is_active(run_id: &str) -> bool {
    matches!(
        probe(&socket_of(run_id)),
        Liveness::Listening | Liveness::Unknown
    )
}

/// What connecting to a socket says about its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    Listening,
    /// A socket file nobody listens on: the run is dead.
    Stale,
    /// No socket file.
    Absent,
    /// Something else went wrong (permissions, not a socket): leave it alone.
    Unknown,
}

fn probe(socket: &Path) -> Liveness {
    let once = || match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => Liveness::Listening,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Liveness::Stale,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Liveness::Absent,
        Err(_) => Liveness::Unknown,
    };
    match once() {
        // A run binds, then listens: ask again a moment later before calling it dead.
        Liveness::Stale => {
            std::thread::sleep(std::time::Duration::from_millis(100));
            once()
        }
        other => other,
    }
}

fn sockets() -> Vec<PathBuf> {
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
