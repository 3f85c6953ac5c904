//! `cpu.stress`, `memory.stress`, `disk.fill` below the engine: bad input is refused with
//! nothing applied, and a fill really takes the room it says on a small filesystem of the
//! test's own (a tmpfs, when root) and gives it back on undo. That the stress workers
//! burn and hold is proven where the `livefire` program is built
//! (crates/livefire/tests/it/resources.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use livefire_core::undo::UndoRecord;
use livefire_faults::{Targets, prepare, undo};
use livefire_spec::{Fault, HostTarget, Target};

use crate::spec;

/// A 64MiB tmpfs mounted on a temp dir, unmounted when dropped; `None` (after saying
/// SKIPPED) when this test cannot mount one.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn new() -> Option<SmallFs> {
        if !nix::unistd::geteuid().is_root() {
            livefire_testkit::skip_unsupported("mounting a 64MiB tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "lf-test-fill"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            livefire_testkit::skip_unsupported("`mount -t tmpfs` failed here (a container?)");
            return None;
        }
        Some(SmallFs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// (used, available) bytes, as `df` counts them.
fn space(dir: &Path) -> (u64, u64) {
    let s = nix::sys::statvfs::statvfs(dir).unwrap();
    let unit = s.fragment_size() as u64;
    (
        (s.blocks() - s.blocks_free()) as u64 * unit,
        s.blocks_available() as u64 * unit,
    )
}

fn targets(dir: &Path) -> Targets {
    let file = dir.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let path = |p: &Path| Target {
        path: Some(p.display().to_string()),
        ..Default::default()
    };
    Targets {
        targets: [
            ("scratch".to_owned(), path(dir)),
            ("file".to_owned(), path(&file)),
            (
                "me".to_owned(),
                Target {
                    host: Some(HostTarget::default()),
                    ..Default::default()
                },
            ),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

/// The entries of `dir`, to show nothing was written there.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The `livefire stress-worker` processes this test process started.
fn my_workers() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.get(1) == Some(&&b"stress-worker"[..])
                && args
                    .windows(2)
                    .any(|w| w[0] == b"--parent" && w[1] == me.as_bytes())
        })
        .count()
}

#[test]
fn bad_resource_faults_are_refused_with_nothing_applied() {
    let dir = tempfile::tempdir().unwrap();
    let targets = targets(dir.path());
    let before = entries(dir.path());
    let cases = [
        (
            "disk.fill: { target: scratch, size: 900000GiB }",
            "that must stay free",
        ),
        ("disk.fill: { target: scratch, size: 0B }", "fills nothing"),
        (
            "disk.fill: { target: scratch, size: 1MiB, keep_free: 1MiB }",
            "below the floor of 16MiB",
        ),
        (
            "disk.fill: { target: scratch, size: 1MiB, level: 50% }",
            "name `size` or `level`, not both",
        ),
        (
            "disk.fill: { target: scratch, level: 100% }",
            "`level` must be above 0% and below 100%",
        ),
        (
            "disk.fill: { target: file, size: 1MiB }",
            "a-file is not a directory",
        ),
        (
            "disk.fill: { target: me, size: 1MiB }",
            "`disk.fill` acts on a path target; `me` is not one",
        ),
        (
            "memory.stress: { size: 900000GiB }",
            "that must stay available",
        ),
        ("memory.stress: { size: 0B }", "holds nothing"),
        (
            "memory.stress: { size: 1MiB, keep_available: 1MiB }",
            "below the floor of 64MiB",
        ),
        (
            "memory.stress: { target: scratch, size: 1MiB }",
            "`memory.stress` acts on a host target; `scratch` is not one",
        ),
        ("cpu.stress: { cores: 0 }", "burns nothing"),
        ("cpu.stress: { cores: 100000 }", "more than the"),
        (
            "cpu.stress: { cores: 1, cpus: [100000] }",
            "CPU 100000 in `cpus` is not one livefire may run on",
        ),
        (
            "cpu.stress: { cores: 1, load: 0% }",
            "`load` must be above 0%",
        ),
        (
            "cpu.stress: { target: scratch, cores: 1 }",
            "`cpu.stress` acts on a host target",
        ),
    ];
    for (yaml, says) in cases {
        let fault: Fault = spec(yaml);
        let err = livefire_faults::check(&fault, &targets)
            .expect_err(yaml)
            .to_string();
        assert!(err.contains(says), "{yaml}: {err}");
        let err = prepare(&fault, &targets, "t").expect_err(yaml).to_string();
        assert!(err.contains(says), "{yaml}: {err}");
    }
    assert_eq!(entries(dir.path()), before, "nothing was written");
    assert_eq!(my_workers(), 0, "no stress worker was started");
}

#[test]
fn disk_fill_takes_the_room_it_says_and_undo_gives_it_back() {
    let Some(fs) = SmallFs::new() else { return };
    let targets = targets(fs.path());
    let (used0, avail0) = space(fs.path());

    // By size: 32MiB more used; the default margin (16MiB here) still free.
    let fault: Fault = spec("disk.fill: { target: scratch, size: 32MiB }");
    let prepared = prepare(&fault, &targets, "fill").unwrap();
    assert_eq!(space(fs.path()), (used0, avail0), "prepare wrote nothing");
    let detail = prepared.apply(None).unwrap();
    let (used, avail) = space(fs.path());
    assert!(
        used >= used0 + (32 << 20),
        "{detail}: used {used0} -> {used}"
    );
    assert!(avail >= 16 << 20, "the margin is left: {avail}");
    assert!(prepared.verify().unwrap().unwrap().applied);
    let record = prepared.undo.clone().unwrap();
    undo(&record).unwrap();
    // The room comes back once no process holds the file open: a process another test
    // forks at the moment apply has it open keeps a copy of the descriptor until it
    // execs, so look until it is back (bounded) rather than once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while space(fs.path()).0 != used0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(space(fs.path()).0, used0, "undo gave the room back");
    assert!(prepared.verify().unwrap().unwrap().clean);
    // Undo again: nothing left to do, and it says so.
    assert!(undo(&record).unwrap().contains("nothing to undo"));

    // By level: at least 75% used afterwards, as df counts.
    let fault: Fault = spec("disk.fill: { target: scratch, level: 75% }");
    let prepared = prepare(&fault, &targets, "fill-level").unwrap();
    prepared.apply(None).unwrap();
    let (used, avail) = space(fs.path());
    let percent = used as f64 * 100.0 / (used + avail) as f64;
    assert!(percent >= 75.0, "{percent}% used");
    undo(prepared.undo.as_ref().unwrap()).unwrap();
    assert_eq!(space(fs.path()).0, used0);

    // A file that is no longer ours (its marker overwritten) is never deleted.
    let prepared = prepare(&fault, &targets, "fill-foreign").unwrap();
    prepared.apply(None).unwrap();
    let Some(UndoRecord::FillFile { path, .. }) = prepared.undo.clone() else {
        panic!("a disk.fill's record names its file");
    };
    std::fs::write(&path, "someone else's data").unwrap();
    let err = undo(prepared.undo.as_ref().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("refusing to delete"), "{err}");
    assert!(Path::new(&path).exists());
    std::fs::remove_file(&path).unwrap();
}
