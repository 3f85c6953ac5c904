//! The facilitator's terminal view of a game day (`livefire gameday` when stdout is a
//! terminal, `--no-tui` to turn it off): full screen, what is active and what comes
//! next, with every curveball's kind and target shown (the facilitator drew them; only
//! responders are kept from them), the responders' marks, and keys to end a curveball
//! early (its number) or halt all (`H`, or Ctrl-C). The keys go over the run's control
//! socket (`end curveball N`, `halt`), the same commands any shell can send, and the
//! view reads nothing but the journal.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use livefire_core::events::{Event, Phase, Record};
use ratatui::crossterm::event::{self, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};

/// The start of a curveball's activity id: `scenario.pool[i]`.
const CURVEBALL_ID: &str = "scenario.pool[";

/// The view, running on its own thread until dropped; dropping it restores the terminal.
pub struct Facilitator {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Facilitator {
    /// Takes over the terminal and shows the game day of `journal`; keys are sent to the
    /// run's control `socket`. `page` is the responders' page, shown for the facilitator
    /// to hand out.
    pub fn start(journal: &Path, socket: &Path, page: &str) -> std::io::Result<Facilitator> {
        let terminal = ratatui::try_init()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (journal, socket, page) = (journal.to_owned(), socket.to_owned(), page.to_owned());
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("livefire-facilitator".into())
            .spawn(move || {
                let mut view = View::new(journal, socket, page);
                view.run(terminal, &flag);
                ratatui::restore();
            });
        match thread {
            Ok(t) => Ok(Facilitator {
                stop,
                thread: Some(t),
            }),
            Err(e) => {
                ratatui::restore();
                Err(e)
            }
        }
    }
}

impl Drop for Facilitator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A curveball as planned and as it went.
#[derive(Debug, Clone, PartialEq)]
pub struct Curveball {
    pub number: u32,
    /// `curveball 1: worker frozen`.
    pub name: String,
    pub kind: String,
    pub target: String,
    /// Planned start and length, from the start of the timeline.
    pub at_ms: u64,
    pub for_ms: u64,
    pub applied_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    pub ended_by: Option<String>,
}

/// A game day as its journal tells it so far, for the facilitator.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Board {
    pub title: String,
    pub t_ms: u64,
    /// When the timeline began (run clock), which planned times count from.
    pub during_ms: Option<u64>,
    pub phase: Option<Phase>,
    pub verdict: Option<String>,
    pub curveballs: Vec<Curveball>,
    /// (t, line) of each mark, deviation and abort, in order.
    pub events: Vec<(u64, String)>,
}

impl Board {
    /// Folds one journal record in.
    pub fn apply(&mut self, r: &Record) {
        self.t_ms = self.t_ms.max(r.t);
        match &r.event {
            Event::RunStarted { title, .. } => self.title = title.clone(),
            Event::Plan { activities, .. } => {
                self.curveballs = activities
                    .iter()
                    .filter(|a| a.id.starts_with(CURVEBALL_ID))
                    .filter_map(|a| {
                        Some(Curveball {
                            number: number_of(&a.name)?,
                            name: a.name.clone(),
                            kind: a.kind.clone(),
                            target: a.target.clone(),
                            at_ms: a.at_ms,
                            for_ms: a.for_ms,
                            applied_ms: None,
                            ended_ms: None,
                            ended_by: None,
                        })
                    })
                    .collect();
            }
            Event::PhaseStarted { phase } => {
                if *phase == Phase::During {
                    self.during_ms = Some(r.t);
                }
                self.phase = Some(*phase);
            }
            Event::FaultApplied { activity, .. } => {
                if let Some(c) = self.curveballs.iter_mut().find(|c| &c.name == activity) {
                    c.applied_ms = Some(r.t);
                }
            }
            Event::FaultRolledBack { activity, by, .. } => {
                if let Some(c) = self.curveballs.iter_mut().find(|c| &c.name == activity) {
                    c.ended_ms = Some(r.t);
                    c.ended_by = Some(by.clone());
                }
            }
            // A curveball with nothing to undo (a person away) ends with its activity.
            Event::ActivityEnded { activity, .. } => {
                if let Some(c) = self
                    .curveballs
                    .iter_mut()
                    .find(|c| &c.name == activity && c.ended_ms.is_none())
                {
                    c.ended_ms = Some(r.t);
                }
            }
            Event::ActivityStarted { activity, .. } => {
                if let Some(c) = self
                    .curveballs
                    .iter_mut()
                    .find(|c| &c.name == activity && c.applied_ms.is_none())
                {
                    c.applied_ms = Some(r.t);
                }
            }
            Event::Mark {
                mark,
                responder,
                note,
                ..
            } => self.events.push((
                r.t,
                format!(
                    "{responder} marked {}{}",
                    mark.label(),
                    note.as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                ),
            )),
            Event::Deviation { condition, .. } => self
                .events
                .push((r.t, format!("hypothesis `{condition}` deviated"))),
            Event::Aborted { cause } => self
                .events
                .push((r.t, format!("aborted: {}", cause.describe()))),
            Event::RunEnded { verdict, .. } => self.verdict = Some(verdict.label().to_owned()),
            _ => {}
        }
    }

