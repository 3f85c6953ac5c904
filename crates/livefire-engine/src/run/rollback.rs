//! The rollback phase: every way out of a run comes through here. Every fault still
//! active is undone, newest first, then the `rollbacks:` steps run.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use livefire_core::events::{AbortCause, Event};
use tokio::sync::mpsc;

use super::shared::{Active, Shared};
use crate::journal::Journal;
use crate::plan::Plan;

/// Rolls back every active fault, newest first, then runs the `rollbacks:` steps. A
/// signal that arrives meanwhile is only noted: rollback goes on until everything is
/// undone. Returns the task that notes those signals (aborted at teardown).
pub(super) async fn roll_back_everything(
    shared: &Shared,
    plan: &Plan,
    abort_rx: mpsc::UnboundedReceiver<AbortCause>,
) -> tokio::task::JoinHandle<()> {
    let notice = note_signals(abort_rx);
    wait_for_applies(shared).await;
    undo_active(shared).await;
    run_rollback_steps(plan, &shared.journal).await;
    notice
}

/// Says, for each signal received during rollback, that rollback goes on.
fn note_signals(mut abort_rx: mpsc::UnboundedReceiver<AbortCause>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(cause) = abort_rx.recv().await {
            if let AbortCause::Signal { signal } = cause {
                tracing::warn!(
                    "{signal} received during rollback: rollback continues until every fault is undone"
                );
            }
        }
    })
}

/// Waits (up to a minute) for applies in flight: their ledger entry and their active
/// entry are written together, so once none is in flight the active list is complete.
async fn wait_for_applies(shared: &Shared) {
    let wait_start = Instant::now();
    while shared.in_flight.load(Ordering::SeqCst) > 0
        && wait_start.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Undoes every fault still active, newest first.
async fn undo_active(shared: &Shared) {
    let mut pending: Vec<Active> =
        std::mem::take(&mut *shared.active.lock().unwrap_or_else(|p| p.into_inner()));
    pending.sort_by_key(|a| std::cmp::Reverse(a.ledger_id));
    for a in pending {
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || s.rollback(&a, "engine")).await;
    }
}

/// Runs the `rollbacks:` steps in order; a failing step is journaled and the next runs.
async fn run_rollback_steps(plan: &Plan, journal: &Journal) {
    for (i, step) in plan.rollbacks.iter().enumerate() {
        let (run, user, cwd, timeout) = (
            step.run.clone(),
            step.user.clone(),
            plan.dir.to_string_lossy().into_owned(),
            step.timeout.as_millis() as u64,
        );
        let r = tokio::task::spawn_blocking(move || {
            livefire_faults::exec::run(&run, user.as_deref(), Some(&cwd), timeout)
                .and_then(|o| o.check())
        })
        .await;
        let (ok, detail) = match r {
            Ok(Ok(())) => (true, "exited 0".to_string()),
            Ok(Err(e)) => (false, e.to_string()),
            Err(e) => (false, e.to_string()),
        };
        if !ok {
            tracing::error!("rollback step {} failed: {detail}", i + 1);
        }
        journal.emit(Event::RollbackStep {
            step: step.run.clone(),
            ok,
            detail,
        });
    }
}
