//! The local launcher runs real child processes: each gets the one agent command line,
//! its stdout lines arrive before its exit, and `stop_all` ends segments that would not
//! end on their own. The program is a shell script standing in for `livefire`, so
//! these tests see exactly what a back end hands the coordinator.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use livefire_engine::segments::{
    LaunchError, LaunchSpec, Launcher, LocalLauncher, SegmentEvent, SegmentExit,
};

fn script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("fake-livefire");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn spec(dir: &Path, count: u32) -> LaunchSpec {
    LaunchSpec {
        run_id: "20261203T140000Z-test".into(),
        file: dir.join("exp.yaml"),
        text: "version: 1\n".into(),
        vars: vec![("api".into(), "http://127.0.0.1:1".into())],
        env: None,
        seed: 42,
        count,
        start_at: SystemTime::now() + Duration::from_secs(5),
        secret_env: Vec::new(),
        segments_dir: dir.join("segments"),
    }
}

/// A run's journal in `dir` (`journal.jsonl`), and its path.
fn journal_in(dir: &Path) -> (livefire_engine::journal::Journal, PathBuf) {
    let path = dir.join("journal.jsonl");
    let journal =
        livefire_engine::journal::Journal::create(&path, std::time::Instant::now(), Vec::new())
            .unwrap();
    (journal, path)
}

/// Every event until each of `count` segments has exited, grouped by segment.
async fn collect(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<SegmentEvent>,
    count: u32,
) -> BTreeMap<u32, Vec<SegmentEvent>> {
    let mut by = BTreeMap::<u32, Vec<SegmentEvent>>::new();
    let mut exited = 0;
    while exited < count {
        let e = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("segments report within 30 s")
            .expect("the channel stays open until every segment exited");
        if matches!(e, SegmentEvent::Exited { .. }) {
            exited += 1;
        }
        by.entry(e.index()).or_default().push(e);
    }
    by
}

#[tokio::test]
async fn each_segment_gets_its_share_and_reports_lines_then_its_exit() {
    let dir = tempfile::tempdir().unwrap();
    // Prints its arguments and the variables handed over in its environment, then
    // exits with a status that depends on the segment.
    let program = script(
        dir.path(),
        r#"echo "args: $*"; echo "vars: $LIVEFIRE_AGENT_VARS"; case "$4" in 2/3) exit 7;; esac; exit 0"#,
    );
    let spec = spec(dir.path(), 3);
    let mut launcher = LocalLauncher::new(program);
    launcher.check(&spec).await.unwrap();
    let launched = launcher.launch(&spec).await.unwrap();
    let by = collect(launched.events, 3).await;
    assert_eq!(by.len(), 3);
    for (index, events) in &by {
        assert!(
            matches!(&events[0], SegmentEvent::Started { detail, .. } if detail.starts_with("pid ")),
            "{events:?}"
        );
        let SegmentEvent::Line { line, .. } = &events[1] else {
            panic!("{events:?}")
        };
        let share = format!("--segment {}/3 ", index + 1);
        assert!(line.contains(&share), "{line}");
        assert!(line.contains("--watch-stdin"), "{line}");
        assert!(line.contains("--seed 42 "), "{line}");
        // Variables are not on a command line every local user can read with `ps`.
        assert!(!line.contains("--var"), "{line}");
        assert!(!line.contains("127.0.0.1:1"), "{line}");
        assert!(line.ends_with("exp.yaml"), "{line}");
        assert_eq!(
            events[2],
            SegmentEvent::Line {
                index: *index,
                line: r#"vars: [["api","http://127.0.0.1:1"]]"#.into()
            }
        );
        let want = if *index == 1 {
            SegmentExit {
                success: false,
                detail: "exit status 7".into(),
            }
        } else {
            SegmentExit {
                success: true,
                detail: "exit status 0".into(),
            }
        };
        assert_eq!(
            events[3],
            SegmentEvent::Exited {
                index: *index,
                exit: want
            }
        );
        assert!(
            dir.path()
                .join(format!("segments/{}/stderr.log", index + 1))
                .is_file()
        );
    }
    launcher.stop_all(Duration::ZERO).await.unwrap();
}

#[tokio::test]
async fn stop_all_closes_stdin_then_kills_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    // Segment 1 stops when its stdin closes, as an agent does; segment 2 ignores it.
    let program = script(
        dir.path(),
        r#"case "$4" in 1/2) cat >/dev/null; echo stopped; exit 0;; esac; trap '' TERM; exec sleep 600"#,
    );
    let spec = spec(dir.path(), 2);
    let mut launcher = LocalLauncher::new(program);
    let launched = launcher.launch(&spec).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    launcher.stop_all(Duration::from_millis(500)).await.unwrap();
    let by = collect(launched.events, 2).await;
    assert!(
        by[&0].contains(&SegmentEvent::Line {
            index: 0,
            line: "stopped".into()
        }),
        "{:?}",
        by[&0]
    );
    assert!(
        by[&0]
            .iter()
            .any(|e| matches!(e, SegmentEvent::Exited { exit, .. } if exit.success))
    );
    assert!(
        by[&1].iter().any(
            |e| matches!(e, SegmentEvent::Exited { exit, .. } if exit.detail == "killed by SIGKILL")
        ),
        "{:?}",
        by[&1]
    );
}