    /// `active: curveball 1 · next: curveball 2 in 4s`.
    pub fn now_and_next(&self) -> String {
        let active: Vec<String> = self
            .curveballs
            .iter()
            .filter(|c| c.applied_ms.is_some() && c.ended_ms.is_none())
            .map(|c| format!("curveball {}", c.number))
            .collect();
        let next = self
            .curveballs
            .iter()
            .filter(|c| c.applied_ms.is_none())
            .min_by_key(|c| c.at_ms)
            .map(|c| format!("curveball {} ({})", c.number, self.state(c)))
            .unwrap_or_else(|| "none".into());
        format!(
            "active: {} · next: {next}",
            if active.is_empty() {
                "none".into()
            } else {
                active.join(", ")
            }
        )
    }

    /// What a curveball is doing now, in words.
    pub fn state(&self, c: &Curveball) -> String {
        match (c.applied_ms, c.ended_ms) {
            (Some(_), Some(_)) => match c.ended_by.as_deref() {
                Some("facilitator") => "ended early".into(),
                Some("engine") | None => "ended".into(),
                Some(by) => format!("ended by {by}"),
            },
            (Some(a), None) => format!(
                "ACTIVE {}s left",
                (a + c.for_ms).saturating_sub(self.t_ms).div_ceil(1000)
            ),
            (None, _) => match self.during_ms {
                Some(d) => format!(
                    "next in {}s",
                    (d + c.at_ms).saturating_sub(self.t_ms).div_ceil(1000)
                ),
                None => "waiting".into(),
            },
        }
    }
}

