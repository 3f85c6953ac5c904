//! `disk.fill`: one file in the `path` target's directory, allocated with fallocate (or
//! written with zeros where the filesystem cannot allocate), by a `size` or up to a
//! `level` of use (used / (used + available), as `df` shows it); with neither, until
//! `keep_free` is left. A fill that would leave less than `keep_free` for the system is
//! refused. The file starts with a marker naming its token; the undo record names the
//! file, the marker and the size, and deletes the file only if it is still ours.
//! Verify: the file exists with its whole size allocated; clean once it is gone.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use livefire_core::undo::UndoRecord;
use livefire_spec::DiskFill;

use super::{bytes, path_target};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets, stress};

const KIND: &str = "disk.fill";

/// `keep_free` may not go below this: the system needs room to keep running.
const FLOOR: u64 = livefire_spec::DISK_KEEP_FREE_FLOOR;

/// A fill smaller than this fills nothing worth measuring (and must hold the marker).
const MIN_FILL: u64 = livefire_spec::DISK_FILL_MIN;

pub(crate) struct Fill<'a>(pub &'a DiskFill);

/// What `statvfs` says of a filesystem, in bytes: as `df` counts, `used` is what is
/// taken and `available` what an unprivileged user may still write.
#[derive(Debug, Clone, Copy)]
struct Space {
    used: u64,
    available: u64,
}

impl Space {
    fn of(dir: &Path) -> Result<Space, FaultError> {
        let s = nix::sys::statvfs::statvfs(dir).map_err(|e| FaultError::Io {
            what: format!("cannot read the filesystem of {}", dir.display()),
            source: e.into(),
        })?;
        let unit = s.fragment_size() as u64;
        Ok(Space {
            used: (s.blocks() as u64).saturating_sub(s.blocks_free() as u64) * unit,
            available: s.blocks_available() as u64 * unit,
        })
    }

    fn percent_used(&self) -> f64 {
        let all = self.used + self.available;
        if all == 0 {
            100.0
        } else {
            self.used as f64 * 100.0 / all as f64
        }
    }
}

impl Fill<'_> {
    fn margin(&self, space: Space) -> u64 {
        match self.0.keep_free {
            Some(k) => k.0,
            None => ((space.used + space.available) / 20).max(FLOOR),
        }
    }

    /// How many bytes to write, or why not.
    fn amount(&self, dir: &Path, space: Space, margin: u64) -> Result<u64, FaultError> {
        let refuse = |why: String| Err(FaultError::Refused { kind: KIND, why });
        let want = match (self.0.size, self.0.level) {
            (Some(size), _) => size.0,
            (None, Some(level)) => {
                let all = (space.used + space.available) as f64;
                let target = (level.0 * all).ceil() as u64;
                if target <= space.used {
                    return refuse(format!(
                        "the filesystem of {} is already {:.1}% used, at or above `level: {}%`",
                        dir.display(),
                        space.percent_used(),
                        level.0 * 100.0
                    ));
                }
                target - space.used
            }
            (None, None) => space.available.saturating_sub(margin),
        };
        if want < MIN_FILL || want.saturating_add(margin) > space.available {
            return refuse(format!(
                "filling {} in {} would leave less than the {} that must stay free ({} is free now): \
                 fill at most {}, or lower `keep_free`",
                bytes(want),
                dir.display(),
                bytes(margin),
                bytes(space.available),
                bytes(space.available.saturating_sub(margin))
            ));
        }
        Ok(want)
    }
}

impl Fill<'_> {
    /// The directory, how much to write there and the margin, as the filesystem is now.
    fn plan(&self, targets: &Targets) -> Result<(PathBuf, u64, u64), FaultError> {
        let dir = PathBuf::from(path_target(targets, &self.0.target, KIND)?);
        if !dir.is_dir() {
            return Err(FaultError::Refused {
                kind: KIND,
                why: format!(
                    "target `{}`: {} is not a directory: name an existing directory",
                    self.0.target,
                    dir.display()
                ),
            });
        }
        let space = Space::of(&dir)?;
        let margin = self.margin(space);
        let size = self.amount(&dir, space, margin)?;
        Ok((dir, size, margin))
    }
}

