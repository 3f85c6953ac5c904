//! State the engine, the fault tasks and the watchdog share: the journal, the ledger
//! and the list of active faults (whoever `take`s an entry rolls it back).

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livefire_core::events::Event;
use livefire_core::undo::UndoRecord;

use crate::journal::Journal;
use crate::ledger::Ledger;

/// Attempts per rollback before it is left in the ledger.
const ROLLBACK_ATTEMPTS: u32 = 3;

/// A fault applied and not yet rolled back.
#[derive(Debug, Clone)]
pub(super) struct Active {
    pub(super) ledger_id: u64,
    pub(super) activity: String,
    pub(super) kind: String,
    pub(super) undo: UndoRecord,
    pub(super) deadline: Instant,
}

/// One fault window: activity, applied and rolled back (run-clock ms).
pub(super) type FaultWindow = (String, u64, Option<u64>);

/// State shared by the engine, the fault tasks and the watchdog.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) journal: Journal,
    pub(super) ledger: Arc<Mutex<Ledger>>,
    pub(super) active: Arc<Mutex<Vec<Active>>>,
    pub(super) in_flight: Arc<AtomicUsize>,
    /// The proxies this run owns (started in setup, dropped at teardown).
    pub(super) live: Arc<Mutex<livefire_faults::proxy::Live>>,
    /// Every fault window so far: activity, applied and rolled back (run-clock ms).
    pub(super) history: Arc<Mutex<Vec<FaultWindow>>>,
}

impl Shared {
    /// Rolls back one entry (retrying), clears it from the ledger on success, and
    /// journals the outcome. Blocking.
    pub(super) fn rollback(&self, a: &Active, by: &str) -> bool {
        let mut last = String::new();
        for attempt in 1..=ROLLBACK_ATTEMPTS {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match livefire_faults::undo_with(&a.undo, Some(&live)) {
                Ok(detail) => {
                    if let Err(e) = self
                        .ledger
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .done(a.ledger_id)
                    {
                        tracing::error!(
                            "rolled back `{}` but cannot write the ledger: {e}",
                            a.activity
                        );
                    }
                    let now = self.journal.now_ms();
                    if let Some(w) = self
                        .history
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter_mut()
                        .rev()
                        .find(|w| w.0 == a.activity && w.2.is_none())
                    {
                        w.2 = Some(now);
                    }
                    self.journal.emit(Event::FaultRolledBack {
                        activity: a.activity.clone(),
                        kind: a.kind.clone(),
                        ok: true,
                        detail,
                        by: by.into(),
                    });
                    return true;
                }
                Err(e) => {
                    last = e.to_string();
                    if attempt < ROLLBACK_ATTEMPTS {
                        std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                    }
                }
            }
        }
        if let Err(e) = self
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failed(a.ledger_id, by, &last)
        {
            tracing::error!("cannot write to the ledger why the rollback failed: {e}");
        }
        tracing::error!(
            "ROLLBACK FAILED for `{}` ({}): {last}",
            a.activity,
            a.undo.describe()
        );
        tracing::error!("it stays in the ledger; run `livefire recover` once the cause is fixed");
        self.journal.emit(Event::FaultRolledBack {
            activity: a.activity.clone(),
            kind: a.kind.clone(),
            ok: false,
            detail: last,
            by: by.into(),
        });
        false
    }

    /// Takes an entry out of the active list, so exactly one party rolls it back.
    pub(super) fn take(&self, ledger_id: u64) -> Option<Active> {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        let i = active.iter().position(|a| a.ledger_id == ledger_id)?;
        Some(active.remove(i))
    }

    /// The undo record of an active entry, left where it is.
    pub(super) fn undo_of(&self, ledger_id: u64) -> Option<livefire_core::undo::UndoRecord> {
        let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        active
            .iter()
            .find(|a| a.ledger_id == ledger_id)
            .map(|a| a.undo.clone())
    }
}