#[tokio::test]
async fn refusals_come_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "touch started");
    let mut launcher = LocalLauncher::new(program);
    let zero = spec(dir.path(), 0);
    let err = launcher.check(&zero).await.unwrap_err();
    assert!(matches!(err, LaunchError::Refused(_)));
    assert!(err.to_string().contains("--segments 1 or more"), "{err}");
    assert!(launcher.launch(&zero).await.is_err());
    let missing = LocalLauncher::new(dir.path().join("no-such-livefire"));
    let err = missing.check(&spec(dir.path(), 2)).await.unwrap_err();
    assert!(err.to_string().contains("no-such-livefire"), "{err}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!dir.path().join("started").exists(), "nothing ran");
}

/// A shell script in the agent's place: it says `ready` for its segment (`$seg`, e.g.
/// `2/3`) with the clock `$((now + skew_ms))`, then runs `then` (every process here
/// shares one clock, so a skew is written in).
fn ready_agent(dir: &Path, skew_ms: i64, then: &str) -> PathBuf {
    let protocol = livefire_engine::segments::protocol::PROTOCOL;
    script(
        dir,
        &format!(
            r#"now=$(date +%s%3N)
seg=$(echo "$*" | sed 's/.*--segment \([0-9]*\/[0-9]*\).*/\1/')
echo "{{\"type\":\"ready\",\"protocol\":{protocol},\"segment\":\"$seg\",\"seed\":42,\"livefire\":\"test\",\"workloads\":[],\"clock_ms\":$((now + {skew_ms}))}}"
{then}"#
        ),
    )
}

/// A segment whose `ready` line shows a clock `skew_ms` off this machine's, then waits.
fn skewed_agent(dir: &Path, skew_ms: i64) -> PathBuf {
    ready_agent(dir, skew_ms, "cat >/dev/null")
}

#[tokio::test]
async fn a_segment_whose_clock_is_too_far_off_stops_the_run_at_the_ready_barrier() {
    use livefire_core::events::AbortCause;
    use livefire_engine::segments::coordinator::{CLOCK_REFUSE_MS, Split, launch};
    // (what, the segment's clock against this one, in ms; the word the error uses)
    let cases = [
        ("ahead", 5_000i64, "ahead of"),
        ("behind", -5_000, "behind"),
    ];
    for (what, skew, word) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (journal, journal_path) = journal_in(dir.path());
        let split = Split {
            launcher: Box::new(LocalLauncher::new(skewed_agent(dir.path(), skew))),
            spec: spec(dir.path(), 1),
            min_alive: 1,
            loads: Vec::new(),
        };
        let (_abort_tx, mut abort_rx) = tokio::sync::mpsc::unbounded_channel();
        let Err(AbortCause::Error { message }) = launch(split, &journal, &mut abort_rx).await
        else {
            panic!("{what}: a clock 5 s off must stop the run");
        };
        assert!(
            message.contains("segment 1/1's clock is")
                && message.contains(word)
                && message.contains(&format!("{CLOCK_REFUSE_MS} ms"))
                && message.contains("synchronise")
                && message.contains("no fault was applied"),
            "{what}: {message}"
        );
        let text = std::fs::read_to_string(&journal_path).unwrap();
        let ready: serde_json::Value = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|e| e["type"] == "segment" && e["state"] == "ready")
            .unwrap_or_else(|| panic!("{what}: a ready event: {text}"));
        let offset = ready["clock_offset_ms"].as_i64().unwrap();
        // The line's delivery delay only makes the segment look further behind.
        if skew > 0 {
            assert!((1..=skew).contains(&offset), "{what}: {offset}");
        } else {
            assert!(offset <= skew, "{what}: {offset}");
        }
    }
}

