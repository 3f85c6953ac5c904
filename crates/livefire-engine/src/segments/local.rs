//! The local back end: each segment is a `livefire agent` child process of the
//! coordinator, its stdout the segment's stream, its stderr kept in
//! `segments/<i>/stderr.log`. A closed stdin tells an agent the coordinator is gone, so
//! no agent outlives a coordinator that was killed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

use super::launch::{
    BoxFuture, LaunchError, LaunchSpec, Launched, Launcher, SegmentEvent, SegmentExit, check_count,
};

/// Segments as child processes of `program` (the `livefire` binary).
#[derive(Debug)]
pub struct LocalLauncher {
    program: PathBuf,
    running: Vec<Running>,
}

/// A child still owned by its task: closing `stdin` asks it to stop, `kill` ends it.
#[derive(Debug)]
struct Running {
    stdin: Option<ChildStdin>,
    kill: Option<oneshot::Sender<()>>,
    ended: oneshot::Receiver<()>,
    /// `ended` resolved (a oneshot must not be polled again after that).
    done: bool,
}

impl Running {
    /// Waits until `deadline` for the child's end; whether it ended.
    async fn wait_until(&mut self, deadline: tokio::time::Instant) -> bool {
        if !self.done {
            self.done = tokio::time::timeout_at(deadline, &mut self.ended)
                .await
                .is_ok();
        }
        self.done
    }
}

impl LocalLauncher {
    /// Runs `program agent ...` for each segment; `program` is the `livefire` binary
    /// (`std::env::current_exe()` for the coordinator itself).
    pub fn new(program: PathBuf) -> Self {
        LocalLauncher {
            program,
            running: Vec::new(),
        }
    }

    fn spawn_one(
        &self,
        spec: &LaunchSpec,
        index: u32,
        tx: &mpsc::UnboundedSender<SegmentEvent>,
    ) -> Result<Running, String> {
        let dir = spec.segment_dir(index);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let stderr_path = dir.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path)
            .map_err(|e| format!("{}: {e}", stderr_path.display()))?;
        let file = spec.file.to_string_lossy().into_owned();
        let mut args = spec.agent_args(index, &file);
        // Only a local agent has the coordinator at the other end of its stdin.
        args.insert(1, "--watch-stdin".to_owned());
        let mut child = Command::new(&self.program)
            .args(&args)
            .env(super::launch::AGENT_VARS_ENV, spec.vars_json())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            // Its own process group: a Ctrl-C in the terminal reaches the coordinator,
            // which stops the segments itself.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.program.display()))?;
        let pid = child.id().unwrap_or_default();
        let stdin = child.stdin.take();
        let _ = tx.send(SegmentEvent::Started {
            index,
            detail: format!("pid {pid}"),
        });
        let (kill_tx, kill_rx) = oneshot::channel();
        let (ended_tx, ended_rx) = oneshot::channel();
        tokio::spawn(follow(index, child, tx.clone(), kill_rx, ended_tx));
        Ok(Running {
            stdin,
            kill: Some(kill_tx),
            ended: ended_rx,
            done: false,
        })
    }
}

/// Forwards a child's stdout lines, then its exit (after the last line).
async fn follow(
    index: u32,
    mut child: Child,
    tx: mpsc::UnboundedSender<SegmentEvent>,
    mut kill: oneshot::Receiver<()>,
    ended: oneshot::Sender<()>,
) {
    let reader = child.stdout.take().map(|out| {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = tx.send(SegmentEvent::Line { index, line });
            }
        })
    });
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            asked = &mut kill => {
                if asked.is_ok() {
                    let _ = child.start_kill();
                }
                // Either way, only `wait` ends the loop now.
                kill = oneshot::channel().1;
            }
        }
    };
    if let Some(reader) = reader {
        // The agent has no children of its own, so its stdout closes with it; a bound
        // keeps a stray holder of the pipe from hiding the exit.
        let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    }
    let exit = match status {
        Ok(s) => SegmentExit {
            success: s.success(),
            detail: describe(s),
        },
        Err(e) => SegmentExit {
            success: false,
            detail: format!("cannot wait for it: {e}"),
        },
    };
    let _ = tx.send(SegmentEvent::Exited { index, exit });
    let _ = ended.send(());
}

fn describe(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(name) => format!("killed by {name}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => "ended".into(),
    }
}

impl Launcher for LocalLauncher {
    fn name(&self) -> &'static str {
        "local"
    }

    fn startup_allowance(&self, count: u32) -> Duration {
        // Planning the file and starting a process each; generous for a busy machine.
        Duration::from_secs(3) + Duration::from_millis(100) * count
    }

    fn check<'a>(&'a self, spec: &'a LaunchSpec) -> BoxFuture<'a, Result<(), LaunchError>> {
        Box::pin(async move {
            check_count(spec.count)?;
            if !self.program.is_file() {
                return Err(LaunchError::Refused(format!(
                    "cannot find the livefire binary at {} to run segments",
                    self.program.display()
                )));
            }
            Ok(())
        })
    }

    fn launch<'a>(
        &'a mut self,
        spec: &'a LaunchSpec,
    ) -> BoxFuture<'a, Result<Launched, LaunchError>> {
        Box::pin(async move {
            check_count(spec.count)?;
            let (tx, rx) = mpsc::unbounded_channel();
            for index in 0..spec.count {
                match self.spawn_one(spec, index, &tx) {
                    Ok(r) => self.running.push(r),
                    Err(reason) => {
                        let _ = self.stop_all(Duration::ZERO).await;
                        return Err(LaunchError::Start {
                            index: index + 1,
                            count: spec.count,
                            reason,
                        });
                    }
                }
            }
            Ok(Launched { events: rx })
        })
    }

    fn stop_all<'a>(&'a mut self, grace: Duration) -> BoxFuture<'a, Result<(), LaunchError>> {
        Box::pin(async move {
            // A closed stdin asks each agent to stop and report; then, past the grace,
            // whoever is left is killed.
            for r in &mut self.running {
                r.stdin.take();
            }
            let deadline = tokio::time::Instant::now() + grace;
            for r in &mut self.running {
                if !r.wait_until(deadline).await
                    && let Some(kill) = r.kill.take()
                {
                    let _ = kill.send(());
                }
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            let mut left = 0;
            for r in &mut self.running {
                if !r.wait_until(deadline).await {
                    left += 1;
                }
            }
            self.running.clear();
            if left > 0 {
                return Err(LaunchError::Stop(format!(
                    "{left} segment process(es) did not end after SIGKILL"
                )));
            }
            Ok(())
        })
    }
}
