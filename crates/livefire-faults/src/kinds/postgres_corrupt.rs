//! `postgres.corrupt`: damages one page of a table's file on disk, the server stopped
//! around the write, so that PostgreSQL reads the damage when it next touches the page;
//! undo puts the saved page back byte for byte.
//!
//! `prepare` asks the server (through the target's DSN) where the table's file is
//! (`pg_relation_filepath`) and refuses a file outside the declared `data_dir`. The
//! page can only be read once the server is stopped (until then it may hold a newer
//! copy in memory), which is after the engine wrote the undo record: so the record
//! (`UndoRecord::SavedPage`) names a copy file in livefire's home, and `apply` writes
//! the saved page there, fsync'd, before it writes any damage. Undo refuses to write
//! over a page that changed since the damage was written (PostgreSQL or a person wrote
//! it): the saved copy stays, and the message says where. Once the page is back, the
//! copy is removed: the home keeps only pages still to restore.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use livefire_core::undo::{PgCluster, UndoRecord};
use livefire_spec::{CorruptMode, PostgresCorrupt, PostgresTarget};
use serde::{Deserialize, Serialize};

use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets, exec, target};

const KIND: &str = "postgres.corrupt";

/// How long `pg_ctl` may take to stop or start the server.
const PG_CTL_TIMEOUT_MS: u64 = 90_000;
/// How long the question to the server (where is the table's file) may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);
/// How many bytes `flip` inverts.
const FLIPPED: usize = 8;

/// Why `postgres.corrupt` refused or failed. Nothing is applied when `prepare` fails.
#[derive(Debug, thiserror::Error)]
pub enum CorruptError {
    #[error(
        "target `{0}` declares no `data_dir`: `postgres.corrupt` writes to the cluster's files, so name its data directory"
    )]
    NoDataDir(String),
    #[error(
        "target `{0}` declares no `user`: livefire runs as root and PostgreSQL refuses root, so add `user: postgres` (the server's owner)"
    )]
    NoUser(String),
    #[error("data_dir {dir} of target `{target}` is not a PostgreSQL cluster: {why}")]
    NotACluster {
        target: String,
        dir: String,
        why: String,
    },
    #[error(
        "the server of data_dir {0} is not running: start it first (livefire asks it where the table's file is)"
    )]
    NotRunning(String),
    #[error("cannot connect to target `{target}` ({dsn}): {why}")]
    Connect {
        target: String,
        dsn: String,
        why: String,
    },
    #[error("target `{target}`: {why}")]
    Query { target: String, why: String },
    #[error(
        "table `{table}` does not exist in the database target `{target}`'s DSN names: check `table:` (schema-qualify it if it is not on the search_path)"
    )]
    NoTable { target: String, table: String },
    #[error(
        "`{table}` is not a user table ({what}): `postgres.corrupt` damages tables only, never a system catalog"
    )]
    NotUserTable { table: String, what: String },
    #[error(
        "target `{target}`'s DSN reaches the server of {reached}, not the one in data_dir {declared}: point them at one cluster"
    )]
    OtherCluster {
        target: String,
        reached: String,
        declared: String,
    },
    #[error(
        "the file of table `{table}` is {file}, outside data_dir {dir} (a tablespace elsewhere?): livefire touches nothing outside the declared data_dir"
    )]
    OutsideDataDir {
        table: String,
        file: String,
        dir: String,
    },
    #[error(
        "table `{table}` has {pages} page(s) in {file}; page {page} does not exist: choose `page:` below {pages}"
    )]
    NoSuchPage {
        table: String,
        file: String,
        page: u64,
        pages: u64,
    },
    #[error("table `{table}` has no page on disk yet ({file} is empty): insert rows first")]
    EmptyTable { table: String, file: String },
    #[error(
        "no livefire home to keep the saved page in: set LIVEFIRE_HOME (or HOME) so the page can be put back"
    )]
    NoHome,
    #[error(
        "a saved copy of this page from an earlier fault is still pending in {0}: run `livefire recover` first"
    )]
    Pending(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the saved copy {path} is unreadable ({why}): the page is not touched; restore it by hand"
    )]
    BadCopy { path: String, why: String },
    #[error(
        "page {page} of {file} is already what `{mode}` would write: nothing to damage, nothing applied"
    )]
    NoChange {
        page: u64,
        file: String,
        mode: &'static str,
    },
    #[error(
        "the page at offset {offset} of {file} changed since livefire damaged it (PostgreSQL or a person wrote it): refusing to write over it; the saved page is in {copy}"
    )]
    Changed {
        file: String,
        offset: u64,
        copy: String,
    },
    #[error(
        "the page at offset {offset} of {file} reads back different from the saved copy after restoring it"
    )]
    NotRestored { file: String, offset: u64 },
}