/// N of `curveball N: ...`.
fn number_of(name: &str) -> Option<u32> {
    name.strip_prefix("curveball ")?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Sends one command to the run's control socket; its answer, or why none came.
pub fn send(socket: &Path, command: &str) -> String {
    let exchange = || -> std::io::Result<String> {
        let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        writeln!(stream, "{command}")?;
        let mut reply = String::new();
        std::io::BufReader::new(stream).read_line(&mut reply)?;
        Ok(reply.trim().to_owned())
    };
    exchange().unwrap_or_else(|e| format!("`{command}` did not reach the run: {e}"))
}

/// The view's state and its loop.
struct View {
    journal: PathBuf,
    socket: PathBuf,
    page: String,
    offset: u64,
    partial: Vec<u8>,
    board: Board,
    /// The last answer of the run to a key, shown on the status line.
    said: String,
}

impl View {
    fn new(journal: PathBuf, socket: PathBuf, page: String) -> View {
        View {
            journal,
            socket,
            page,
            offset: 0,
            partial: Vec::new(),
            board: Board::default(),
            said: String::new(),
        }
    }

    fn run(&mut self, mut terminal: ratatui::DefaultTerminal, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            self.read_journal();
            if terminal.draw(|f| self.draw(f)).is_err() {
                return;
            }
            // Raw mode turns Ctrl-C into a key: it halts, as it does without the view.
            let Ok(true) = event::poll(Duration::from_millis(200)) else {
                continue;
            };
            let Ok(event::Event::Key(key)) = event::read() else {
                continue;
            };
            if key.kind != KeyEventKind::Press {
                continue;
            }
            match key.code {
                KeyCode::Char(c) if c.is_ascii_digit() && c != '0' => {
                    let n = c.to_digit(10).unwrap_or(0);
                    self.said = send(&self.socket, &format!("end curveball {n}"));
                }
                KeyCode::Char('H') => self.said = send(&self.socket, "halt"),
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    self.said = send(&self.socket, "halt");
                }
                _ => {}
            }
        }
    }

    /// Folds the journal's new complete lines into the board.
    fn read_journal(&mut self) {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut file) = std::fs::File::open(&self.journal) else {
            return;
        };
        let mut added = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut added).is_err()
        {
            return;
        }
        self.offset += added.len() as u64;
        self.partial.extend_from_slice(&added);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in complete.split(|b| *b == b'\n') {
            if let Ok(r) = serde_json::from_slice::<Record>(line) {
                self.board.apply(&r);
            }
        }
    }

    fn draw(&self, f: &mut ratatui::Frame) {
        let b = &self.board;
        let [head, table, events, status, help] = Layout::vertical([
            Constraint::Length(4),
            Constraint::Min(5),
            Constraint::Length(8),
            Constraint::Length(3),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let phase = b
            .phase
            .map(|p| format!("{p:?}").to_lowercase())
            .unwrap_or_else(|| "starting".into());
        let verdict = b
            .verdict
            .as_deref()
            .map(|v| format!(" · verdict: {v}"))
            .unwrap_or_default();
        f.render_widget(
            Paragraph::new(vec![
                Line::from(format!(
                    "t = {:.1}s · phase: {phase}{verdict} · {}",
                    b.t_ms as f64 / 1e3,
                    b.now_and_next()
                )),
                Line::from(format!("responders' page: {}", self.page)),
            ])
            .block(Block::bordered().title(format!(" game day: {} (facilitator) ", b.title))),
            head,
        );
        let rows: Vec<Row> = b
            .curveballs
            .iter()
            .map(|c| {
                let style = if c.applied_ms.is_some() && c.ended_ms.is_none() {
                    Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
                } else {
                    Style::default()
                };
                Row::new(vec![
                    c.number.to_string(),
                    c.name
                        .split_once(": ")
                        .map_or(c.name.as_str(), |(_, what)| what)
                        .to_owned(),
                    format!("{} {}", c.kind, c.target).trim().to_owned(),
                    format!(
                        "{:.1}s–{:.1}s",
                        c.at_ms as f64 / 1e3,
                        (c.at_ms + c.for_ms) as f64 / 1e3
                    ),
                    b.state(c),
                ])
                .style(style)
            })
            .collect();
        f.render_widget(
            Table::new(
                rows,
                [
                    Constraint::Length(3),
                    Constraint::Percentage(30),
                    Constraint::Percentage(30),
                    Constraint::Length(14),
                    Constraint::Min(16),
                ],
            )
            .header(
                Row::new(vec!["#", "curveball", "kind and target", "planned", "now"])
                    .style(Style::default().add_modifier(Modifier::UNDERLINED)),
            )
            .block(Block::bordered().title(" curveballs (hidden from responders until they end) ")),
            table,
        );
        let shown = events.height.saturating_sub(2) as usize;
        let lines: Vec<Line> = b
            .events
            .iter()
            .skip(b.events.len().saturating_sub(shown))
            .map(|(t, what)| Line::from(format!("{:>7.1}s  {what}", *t as f64 / 1e3)))
            .collect();
        f.render_widget(
            Paragraph::new(lines).block(Block::bordered().title(" marks and deviations ")),
            events,
        );
        f.render_widget(
            Paragraph::new(self.said.as_str()).block(Block::bordered().title(" run says ")),
            status,
        );
        f.render_widget(
            Paragraph::new("keys: 1-9 end that curveball now · H halt all (roll back everything) · Ctrl-C halt"),
            help,
        );
    }
}
