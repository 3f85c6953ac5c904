//! Responders' marks: the request every way of marking sends (`livefire mark`, the
//! page's buttons, `POST /api/marks`), the [`MarkSink`] that takes it, and the sink of a
//! running game day, which checks the responder against the journal as it stands and
//! adds an `Event::Mark` to it.

use std::sync::{Arc, Mutex};

use livefire_core::events::{Event, MarkKind};
use livefire_engine::journal::Journal;
use serde::{Deserialize, Serialize};

use crate::Via;
use crate::live::{MarkView, Refusal};
use crate::tail::Tail;

/// The longest note a mark keeps, in bytes: a sentence or two, not a log dump.
pub const MAX_NOTE: usize = 2000;

/// A mark as `POST /api/marks` takes it: `{"mark":"detected","responder":"alice",
/// "note":"p99 is up"}`. `via` is `http` unless the sender says `cli` or `page`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRequest {
    pub mark: MarkKind,
    pub responder: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// Why a mark was not recorded; nothing was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the note is {len} bytes: keep it under {MAX_NOTE}")]
    NoteTooLong { len: usize },
    #[error("unknown `via` `{0}`: use cli, page or http")]
    UnknownVia(String),
    #[error("this run is not a live game day: marks are taken only while `livefire gameday` runs")]
    NotLive,
    /// Refused by the game day the mark was passed on to (`livefire serve` passes its
    /// page's marks to the run's own page), with its status and words.
    #[error("{message}")]
    Forwarded { status: u16, message: String },
}

impl MarkError {
    /// The HTTP status `POST /api/marks` answers with.
    pub fn status(&self) -> u16 {
        match self {
            MarkError::Refused(Refusal::Away { .. } | Refusal::NoAccess { .. }) => 403,
            MarkError::Refused(Refusal::Over | Refusal::NotStarted) | MarkError::NotLive => 409,
            MarkError::Refused(_) | MarkError::NoteTooLong { .. } | MarkError::UnknownVia(_) => 422,
            MarkError::Forwarded { status, .. } => *status,
        }
    }
}

/// What takes marks: a running game day's journal, or (for a page served after the
/// run) nothing.
pub trait MarkSink: Send + Sync {
    /// Records the mark, or says why not (and records nothing).
    fn mark(&self, request: MarkRequest) -> Result<MarkView, MarkError>;
}

/// A finished run's page: every mark is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct Closed;

impl MarkSink for Closed {
    fn mark(&self, _: MarkRequest) -> Result<MarkView, MarkError> {
        Err(MarkError::NotLive)
    }
}

/// The sink of a running game day: checks the mark against the journal as it stands
/// (who is declared, who is away or without access) and appends it.
#[derive(Debug, Clone)]
pub struct LiveSink {
    pub journal: Journal,
    pub tail: Arc<Mutex<Tail>>,
}

impl MarkSink for LiveSink {
    fn mark(&self, request: MarkRequest) -> Result<MarkView, MarkError> {
        let via = match request.via.as_deref() {
            None => Via::Http,
            Some(v) => Via::parse(v).ok_or_else(|| MarkError::UnknownVia(v.into()))?,
        };
        let note = request
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if let Some(n) = &note
            && n.len() > MAX_NOTE
        {
            return Err(MarkError::NoteTooLong { len: n.len() });
        }
        let responder = request.responder.trim().to_owned();
        // Held while checking and writing, so a curveball the journal has not shown
        // yet is the only thing a mark can race with, and two marks never interleave.
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.refresh();
        tail.live().check_mark(&responder)?;
        self.journal.emit(Event::Mark {
            mark: request.mark,
            responder: responder.clone(),
            note: note.clone(),
            via: via.label().into(),
        });
        tail.refresh();
        let written = tail.live().last_mark().cloned();
        Ok(written.unwrap_or(MarkView {
            t_ms: self.journal.now_ms(),
            mark: request.mark,
            responder,
            note,
            via: via.label().into(),
        }))
    }
}
