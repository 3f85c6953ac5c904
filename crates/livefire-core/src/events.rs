//! Journal events: everything that happens in a run, stamped by one clock. The journal
//! is these events, one JSON object a line; every report is a function of them.

use serde::{Deserialize, Serialize};

/// The journal format version this livefire writes and reads.
pub const JOURNAL_VERSION: u32 = 1;

/// One line of `journal.jsonl`: `{"v":1,"seq":N,"t":ms,"type":...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub v: u32,
    pub seq: u64,
    /// Milliseconds since the run started (monotonic clock).
    pub t: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// The phase of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Setup,
    Before,
    During,
    Rollback,
    After,
    Teardown,
}

/// A hypothesis condition or guardrail as planned (the `plan` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedCondition {
    /// Its `name:`, else `hypothesis[i]` / `guardrails[i]`: the name `probe`, `metric`
    /// and `deviation` events carry.
    pub name: String,
    pub role: Role,
    /// What it samples: `http probe`, `tcp probe`, `command probe`, `sql probe` or
    /// `metric`.
    pub kind: String,
    /// The probe's address or command, or the metric (`browse.error_rate`).
    pub subject: String,
    /// What must hold, as written: `below 5%`, `status 200`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expect: String,
}

/// A timeline activity as planned (the `plan` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedActivity {
    /// `timeline[i]`: stable, for machines.
    pub id: String,
    /// The name the other events use for it (`activity` of `fault_applied`, a load's
    /// series): its `name:`, else as the engine names it.
    pub name: String,
    /// For people: its `name:`, else kind and target (`proxy.down auth-link`).
    pub display: String,
    /// The fault kind (`process.pause`), `load` or `fuzz`.
    pub kind: String,
    /// The target's name, the load's rate, or the fuzz campaign's OpenAPI document.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// When it starts and for how long, in milliseconds.
    pub at_ms: u64,
    pub for_ms: u64,
}

/// Why a run was aborted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum AbortCause {
    Guardrail {
        condition: String,
        detail: String,
    },
    Signal {
        signal: String,
    },
    /// `halt` on the control socket; `from` says who, when the sender said
    /// (`the console by alice`), else it was `livefire halt`.
    Halt {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    MaxDuration,
    Panic {
        activity: String,
        message: String,
    },
    Error {
        message: String,
    },
}

impl AbortCause {
    pub fn describe(&self) -> String {
        match self {
            AbortCause::Guardrail { condition, detail } => {
                format!("guardrail `{condition}` tripped: {detail}")
            }
            AbortCause::Signal { signal } => format!("{signal} received"),
            AbortCause::Halt { from: None } => "halted by `livefire halt`".into(),
            AbortCause::Halt { from: Some(from) } => format!("stopped from {from}"),
            AbortCause::MaxDuration => "settings.max_duration reached".into(),
            AbortCause::Panic { activity, message } => {
                format!("activity `{activity}` panicked: {message}")
            }
            AbortCause::Error { message } => message.clone(),
        }
    }
}

