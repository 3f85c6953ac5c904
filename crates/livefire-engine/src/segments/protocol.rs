//! The segment protocol: what an agent writes on stdout, one JSON object a line, and
//! the coordinator reads. Times count from the shared start (`--start-at`): a window's
//! `second` is `[second, second + 1)` s after it, `started_ms` milliseconds after it.

use livefire_core::window::Window;
use serde::{Deserialize, Serialize};

/// The protocol version an agent speaks (in its `ready` line); the coordinator refuses
/// another. 2: a load of one request sends only the load's windows. 3: `clock` lines
/// until the shared start.
pub const PROTOCOL: u32 = 3;

/// How often an agent writes a `clock` line before the shared start.
pub const CLOCK_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// One line of an agent's stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// The plan is made: the agent waits for the shared start.
    Ready {
        protocol: u32,
        /// `i/N`, 1-based as on the command line.
        segment: String,
        seed: u64,
        livefire: String,
        /// The loads and campaigns it will run (metric prefixes).
        workloads: Vec<String>,
        /// The agent's wall clock as it wrote the line, in ms since the Unix epoch:
        /// the coordinator compares it with its own (the clock offset).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clock_ms: Option<u64>,
        /// Its open-files limit (one per connection), after raising the soft limit to
        /// the hard one; and the soft limit it started with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        open_files: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        open_files_was: Option<u64>,
    },
    /// The agent's wall clock, in ms since the Unix epoch, every [`CLOCK_EVERY`] from
    /// its `ready` line until the shared start. A back end may deliver `ready` late (a
    /// pod's log is read once every pod runs); the coordinator takes the line that shows
    /// the smallest delivery delay as the clock offset, and judges it at the barrier.
    Clock { clock_ms: u64 },
    /// A load or campaign began on this segment.
    Started {
        /// The activity's display name and id (`timeline[i]`), as the plan names them.
        activity: String,
        id: String,
        kind: String,
        started_ms: u64,
    },
    /// One second of one series (a load, or `load.request`) from this segment. A load of
    /// one request sends only its own series (`LoadConfig::share_series`): the
    /// request's holds the same samples.
    Window {
        series: String,
        second: u64,
        window: Window,
    },
    /// Every window of the seconds before `second` has been sent.
    Watermark { second: u64 },
    /// A finding of a campaign that started at `started_ms`; the finding's `sent_ms`
    /// counts from there.
    Finding {
        campaign: String,
        started_ms: u64,
        finding: livefire_fuzz::Finding,
    },
    /// Keys of tracked writes (`track_write`) of a load since its last `writes` line,
    /// at most `WRITES_BATCH` a line, sent as they are acknowledged (four times a
    /// second) and before its `load_ended`: the coordinator reads them back after
    /// rollback, those of a segment that died too.
    Writes {
        load: String,
        #[serde(flatten)]
        keys: livefire_load::WriteKeys,
    },
    /// How a load's tracked writes ended on this segment (`WriteLog::runs` of a log
    /// sliced at `RUNS_SLICE`), times in ms from the shared start: the runs from index
    /// `from` of the segment's list on, replacing what an earlier line sent from there.
    /// Sent when they changed, at most four times a second, once at the load's start
    /// and before its `load_ended`: the coordinator merges every segment's into the
    /// load's one `write_outcomes` event, those of a segment that died too.
    WriteOutcomes {
        load: String,
        #[serde(flatten)]
        runs: livefire_load::RunsUpdate,
    },
    /// A load ended: this segment's report of it (exact histograms, merges with the
    /// other segments').
    LoadEnded {
        load: String,
        report: livefire_load::LoadReport,
    },
    /// A campaign ended: this segment's summary of its share of the operations.
    CampaignEnded {
        campaign: String,
        started_ms: u64,
        ended_ms: u64,
        summary: livefire_fuzz::Summary,
    },
    /// Something a person should know (a load that could not run).
    Warning { message: String },
    /// The last line: how the segment ended.
    Done {
        status: DoneStatus,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        message: String,
    },
}

/// The most keys one `writes` line carries: a million acknowledged writes are a
/// hundred lines.
pub const WRITES_BATCH: usize = 10_000;

/// A segment ends its runs of tracked writes at every whole second from the shared
/// start (`WriteLog::sliced`): where segments' writes disagree (some failed while
/// others were acknowledged), the merged runs are known to this.
pub const RUNS_SLICE: std::time::Duration = std::time::Duration::from_secs(1);

/// How a segment ended, as it says itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoneStatus {
    /// Every load and campaign ran its course.
    Ok,
    /// Asked to stop (stdin closed, SIGTERM, SIGINT): what ran until then was sent.
    Stopped,
    /// It could not run: bad arguments, a plan error, a start time in the past.
    Failed,
}

impl Line {
    /// The line as written: one JSON object, no newline.
    pub fn to_json(&self) -> String {
        // Every field serializes (no maps with non-string keys), so this cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
