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
        self.emit_all([event]);
    }

    /// Appends events now, one after the other with nothing from another thread
    /// between them (a load's write outcomes and its end, read as a pair).
    pub fn emit_all(&self, events: impl IntoIterator<Item = Event>) {
        let t = self.now_ms();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for event in events {
            inner.append(t, event);
        }
    }
}

impl Inner {
    fn append(&mut self, t: u64, event: Event) {
        let record = Record {
            v: JOURNAL_VERSION,
            seq: self.seq,
            t,
            event,
        };
        self.seq += 1;
        let mut line = serde_json::to_string(&record).unwrap_or_default();
        for (value, name) in &self.secrets {
            if !value.is_empty() {
                line = line.replace(value.as_str(), &format!("${{env:{name}}}"));
            }
        }
        line.push('\n');
        if let Err(e) = self
            .file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            && !self.failed
        {
            self.failed = true;
            tracing::error!("cannot write the journal: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many threads journaling at once never split a load's write outcomes from its
    /// end: the report reads them as a pair.
    #[test]
    fn events_emitted_together_stay_together_under_concurrent_writers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let journal = Journal::create(&path, Instant::now(), Vec::new()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let journal = journal.clone();
                std::thread::spawn(move || {
                    for n in 0..200 {
                        let load = format!("load-{i}-{n}");
                        journal.emit_all([
                            Event::WriteOutcomes {
                                load: load.clone(),
                                runs: Vec::new(),
                                truncated_ms: None,
                            },
                            Event::LoadEnded {
                                load,
                                report: serde_json::Value::Null,
                            },
                        ]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1600);
        for (i, pair) in lines.chunks(2).enumerate() {
            assert_eq!(pair[0]["type"], "write_outcomes", "line {}", 2 * i);
            assert_eq!(pair[1]["type"], "load_ended", "line {}", 2 * i + 1);
            assert_eq!(pair[0]["load"], pair[1]["load"]);
            assert_eq!(
                pair[0]["seq"].as_u64().unwrap() + 1,
                pair[1]["seq"].as_u64().unwrap()
            );
        }
    }
}
