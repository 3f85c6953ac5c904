//! PostgreSQL as a detector: while a fault acts on a `postgres` target that declares a
//! `data_dir`, whether the server itself noticed: `pg_stat_database.checksum_failures`
//! rising, and errors in its server log (for `postgres.corrupt`, errors naming the
//! damaged relation), both read from where they stood just before the fault's apply.
//! The engine journals each detector's first sign; the report shows when PostgreSQL
//! noticed beside the run's own detectors.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use livefire_core::undo::UndoRecord;
use livefire_spec::Fault;

use crate::Targets;

/// How long one reading of the checksum counter may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// The most of the log one poll reads (a flood of errors must not stall the engine).
const MAX_READ: u64 = 1 << 20;

/// A server watched for one fault.
#[derive(Debug)]
pub struct PgWatch {
    target: String,
    dsn: String,
    data_dir: PathBuf,
    log: Option<Tail>,
    /// The counter just before apply; `None` until a reading succeeds (a server that
    /// was down counts from its first answer).
    baseline: Option<i64>,
    /// What a log error must name to count (the damaged relation's file and its name);
    /// empty: any error.
    names: Vec<String>,
    checksums_seen: bool,
    log_seen: bool,
}

/// The server log from an offset on.
#[derive(Debug)]
struct Tail {
    path: PathBuf,
    offset: u64,
    /// A line not ended yet when last read.
    partial: String,
}

/// A detector's first sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub detector: String,
    pub how: String,
}

impl PgWatch {
    /// A watch of the server `fault` acts on, if its target is a `postgres` target
    /// with a `data_dir`; reads where the log ends and the checksum counter now.
    pub async fn begin(fault: &Fault, targets: &Targets) -> Option<PgWatch> {
        let (name, _) = fault.target()?;
        let pg = targets.targets.get(name)?.postgres.as_ref()?;
        let data_dir = PathBuf::from(pg.data_dir.as_deref()?);
        let names = match fault {
            // The relation's file is added once apply found it ([`PgWatch::relation`]).
            Fault::PostgresCorrupt(c) => {
                let table = c.table.rsplit('.').next().unwrap_or(&c.table);
                vec![format!("\"{}\"", table.trim_matches('"'))]
            }
            _ => Vec::new(),
        };
        let log = log_file(&data_dir).map(|path| Tail {
            offset: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            path,
            partial: String::new(),
        });
        let mut watch = PgWatch {
            target: name.to_owned(),
            dsn: pg.dsn.clone(),
            data_dir,
            log,
            baseline: None,
            names,
            checksums_seen: false,
            log_seen: false,
        };
        watch.baseline = watch.checksum_failures().await;
        Some(watch)
    }

    /// The detectors this watch is: `TARGET checksums`, `TARGET server log`.
    pub fn detectors(&self) -> [String; 2] {
        [
            format!("{} checksums", self.target),
            format!("{} server log", self.target),
        ]
    }

    /// Adds the relation a `postgres.corrupt` damaged (its file relative to the data
    /// directory, as PostgreSQL's errors name it: `base/5/16390`) to what errors must name.
    pub fn relation(&mut self, undo: &UndoRecord) {
        if let UndoRecord::SavedPage { pg, file, .. } = undo
            && let Ok(rel) = Path::new(file).strip_prefix(&pg.data_dir)
        {
            self.names.push(rel.display().to_string());
            // The fault restarts the server with this log when its own was not a file.
            if self.log.is_none() {
                self.log = Some(Tail {
                    path: PathBuf::from(&pg.log),
                    offset: std::fs::metadata(&pg.log).map(|m| m.len()).unwrap_or(0),
                    partial: String::new(),
                });
            }
        }
    }

    /// The first signs since the last poll: each detector says once.
    pub async fn poll(&mut self) -> Vec<Sighting> {
        let [checksums, log] = self.detectors();
        let mut out = Vec::new();
        if !self.checksums_seen
            && let Some(now) = self.checksum_failures().await
        {
            match self.baseline {
                Some(before) if now > before => {
                    self.checksums_seen = true;
                    out.push(Sighting {
                        detector: checksums,
                        how: format!(
                            "pg_stat_database.checksum_failures rose from {before} to {now}"
                        ),
                    });
                }
                Some(_) => {}
                None => self.baseline = Some(now),
            }
        }
        if !self.log_seen
            && let Some(line) = self.first_error()
        {
            self.log_seen = true;
            out.push(Sighting {
                detector: log,
                how: line,
            });
        }
        out
    }