impl CorruptError {
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> FaultError {
        FaultError::Corrupt(CorruptError::Io {
            what,
            path: path.display().to_string(),
            source,
        })
    }
}

impl From<CorruptError> for FaultError {
    fn from(e: CorruptError) -> FaultError {
        FaultError::Corrupt(e)
    }
}

pub(crate) struct Corrupt<'a>(pub &'a PostgresCorrupt);

impl Corrupt<'_> {
    /// The target's PostgreSQL declaration and its data_dir.
    fn declared<'t>(
        &self,
        targets: &'t Targets,
    ) -> Result<(&'t PostgresTarget, &'t str), FaultError> {
        let name = &self.0.target;
        let pg =
            target(targets, name)?
                .postgres
                .as_ref()
                .ok_or_else(|| FaultError::WrongTarget {
                    name: name.clone(),
                    kind: KIND,
                    wants: "postgres",
                })?;
        let dir = pg
            .data_dir
            .as_deref()
            .ok_or_else(|| CorruptError::NoDataDir(name.clone()))?;
        Ok((pg, dir))
    }
}

impl Kind for Corrupt<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        let (pg, _) = self.declared(targets)?;
        match &pg.user {
            None if nix::unistd::geteuid().is_root() => {
                Err(CorruptError::NoUser(self.0.target.clone()).into())
            }
            Some(u) if exec::lookup_user(u).is_none() => {
                Err(exec::ExecError::NoUser(u.clone()).into())
            }
            _ => Ok(()),
        }
    }

    fn prepare(&self, targets: &Targets, _activity: &str) -> Result<Prepared, FaultError> {
        let name = &self.0.target;
        let table = &self.0.table;
        let (pg, declared_dir) = self.declared(targets)?;
        let home = targets.home.as_ref().ok_or(CorruptError::NoHome)?;
        let not_a_cluster = |why: String| CorruptError::NotACluster {
            target: name.clone(),
            dir: declared_dir.to_owned(),
            why,
        };
        let data_dir = std::fs::canonicalize(declared_dir)
            .map_err(|e| not_a_cluster(format!("cannot open it: {e}")))?;
        for f in ["PG_VERSION", "global/pg_control"] {
            if !data_dir.join(f).is_file() {
                return Err(not_a_cluster(format!("it has no {f}")).into());
            }
        }
        let server = Postmaster::of(&data_dir)
            .ok_or_else(|| CorruptError::NotRunning(data_dir.display().to_string()))?;
        let bin_dir = match &pg.bin_dir {
            Some(b) => PathBuf::from(b),
            // The running server's own programs: the same version as its files.
            None => server
                .exe
                .parent()
                .map(Path::to_path_buf)
                .ok_or_else(|| not_a_cluster("its server's program is unknown".into()))?,
        };
        if !bin_dir.join("pg_ctl").is_file() {
            return Err(not_a_cluster(format!(
                "there is no pg_ctl in {}: declare the server's `bin_dir`",
                bin_dir.display()
            ))
            .into());
        }
        let found = ask_server(name, &pg.dsn, table)?;
        let same = match &found.data_directory {
            Some(dir) => std::fs::canonicalize(dir).is_ok_and(|d| d == data_dir),
            // Not allowed to read data_directory: the port must be the server's.
            None => found.port.is_some() && found.port == server.port,
        };
        if !same {
            return Err(CorruptError::OtherCluster {
                target: name.clone(),
                reached: found
                    .data_directory
                    .clone()
                    .or(found.port.map(|p| format!("port {p}")))
                    .unwrap_or_else(|| "an unknown data directory".into()),
                declared: data_dir.display().to_string(),
            }
            .into());
        }
        if found.schema == "pg_catalog"
            || found.schema == "information_schema"
            || found.schema.starts_with("pg_toast")
            || !matches!(found.relkind.as_str(), "r" | "m")
        {
            return Err(CorruptError::NotUserTable {
                table: table.clone(),
                what: format!("relkind {} in schema {}", found.relkind, found.schema),
            }
            .into());
        }
        let joined = data_dir.join(&found.path);
        let file = std::fs::canonicalize(&joined)
            .map_err(|e| CorruptError::io("cannot open the table's file", &joined, e))?;
        if !file.starts_with(&data_dir) || !file.is_file() {
            return Err(CorruptError::OutsideDataDir {
                table: table.clone(),
                file: file.display().to_string(),
                dir: data_dir.display().to_string(),
            }
            .into());
        }
        let size = std::fs::metadata(&file)
            .map_err(|e| CorruptError::io("cannot read", &file, e))?
            .len();
        let pages = size / found.block_size;
        let file_text = file.display().to_string();
        if pages == 0 {
            return Err(CorruptError::EmptyTable {
                table: table.clone(),
                file: file_text,
            }
            .into());
        }
        let page = match self.0.page {
            Some(p) if p >= pages => {
                return Err(CorruptError::NoSuchPage {
                    table: table.clone(),
                    file: file_text,
                    page: p,
                    pages,
                }
                .into());
            }
            Some(p) => p,
            None => splitmix(targets.seed) % pages,
        };
        let copy = home.join("saved").join(format!(
            "{:016x}-{}-{page}.json",
            fnv(data_dir.as_os_str().as_encoded_bytes()),
            found.path.replace('/', "_")
        ));
        let cluster = PgCluster {
            data_dir: data_dir.display().to_string(),
            bin_dir: bin_dir.display().to_string(),
            user: pg.user.clone(),
            options: server.options,
            log: server
                .log
                .unwrap_or_else(|| data_dir.join("livefire-corrupt.log"))
                .display()
                .to_string(),
        };
        let at = Page {
            pg: cluster,
            file: file_text,
            offset: page * found.block_size,
            len: found.block_size,
            copy: copy.display().to_string(),
        };
        let resources = vec![format!("postgres:{}", at.pg.data_dir)];
        Ok(Prepared::new(
            KIND,
            name,
            Some(at.record()),
            resources,
            Corrupting {
                at,
                page,
                table: table.clone(),
                relpath: found.path,
                mode: self.0.mode.unwrap_or(CorruptMode::Flip),
                seed: splitmix(targets.seed ^ page),
            },
            targets,
        ))
    }
}

