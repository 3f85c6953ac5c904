//! The journal: events appended to `journal.jsonl` as they happen, one JSON object a
//! line, stamped by the run's one clock. Secrets (values of `${env:...}`) are masked
//! before anything reaches the disk.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use livefire_core::events::{Event, JOURNAL_VERSION, Record};

/// A shared handle to the run's journal; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Mutex<Inner>>,
    start: Instant,
}

#[derive(Debug)]
struct Inner {
    file: File,
    seq: u64,
    secrets: Vec<(String, String)>,
    failed: bool,
}

impl Journal {
    pub fn create(
        path: &Path,
        start: Instant,
        secrets: Vec<(String, String)>,
    ) -> std::io::Result<Journal> {
        let file = File::create(path)?;
        Ok(Journal {
            inner: Arc::new(Mutex::new(Inner {
                file,
                seq: 0,
                secrets,
                failed: false,
            })),
            start,
        })
    }

    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Appends an event now. A journal that cannot be written is said once on stderr;
    /// the run goes on (rollback matters more than the record of it).
    pub fn emit(&self, event: Event) {
        let t = self.now_ms();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let record = Record {
            v: JOURNAL_VERSION,
            seq: inner.seq,
            t,
            event,
        };
        inner.seq += 1;
        let mut line = serde_json::to_string(&record).unwrap_or_default();
        for (value, name) in &inner.secrets {
            if !value.is_empty() {
                line = line.replace(value.as_str(), &format!("${{env:{name}}}"));
            }
        }
        line.push('\n');
        if let Err(e) = inner
            .file
            .write_all(line.as_bytes())
            .and_then(|_| inner.file.flush())
            && !inner.failed
        {
            inner.failed = true;
            tracing::error!("cannot write the journal: {e}");
        }
    }
}