impl Kind for Fill<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        path_target(targets, &self.0.target, KIND)?;
        if let Some((_, why)) = self.0.mistakes().into_iter().next() {
            return Err(FaultError::Refused { kind: KIND, why });
        }
        // What the filesystem shows now; `prepare` and `apply` look again.
        self.plan(targets).map(drop)
    }

    fn prepare(&self, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
        let (dir, size, margin) = self.plan(targets)?;
        let token = stress::new_token("fill", activity);
        let path = dir.join(&token);
        let record = UndoRecord::FillFile {
            path: path.display().to_string(),
            marker: format!("livefire disk.fill {token}\n"),
            size,
        };
        Ok(Prepared::new(
            KIND,
            &self.0.target,
            Some(record.clone()),
            vec![record.resource()],
            Filled {
                prefix: stress::token_prefix("fill", activity),
                dir,
                path,
                marker: format!("livefire disk.fill {token}\n"),
                size,
                margin,
            },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Filled {
    /// What verify looks for: a fill file of this activity (see `stress::token_prefix`).
    prefix: String,
    dir: PathBuf,
    path: PathBuf,
    marker: String,
    size: u64,
    margin: u64,
}

impl Action for Filled {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        // The filesystem may have filled since `prepare`: look again before writing.
        let space = Space::of(&self.dir)?;
        if self.size.saturating_add(self.margin) > space.available {
            return Err(FaultError::Refused {
                kind: KIND,
                why: format!(
                    "{} is free in {} now; filling {} would leave less than the {} that must stay free",
                    bytes(space.available),
                    self.dir.display(),
                    bytes(self.size),
                    bytes(self.margin)
                ),
            });
        }
        let io = |what: &str| {
            let what = format!("{what} {}", self.path.display());
            move |source| FaultError::Io { what, source }
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.path)
            .map_err(io("cannot create"))?;
        file.write_all(self.marker.as_bytes())
            .map_err(io("cannot write"))?;
        let how = match nix::fcntl::fallocate(
            &file,
            nix::fcntl::FallocateFlags::empty(),
            0,
            self.size as i64,
        ) {
            Ok(()) => "allocated",
            Err(nix::Error::EOPNOTSUPP) => {
                let zeros = vec![0u8; 1 << 20];
                let mut left = self.size.saturating_sub(self.marker.len() as u64);
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    file.write_all(&zeros[..n]).map_err(io("cannot write"))?;
                    left -= n as u64;
                }
                "written"
            }
            Err(e) => return Err(io("cannot allocate")(e.into())),
        };
        file.sync_all().map_err(io("cannot sync"))?;
        let after = Space::of(&self.dir)?;
        Ok(format!(
            "{} {how} in {} ({:.1}% used, {} free)",
            bytes(self.size),
            self.path.display(),
            after.percent_used(),
            bytes(after.available)
        ))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        let found = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with(&self.prefix));
        Ok(Some(
            match found.and_then(|e| Some((e.path(), e.metadata().ok()?))) {
                Some((path, m)) => Seen {
                    // Every byte of it allocated: the filesystem really lost that room.
                    applied: m.len() >= self.marker.len() as u64 && m.blocks() * 512 >= m.len(),
                    clean: false,
                    detail: format!(
                        "{} holds {} of {}",
                        path.display(),
                        bytes(m.blocks() * 512),
                        bytes(m.len())
                    ),
                },
                None => Seen {
                    applied: false,
                    clean: true,
                    detail: format!("no {}* in {}", self.prefix, self.dir.display()),
                },
            },
        ))
    }
}

/// Deletes a fill file, only if it is still the one livefire wrote: it starts with
/// `marker` and is no longer than `size`. A file that is gone has nothing to undo.
pub(crate) fn undo(path: &str, marker: &str, size: u64) -> Result<String, FaultError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(format!("{path} is gone; nothing to undo"));
        }
        Err(source) => {
            return Err(FaultError::Io {
                what: format!("cannot open fill file {path}"),
                source,
            });
        }
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let mut head = vec![0u8; marker.len()];
    // An empty file at the record's name (its token is unique) is one whose apply
    // failed before the marker was written.
    let ours = len == 0
        || (len <= size && file.read_exact(&mut head).is_ok() && head == marker.as_bytes());
    if !ours {
        return Err(FaultError::Refused {
            kind: KIND,
            why: format!(
                "refusing to delete {path}: it is not the file livefire wrote (no marker, or larger than {}); \
                 delete it by hand if it is, then `livefire recover --forget`",
                bytes(size)
            ),
        });
    }
    std::fs::remove_file(path).map_err(|source| FaultError::Io {
        what: format!("cannot delete fill file {path}"),
        source,
    })?;
    Ok(format!("{path} deleted ({} freed)", bytes(len)))
}