/// Where the page is and how to stop and start its server: the undo record's fields.
#[derive(Debug, Clone)]
struct Page {
    pg: PgCluster,
    file: String,
    offset: u64,
    len: u64,
    copy: String,
}

impl Page {
    fn record(&self) -> UndoRecord {
        UndoRecord::SavedPage {
            pg: self.pg.clone(),
            file: self.file.clone(),
            offset: self.offset,
            len: self.len,
            copy: self.copy.clone(),
        }
    }

    fn read(&self) -> Result<Vec<u8>, FaultError> {
        let path = Path::new(&self.file);
        let mut f = File::open(path).map_err(|e| CorruptError::io("cannot open", path, e))?;
        let mut buf = vec![0; self.len as usize];
        f.seek(SeekFrom::Start(self.offset))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| CorruptError::io("cannot read the page of", path, e))?;
        Ok(buf)
    }

    /// Writes `bytes` over the page and flushes them to the disk.
    fn write(&self, bytes: &[u8]) -> Result<(), FaultError> {
        let path = Path::new(&self.file);
        let mut f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| CorruptError::io("cannot open for writing", path, e))?;
        f.seek(SeekFrom::Start(self.offset))
            .and_then(|_| f.write_all(bytes))
            .and_then(|_| f.sync_data())
            .map_err(|e| CorruptError::io("cannot write the page of", path, e))
    }

    /// The saved copy, or `None` when `apply` never saved one (so never damaged).
    fn saved(&self) -> Result<Option<SavedCopy>, FaultError> {
        let path = Path::new(&self.copy);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(CorruptError::io("cannot read the saved copy", path, e)),
        };
        let bad = |why: String| CorruptError::BadCopy {
            path: self.copy.clone(),
            why,
        };
        let c: SavedCopy = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let (saved, written) = (c.saved_bytes(), c.written_bytes());
        if c.file != self.file
            || c.offset != self.offset
            || saved.as_ref().map(Vec::len) != Some(self.len as usize)
            || written.as_ref().map(Vec::len) != Some(self.len as usize)
        {
            return Err(bad("it is not a copy of this page".into()).into());
        }
        Ok(Some(c))
    }

    /// The folder of the saved copy, created if needed.
    fn copy_dir(&self) -> Result<&Path, FaultError> {
        let dir = Path::new(&self.copy).parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(dir).map_err(|e| CorruptError::io("cannot create", dir, e))?;
        Ok(dir)
    }

    /// Removes the copy once its page is back (the folder fsync'd), so saved pages do not
    /// pile up in the home. Where removing fails, the copy is marked restored instead,
    /// so it is not taken for a page still to put back.
    fn forget(&self, copy: SavedCopy) -> Result<(), FaultError> {
        let path = Path::new(&self.copy);
        match std::fs::remove_file(path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    // The page is back either way; a lost removal leaves a restored copy.
                    let _ = File::open(dir).and_then(|d| d.sync_all());
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(_) => self.keep(&SavedCopy {
                restored: true,
                ..copy
            }),
        }
    }

    /// Writes the copy durably: a temporary file, fsync'd, renamed, the folder fsync'd.
    fn keep(&self, copy: &SavedCopy) -> Result<(), FaultError> {
        let path = Path::new(&self.copy);
        let dir = self.copy_dir()?;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(copy).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| CorruptError::io("cannot write the saved copy", path, e))
    }
}

