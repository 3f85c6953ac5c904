//! The coordinator's side of a split run: launch the segments with a shared start, hold
//! the ready barrier, then follow their streams: merge windows exactly into the store
//! the referee reads, journal their findings with the faults active then, notice a
//! segment that dies (`settings.segments.min_alive`), stop them all on the way out and
//! add up their loads and campaigns into one `load_ended` / `campaign_ended` each.
//! Faults, the ledger and the referee stay with the run, as in a single-machine run.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use livefire_core::events::{AbortCause, Event, SegmentState};
use livefire_core::window::WindowStore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::launch::{LaunchSpec, Launcher, SegmentEvent, SegmentExit};
use super::merge::{Merger, WireWindow};
use super::protocol::{DoneStatus, Line, PROTOCOL};
use crate::journal::Journal;

/// After the timeline's end, segments get the longest request `timeout` of the plan's
/// loads (the last requests a load sent may take that long to answer, and a load only
/// reports once they did) plus this margin to end on their own: a segment's clock may
/// be up to `CLOCK_REFUSE_MS` behind, and its last windows, its `load_ended` and its
/// `done` line must still be written and delivered (through pod logs, a few hundred ms).
pub const END_MARGIN: Duration = Duration::from_secs(4);
/// How long segments asked to stop may take before they are killed. A load asked to
/// stop drops its requests in flight at once, so this only covers sending what it has.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long a back end may take to reap segments it killed (`LocalLauncher` waits 5 s).
const KILL_WAIT: Duration = Duration::from_secs(6);
/// The ready barrier closes this long before the shared start.
const BARRIER_MARGIN: Duration = Duration::from_millis(200);
/// A segment whose clock is further than this from the coordinator's at the ready
/// barrier is named in a warning: its seconds are that much off the journal's.
pub const CLOCK_WARN_MS: u64 = 100;
/// A segment whose clock is further than this from the coordinator's stops the run at
/// the ready barrier, before any fault: its windows would land in the wrong seconds
/// and the referee would judge load that did not happen then.
pub const CLOCK_REFUSE_MS: u64 = 1000;

/// A split run as asked: the back end, what it launches, and the verdict rule.
pub struct Split {
    pub launcher: Box<dyn Launcher>,
    /// `run_id`, `segments_dir` and `start_at` are filled in when the run starts.
    pub spec: LaunchSpec,
    /// `settings.segments.min_alive`, else every segment.
    pub min_alive: u32,
    /// The plan's loads ([`loads_of`]): their request timeouts bound how long
    /// segments may take to end after the timeline's end; those with `track_write`
    /// are read back after rollback, with the keys every segment sent.
    pub loads: Vec<livefire_load::LoadConfig>,
}

/// Whether `ev` is a segment's first step into the run: a line other than its clock
/// (a ready segment's lines before the start are `clock` lines, or `done` when it has
/// nothing to run).
fn begins(ev: &SegmentEvent) -> bool {
    match ev {
        SegmentEvent::Line { line, .. } => !matches!(
            serde_json::from_str::<Line>(line),
            Ok(Line::Clock { .. }) | Ok(Line::Done { .. })
        ),
        _ => false,
    }
}

/// The loads of a plan, as the coordinator needs them for a split run.
pub fn loads_of(plan: &crate::plan::Plan) -> Vec<livefire_load::LoadConfig> {
    plan.activities
        .iter()
        .filter_map(|a| match &a.body {
            crate::plan::Body::Load(c) => Some((**c).clone()),
            _ => None,
        })
        .collect()
}

/// How long segments get to end on their own after the timeline's end: the longest
/// request timeout of `loads` plus [`END_MARGIN`].
pub fn end_wait(loads: &[livefire_load::LoadConfig]) -> Duration {
    let longest = loads.iter().map(|l| l.timeout).max().unwrap_or_default();
    longest + END_MARGIN
}

impl std::fmt::Debug for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Split")
            .field("on", &self.launcher.name())
            .field("count", &self.spec.count)
            .field("min_alive", &self.min_alive)
            .finish()
    }
}

/// Fault windows so far: activity, applied and rolled back (run-clock ms).
pub type FaultHistory = Arc<Mutex<Vec<(String, u64, Option<u64>)>>>;

