//! Failover metrics: for each `process.kill` / `process.restart` and each load that tracks
//! writes, how long writes failed, how long after the kill the first write was
//! acknowledged, and how many acknowledged writes were lost; measured from the load's
//! per-write outcomes (`write_outcomes` events), so to the spacing of writes.

use livefire_core::events::{Event, WriteRun};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::journal::Journal;
use crate::summary::{FaultSummary, WritesSummary};

/// The fault kinds whose failover is measured: the ones that take a process away.
pub const FAILOVER_KINDS: [&str; 2] = ["process.kill", "process.restart"];

/// One fault's effect on one load's writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FailoverSummary {
    /// The fault (its display name) and the load.
    pub fault: String,
    pub load: String,
    /// When the fault was applied, in milliseconds since the start.
    pub killed_ms: u64,
    /// Whether a write failed after the kill, before the fault was rolled back.
    pub interrupted: bool,
    /// How long writes could not be made: from the kill (or the first failed write sent
    /// after it, if later) to the first acknowledged write after the failures. `None`
    /// when writes never came back before the load ended.
    pub unavailable_ms: Option<u64>,
    /// From the kill to the first acknowledged write after the failures (to the first
    /// write acknowledged after the kill, when none failed).
    pub first_write_after_ms: Option<u64>,
    /// How finely the two ends of the unavailability are known: the larger gap between
    /// the writes on either side of each end.
    pub resolution_ms: Option<u64>,
    /// Writes that failed between the kill and the first acknowledged write after it.
    pub failed_writes: u64,
    /// Acknowledged writes of the load missing when read back after the run (the whole
    /// run's count; `None` when they were not read back).
    pub writes_lost: Option<u64>,
}

/// Every failover of the run: each measured fault against each load with write outcomes.
pub fn failovers(
    journal: &Journal,
    faults: &[FaultSummary],
    writes: &[WritesSummary],
) -> Vec<FailoverSummary> {
    let loads: Vec<(&str, &[WriteRun])> = journal
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::WriteOutcomes { load, runs, .. } => Some((load.as_str(), runs.as_slice())),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for f in faults
        .iter()
        .filter(|f| FAILOVER_KINDS.contains(&f.kind.as_str()))
    {
        for (load, runs) in &loads {
            let lost = writes
                .iter()
                .find(|w| w.load == *load)
                .and_then(|w| w.counts.get("lost").copied());
            out.push(measure(f, load, runs, lost));
        }
    }
    out
}

/// One fault against one load's runs (in the order the writes ended).
fn measure(f: &FaultSummary, load: &str, runs: &[WriteRun], lost: Option<u64>) -> FailoverSummary {
    let k = f.applied_ms;
    let until = f.rolled_back_ms.unwrap_or(u64::MAX);
    let mut s = FailoverSummary {
        fault: f.activity.clone(),
        load: load.to_owned(),
        killed_ms: k,
        interrupted: false,
        unavailable_ms: None,
        first_write_after_ms: None,
        resolution_ms: None,
        failed_writes: 0,
        writes_lost: lost,
    };
    // The first failed run that ended after the kill and began before the rollback.
    let first_fail = runs
        .iter()
        .position(|r| !r.ok && r.last_done_ms >= k && r.first_sent_ms < until);
    let Some(i) = first_fail else {
        // Writes went on: the first one acknowledged after the kill.
        if let Some(r) = runs.iter().find(|r| r.ok && r.last_done_ms >= k) {
            s.unavailable_ms = Some(0);
            s.first_write_after_ms = Some(r.first_done_ms.max(k) - k);
        }
        return s;
    };
    s.interrupted = true;
    let fail = &runs[i];
    let start = fail.first_sent_ms.max(k);
    // The start is exact when a write in flight at the kill failed; otherwise it lies
    // between the last write sent before that succeeded and the first that failed.
    let start_gap = if fail.first_sent_ms <= k {
        0
    } else {
        let before = runs[..i]
            .iter()
            .rev()
            .find(|r| r.ok)
            .map_or(k, |r| r.last_sent_ms.max(k));
        fail.first_sent_ms.saturating_sub(before)
    };
    let back = runs[i..].iter().position(|r| r.ok).map(|j| i + j);
    s.failed_writes = runs[i..back.unwrap_or(runs.len())]
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.n)
        .sum();
    if let Some(j) = back {
        let ok = &runs[j];
        let end = ok.first_done_ms.max(start);
        let last_failure = runs[j - 1].last_done_ms;
        s.unavailable_ms = Some(end - start);
        s.first_write_after_ms = Some(end - k);
        s.resolution_ms = Some(start_gap.max(end.saturating_sub(last_failure)));
    }
    s
}