    /// The sum of `pg_stat_database.checksum_failures`, or `None` when the server does
    /// not answer.
    async fn checksum_failures(&self) -> Option<i64> {
        let ask = async {
            let mut config: tokio_postgres::Config = self.dsn.parse().ok()?;
            config.application_name("livefire/detector");
            let (client, conn) = config.connect(tokio_postgres::NoTls).await.ok()?;
            let task = tokio::spawn(conn);
            let row = client
                .query_one(
                    "select coalesce(sum(checksum_failures), 0)::int8 from pg_stat_database",
                    &[],
                )
                .await
                .ok();
            drop(client);
            let _ = task.await;
            row.map(|r| r.get::<_, i64>(0))
        };
        tokio::time::timeout(QUERY_TIMEOUT, ask)
            .await
            .ok()
            .flatten()
    }

    /// The first new log line that is an error this watch counts.
    fn first_error(&mut self) -> Option<String> {
        // The server may have moved to a new file (a restart, log rotation).
        if let Some(now) = log_file(&self.data_dir)
            && self.log.as_ref().is_none_or(|t| t.path != now)
        {
            let found = self.scan();
            self.log = Some(Tail {
                path: now,
                offset: 0,
                partial: String::new(),
            });
            if found.is_some() {
                return found;
            }
        }
        self.scan()
    }

    /// Reads the log from where it stopped; the first line that counts.
    fn scan(&mut self) -> Option<String> {
        let tail = self.log.as_mut()?;
        let mut f = std::fs::File::open(&tail.path).ok()?;
        let len = f.metadata().ok()?.len();
        if len < tail.offset {
            // Truncated: read it again from its start.
            tail.offset = 0;
        }
        f.seek(SeekFrom::Start(tail.offset)).ok()?;
        let mut bytes = Vec::new();
        f.take(MAX_READ).read_to_end(&mut bytes).ok()?;
        tail.offset += bytes.len() as u64;
        let text = format!("{}{}", tail.partial, String::from_utf8_lossy(&bytes));
        let (done, rest) = match text.rfind('\n') {
            Some(i) => (&text[..i], text[i + 1..].to_owned()),
            None => ("", text.clone()),
        };
        tail.partial = rest;
        done.lines()
            .find(|l| counts(l, &self.names))
            .map(|l| l.trim().to_owned())
    }
}

/// Whether a server log line is an error that names one of `names` (any error when
/// `names` is empty). PostgreSQL's levels are written `LEVEL:  message`.
fn counts(line: &str, names: &[String]) -> bool {
    let error = ["ERROR:", "FATAL:", "PANIC:"]
        .iter()
        .any(|l| line.contains(l));
    error && (names.is_empty() || names.iter().any(|n| line.contains(n.as_str())))
}

/// The file the server of `data_dir` logs to now: `current_logfiles` (the logging
/// collector's), else the postmaster's standard error when it is a file.
fn log_file(data_dir: &Path) -> Option<PathBuf> {
    if let Ok(text) = std::fs::read_to_string(data_dir.join("current_logfiles"))
        && let Some(path) = text.lines().find_map(|l| l.strip_prefix("stderr "))
    {
        return Some(data_dir.join(path.trim()));
    }
    let pidfile = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let pid: u32 = pidfile.lines().next()?.trim().parse().ok()?;
    std::fs::read_link(format!("/proc/{pid}/fd/2"))
        .ok()
        .filter(|p| p.is_absolute() && p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_count_when_they_name_the_relation() {
        let names = vec!["\"orders\"".to_string(), "base/5/16390".to_string()];
        // (line, counts with names, counts with none)
        let cases = [
            (
                "2026-12-03 13:00:00 UTC [42] ERROR:  invalid page in block 0 of relation base/5/16390",
                true,
                true,
            ),
            (
                "2026-12-03 13:00:00 UTC [42] WARNING:  page verification failed, calculated checksum 1 but expected 2",
                false,
                false,
            ),
            (
                "2026-12-03 13:00:00 UTC [42] ERROR:  relation \"orders\" does not exist",
                true,
                true,
            ),
            (
                "2026-12-03 13:00:00 UTC [42] ERROR:  duplicate key value violates unique constraint \"t_pkey\"",
                false,
                true,
            ),
            (
                "2026-12-03 13:00:00 UTC [42] FATAL:  role \"app\" is not permitted to log in",
                false,
                true,
            ),
            (
                "2026-12-03 13:00:00 UTC [42] STATEMENT:  select * from orders",
                false,
                false,
            ),
            (
                "2026-12-03 13:00:00 UTC [42] LOG:  database system is ready to accept connections",
                false,
                false,
            ),
        ];
        for (line, named, any) in cases {
            assert_eq!(counts(line, &names), named, "{line}");
            assert_eq!(counts(line, &[]), any, "{line}");
        }
    }
}