/// Counts, judges and journals a finding: campaign, finding, the run-clock ms its
/// campaign started.
pub type OnFinding = Arc<dyn Fn(&str, livefire_fuzz::Finding, u64) + Send + Sync>;

/// Where the followed streams go: the run's journal, store and fault history.
#[derive(Clone)]
pub struct Sink {
    pub journal: Journal,
    pub store: Arc<WindowStore>,
    pub history: FaultHistory,
    pub on_finding: OnFinding,
    pub abort: mpsc::UnboundedSender<AbortCause>,
}

/// Segments past the ready barrier, to follow.
pub struct Following {
    launcher: Box<dyn Launcher>,
    events: mpsc::UnboundedReceiver<SegmentEvent>,
    state: State,
    /// The shared start on this machine's clock: the timeline's zero.
    pub start: Instant,
    /// How long segments get to end on their own after the timeline's end.
    end_wait: Duration,
    /// The plan's loads: a load of one request has its request's series kept as the
    /// load's, here as in every segment (which then sends it once).
    loads: Vec<livefire_load::LoadConfig>,
    /// Events the barrier took that belong to the run (a segment whose clock is ahead
    /// began first): `follow` handles them first, with the run's sink.
    pending: Vec<SegmentEvent>,
}

/// Launches the segments so that they start together at a whole second of the run's
/// clock at least the back end's startup allowance from now, and waits until every
/// one is ready. Every failure (a launch refused, a segment that died or was not ready
/// in time, an abort meanwhile) stops what was started and is the run's abort cause.
pub async fn launch(
    mut split: Split,
    journal: &Journal,
    abort_rx: &mut mpsc::UnboundedReceiver<AbortCause>,
) -> Result<Following, AbortCause> {
    let count = split.spec.count;
    let allowance = split.launcher.startup_allowance(count);
    let (now, wall) = (Instant::now(), SystemTime::now());
    // A whole number of seconds after the run's start, so the segments' seconds are
    // the journal's seconds.
    let offset = now.duration_since(journal.start()) + allowance;
    let offset_s = offset.as_millis().div_ceil(1000) as u64;
    let start = journal.start() + Duration::from_secs(offset_s);
    split.spec.start_at = wall + start.duration_since(now);
    // A launch may wait long (pods being scheduled, images pulled): a halt or Ctrl-C
    // meanwhile ends it. What it created goes with the launcher's `stop_all`, or the
    // ledger's undo record written before it (Kubernetes objects, by label).
    let launched = tokio::select! {
        launched = split.launcher.launch(&split.spec) => match launched {
            Ok(l) => l,
            Err(e) => {
                return Err(AbortCause::Error {
                    message: format!("{e} (nothing was applied)"),
                });
            }
        },
        cause = abort_rx.recv() => {
            let _ = split.launcher.stop_all(Duration::ZERO).await;
            return Err(cause.unwrap_or(AbortCause::Halt { from: None }));
        }
    };
    let mut state = State::new(
        &split.spec,
        split.min_alive,
        offset_s,
        split.launcher.name(),
    );
    state.tracked = split
        .loads
        .iter()
        .filter(|c| crate::workload::tracks_writes(c))
        .cloned()
        .collect();
    let mut f = Following {
        launcher: split.launcher,
        events: launched.events,
        state,
        start,
        end_wait: end_wait(&split.loads),
        loads: split.loads,
        pending: Vec::new(),
    };
    // Every segment must be ready by the barrier; until then their `clock` lines
    // refine the clock offsets, judged once, there.
    let barrier = start.checked_sub(BARRIER_MARGIN).unwrap_or(start);
    let outcome = loop {
        tokio::select! {
            ev = f.events.recv() => match ev {
                // Every segment ready, and one has begun (its clock is ahead of this
                // one's): the barrier is over, and that line is the run's.
                Some(ev) if f.state.ready.iter().all(|r| *r) && begins(&ev) => {
                    f.pending.push(ev);
                    break Barrier::Passed;
                }
                Some(ev) => {
                    let exited = matches!(ev, SegmentEvent::Exited { .. });
                    let index = ev.index();
                    f.state.handle(ev, journal, None);
                    if exited && !f.state.ready[index as usize] {
                        break Barrier::Failed(f.state.not_ready(index));
                    }
                    if let Some(bad) = f.state.protocol_mismatch.take() {
                        break Barrier::Failed(bad);
                    }
                    // Segments lost before the start, below `min_alive`: no fault.
                    if let Some(AbortCause::Error { message }) = f.state.below_min_alive.take() {
                        break Barrier::Failed(message);
                    }
                }
                // Segments with nothing to run may be done before the start.
                None if f.state.ready.iter().all(|r| *r) => break Barrier::Passed,
                None => break Barrier::Failed("every segment's stream closed before it was ready".into()),
            },
            _ = tokio::time::sleep_until(barrier.into()) => {
                if f.state.ready.iter().all(|r| *r) {
                    break Barrier::Passed;
                }
                let late: Vec<String> = (0..count)
                    .filter(|i| !f.state.ready[*i as usize])
                    .map(|i| f.state.name(i))
                    .collect();
                break Barrier::Failed(format!(
                    "segment(s) {} not ready by the shared start ({:.1}s after launch): raise the back end's startup allowance or check segments/*/stderr.log",
                    late.join(", "),
                    allowance.as_secs_f64()
                ));
            }
            cause = abort_rx.recv() => {
                break Barrier::Halted(cause.unwrap_or(AbortCause::Halt { from: None }));
            }
        }
    };
    // The ready segments' `ready` events, with their clocks judged, on every way out.
    let clocks = f.state.judge_clocks(journal);
    let cause = match (outcome, clocks) {
        (Barrier::Passed, None) => return Ok(f),
        (Barrier::Halted(cause), _) => cause,
        (Barrier::Failed(why), _) | (Barrier::Passed, Some(why)) => AbortCause::Error {
            message: format!("split run: {why} (no fault was applied)"),
        },
    };
    let _ = f.launcher.stop_all(Duration::ZERO).await;
    f.drain_after_stop(journal).await;
    Err(cause)
}

