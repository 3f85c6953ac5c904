//! `noticed_within`: a fault some detector must notice in time, judged at the end of
//! the run from the journal with the report's own "who noticed" table, so the verdict
//! and the report cannot disagree.

use std::path::Path;
use std::time::Duration;

use livefire_core::events::{Event, Phase};
use livefire_spec::values::Duration as Written;

use crate::journal::Journal;
use crate::plan::Plan;

/// Journals a hypothesis deviation for each fault with `noticed_within` that no
/// detector noticed in time, and says why on stderr; returns whether any did not. A
/// fault that was never applied (the run stopped first) is not judged.
pub(super) fn judge(plan: &Plan, run_dir: &Path, journal: &Journal) -> bool {
    let gated: Vec<(&str, Duration)> = plan
        .activities
        .iter()
        .filter_map(|a| a.noticed_within.map(|w| (a.name.as_str(), w)))
        .collect();
    if gated.is_empty() {
        return false;
    }
    let summary = match livefire_report::read_journal(&run_dir.join("journal.jsonl")) {
        Ok(j) => livefire_report::summarize(&j),
        Err(e) => {
            // Detection that cannot be shown did not happen, as far as the verdict goes.
            tracing::error!("cannot read the journal to judge `noticed_within`: {e}");
            return true;
        }
    };
    let mut failed = false;
    for (fault, within) in gated {
        let Some(seen) = summary.detectors.iter().find(|d| d.fault == fault) else {
            continue;
        };
        let first = seen
            .detectors
            .iter()
            .filter_map(|d| d.noticed_after_ms.map(|ms| (ms, d)))
            .min_by_key(|(ms, _)| *ms);
        let detail = match first {
            Some((ms, _)) if ms <= within.as_millis() as u64 => continue,
            Some((ms, d)) => format!(
                "{fault}: noticed only after {} by {} `{}`, not within {}",
                Written(Duration::from_millis(ms)),
                d.kind,
                d.name,
                Written(within)
            ),
            None => format!("{fault}: nobody noticed within {}", Written(within)),
        };
        tracing::warn!("{detail}");
        journal.emit(Event::Deviation {
            condition: format!("{fault} noticed within {}", Written(within)),
            phase: Phase::During,
            detail,
            streak: None,
        });
        failed = true;
    }
    failed
}