/// The failover lines of the end-of-run text summary: `failover `primary killed`, load
/// `orders`: writes failed for 4.21s (±0.10s), first acknowledged write 4.30s after the
/// kill, 38 writes failed, 0 acknowledged writes lost`.
pub fn lines(failovers: &[FailoverSummary]) -> Vec<String> {
    failovers
        .iter()
        .map(|f| {
            let lost = match f.writes_lost {
                Some(n) => format!("{n} acknowledged write{} lost", plural(n)),
                None => "writes not read back".into(),
            };
            let head = format!("failover `{}`, load `{}`", f.fault, f.load);
            match (f.interrupted, f.unavailable_ms, f.first_write_after_ms) {
                (false, _, Some(first)) => format!(
                    "{head}: writes not interrupted (first acknowledged write {} after the kill), {lost}",
                    crate::summary::dur(first)
                ),
                (false, _, None) => format!("{head}: no write ended after the kill, {lost}"),
                (true, Some(down), Some(first)) => format!(
                    "{head}: writes failed for {}{}, first acknowledged write {} after the kill, {} write{} failed, {lost}",
                    crate::summary::dur(down),
                    f.resolution_ms
                        .map(|r| format!(" (±{})", crate::summary::dur(r)))
                        .unwrap_or_default(),
                    crate::summary::dur(first),
                    f.failed_writes,
                    plural(f.failed_writes),
                ),
                (true, _, _) => format!(
                    "{head}: writes failed from the kill and never came back before the load ended ({} write{} failed), {lost}",
                    f.failed_writes,
                    plural(f.failed_writes)
                ),
            }
        })
        .collect()
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ok: bool, n: u64, sent: (u64, u64), done: (u64, u64)) -> WriteRun {
        WriteRun {
            ok,
            n,
            first_sent_ms: sent.0,
            last_sent_ms: sent.1,
            first_done_ms: done.0,
            last_done_ms: done.1,
        }
    }

    fn fault(applied: u64, back: Option<u64>) -> FaultSummary {
        FaultSummary {
            activity: "primary killed".into(),
            kind: "process.kill".into(),
            target: "primary".into(),
            applied_ms: applied,
            applying_ms: None,
            rolled_back_ms: back,
            rollback_ok: back.map(|_| true),
            rolled_back_by: None,
            time_to_impact_ms: None,
            impact_signal: None,
            time_to_recover_ms: None,
        }
    }

    /// (case, runs, kill, rollback, unavailable, first write after, resolution, failed)
    type Case = (
        &'static str,
        Vec<WriteRun>,
        u64,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        u64,
    );

    #[test]
    fn unavailability_and_first_write_come_from_the_write_outcomes() {
        let cases: Vec<Case> = vec![
            (
                "a write in flight at the kill fails: the start is the kill itself",
                vec![
                    run(true, 50, (0, 4990), (5, 4995)),
                    run(false, 30, (4998, 7900), (5001, 7905)),
                    run(true, 20, (8000, 9900), (8010, 9910)),
                ],
                5000,
                Some(15000),
                Some(3010),
                Some(3010),
                Some(105),
                30,
            ),
            (
                "the first failure comes after the kill: the start is that write",
                vec![
                    run(true, 60, (0, 5900), (5, 5905)),
                    run(false, 10, (6000, 6900), (6002, 6902)),
                    run(true, 5, (7000, 7400), (7003, 7403)),
                ],
                5000,
                None,
                Some(1003),
                Some(2003),
                Some(101),
                10,
            ),
            (
                "writes never came back before the load ended",
                vec![
                    run(true, 50, (0, 4990), (5, 4995)),
                    run(false, 30, (5000, 7900), (5001, 7905)),
                ],
                5000,
                None,
                None,
                None,
                None,
                30,
            ),
            (
                "writes went on through the kill",
                vec![run(true, 100, (0, 9900), (5, 9905))],
                5000,
                Some(6000),
                Some(0),
                Some(0),
                None,
                0,
            ),
            (
                "a failure before the kill and one after the rollback are not the kill's",
                vec![
                    run(true, 10, (0, 900), (5, 905)),
                    run(false, 1, (1000, 1000), (1002, 1002)),
                    run(true, 100, (1100, 9900), (1105, 9905)),
                    run(false, 2, (16000, 16100), (16001, 16101)),
                ],
                5000,
                Some(15000),
                Some(0),
                Some(0),
                None,
                0,
            ),
        ];
        for (case, runs, kill, back, down, first, res, failed) in cases {
            let m = measure(&fault(kill, back), "orders", &runs, Some(0));
            assert_eq!(m.unavailable_ms, down, "{case}: unavailable");
            assert_eq!(m.first_write_after_ms, first, "{case}: first write");
            assert_eq!(m.resolution_ms, res, "{case}: resolution");
            assert_eq!(m.failed_writes, failed, "{case}: failed writes");
            assert_eq!(m.interrupted, failed > 0, "{case}: interrupted");
        }
    }

    #[test]
    fn the_text_line_says_how_long_writes_failed_and_what_was_lost() {
        let runs = vec![
            run(true, 50, (0, 4990), (5, 4995)),
            run(false, 30, (4998, 7900), (5001, 7905)),
            run(true, 20, (8000, 9900), (8010, 9910)),
        ];
        let m = measure(&fault(5000, Some(15000)), "orders", &runs, Some(0));
        assert_eq!(
            lines(&[m]),
            vec![
                "failover `primary killed`, load `orders`: writes failed for 3.01s (±105 ms), first acknowledged write 3.01s after the kill, 30 writes failed, 0 acknowledged writes lost"
            ]
        );
    }
}
