//! Follows a run's `journal.jsonl` as the run writes it: each call reads the complete
//! lines added since the last one and folds them into a [`Live`]. A line being written
//! is kept until its newline arrives; a line that does not parse (a newer livefire's
//! event) is skipped, as every journal reader does.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use livefire_core::events::Record;

use crate::live::Live;

/// A journal followed from its start.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    live: Live,
}

impl Tail {
    pub fn new(journal: &Path) -> Tail {
        Tail {
            path: journal.to_owned(),
            offset: 0,
            partial: Vec::new(),
            live: Live::default(),
        }
    }

    /// Reads what was added; returns whether anything was. A journal that cannot be
    /// read (not created yet) reads as nothing added.
    pub fn refresh(&mut self) -> bool {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return false;
        };
        let mut added = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut added).is_err()
        {
            return false;
        }
        if added.is_empty() {
            return false;
        }
        self.offset += added.len() as u64;
        self.partial.extend_from_slice(&added);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return false;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let mut any = false;
        for line in complete.split(|b| *b == b'\n') {
            if let Ok(record) = serde_json::from_slice::<Record>(line) {
                self.live.apply(&record);
                any = true;
            }
        }
        any
    }

    /// The state as of the last [`Tail::refresh`].
    pub fn live(&self) -> &Live {
        &self.live
    }
}