/// How the wait for the ready barrier ended.
enum Barrier {
    /// Every segment ready (and its clock not judged yet).
    Passed,
    /// Why the run stops before any fault.
    Failed(String),
    /// A halt or Ctrl-C while waiting.
    Halted(AbortCause),
}

impl Following {
    /// The longest `follow` may take once cancelled: the wait for segments to end on
    /// their own, the grace after asking them to stop, and reaping the killed.
    pub fn ends_within(&self) -> Duration {
        self.end_wait + STOP_GRACE + KILL_WAIT
    }

    /// Follows the segments until each has ended: windows into the store as every
    /// live segment passes a second, findings judged, lost segments counted against
    /// `min_alive`. When `cancel` fires (the timeline's end at `end`, or an abort), the
    /// segments get the longest request timeout plus `END_MARGIN` to end on their own
    /// (only at the end: on an abort, none), then are stopped.
    /// Ends with the merged `write_outcomes`, `load_ended` and `campaign_ended`
    /// events, and returns the loads with `track_write`, each with every segment's
    /// keys (those of a segment that died too), for the read-back after rollback.
    pub async fn follow(
        mut self,
        sink: Sink,
        cancel: CancellationToken,
        end: Instant,
    ) -> Vec<(livefire_load::LoadConfig, livefire_load::LoadReport)> {
        for load in &self.loads {
            load.share_series(&sink.store);
        }
        for ev in std::mem::take(&mut self.pending) {
            self.on_event(ev, &sink);
        }
        let mut stop_at: Option<tokio::time::Instant> = None;
        let mut stopped = false;
        loop {
            tokio::select! {
                ev = self.events.recv() => {
                    let Some(ev) = ev else { break };
                    self.on_event(ev, &sink);
                }
                _ = cancel.cancelled(), if stop_at.is_none() => {
                    self.state.stopping = true;
                    let natural = Instant::now() + Duration::from_millis(100) >= end;
                    let wait = if natural { self.end_wait } else { Duration::ZERO };
                    stop_at = Some(tokio::time::Instant::now() + wait);
                }
                _ = tokio::time::sleep_until(stop_at.unwrap_or_else(tokio::time::Instant::now)), if stop_at.is_some() && !stopped => {
                    stopped = true;
                    if let Err(e) = self.launcher.stop_all(STOP_GRACE).await {
                        sink.journal.emit(Event::Warning { message: e.to_string() });
                    }
                }
            }
        }
        if !stopped && let Err(e) = self.launcher.stop_all(Duration::ZERO).await {
            sink.journal.emit(Event::Warning {
                message: e.to_string(),
            });
        }
        self.state.finish(&sink)
    }

