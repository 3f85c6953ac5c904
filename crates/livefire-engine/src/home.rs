//! Where livefire keeps state between runs: `$LIVEFIRE_HOME` (default `~/.livefire`),
//! holding `ledger/` (pending undo records of every run) and `active/` (control sockets).

use std::path::PathBuf;

pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("LIVEFIRE_HOME") {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join(".livefire")
}

pub fn ledger_dir() -> PathBuf {
    home().join("ledger")
}

pub fn active_dir() -> PathBuf {
    home().join("active")
}