/// Everything the journal records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The first event: wall-clock start and the seed, so journals from many machines merge.
    RunStarted {
        run_id: String,
        title: String,
        /// RFC 3339 UTC.
        wall_start: String,
        seed: u64,
        livefire: String,
        /// Planned end of the timeline, in milliseconds.
        planned_ms: u64,
        /// The process's open-files limit (one per connection), after raising it to
        /// the hard limit. Absent in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        open_files: Option<u64>,
    },
    /// Right after `run_started`: the experiment as it runs, so that every report is a
    /// function of the journal alone. Absent in older journals.
    Plan {
        /// The experiment as run: variables and defaults filled in, `${env:NAME}`
        /// values masked (the journal masks secrets in every event).
        experiment: serde_json::Value,
        /// Every hypothesis condition and guardrail, by the name the other events use.
        conditions: Vec<PlannedCondition>,
        /// Every timeline activity, in the file's order.
        activities: Vec<PlannedActivity>,
        /// The environment the plan was resolved for (`--env NAME`), if any, and
        /// whether the file marks it `production: true`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        environment: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        production: bool,
    },
    PhaseStarted {
        phase: Phase,
    },
    SetupStarted {
        name: String,
        pid: u32,
    },
    /// A proxy the run owns started listening.
    ProxyStarted {
        name: String,
        listen: String,
        upstream: String,
    },
    SetupStopped {
        name: String,
    },
    /// One sample of a probe condition.
    Probe {
        condition: String,
        role: Role,
        phase: Phase,
        ok: bool,
        detail: String,
        latency_ms: f64,
    },
    /// A metric condition judged.
    Metric {
        condition: String,
        role: Role,
        phase: Phase,
        ok: bool,
        value: Option<f64>,
        bound: f64,
        /// The metric and its comparison (`browse.latency.p99`, `below`), so reports
        /// read units and margins from the journal alone. Absent in older journals.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        metric: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        comparison: String,
    },
    /// A hypothesis condition stopped holding beyond its tolerance.
    Deviation {
        condition: String,
        phase: Phase,
        detail: String,
        /// How the failing streak looked when it was called a deviation: samples that
        /// failed in a row, how long they had failed (from the first one's send time),
        /// and the condition's `tolerate`. Absent in older journals and for metric
        /// facts judged once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        streak: Option<Streak>,
    },
    GuardrailTripped {
        condition: String,
        detail: String,
    },
    FaultApplied {
        activity: String,
        kind: String,
        target: String,
        detail: String,
        /// When its apply began (run ms): the fault may act before its apply returns
        /// (a file touched, a process killed), so a detector may notice it from here.
        /// Absent in older journals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        applying_ms: Option<u64>,
    },
    FaultRolledBack {
        activity: String,
        kind: String,
        ok: bool,
        detail: String,
        by: String,
    },
    /// A detector besides the hypothesis, loads and campaigns began watching:
    /// `postgresql` (the server a fault acts on: its checksum counter and its log) or
    /// `watch` (a `watch:` command). Its row in the detectors table exists from here.
    Watching {
        detector: String,
        kind: String,
    },
    /// A detector's first sign (a `watch:` command: each time it starts firing), in
    /// words: `pg_stat_database.checksum_failures rose from 0 to 2`, the log line.
    Noticed {
        detector: String,
        kind: String,
        how: String,
    },
    /// A person dropped a fault's pending undo record from the ledger by hand
    /// (`livefire recover --forget`), after fixing what it would undo. Written after the
    /// run ended (or crashed): `t` is the last event's, `at` the wall clock.
    UndoForgotten {
        /// The ledger entry (`<run-id>:<n>`).
        entry: String,
        activity: String,
        kind: String,
        /// The undo it would have run.
        undo: String,
        /// The OS user (the one behind `sudo`, if any).
        user: String,
        reason: String,
        /// RFC 3339 UTC.
        at: String,
    },
    /// Something a person did to this run through `livefire serve` (started it,
    /// stopped it): who (the token's name and role), what, when. Appended after the run
    /// ended, like `undo_forgotten`: `t` is the last event's, `at` the wall clock.
    Audit {
        who: String,
        action: String,
        detail: String,
        /// RFC 3339 UTC.
        at: String,
    },
    /// `activity` is the display name people read (`proxy.down auth-link`, `load
    /// browse`); `id` is the timeline position (`timeline[2]`), absent in older journals.
    ActivityStarted {
        activity: String,
        kind: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        id: String,
    },
    ActivityEnded {
        activity: String,
        kind: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        id: String,
    },
    RollbackStep {
        step: String,
        ok: bool,
        detail: String,
    },
    /// One second of a load's measurements (`series` is the load, or `load.request`).
    /// Windows merge exactly, so reports and split runs recompute any percentile.
    Window {
        series: String,
        second: u64,
        window: crate::window::Window,
    },
    /// A fuzz campaign found something; `finding` is the campaign's record of it
    /// (rule, severity, operation, request, response, curl reproducer) with the faults
    /// active when it appeared; `fails` says whether it fails the verdict
    /// (`settings.fail_on`).
    Finding {
        campaign: String,
        severity: String,
        fails: bool,
        finding: serde_json::Value,
    },
    /// A load's tracked writes, read back after rollback: acked, lost, phantom,
    /// duplicated, unverified.
    Writes {
        load: String,
        counts: serde_json::Value,
    },
    /// A load's tracked writes as they ended, in runs of consecutive acknowledged or
    /// failed writes with their send and end times, so reports measure how long writes
    /// failed around a fault to the spacing of writes, not to a one-second window.
    /// `truncated_ms`: runs stopped being recorded there (too many alternations).
    WriteOutcomes {
        load: String,
        runs: Vec<WriteRun>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        truncated_ms: Option<u64>,
    },
    /// When a finding's signature was seen, in run-clock ms, and which faults were active
    /// when it appeared and when it was last seen; `ended_after` names faults rolled back
    /// between its last sighting and the campaign's end (a fail-open window that closed
    /// when its fault was undone).
    FindingWindow {
        campaign: String,
        operation: String,
        rule: String,
        signature: String,
        first_ms: u64,
        last_ms: u64,
        count: u64,
        faults_at_first: Vec<String>,
        faults_at_last: Vec<String>,
        ended_after: Vec<String>,
    },
    /// A fuzz campaign finished: its totals.
    CampaignEnded {
        campaign: String,
        summary: serde_json::Value,
    },
    /// A load finished: its totals as `livefire load --json` prints them.
    LoadEnded {
        load: String,
        report: serde_json::Value,
    },
    /// The hypothesis held again after rollback (or `settle` ran out).
    Settled {
        ok: bool,
        after_ms: u64,
    },
    Aborted {
        cause: AbortCause,
    },
    /// A segment of a split run (`livefire run --segments N`): `started` (where:
    /// `pid 4242`, a pod), `ready`, `done` (its own last word), or `lost` (it ended
    /// without saying it was done: killed, crashed, its machine gone).
    Segment {
        /// `i/N`, 1-based.
        segment: String,
        state: SegmentState,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
        /// `ready`: the segment's wall clock minus the coordinator's, in ms: of the
        /// readings its `ready` and `clock` lines gave as they arrived before the
        /// shared start, the largest (a line's delivery delay makes the segment look
        /// behind by that much, so the least delayed reading is the closest).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clock_offset_ms: Option<i64>,
        /// `done`, `lost`: the requests its loads completed, and how many of them
        /// were errors (from the windows it sent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requests: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errors: Option<u64>,
        /// `done`, `lost`, for loads with `track_write`: the acknowledged writes whose
        /// keys it sent (the coordinator reads them back with every other segment's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        writes_acked: Option<u64>,
    },
    Warning {
        message: String,
    },
    /// A responder's mark during a game day (`livefire mark detected`, the responders'
    /// page, `POST /api/marks`): the journal's `t` is when it was recorded.
    Mark {
        mark: MarkKind,
        /// The responder as the scenario's `responders:` names them.
        responder: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// Where it came from: `cli`, `page` or `http`.
        via: String,
    },
    /// The run could not start as written (a setup error); nothing was applied.
    SetupFailed {
        message: String,
    },
    RunEnded {
        verdict: Verdict,
        exit_code: i32,
        ledger_left: usize,
    },
}