/// A back end may hand over a `ready` line long after it was written (Kubernetes reads
/// a pod's log once every pod runs): that delay is not clock skew. The agent's `clock`
/// lines, delivered as they are written, give the offset; the barrier judges that.
#[tokio::test]
async fn a_ready_line_delivered_late_is_not_taken_for_a_clock_behind() {
    use livefire_engine::segments::coordinator::{CLOCK_REFUSE_MS, Split, launch};
    let dir = tempfile::tempdir().unwrap();
    // Its `ready` says a clock 2.5 s behind (as a line written 2.5 s before it is read
    // would), then it writes its real clock every 0.25 s as an agent does.
    let program = ready_agent(
        dir.path(),
        -2500,
        r#"while true; do sleep 0.25; echo "{\"type\":\"clock\",\"clock_ms\":$(date +%s%3N)}"; done"#,
    );
    let (journal, journal_path) = journal_in(dir.path());
    let split = Split {
        launcher: Box::new(LocalLauncher::new(program)),
        spec: spec(dir.path(), 2),
        min_alive: 2,
        loads: Vec::new(),
    };
    let (_abort_tx, mut abort_rx) = tokio::sync::mpsc::unbounded_channel();
    let result = launch(split, &journal, &mut abort_rx).await;
    let text = std::fs::read_to_string(&journal_path).unwrap();
    assert!(result.is_ok(), "the run goes on: {text}");
    let offsets: Vec<i64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["type"] == "segment" && e["state"] == "ready")
        .map(|e| e["clock_offset_ms"].as_i64().expect("an offset"))
        .collect();
    assert_eq!(offsets.len(), 2, "{text}");
    for offset in offsets {
        // Only a live line's delivery delay is left: well under the 2.5 s the late
        // `ready` line showed (and the refusal threshold).
        assert!(
            offset <= 0 && offset.unsigned_abs() < CLOCK_REFUSE_MS / 2,
            "{offset}: {text}"
        );
    }
    assert!(!text.contains("clock is"), "no clock warning: {text}");
    // Dropping the run's segments ends their processes (kill on drop).
    drop(result);
}

/// A back end whose launch never finishes (pods that wait for a node, an image that
/// takes minutes): it counts the `stop_all` it is asked for.
struct SlowLauncher(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl Launcher for SlowLauncher {
    fn name(&self) -> &'static str {
        "slow"
    }
    fn startup_allowance(&self, _count: u32) -> Duration {
        Duration::from_secs(600)
    }
    fn check<'a>(
        &'a self,
        _spec: &'a LaunchSpec,
    ) -> livefire_engine::segments::launch::BoxFuture<'a, Result<(), LaunchError>> {
        Box::pin(async { Ok(()) })
    }
    fn launch<'a>(
        &'a mut self,
        _spec: &'a LaunchSpec,
    ) -> livefire_engine::segments::launch::BoxFuture<
        'a,
        Result<livefire_engine::segments::Launched, LaunchError>,
    > {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            Err(LaunchError::Refused("never".into()))
        })
    }
    fn stop_all<'a>(
        &'a mut self,
        _grace: Duration,
    ) -> livefire_engine::segments::launch::BoxFuture<'a, Result<(), LaunchError>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

/// A halt while the segments are still being launched ends the launch then, not when
/// the back end gives up, and asks the back end to remove what it made.
#[tokio::test]
async fn a_halt_during_a_long_launch_ends_it_at_once() {
    use livefire_core::events::AbortCause;
    use livefire_engine::segments::coordinator::{Split, launch};
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = journal_in(dir.path());
    let stops = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let split = Split {
        launcher: Box::new(SlowLauncher(stops.clone())),
        spec: spec(dir.path(), 2),
        min_alive: 2,
        loads: Vec::new(),
    };
    let (abort_tx, mut abort_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = abort_tx.send(AbortCause::Halt {
            from: Some("a test".into()),
        });
    });
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        launch(split, &journal, &mut abort_rx),
    )
    .await
    .expect("the launch ends on the halt, not after the back end's 600 s");
    assert!(
        matches!(&result, Err(AbortCause::Halt { from: Some(f) }) if f == "a test"),
        "{:?}",
        result.err()
    );
    assert_eq!(stops.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Segments that are ready and then die before the start, leaving fewer than
/// `min_alive`: the run stops at the barrier, before any fault, saying which was lost.
#[tokio::test]
async fn segments_lost_before_the_start_stop_the_run_at_the_barrier() {
    use livefire_core::events::AbortCause;
    use livefire_engine::segments::coordinator::{Split, launch};
    let dir = tempfile::tempdir().unwrap();
    // Segment 2 says it is ready, then exits without a `done`.
    let program = ready_agent(
        dir.path(),
        0,
        "case \"$seg\" in 2/2) exit 0;; esac\ncat >/dev/null",
    );
    let (journal, journal_path) = journal_in(dir.path());
    let split = Split {
        launcher: Box::new(LocalLauncher::new(program)),
        spec: spec(dir.path(), 2),
        min_alive: 2,
        loads: Vec::new(),
    };
    let (_abort_tx, mut abort_rx) = tokio::sync::mpsc::unbounded_channel();
    let Err(AbortCause::Error { message }) = launch(split, &journal, &mut abort_rx).await else {
        panic!("a segment lost before the start stops the run");
    };
    assert!(
        message.contains("segment 2/2 was lost") && message.contains("no fault was applied"),
        "{message}"
    );
    let text = std::fs::read_to_string(&journal_path).unwrap();
    assert!(text.contains("\"state\":\"lost\""), "{text}");
}