/// The copy file: the page as it was, what was written over it, and whether undo put
/// it back (`restored` only where removing the copy afterwards failed).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedCopy {
    v: u32,
    file: String,
    offset: u64,
    mode: String,
    /// Hex.
    saved: String,
    /// Hex.
    written: String,
    restored: bool,
}

impl SavedCopy {
    fn saved_bytes(&self) -> Option<Vec<u8>> {
        unhex(&self.saved)
    }
    fn written_bytes(&self) -> Option<Vec<u8>> {
        unhex(&self.written)
    }
}

#[derive(Debug)]
struct Corrupting {
    at: Page,
    page: u64,
    table: String,
    relpath: String,
    mode: CorruptMode,
    seed: u64,
}

impl Action for Corrupting {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        let at = &self.at;
        if let Some(c) = at.saved()?
            && !c.restored
        {
            return Err(CorruptError::Pending(at.copy.clone()).into());
        }
        // Where the saved page goes must exist before the server is stopped for it.
        at.copy_dir()?;
        stop(&at.pg)?;
        // From here on the server is down: whatever fails before the damage is written
        // starts it again (undo would too).
        let damaged = (|| {
            let saved = at.read()?;
            let written = damage(&saved, self.mode, self.seed);
            if written == saved {
                return Err(CorruptError::NoChange {
                    page: self.page,
                    file: at.file.clone(),
                    mode: self.mode.name(),
                }
                .into());
            }
            at.keep(&SavedCopy {
                v: 1,
                file: at.file.clone(),
                offset: at.offset,
                mode: self.mode.name().into(),
                saved: hex(&saved),
                written: hex(&written),
                restored: false,
            })?;
            at.write(&written)
        })();
        if let Err(e) = damaged {
            let _ = start(&at.pg);
            return Err(e);
        }
        start(&at.pg)?;
        Ok(format!(
            "page {} of table `{}` ({}) damaged ({}); the server restarted and reads it from disk; saved page in {}",
            self.page,
            self.table,
            self.relpath,
            self.mode.name(),
            at.copy
        ))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let at = &self.at;
        let Some(copy) = at.saved()? else {
            return Ok(Some(Seen {
                applied: false,
                clean: true,
                detail: format!(
                    "no saved copy in {}: the page was never damaged, or undo restored it",
                    at.copy
                ),
            }));
        };
        let now = at.read()?;
        let same = copy.saved_bytes().is_some_and(|s| s == now);
        // Once undo put the page back (and read it back byte-identical), PostgreSQL may
        // write it again (hint bits, new rows): that is the database at work, not damage.
        Ok(Some(Seen {
            applied: !copy.restored && !same,
            clean: copy.restored || same,
            detail: format!(
                "page {} of {} is {} the saved copy{}",
                self.page,
                at.file,
                if same {
                    "byte-identical to"
                } else {
                    "different from"
                },
                if copy.restored {
                    " (restored by undo, byte-identical when it was)"
                } else {
                    ""
                }
            ),
        }))
    }
}