/// What a responder's mark says: they noticed something is wrong, they contained it,
/// or the system is healthy again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    Detected,
    Mitigated,
    Resolved,
}

impl MarkKind {
    /// Every kind, in the order a response goes through them.
    pub const ALL: [MarkKind; 3] = [MarkKind::Detected, MarkKind::Mitigated, MarkKind::Resolved];

    /// The word people type and read: `detected`, `mitigated`, `resolved`.
    pub fn label(self) -> &'static str {
        match self {
            MarkKind::Detected => "detected",
            MarkKind::Mitigated => "mitigated",
            MarkKind::Resolved => "resolved",
        }
    }
}

impl std::str::FromStr for MarkKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MarkKind::ALL
            .into_iter()
            .find(|k| k.label() == s)
            .ok_or_else(|| format!("unknown mark `{s}`: use detected, mitigated or resolved"))
    }
}

/// Where a segment of a split run is (the `segment` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentState {
    Started,
    Ready,
    Done,
    Lost,
}

/// Consecutive tracked writes (in the order they ended) that were all acknowledged, or
/// all failed; times in milliseconds on the load's clock (the run's, in experiments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRun {
    pub ok: bool,
    pub n: u64,
    /// The earliest and latest send time of the run's writes.
    pub first_sent_ms: u64,
    pub last_sent_ms: u64,
    /// When its first and last write ended (acknowledged, or answered with a failure).
    pub first_done_ms: u64,
    pub last_done_ms: u64,
}

/// A failing streak of one condition's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    pub samples: u64,
    pub failing_ms: u64,
    pub tolerate_ms: u64,
}

/// Whether a condition is part of the hypothesis or a guardrail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Hypothesis,
    Guardrail,
}

impl Role {
    /// The role for people: report tables, the detectors table.
    pub fn label(self) -> &'static str {
        match self {
            Role::Hypothesis => "hypothesis",
            Role::Guardrail => "guardrail",
        }
    }
}

/// The outcome of a run. [`Verdict::exit`] (in `exit.rs`) is the one mapping from a
/// verdict to `livefire run`'s exit; [`Verdict::label`] the one word for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The hypothesis held and no finding failed the run: exit 0.
    Held,
    /// The hypothesis did not hold (or it failed the pre-check): exit 1.
    Deviated,
    /// The hypothesis held, but findings at or above `settings.fail_on` fail the run:
    /// exit 1.
    Failed,
    /// A guardrail, an operator or a signal stopped the run: exit 2.
    Aborted,
    /// The run could not start as written (a setup error: a port in use, a setup
    /// process that exited before it was ready); nothing was applied: exit 3.
    Invalid,
    /// Something could not be rolled back and stays in the ledger: exit 4.
    RollbackIncomplete,
}

impl Verdict {
    /// The exit status as the journal's `run_ended` event records it.
    pub fn exit_code(self) -> i32 {
        i32::from(self.exit().code())
    }

    /// The verdict for people: terminal, summary, report header, `livefire runs`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Held => "held",
            Verdict::Deviated => "deviated",
            Verdict::Failed => "failed: findings",
            Verdict::Aborted => "aborted",
            Verdict::Invalid => "invalid",
            Verdict::RollbackIncomplete => "rollback incomplete",
        }
    }
}
