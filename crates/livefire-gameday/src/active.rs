//! Where `livefire mark` finds a running game day: `$LIVEFIRE_HOME/active/<run-id>.gameday.json`
//! beside the run's control socket, holding the page's URL. The game day writes it when
//! its page listens and removes it when the run ends; one left by a killed run is
//! noticed (nothing answers at its URL) and removed.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A running game day, as its record file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    pub run_id: String,
    /// The responders' page: `http://127.0.0.1:PORT/`.
    pub url: String,
    pub pid: u32,
}

impl Running {
    /// The record file of a run.
    pub fn path_of(run_id: &str) -> PathBuf {
        livefire_engine::home::active_dir().join(format!("{run_id}.gameday.json"))
    }

    /// Writes the record; returns its path.
    pub fn write(&self) -> std::io::Result<PathBuf> {
        let dir = livefire_engine::home::active_dir();
        std::fs::create_dir_all(&dir)?;
        let path = Running::path_of(&self.run_id);
        let tmp = dir.join(format!(".{}.gameday.json.tmp", self.run_id));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).unwrap_or_default())?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// `host:port` of the page.
    pub fn address(&self) -> &str {
        let rest = self.url.strip_prefix("http://").unwrap_or(&self.url);
        rest.split('/').next().unwrap_or(rest)
    }

    fn answers(&self) -> bool {
        use std::net::ToSocketAddrs;
        let Some(addr) = self
            .address()
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
        else {
            return false;
        };
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    }
}

/// The game days running now, by run id; records whose page does not answer are
/// removed on the way.
pub fn running() -> Vec<Running> {
    let Ok(dir) = std::fs::read_dir(livefire_engine::home::active_dir()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for path in dir.filter_map(|e| e.ok().map(|e| e.path())) {
        let is_record = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".gameday.json") && !n.starts_with('.'));
        if !is_record {
            continue;
        }
        let Some(r) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Running>(&b).ok())
        else {
            continue;
        };
        if r.answers() {
            out.push(r);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    out.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    out
}