    /// One event of the run: handled with the run's sink; a segment lost below
    /// `min_alive` aborts the run; the seconds every live segment passed are released.
    fn on_event(&mut self, ev: SegmentEvent, sink: &Sink) {
        self.state.handle(ev, &sink.journal, Some(sink));
        if let Some(cause) = self.state.below_min_alive.take()
            && !self.state.stopping
        {
            let _ = sink.abort.send(cause);
        }
        self.state.publish(sink);
    }

    /// After a failed barrier: journal what the segments said while they stop.
    async fn drain_after_stop(&mut self, journal: &Journal) {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(ev) = self.events.recv().await {
                self.state.stopping = true;
                self.state.handle(ev, journal, None);
            }
        })
        .await;
        self.state.flush();
    }
}

/// What the coordinator knows of its segments.
struct State {
    count: u32,
    /// Where and when, for the `started` events.
    launched: String,
    min_alive: u32,
    /// The shared start, in whole seconds after the run's start.
    offset_s: u64,
    merger: Merger,
    ready: Vec<bool>,
    done: Vec<Option<(DoneStatus, String)>>,
    lost: Vec<bool>,
    /// Each segment's stream as received: `segments/<i>/stream.jsonl`.
    streams: Vec<Option<std::io::BufWriter<std::fs::File>>>,
    loads: BTreeMap<String, livefire_load::LoadReport>,
    campaigns: BTreeMap<String, Campaign>,
    started: std::collections::BTreeSet<String>,
    stopping: bool,
    below_min_alive: Option<AbortCause>,
    protocol_mismatch: Option<String>,
    late_windows: u64,
    /// Per segment: its loads (from its `ready` line), the requests and errors of
    /// their windows so far, its clock offset.
    workloads: Vec<Vec<String>>,
    tallies: Vec<(u64, u64)>,
    offsets: Vec<Option<i64>>,
    /// Per segment, what its `ready` event will say besides the clock offset (open
    /// files), kept until the barrier journals it with the offset judged there (a
    /// `clock` line after that changes an offset nothing reads any more).
    ready_detail: Vec<Option<String>>,
    /// The plan's loads with `track_write`, the keys every segment sent for each
    /// (by load name), and how many acknowledged writes each segment sent.
    tracked: Vec<livefire_load::LoadConfig>,
    writes: BTreeMap<String, Arc<livefire_load::WriteLog>>,
    writes_acked: Vec<u64>,
    /// Per load with `track_write`, each segment's runs of write outcomes as sent so
    /// far (run clock) and where its recording stopped: merged at the end into the
    /// load's one `write_outcomes` event.
    outcomes: BTreeMap<String, Vec<SegmentRuns>>,
}

/// One segment's runs of a load's write outcomes, and where its recording stopped.
type SegmentRuns = (Vec<livefire_core::events::WriteRun>, Option<u64>);

/// A campaign's segments' summaries, added up.
struct Campaign {
    /// Run-clock ms of the earliest segment's start, and the latest end.
    started_ms: u64,
    ended_ms: u64,
    parts: Vec<(u64, livefire_fuzz::Summary)>,
}

impl State {
    fn new(spec: &LaunchSpec, min_alive: u32, offset_s: u64, on: &str) -> State {
        let n = spec.count as usize;
        let streams = (0..spec.count)
            .map(|i| {
                let dir = spec.segment_dir(i);
                std::fs::create_dir_all(&dir)
                    .and_then(|_| std::fs::File::create(dir.join("stream.jsonl")))
                    .map(std::io::BufWriter::new)
                    .ok()
            })
            .collect();
        State {
            count: spec.count,
            launched: format!(
                "on {on}, shared start {}",
                crate::clock::rfc3339(spec.start_at)
            ),
            min_alive,
            offset_s,
            merger: Merger::new(spec.count),
            ready: vec![false; n],
            done: vec![None; n],
            lost: vec![false; n],
            streams,
            loads: BTreeMap::new(),
            campaigns: BTreeMap::new(),
            started: Default::default(),
            stopping: false,
            below_min_alive: None,
            protocol_mismatch: None,
            late_windows: 0,
            workloads: vec![Vec::new(); n],
            tallies: vec![(0, 0); n],
            offsets: vec![None; n],
            ready_detail: vec![None; n],
            tracked: Vec::new(),
            writes: BTreeMap::new(),
            writes_acked: vec![0; n],
            outcomes: BTreeMap::new(),
        }
    }

