//! Fixtures: run folders of real runs copied into a temp dir, so tests can write there.

use std::path::{Path, PathBuf};

/// The fixture run folders.
pub const FIXTURES: [&str; 4] = [
    "held-pause",
    "held-load",
    "aborted-guardrail",
    "fuzz-finding",
];

/// A copy of a fixture run folder (journal.jsonl, experiment.yaml) in a temp dir.
pub struct Run {
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn fixture(name: &str) -> Run {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let dir = tempfile::tempdir().unwrap();
        for f in ["journal.jsonl", "experiment.yaml"] {
            std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
        }
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
    /// Writes the outputs and returns the summary.
    pub fn report(&self) -> livefire_report::Summary {
        livefire_report::write_outputs(self.path()).unwrap().summary
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