/// Undoes a `postgres.corrupt` from its record: with the server stopped, puts the saved
/// page back if the page still holds what livefire wrote, then starts the server.
pub(crate) fn undo(
    pg: &PgCluster,
    file: &str,
    offset: u64,
    len: u64,
    copy: &str,
) -> Result<String, FaultError> {
    let at = Page {
        pg: pg.clone(),
        file: file.to_owned(),
        offset,
        len,
        copy: copy.to_owned(),
    };
    let saved = match at.saved()? {
        None => {
            start(pg)?;
            return Ok(format!(
                "no saved copy in {copy}: the page was never damaged, or was already restored; the server runs"
            ));
        }
        Some(c) if c.restored => {
            at.forget(c)?;
            start(pg)?;
            return Ok(format!(
                "the page of {file} was already restored; the server runs"
            ));
        }
        Some(c) => c,
    };
    // Checked when read: both are valid hex of the page's length.
    let (before, written) = (
        saved.saved_bytes().unwrap_or_default(),
        saved.written_bytes().unwrap_or_default(),
    );
    stop(pg)?;
    let now = at.read()?;
    let done = if now == written {
        at.write(&before)?;
        if at.read()? != before {
            let _ = start(pg);
            return Err(CorruptError::NotRestored {
                file: file.into(),
                offset,
            }
            .into());
        }
        format!(
            "{len} bytes at offset {offset} of {file} restored, byte-identical to the saved page"
        )
    } else if now == before {
        // Saved, then stopped before the damage was written.
        format!("the page at offset {offset} of {file} was never damaged")
    } else {
        let _ = start(pg);
        return Err(CorruptError::Changed {
            file: file.into(),
            offset,
            copy: copy.into(),
        }
        .into());
    };
    // The page is as it was: its copy is no longer needed.
    at.forget(saved)?;
    start(pg)?;
    Ok(format!("{done}; the server runs"))
}

/// The page with the damage `mode` writes. `seed` picks the bytes `flip` inverts.
fn damage(page: &[u8], mode: CorruptMode, seed: u64) -> Vec<u8> {
    let mut out = page.to_vec();
    match mode {
        CorruptMode::Zero => out.fill(0),
        CorruptMode::TornHeader => {
            // pd_lower, pd_upper, pd_special, pd_pagesize_version (bytes 12..20).
            for b in out.iter_mut().take(20).skip(12) {
                *b = 0xff;
            }
        }
        CorruptMode::Flip => {
            // Inside the tuples (pd_upper..pd_special) when the header says where they
            // are, so the rows are garbled even without checksums; else past the header.
            let word = |i: usize| u64::from(u16::from_le_bytes([page[i], page[i + 1]]));
            let len = page.len() as u64;
            let (upper, special) = if len >= 24 {
                (word(14), word(16))
            } else {
                (0, 0)
            };
            let (lo, hi) = if 24 <= upper && upper < special && special <= len {
                (upper, special)
            } else {
                (24.min(len), len)
            };
            let span = hi.saturating_sub(lo).max(1);
            let mut state = seed;
            let mut picked = Vec::new();
            for _ in 0..FLIPPED * 4 {
                if picked.len() == FLIPPED.min(span as usize) {
                    break;
                }
                state = splitmix(state);
                let at = (lo + state % span) as usize;
                if at < out.len() && !picked.contains(&at) {
                    picked.push(at);
                    out[at] ^= 0xff;
                }
            }
        }
    }
    out
}