    fn name(&self, index: u32) -> String {
        format!("{}/{}", index + 1, self.count)
    }

    fn offset_ms(&self) -> u64 {
        self.offset_s * 1000
    }

    /// Why segment `index` ended before it was ready.
    fn not_ready(&self, index: u32) -> String {
        match &self.done[index as usize] {
            Some((_, message)) if !message.is_empty() => {
                format!("segment {} could not start: {message}", self.name(index))
            }
            _ => format!(
                "segment {} ended before it was ready: see segments/{}/stderr.log",
                self.name(index),
                index + 1
            ),
        }
    }

    fn segment_event(&self, journal: &Journal, index: u32, state: SegmentState, detail: String) {
        let i = index as usize;
        let ended = matches!(state, SegmentState::Done | SegmentState::Lost);
        journal.emit(Event::Segment {
            segment: self.name(index),
            state,
            detail,
            clock_offset_ms: match state {
                SegmentState::Ready => self.offsets[i],
                _ => None,
            },
            requests: ended.then_some(self.tallies[i].0),
            errors: ended.then_some(self.tallies[i].1),
            writes_acked: (ended && !self.tracked.is_empty()).then_some(self.writes_acked[i]),
        });
    }

    /// A window as it came: merged, and counted for its segment when it is a load's
    /// total (not one of its requests).
    fn wire_window(
        &mut self,
        index: u32,
        w: &WireWindow<'_>,
        journal: &Journal,
        sink: Option<&Sink>,
    ) {
        match self.merger.wire(index, w) {
            Ok(late) => {
                let i = index as usize;
                if self.workloads[i].iter().any(|l| *l == w.series) {
                    self.tallies[i].0 += w.window.counts.completed();
                    self.tallies[i].1 += w.window.counts.errors();
                }
                if let Some((second, series, w)) = late {
                    // Later than its own watermark said: added, but its second may be
                    // journaled already.
                    self.late_windows += 1;
                    if let Some(sink) = sink {
                        sink.store
                            .publish_packed(&series, second + self.offset_s, w);
                    }
                }
            }
            Err(e) => journal.emit(Event::Warning {
                message: format!(
                    "segment {}: a window of `{}` second {} that does not decode ({e}): left out of the totals",
                    self.name(index),
                    w.series,
                    w.second
                ),
            }),
        }
    }

    /// One reading of the segment's clock (its `ready` line, then its `clock` lines)
    /// against this one's as the line arrived. A line's delivery delay makes the
    /// segment look behind by that much, so the largest difference is the best estimate.
    fn clock(&mut self, index: u32, clock_ms: Option<u64>) {
        let Some(theirs) = clock_ms else { return };
        let ours = super::agent::unix_ms(SystemTime::now());
        let offset = theirs as i64 - ours as i64;
        let best = &mut self.offsets[index as usize];
        *best = Some(best.map_or(offset, |b| b.max(offset)));
    }

    /// Journals segment `index`'s `ready` event, once, with its clock offset so far.
    fn ready_event(&mut self, index: u32, journal: &Journal) {
        let Some(more) = self.ready_detail[index as usize].take() else {
            return;
        };
        let detail: Vec<String> = self.offsets[index as usize]
            .map(|o| format!("clock offset {o:+} ms"))
            .into_iter()
            .chain((!more.is_empty()).then_some(more))
            .collect();
        self.segment_event(journal, index, SegmentState::Ready, detail.join(", "));
    }

