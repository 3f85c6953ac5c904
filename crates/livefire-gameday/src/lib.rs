//! Game days (`livefire gameday FILE`): the live side of a `scenario:` run. While the
//! engine runs the experiment exactly as `livefire run` does, this crate serves the
//! responders' page (symptoms, never a hidden curveball before it ends), takes their
//! marks (`livefire mark`, the page's buttons, `POST /api/marks`) into the journal as
//! `Event::Mark`, and tells the `notify:` hook about curveballs and marks.
//!
//! The journal event is the contract other parts read: [`MarkKind`] and
//! `livefire_core::events::Event::Mark { mark, responder, note, via }`, with the
//! journal record's `t` as the moment the mark was taken.

pub mod active;
pub mod client;
pub mod facilitator;
pub mod live;
pub mod marks;
pub mod notify;
pub mod page;
pub mod tail;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use livefire_core::events::Event;
pub use livefire_core::events::MarkKind;
use livefire_engine::{Attach, Attached, Outcome, RunError, RunOptions};

/// The address the responders' page listens on unless `--listen` says otherwise:
/// loopback, a free port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";

/// `livefire gameday FILE`: runs the experiment exactly as `livefire run` does (same
/// engine, same exit codes) and serves the responders' page on `listen` while it runs.
/// The page's address is taken first: one in use is an error before anything is
/// applied. `--dry-run` prints the plan and serves nothing.
///
/// With `facilitator`, the terminal shows the facilitator's view
/// ([`facilitator::Facilitator`]) instead of the progress line.
pub fn run(mut opts: RunOptions, listen: &str, facilitator: bool) -> Result<Outcome, RunError> {
    if !opts.dry_run {
        if facilitator {
            opts.view = livefire_engine::view::View::Quiet;
        }
        let listener = std::net::TcpListener::bind(listen)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| {
                RunError::Refused(format!(
                    "--listen {listen}: {e}: pick a free address such as {DEFAULT_LISTEN} (nothing was applied)"
                ))
            })?;
        opts.attach = Some(attach(listener, facilitator));
    }
    livefire_engine::run(opts)
}

/// What runs beside the engine during a game day: the responders' page on `listener`
/// and the record `livefire mark` finds it by (and the facilitator's terminal view, with
/// `facilitator`).
pub fn attach(listener: std::net::TcpListener, facilitator: bool) -> Attach {
    let slot = Mutex::new(Some(listener));
    Attach(Arc::new(move |run: Attached<'_>| -> Box<dyn Send> {
        match slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(listener) => Box::new(Session::start(run, listener, facilitator)),
            None => Box::new(()),
        }
    }))
}

/// A game day's live parts, stopped when the run has ended.
struct Session {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    record: Option<PathBuf>,
    facilitator: Option<facilitator::Facilitator>,
    /// Dropped last: it tells the hook what the run wrote at its very end.
    notifier: Option<notify::Notifier>,
}

impl Session {
    fn start(run: Attached<'_>, listener: std::net::TcpListener, facilitator: bool) -> Session {
        let journal_path = run.run_dir.join("journal.jsonl");
        let sink = marks::LiveSink {
            journal: run.journal.clone(),
            tail: Arc::new(Mutex::new(tail::Tail::new(&journal_path))),
        };
        let page = page::Page::new(&journal_path, Arc::new(sink));
        let mut session = Session {
            tasks: Vec::new(),
            record: None,
            facilitator: None,
            notifier: None,
        };
        if let Some(n) = run
            .plan
            .experiment
            .scenario
            .as_ref()
            .and_then(|s| s.notify.as_ref())
        {
            let hook = notify::Hook {
                command: n.command.clone(),
                url: n.url.clone(),
                timeout: n.timeout.map_or(notify::DEFAULT_TIMEOUT, |d| d.0),
                cwd: run.plan.dir.clone(),
            };
            match notify::Notifier::start(hook, &journal_path, run.journal.clone()) {
                Ok(n) => session.notifier = Some(n),
                Err(e) => run.journal.emit(Event::Warning {
                    message: format!(
                        "notify: cannot start ({e}): the game day runs without telling the hook"
                    ),
                }),
            }
        }
        let addr = listener.local_addr();
        let listener = tokio::net::TcpListener::from_std(listener);
        let (addr, listener) = match (addr, listener) {
            (Ok(a), Ok(l)) => (a, l),
            (Err(e), _) | (_, Err(e)) => {
                run.journal.emit(Event::Warning {
                    message: format!(
                        "the responders' page cannot listen ({e}): the game day runs without it"
                    ),
                });
                return session;
            }
        };
        session
            .tasks
            .push(tokio::spawn(page::serve(listener, page)));
        let url = format!("http://{addr}/");
        let running = active::Running {
            run_id: run.run_id.to_owned(),
            url: url.clone(),
            pid: std::process::id(),
        };
        match running.write() {
            Ok(path) => session.record = Some(path),
            Err(e) => run.journal.emit(Event::Warning {
                message: format!(
                    "cannot record the game day under {} ({e}): `livefire mark` cannot find it; post marks to {url}api/marks",
                    livefire_engine::home::active_dir().display()
                ),
            }),
        }
        eprintln!(
            "livefire gameday: the responders' page is at {url}; responders mark with `livefire mark detected|mitigated|resolved --as NAME`"
        );
        if facilitator {
            let socket = livefire_engine::control::socket_of(run.run_id);
            match facilitator::Facilitator::start(&journal_path, &socket, &url) {
                Ok(f) => session.facilitator = Some(f),
                Err(e) => run.journal.emit(Event::Warning {
                    message: format!(
                        "the facilitator's terminal view cannot start ({e}): end curveballs with `end curveball N` on the control socket, halt with `livefire halt`"
                    ),
                }),
            }
        }
        session
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(p) = &self.record {
            let _ = std::fs::remove_file(p);
        }
        self.notifier.take();
    }
}

/// Where a mark came from, as the journal's `via` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `livefire mark` from a shell.
    Cli,
    /// A button on the responders' page.
    Page,
    /// `POST /api/marks` (a chat bot, a script).
    Http,
}

impl Via {
    /// The word the journal's `via` field holds.
    pub fn label(self) -> &'static str {
        match self {
            Via::Cli => "cli",
            Via::Page => "page",
            Via::Http => "http",
        }
    }
}

impl Via {
    /// The `via` a sender names, if it is one.
    pub fn parse(word: &str) -> Option<Via> {
        [Via::Cli, Via::Page, Via::Http]
            .into_iter()
            .find(|v| v.label() == word)
    }
}
