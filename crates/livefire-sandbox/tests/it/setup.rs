//! Finding PostgreSQL, reading durations, and what `up` does on a machine without
//! PostgreSQL: SQLite, saying what it skipped and the package to install.

use std::time::Duration;

use livefire_sandbox::cli::parse_duration;
use livefire_sandbox::pg::{PROGRAMS, find_bin_dir};

use crate::support::{Api, Dir, text};

fn fake_bin(root: &std::path::Path, version: &str, programs: &[&str]) -> std::path::PathBuf {
    let bin = root.join(version).join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for p in programs {
        std::fs::write(bin.join(p), "").unwrap();
    }
    bin
}

#[test]
fn the_newest_complete_bin_directory_is_chosen() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().to_owned();
    assert_eq!(
        find_bin_dir(None, std::slice::from_ref(&r)),
        None,
        "empty root"
    );
    fake_bin(&r, "14", &PROGRAMS);
    fake_bin(&r, "16", &["initdb", "pg_ctl"]); // incomplete: no pg_rewind
    let want = r.join("14").join("bin");
    assert_eq!(find_bin_dir(None, std::slice::from_ref(&r)), Some(want));
    let v17 = fake_bin(&r, "17", &PROGRAMS);
    assert_eq!(
        find_bin_dir(None, std::slice::from_ref(&r)),
        Some(v17.clone())
    );
    // A complete directory on PATH wins over the roots.
    let other = tempfile::tempdir().unwrap();
    let on_path = fake_bin(other.path(), "x", &PROGRAMS);
    let found = find_bin_dir(
        Some(on_path.clone().into_os_string()),
        std::slice::from_ref(&r),
    );
    assert_eq!(found, Some(std::fs::canonicalize(&on_path).unwrap()));
}

#[test]
fn durations() {
    let cases: &[(&str, Option<u64>)] = &[
        ("3s", Some(3000)),
        ("250ms", Some(250)),
        ("2m", Some(120_000)),
        ("3", None),
        ("s", None),
        ("-1s", None),
        ("1h", None),
        ("99999999999999999999s", None),
    ];
    for (text, ms) in cases {
        assert_eq!(
            parse_duration(text).ok(),
            ms.map(Duration::from_millis),
            "{text}"
        );
    }
}

/// No binaries anywhere: `--store auto` runs on SQLite and says so; `--store postgres`
/// refuses, naming the package.
#[test]
fn without_postgres_up_says_what_it_skips() {
    let empty = tempfile::tempdir().unwrap();
    let env = [
        ("PATH", "/usr/bin:/bin"),
        ("LIVEFIRE_PG_ROOTS", empty.path().to_str().unwrap()),
    ];
    let dir = Dir::new();
    let out = dir.run_env(&["up"], &env);
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    assert!(said.contains("SQLite"), "{said}");
    assert!(said.contains("failover"), "{said}");
    assert!(said.contains("apt-get install postgresql"), "{said}");
    let sb = dir.record();
    assert_eq!(sb.store, "sqlite");
    assert!(sb.postgres.is_empty());
    assert_eq!(Api::of(&sb, "alice").create("offline").0, 201);

    let strict = Dir::new();
    let out = strict.run_env(&["up", "--store", "postgres"], &env);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("install the `postgresql` package"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !strict.path().join("sandbox.json").exists(),
        "nothing is started or recorded"
    );
}