    /// At the barrier: journals each ready segment's `ready` event with its clock
    /// offset, warns past `CLOCK_WARN_MS`, and past `CLOCK_REFUSE_MS` gives the reason
    /// the run stops.
    fn judge_clocks(&mut self, journal: &Journal) -> Option<String> {
        let mut refused = None;
        for i in 0..self.ready.len() {
            let index = i as u32;
            self.ready_event(index, journal);
            let Some(offset) = self.offsets[i].filter(|_| self.ready[i]) else {
                continue;
            };
            let far = offset.unsigned_abs();
            let how = if offset >= 0 { "ahead of" } else { "behind" };
            if far > CLOCK_REFUSE_MS {
                refused.get_or_insert(format!(
                    "segment {}'s clock is {far} ms {how} the coordinator's, more than the {CLOCK_REFUSE_MS} ms a split run allows: synchronise the machines' clocks (chrony or NTP) and run again",
                    self.name(index)
                ));
            } else if far > CLOCK_WARN_MS {
                journal.emit(Event::Warning {
                    message: format!(
                        "segment {}'s clock is {far} ms {how} the coordinator's (more than {CLOCK_WARN_MS} ms): its windows are that much off the journal's seconds; synchronise the clocks (chrony or NTP)",
                        self.name(index)
                    ),
                });
            }
        }
        refused
    }

    /// One event of a back end. `sink` is absent before the shared start (the
    /// barrier), when only `ready` and `done` lines are expected.
    fn handle(&mut self, ev: SegmentEvent, journal: &Journal, sink: Option<&Sink>) {
        match ev {
            SegmentEvent::Started { index, detail } => {
                let detail = format!("{detail}, {}", self.launched);
                self.segment_event(journal, index, SegmentState::Started, detail);
            }
            SegmentEvent::Line { index, line } => {
                if let Some(Some(w)) = self.streams.get_mut(index as usize) {
                    let _ = writeln!(w, "{line}");
                }
                // Windows are most of the stream: read without building histograms.
                if let Some(w) = WireWindow::parse(&line) {
                    self.wire_window(index, &w, journal, sink);
                    return;
                }
                match serde_json::from_str::<Line>(&line) {
                    Ok(l) => self.line(index, l, journal, sink),
                    Err(e) => journal.emit(Event::Warning {
                        message: format!(
                            "segment {}: a line that is not the protocol ({e}): {}",
                            self.name(index),
                            line.chars().take(200).collect::<String>()
                        ),
                    }),
                }
            }
            SegmentEvent::Exited { index, exit } => self.exited(index, exit, journal),
        }
    }