/// The running postmaster of a data directory, from postmaster.pid and /proc.
struct Postmaster {
    /// The port it listens on (postmaster.pid's fourth line).
    port: Option<u16>,
    exe: PathBuf,
    /// Its command line without the program (postmaster.opts).
    options: String,
    /// The file its output goes to, if it is a file.
    log: Option<PathBuf>,
}

impl Postmaster {
    fn of(data_dir: &Path) -> Option<Postmaster> {
        let pidfile = std::fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
        let mut lines = pidfile.lines();
        let pid: u32 = lines.next()?.trim().parse().ok()?;
        let port = lines.nth(2).and_then(|p| p.trim().parse().ok());
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        let opts = std::fs::read_to_string(data_dir.join("postmaster.opts")).unwrap_or_default();
        let options = options_of(&opts);
        let log = std::fs::read_link(format!("/proc/{pid}/fd/2"))
            .ok()
            .filter(|p| p.is_absolute() && p.is_file());
        Some(Postmaster {
            port,
            exe,
            options,
            log,
        })
    }
}

/// The arguments of a postmaster.opts line (`/bin/postgres "-D" "/data" "-p" "5433"`),
/// without the program, as `pg_ctl -o` takes them (it passes them to a shell).
fn options_of(line: &str) -> String {
    let line = line.trim();
    match line.find(" \"") {
        Some(i) => line[i + 1..].to_owned(),
        None => String::new(),
    }
}

/// `pg_ctl` of the cluster, as its user (when livefire is root, else as itself).
fn pg_ctl(pg: &PgCluster, args: &str) -> Result<exec::Output, FaultError> {
    let run = format!(
        "{} -D {} {args}",
        quote(&format!("{}/pg_ctl", pg.bin_dir)),
        quote(&pg.data_dir)
    );
    let user = pg
        .user
        .as_deref()
        .filter(|_| nix::unistd::geteuid().is_root());
    Ok(exec::run(
        &run,
        user,
        Some(&pg.data_dir),
        PG_CTL_TIMEOUT_MS,
    )?)
}

fn running(pg: &PgCluster) -> Result<bool, FaultError> {
    // `pg_ctl status`: 0 running, 3 not running.
    Ok(pg_ctl(pg, "status")?.code == Some(0))
}

fn stop(pg: &PgCluster) -> Result<(), FaultError> {
    if running(pg)? {
        pg_ctl(pg, "-m fast -w -t 60 stop")?.check()?;
    }
    Ok(())
}

fn start(pg: &PgCluster) -> Result<(), FaultError> {
    if !running(pg)? {
        let args = format!(
            "-l {} -o {} -w -t 60 start",
            quote(&pg.log),
            quote(&pg.options)
        );
        pg_ctl(pg, &args)?.check()?;
    }
    Ok(())
}

/// `s` as one shell word.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What the server says about the table.
#[derive(Debug)]
struct Found {
    /// Relative to the data directory (`base/16384/16385`).
    path: String,
    relkind: String,
    schema: String,
    block_size: u64,
    /// `None` when the DSN's role may not read it.
    data_directory: Option<String>,
    port: Option<u16>,
}

