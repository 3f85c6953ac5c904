//! `livefire recover`: undo whatever crashed runs left in the ledger, newest first, from
//! the records alone.

use crate::ledger;

/// What recover did.
#[derive(Debug, Default)]
pub struct Recovered {
    pub undone: Vec<String>,
    pub failed: Vec<String>,
}

pub fn recover() -> Recovered {
    let mut out = Recovered::default();
    let mut pending = ledger::pending_all();
    pending.reverse();
    for p in pending {
        let what = format!(
            "run {} activity `{}`: {}",
            p.run_id,
            p.activity,
            p.record.describe()
        );
        match livefire_faults::undo(&p.record) {
            Ok(detail) => match ledger::mark_done(&p.file, p.id) {
                Ok(()) => out.undone.push(format!("{what}: {detail}")),
                Err(e) => out.failed.push(format!(
                    "{what}: undone, but the ledger could not be updated: {e}"
                )),
            },
            Err(e) => out.failed.push(format!("{what}: {e}")),
        }
    }
    out
}