    fn line(&mut self, index: u32, line: Line, journal: &Journal, sink: Option<&Sink>) {
        let offset_ms = self.offset_ms();
        match line {
            Line::Ready {
                protocol,
                segment,
                workloads,
                clock_ms,
                open_files,
                open_files_was,
                ..
            } => {
                self.workloads[index as usize] = workloads;
                self.clock(index, clock_ms);
                if protocol != PROTOCOL {
                    self.protocol_mismatch = Some(format!(
                        "segment {} speaks protocol {protocol}, this livefire {PROTOCOL}: run the same livefire version everywhere",
                        self.name(index)
                    ));
                } else if segment != self.name(index) {
                    self.protocol_mismatch = Some(format!(
                        "segment {} says it is segment {segment}",
                        self.name(index)
                    ));
                }
                self.ready[index as usize] = true;
                // Journaled at the barrier, with the clock offset judged there.
                self.ready_detail[index as usize] = Some(match open_files {
                    Some(n) => match open_files_was {
                        Some(was) if was != n => format!("open files {n} (raised from {was})"),
                        _ => format!("open files {n}"),
                    },
                    None => String::new(),
                });
            }
            Line::Clock { clock_ms } => self.clock(index, Some(clock_ms)),
            Line::Started {
                activity, id, kind, ..
            } => {
                // One `activity_started` per activity, from whichever segment is first.
                if self.started.insert(id.clone()) {
                    journal.emit(Event::ActivityStarted { activity, kind, id });
                }
            }
            Line::Window {
                series,
                second,
                window,
            } => {
                let i = index as usize;
                if self.workloads[i].contains(&series) {
                    self.tallies[i].0 += window.counts.completed();
                    self.tallies[i].1 += window.counts.errors();
                }
                if let Some((second, series, w)) = self.merger.window(index, series, second, window)
                {
                    // Later than its own watermark said: added, but its second may be
                    // journaled already.
                    self.late_windows += 1;
                    if let Some(sink) = sink {
                        sink.store
                            .publish_packed(&series, second + self.offset_s, w);
                    }
                }
            }
            Line::Watermark { second } => self.merger.watermark(index, second),
            Line::Finding {
                campaign,
                started_ms,
                finding,
            } => {
                if let Some(sink) = sink {
                    (sink.on_finding)(&campaign, finding, offset_ms + started_ms);
                }
            }
            Line::Writes { load, keys } => {
                self.writes_acked[index as usize] += keys.acked_count();
                self.writes
                    .entry(load)
                    .or_insert_with(|| Arc::new(livefire_load::WriteLog::new(Instant::now())))
                    .add_keys(keys);
            }
            Line::WriteOutcomes { load, runs } => {
                let n = self.count as usize;
                let parts = self
                    .outcomes
                    .entry(load)
                    .or_insert_with(|| vec![Default::default(); n]);
                if let Some((held, truncated)) = parts.get_mut(index as usize) {
                    runs.apply(offset_ms, held, truncated);
                }
            }
            Line::LoadEnded { load, report } => match self.loads.get_mut(&load) {
                Some(r) => r.merge(&report),
                None => {
                    self.loads.insert(load, report);
                }
            },
            Line::CampaignEnded {
                campaign,
                started_ms,
                ended_ms,
                summary,
            } => {
                let c = self.campaigns.entry(campaign).or_insert(Campaign {
                    started_ms: u64::MAX,
                    ended_ms: 0,
                    parts: Vec::new(),
                });
                c.started_ms = c.started_ms.min(offset_ms + started_ms);
                c.ended_ms = c.ended_ms.max(offset_ms + ended_ms);
                c.parts.push((offset_ms + started_ms, summary));
            }
            Line::Warning { message } => journal.emit(Event::Warning {
                message: format!("segment {}: {message}", self.name(index)),
            }),
            Line::Done { status, message } => {
                self.done[index as usize] = Some((status, message));
            }
        }
    }

    /// A segment ended: done, or lost (it did not say it was done, or failed, or
    /// stopped while nobody asked it to).
    fn exited(&mut self, index: u32, exit: SegmentExit, journal: &Journal) {
        let i = index as usize;
        // A segment that ends before the barrier was ready first, in the journal too.
        self.ready_event(index, journal);
        self.merger.gone(index);
        let said = self.done[i].clone();
        let fine = match &said {
            Some((DoneStatus::Ok, _)) => true,
            Some((DoneStatus::Stopped, _)) => self.stopping,
            _ => false,
        };
        if fine {
            self.segment_event(journal, index, SegmentState::Done, exit.detail);
            return;
        }
        self.lost[i] = true;
        let left = self.count - self.lost.iter().filter(|l| **l).count() as u32;
        let why = match said {
            Some((_, m)) if !m.is_empty() => format!("{}: {m}", exit.detail),
            _ => exit.detail,
        };
        let detail = format!(
            "{why}; {left} of {} segments left, settings.segments.min_alive is {}",
            self.count, self.min_alive
        );
        self.segment_event(journal, index, SegmentState::Lost, detail.clone());
        if left < self.min_alive && self.below_min_alive.is_none() {
            self.below_min_alive = Some(AbortCause::Error {
                message: format!("segment {} was lost ({detail})", self.name(index)),
            });
        }
    }

    /// Windows of every second all live segments passed, into the store.
    fn publish(&mut self, sink: &Sink) {
        for (second, series, w) in self.merger.ready() {
            sink.store
                .publish_packed(&series, second + self.offset_s, w);
        }
    }

    fn flush(&mut self) {
        for w in self.streams.iter_mut().flatten() {
            let _ = w.flush();
        }
    }

