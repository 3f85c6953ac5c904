//! Undo of records whose code lives above this crate. A split run's Kubernetes objects
//! are deleted by livefire-k8s, which depends on the engine (which depends on this
//! crate), so a binary built with Kubernetes support hands its function in at start;
//! one built without says so instead of pretending.

use std::sync::OnceLock;

use livefire_core::undo::UndoRecord;

use crate::FaultError;

/// Deletes what an `UndoRecord::KubernetesRun` names; returns what it did.
pub type KubernetesUndo = fn(&UndoRecord) -> Result<String, String>;

static KUBERNETES: OnceLock<KubernetesUndo> = OnceLock::new();

/// Installs the Kubernetes undo (once per process; later calls change nothing).
pub fn set_kubernetes_undo(undo: KubernetesUndo) {
    let _ = KUBERNETES.set(undo);
}

pub(crate) fn kubernetes(record: &UndoRecord) -> Result<String, FaultError> {
    match KUBERNETES.get() {
        Some(undo) => undo(record).map_err(FaultError::Elsewhere),
        None => Err(FaultError::Elsewhere(format!(
            "this livefire was built without Kubernetes support, so it cannot {}: run \
             `livefire recover` with a livefire built with `--features kubernetes` (the \
             container image has it), or delete them by hand with kubectl",
            record.describe()
        ))),
    }
}
