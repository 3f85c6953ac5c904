//! What the console adds to the engine's held targets (`livefire_engine::held`, which
//! judges every kind of target against the ledger): the runs of this server going now,
//! each holding the keys of its targets' claims from its start, before its first undo
//! record is in the ledger.

use std::collections::BTreeSet;

use livefire_engine::held::Claim;

/// The first run going now that holds one of `claims`: (run, target).
pub fn in_live<'a>(
    claims: &[Claim],
    live: impl IntoIterator<Item = (&'a String, &'a BTreeSet<String>)>,
) -> Option<(String, String)> {
    for (run, held) in live {
        if let Some(c) = claims
            .iter()
            .find(|c| c.keys.iter().any(|k| held.contains(k)))
        {
            return Some((run.clone(), c.target.clone()));
        }
    }
    None
}

/// The keys a run of `claims` holds while it goes.
pub fn keys(claims: &[Claim]) -> BTreeSet<String> {
    claims.iter().flat_map(|c| c.keys.iter().cloned()).collect()
}
