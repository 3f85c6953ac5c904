//! `livefire demo`, end to end: the sandbox up, the quickstart drill, the report, and
//! nothing left running afterwards, also when it is interrupted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::Home;

/// A demo is about a minute; past this it is stuck, and the test stops it.
const BOUND: Duration = Duration::from_secs(170);

/// `livefire demo ARGS` with a private home, its runs under it, and its sandbox folder
/// under a temporary directory of its own that PostgreSQL (run as `postgres` when the
/// tests run as root) can reach.
struct Demo {
    home: Home,
    tmp: PathBuf,
    child: Child,
    /// Every pid the sandbox record named while the demo ran.
    pids: BTreeSet<u32>,
}

impl Demo {
    fn start(args: &[&str]) -> Demo {
        use std::os::unix::fs::PermissionsExt;
        let home = Home::new();
        let tmp = home.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        for dir in [home.path(), tmp.as_path()] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let child = home
            .livefire()
            .arg("demo")
            .args(args)
            .arg("--out")
            .arg(home.path().join("runs"))
            .env("TMPDIR", &tmp)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Demo {
            home,
            tmp,
            child,
            pids: BTreeSet::new(),
        }
    }

    /// The demo's sandbox folder, once it exists.
    fn sandbox_dir(&self) -> Option<PathBuf> {
        std::fs::read_dir(&self.tmp)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("livefire-demo-"))
            })
    }

    /// Notes every pid the sandbox record (and the nodes' postmaster.pid) names now.
    fn note_pids(&mut self) {
        let Some(dir) = self.sandbox_dir() else {
            return;
        };
        let Ok(text) = std::fs::read_to_string(dir.join("sandbox.json")) else {
            return;
        };
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
            return;
        };
        let services = record["services"].as_array().cloned().unwrap_or_default();
        let nodes = record["postgres"].as_array().cloned().unwrap_or_default();
        for item in services.iter().chain(&nodes) {
            if let Some(pid) = item["pid"]["pid"].as_u64() {
                self.pids.insert(pid as u32);
            }
            if let Some(data) = item["data_dir"].as_str()
                && let Ok(text) = std::fs::read_to_string(Path::new(data).join("postmaster.pid"))
                && let Some(pid) = text.lines().next().and_then(|l| l.trim().parse().ok())
            {
                self.pids.insert(pid);
            }
        }
    }

    /// Polls until `until` holds for the journal of the run (false if the demo ended first).
    fn wait_for_journal(&mut self, until: impl Fn(&str) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < BOUND {
            self.note_pids();
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            if journal(&self.home.path().join("runs")).is_some_and(|t| until(&t)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Waits for the demo to end (killing it past the bound); its code and output.
    fn finish(mut self) -> Finished {
        let start = Instant::now();
        let code = loop {
            self.note_pids();
            if let Ok(Some(status)) = self.child.try_wait() {
                break status.code().unwrap_or(-1);
            }
            if start.elapsed() > BOUND {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break -1;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut out = String::new();
        let mut err = String::new();
        use std::io::Read;
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        Finished {
            code,
            out,
            err,
            runs: self.home.path().join("runs"),
            left: self.pids.iter().copied().filter(|p| alive(*p)).collect(),
            pids: self.pids.len(),
            tmp: self.tmp.clone(),
            _home: self.home,
        }
    }
}

struct Finished {
    code: i32,
    out: String,
    err: String,
    runs: PathBuf,
    /// Sandbox processes still alive after the demo ended.
    left: Vec<u32>,
    /// How many sandbox processes the test saw.
    pids: usize,
    tmp: PathBuf,
    _home: Home,
}

impl Finished {
    fn summary(&self) -> serde_json::Value {
        let dir = run_dir(&self.runs)
            .unwrap_or_else(|| panic!("no run folder:\n{}{}", self.out, self.err));
        let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Nothing of the sandbox runs: no process it recorded, and no PostgreSQL server on
    /// a data directory under the demo's temporary folder.
    fn assert_nothing_left(&self) {
        assert!(
            self.pids >= 2,
            "the test saw the sandbox's processes: {}",
            self.pids
        );
        assert!(
            self.left.is_empty(),
            "still running after the demo: {:?}\n{}{}",
            self.left,
            self.out,
            self.err
        );
        let tmp = self.tmp.to_string_lossy().into_owned();
        let servers: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&tmp))
            .collect();
        assert!(
            servers.is_empty(),
            "processes on the demo's folder remain: {servers:?}"
        );
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

fn run_dir(runs: &Path) -> Option<PathBuf> {
    std::fs::read_dir(runs)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("journal.jsonl").is_file())
}

fn journal(runs: &Path) -> Option<String> {
    std::fs::read_to_string(run_dir(runs)?.join("journal.jsonl")).ok()
}

pub(crate) fn have_postgres() -> bool {
    let found = livefire_sandbox::pg::installed().is_some();
    if !found {
        livefire_testkit::skip_missing(
            "no PostgreSQL server binaries on PATH or under /usr/lib/postgresql/*/bin",
            "apt-get install postgresql",
        );
    }
    found
}

/// The fault named `name` in the summary.
fn fault<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["faults"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["activity"] == name))
        .unwrap_or_else(|| panic!("no fault `{name}` in {}", summary["faults"]))
}

#[test]
fn demo_runs_the_failover_drill_and_brings_everything_down() {
    if !have_postgres() {
        return;
    }
    let done = Demo::start(&[]).finish();
    let all = format!("{}{}", done.out, done.err);
    assert_eq!(
        done.code, 0,
        "the shipped sandbox holds the hypothesis:\n{all}"
    );
    let report = done
        .out
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .unwrap_or_else(|| panic!("the demo says where the report is:\n{all}"));
    assert!(Path::new(report.trim()).is_file(), "{report} exists");
    let summary = done.summary();
    assert_eq!(summary["verdict"], "held");
    // The primary was killed, and the service recovered from it: the failover.
    let kill = fault(&summary, "primary killed");
    assert_eq!(kill["kind"], "process.kill");
    assert_eq!(kill["rollback_ok"], true);
    assert!(
        kill["time_to_recover_ms"].is_u64(),
        "time to recover is measured: {kill}"
    );
    assert!(
        kill["time_to_impact_ms"].is_u64(),
        "the kill was felt: {kill}"
    );
    assert_eq!(fault(&summary, "auth link slow")["kind"], "proxy.latency");
    // The write gap: the writes stopped during the failover and resumed.
    let gap = summary["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "writes resume within 15 s")
        .expect("the write-gap condition is judged");
    assert!(
        gap["worst_value"].as_f64().is_some_and(|v| v > 0.0),
        "{gap}"
    );
    let writes = &summary["writes"][0]["counts"];
    assert!(writes["acked"].as_u64().is_some_and(|n| n > 0), "{writes}");
    assert_eq!(writes["lost"], 0, "{writes}");
    assert_eq!(
        writes["unverified"], 0,
        "every write was read back: {writes}"
    );
    done.assert_nothing_left();
}

#[test]
fn demo_on_sqlite_with_defects_finds_them_and_says_what_it_skipped() {
    let done = Demo::start(&["--store", "sqlite", "--defects"]).finish();
    let all = format!("{}{}", done.out, done.err);
    assert_eq!(
        done.code, 1,
        "the planted defects make the run deviate:\n{all}"
    );
    assert!(
        all.contains("apt-get install postgresql"),
        "it names the package for the full drill:\n{all}"
    );
    let summary = done.summary();
    assert_eq!(fault(&summary, "orders killed")["kind"], "process.kill");
    let lost = summary["writes"][0]["counts"]["lost"].as_u64().unwrap_or(0);
    let findings = summary["findings"].as_array().map_or(0, Vec::len);
    assert!(
        lost > 0 || findings > 0,
        "a defect is found: writes lost {lost}, findings {findings}\n{all}"
    );
    done.assert_nothing_left();
}

#[test]
fn demo_interrupted_mid_run_rolls_back_and_brings_everything_down() {
    if !have_postgres() {
        return;
    }
    let mut demo = Demo::start(&[]);
    assert!(
        demo.wait_for_journal(|j| j.contains("\"fault_applied\"")),
        "the run got as far as its first fault"
    );
    let pid = demo.child.id() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let done = demo.finish();
    let all = format!("{}{}", done.out, done.err);
    assert_eq!(done.code, 2, "an interrupted run is aborted:\n{all}");
    let summary = done.summary();
    assert_eq!(summary["ledger_left"], 0, "every fault was rolled back");
    done.assert_nothing_left();
}