/// Asks the server behind `dsn` where `table`'s file is, on a thread of its own with its
/// own runtime (the engine calls `prepare` from blocking code, tests from anywhere).
fn ask_server(target: &str, dsn: &str, table: &str) -> Result<Found, FaultError> {
    let (dsn_owned, table_owned) = (dsn.to_owned(), table.to_owned());
    let answer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| (true, e.to_string()))?;
        rt.block_on(async {
            tokio::time::timeout(QUERY_TIMEOUT, query(&dsn_owned, &table_owned))
                .await
                .unwrap_or_else(|_| {
                    Err((
                        true,
                        format!("no answer within {}s", QUERY_TIMEOUT.as_secs()),
                    ))
                })
        })
    })
    .join()
    .unwrap_or_else(|_| Err((false, "the query thread panicked".into())));
    match answer {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(CorruptError::NoTable {
            target: target.into(),
            table: table.into(),
        }
        .into()),
        Err((true, why)) => Err(CorruptError::Connect {
            target: target.into(),
            dsn: dsn.into(),
            why,
        }
        .into()),
        Err((false, why)) => Err(CorruptError::Query {
            target: target.into(),
            why,
        }
        .into()),
    }
}

/// The query behind [`ask_server`]. Errors: (true, why) for the connection, (false, why)
/// for a query.
async fn query(dsn: &str, table: &str) -> Result<Option<Found>, (bool, String)> {
    let text = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => e.to_string(),
    };
    let (client, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .map_err(|e| (true, text(e)))?;
    let task = tokio::spawn(conn);
    let rows = client
        .query(
            "select pg_relation_filepath(c.oid), c.relkind::text, n.nspname::text, \
             current_setting('block_size')::int8, inet_server_port() \
             from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where c.oid = to_regclass($1)",
            &[&table],
        )
        .await
        .map_err(|e| (false, text(e)))?;
    let found = match rows.first() {
        None => None,
        Some(row) => {
            let path: Option<String> = row.get(0);
            // Only superusers and pg_read_all_settings may read it.
            let data_directory = client
                .query_one("select current_setting('data_directory')", &[])
                .await
                .ok()
                .map(|r| r.get::<_, String>(0));
            Some(Found {
                path: path.unwrap_or_default(),
                relkind: row.get(1),
                schema: row.get(2),
                block_size: row.get::<_, i64>(3).max(1) as u64,
                data_directory,
                port: row
                    .get::<_, Option<i32>>(4)
                    .and_then(|p| u16::try_from(p).ok()),
            })
        }
    };
    drop(client);
    task.abort();
    Ok(found)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).ok().filter(|p| p.len() == 2)?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

/// One step of splitmix64: a well-mixed number from `x`.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, to name a data directory's copies in a file name.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_changes_the_page_and_only_where_it_says() {
        let mut page = vec![0u8; 8192];
        // A heap page: header, tuples from pd_upper = 8000 to pd_special = 8192.
        page[14..16].copy_from_slice(&8000u16.to_le_bytes());
        page[16..18].copy_from_slice(&8192u16.to_le_bytes());
        for (i, b) in page.iter_mut().enumerate().skip(8000) {
            *b = i as u8;
        }
        let flipped = damage(&page, CorruptMode::Flip, 42);
        let diff: Vec<usize> = (0..8192).filter(|&i| flipped[i] != page[i]).collect();
        assert_eq!(diff.len(), FLIPPED, "{diff:?}");
        assert!(diff.iter().all(|&i| i >= 8000), "{diff:?}");
        assert_eq!(damage(&page, CorruptMode::Flip, 42), flipped, "seeded");
        let torn = damage(&page, CorruptMode::TornHeader, 0);
        assert!(torn[12..20].iter().all(|&b| b == 0xff));
        assert_eq!(torn[20..], page[20..]);
        assert!(damage(&page, CorruptMode::Zero, 0).iter().all(|&b| b == 0));
    }

    #[test]
    fn postmaster_opts_become_pg_ctl_options() {
        assert_eq!(
            options_of("/usr/lib/postgresql/15/bin/postgres \"-D\" \"/tmp/p\" \"-p\" \"5433\"\n"),
            "\"-D\" \"/tmp/p\" \"-p\" \"5433\""
        );
        assert_eq!(options_of("/usr/bin/postgres\n"), "");
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("0g"), None);
    }
}