    /// The end: every window left, then one `write_outcomes` per load with
    /// `track_write` (every segment's runs merged), one `load_ended` per load and one
    /// `campaign_ended` (with its finding windows) per campaign, added up exactly.
    /// Returns the loads with `track_write` and all their keys.
    fn finish(
        &mut self,
        sink: &Sink,
    ) -> Vec<(livefire_load::LoadConfig, livefire_load::LoadReport)> {
        for (second, series, w) in self.merger.rest() {
            sink.store
                .publish_packed(&series, second + self.offset_s, w);
        }
        self.flush();
        if self.late_windows > 0 {
            sink.journal.emit(Event::Warning {
                message: format!(
                    "split run: {} window(s) arrived after their second was released; they are in the totals, perhaps not in the journal's windows",
                    self.late_windows
                ),
            });
        }
        let mut tracked = Vec::new();
        for config in std::mem::take(&mut self.tracked) {
            let name = config.name.clone();
            // A load whose every segment died before reporting still has the keys
            // they sent.
            let mut report =
                self.loads
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| livefire_load::LoadReport {
                        name: name.clone(),
                        duration_secs: 0.0,
                        intended: 0,
                        total: Default::default(),
                        requests: Default::default(),
                        write_gap_secs: None,
                        write_log: None,
                    });
            report.write_log = Some(
                self.writes
                    .remove(&name)
                    .unwrap_or_else(|| Arc::new(livefire_load::WriteLog::new(Instant::now()))),
            );
            // The write gap of the merged load (the segments' smallest: writes from all
            // of them leave no longer gap), as a run on one machine publishes it.
            if let Some(gap) = report.write_gap_secs {
                sink.store.set_fact(&format!("{name}.writes.gap"), gap);
                let worst = sink
                    .store
                    .fact("failover.write_gap")
                    .map_or(gap, |g| g.max(gap));
                sink.store.set_fact("failover.write_gap", worst);
            }
            tracked.push((config, report));
        }
        // Each load's merged write outcomes before its `load_ended`, as a run on one
        // machine journals them; a load whose every segment died before it ended still
        // has the outcomes they sent.
        let mut loads = std::mem::take(&mut self.loads);
        let mut outcomes = std::mem::take(&mut self.outcomes);
        let names: std::collections::BTreeSet<String> =
            loads.keys().chain(outcomes.keys()).cloned().collect();
        for load in names {
            let merged = outcomes.remove(&load).map(|parts| {
                let (runs, truncated_ms) = livefire_load::merge_runs(&parts);
                Event::WriteOutcomes {
                    load: load.clone(),
                    runs,
                    truncated_ms,
                }
            });
            let ended = loads.remove(&load).map(|report| Event::LoadEnded {
                load,
                report: report.to_json(),
            });
            // Together, so no event from another thread comes between them.
            sink.journal.emit_all(merged.into_iter().chain(ended));
        }
        let history = sink
            .history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (name, c) in std::mem::take(&mut self.campaigns) {
            let summary = merge_summaries(c.started_ms, c.parts);
            for w in crate::campaign::windows(&name, &summary, c.started_ms, c.ended_ms, &history) {
                sink.journal.emit(w);
            }
            sink.journal.emit(Event::CampaignEnded {
                campaign: name,
                summary: serde_json::to_value(&summary).unwrap_or_default(),
            });
        }
        tracked
    }
}

/// Adds up the segments' summaries of one campaign; sightings' times move to the
/// earliest segment's start (`base_ms`, run clock), from each one's own.
pub fn merge_summaries(
    base_ms: u64,
    parts: Vec<(u64, livefire_fuzz::Summary)>,
) -> livefire_fuzz::Summary {
    let mut out: Option<livefire_fuzz::Summary> = None;
    for (started_ms, mut s) in parts {
        let shift = started_ms.saturating_sub(base_ms);
        for sight in &mut s.sightings {
            sight.first_ms += shift;
            sight.last_ms += shift;
        }
        let Some(o) = out.as_mut() else {
            out = Some(s);
            continue;
        };
        o.operations += s.operations;
        o.requests += s.requests;
        o.elapsed_ms = o.elapsed_ms.max(s.elapsed_ms + shift);
        for (k, v) in s.statuses {
            *o.statuses.entry(k).or_default() += v;
        }
        for (k, v) in s.failures {
            *o.failures.entry(k).or_default() += v;
        }
        o.findings += s.findings;
        for w in s.warnings {
            if !o.warnings.contains(&w) {
                o.warnings.push(w);
            }
        }
        if o.stopped_by == "duration" {
            o.stopped_by = s.stopped_by;
        }
        o.sightings.extend(s.sightings);
        o.long_exchanges.extend(s.long_exchanges);
    }
    out.unwrap_or_default()
}
