//! Teardown: stop what the run started (setup processes, proxies, the exporter, the
//! control socket), decide the verdict from what the referee and rollback recorded, and
//! write the outputs.

use std::path::Path;
use std::process::Child;
use std::sync::Arc;

use livefire_core::events::{AbortCause, Event, Verdict};
use livefire_core::exit::Exit;

use crate::plan::{Body, Plan};

use super::setup::stop_setup;
use super::shared::Shared;

/// What the run started that teardown stops.
pub(super) struct Started {
    pub children: Vec<(String, Child)>,
    pub exporter: Option<tokio::task::JoinHandle<()>>,
    pub rollback_notice: tokio::task::JoinHandle<()>,
    pub control: Option<tokio::task::JoinHandle<()>>,
    pub socket: std::path::PathBuf,
    /// What the control socket's `end curveball` reaches the run through (it holds a weak
    /// reference): dropped here, so the ledger can be closed.
    pub control_shared: Arc<Shared>,
}

/// Stops setup processes (newest first), the exporter, the run's proxies, the control
/// socket.
pub(super) async fn stop_everything(shared: &Shared, mut started: Started) {
    stop_setup(&mut started.children, &shared.journal).await;
    if let Some(e) = &started.exporter {
        e.abort();
    }
    // The run's proxies stop with it.
    shared
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .proxies
        .clear();
    started.rollback_notice.abort();
    if let Some(c) = started.control {
        c.abort();
    }
    let _ = std::fs::remove_file(&started.socket);
    drop(started.control_shared);
}

/// What the phases found, for the verdict.
pub(super) struct Facts {
    pub setup_failed: bool,
    pub aborted: Option<AbortCause>,
    /// The hypothesis deviated (before, during, after, or on whole-run facts).
    pub deviated: bool,
    /// Findings at or above `settings.fail_on`.
    pub failing_findings: usize,
}

/// Decides the verdict and exit code, says why on stderr when aborted, journals the
/// end of the run and closes the ledger.
pub(super) fn decide(shared: Shared, facts: &Facts) -> (Verdict, Exit) {
    let left = shared
        .ledger
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pending();
    let verdict = if left > 0 {
        Verdict::RollbackIncomplete
    } else if facts.setup_failed {
        Verdict::Invalid
    } else if facts.aborted.is_some() {
        Verdict::Aborted
    } else if facts.deviated {
        Verdict::Deviated
    } else if facts.failing_findings > 0 {
        Verdict::Failed
    } else {
        Verdict::Held
    };
    let exit = verdict.exit();
    if let Some(cause) = &facts.aborted {
        tracing::warn!(
            "aborted: {}; every fault was rolled back{}",
            cause.describe(),
            if left > 0 {
                " except what stays in the ledger"
            } else {
                ""
            }
        );
    }
    shared.journal.emit(Event::RunEnded {
        verdict,
        exit_code: verdict.exit_code(),
        ledger_left: left,
    });
    if let Ok(l) = Arc::try_unwrap(shared.ledger) {
        l.into_inner().unwrap_or_else(|p| p.into_inner()).close();
    }
    (verdict, exit)
}

/// Writes summary.json, report.html and junit.xml (the same function as `livefire
/// report`), then findings.sarif when there are findings (the fuzzer's, and faults
/// nobody noticed). Returns the summary (`None` when it could not be written).
pub(super) fn write_outputs(
    run_dir: &Path,
    plan: &Plan,
    found: &[livefire_fuzz::Finding],
    failing: usize,
) -> Option<livefire_report::Summary> {
    let summary = match livefire_report::write_outputs(run_dir) {
        Ok(outputs) => Some(outputs.summary),
        Err(e) => {
            tracing::error!("{e}");
            None
        }
    };
    let unnoticed = summary.as_ref().map_or(&[][..], |s| &s.findings[..]);
    if !found.is_empty() || unnoticed.iter().any(|f| f.rule == "nobody_noticed") {
        let spec_uri = plan
            .activities
            .iter()
            .find_map(|a| match &a.body {
                Body::Fuzz { openapi, .. } => Some(openapi.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let mut sarif = livefire_fuzz::sarif::to_sarif(found, &spec_uri, None);
        // Faults nobody noticed are results too, located at the experiment as run.
        livefire_report::detectors::add_to_sarif(&mut sarif, unnoticed, "experiment.yaml");
        if let Err(e) = std::fs::write(
            run_dir.join("findings.sarif"),
            serde_json::to_string_pretty(&sarif).unwrap_or_default(),
        ) {
            tracing::error!("cannot write findings.sarif: {e}");
        }
        if !found.is_empty() {
            tracing::warn!(
                "{} finding(s), {failing} at or above the failing severity; see findings.sarif",
                found.len()
            );
        }
    }
    summary
}

/// The last lines a person reads: what the failovers cost the writers, the verdict,
/// one line per cause in the experiment's own words (none when it held), the run folder.
pub(super) fn print_verdict(
    verdict: Verdict,
    exit: Exit,
    summary: Option<&livefire_report::Summary>,
    run_dir: &Path,
) {
    if let Some(s) = summary {
        let failovers = livefire_report::failover::lines(&s.failovers);
        for line in livefire_report::segments::lines(&s.segments)
            .into_iter()
            .chain(failovers)
            .chain(livefire_report::detectors::lines(&s.detectors))
        {
            println!("{line}");
        }
    }
    println!("verdict: {} (exit {})", verdict.label(), exit.code());
    for reason in summary.map(|s| s.reasons.as_slice()).unwrap_or_default() {
        println!("  - {reason}");
    }
    println!("run folder: {}", run_dir.display());
}
