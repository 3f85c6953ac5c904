//! Game days (`livefire gameday FILE`): the live side of a `scenario:` run. While the
//! engine runs the experiment exactly as `livefire run` does, this crate serves the
//! responders' page (symptoms, never a hidden curveball before it ends), takes their
//! marks (`livefire mark`, the page's buttons, `POST /api/marks`) into the journal as
//! `Event::Mark`, and tells the `notify:` hook about curveballs and marks.
//!
//! The journal event is the contract other parts read: [`MarkKind`] and
//! `livefire_core::events::Event::Mark { mark, responder, note, via }`, with the
//! journal record's `t` as the moment the mark was taken.

pub use livefire_core::events::MarkKind;

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
