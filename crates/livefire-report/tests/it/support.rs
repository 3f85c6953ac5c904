//! Fixtures: run folders of real runs copied into a temp dir, so tests can write there.

use std::path::{Path, PathBuf};

/// The fixture run folders.
pub const FIXTURES: [&str; 8] = [
    "held-pause",
    "held-load",
    "aborted-guardrail",
    "fuzz-finding",
    "planned-load-a",
    "planned-load-b",
    "planned-load-short-pause",
    "planned-pause",
];

/// A copy of a fixture run's journal.jsonl, alone, in a temp dir: every report is made
/// from the journal and nothing else.
pub struct Run {
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn fixture(name: &str) -> Run {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(src.join("journal.jsonl"), dir.path().join("journal.jsonl")).unwrap();
        Run { dir }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap()
    }
    /// The journal, read.
    pub fn journal(&self) -> livefire_report::Journal {
        livefire_report::read_journal(&self.file("journal.jsonl")).unwrap()
    }
    /// Writes the outputs and returns the summary.
    pub fn report(&self) -> livefire_report::Summary {
        livefire_report::write_outputs(self.path()).unwrap().summary
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
