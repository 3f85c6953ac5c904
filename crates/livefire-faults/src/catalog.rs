//! The one place every fault kind is routed: the spec's `Fault` to the kind's file, and
//! each undo record to the code that rolls it back. Both matches are exhaustive (no
//! wildcard arm): a kind or a record the spec or `livefire-core` adds does not compile
//! until it is routed here.

use livefire_core::undo::UndoRecord;
use livefire_spec::Fault;

use crate::kinds::{
    command, cpu_stress, disk_fill, memory_stress, net_bandwidth, net_loss, net_partition, person,
    postgres_corrupt, postgres_exhaust, postgres_lock_table, postgres_revoke_login,
    postgres_terminate, process_kill, process_pause, process_restart, proxy_down, toxics,
};
use crate::{FaultError, Kind, Prepared, Targets, net, pg_sessions, process, proxy, stress};

/// The kind that runs `fault`. Every kind the spec knows is built; a kind the spec
/// adds does not compile until it has its arm here.
fn route(fault: &Fault) -> Box<dyn Kind + '_> {
    match fault {
        Fault::ProcessKill(f) => Box::new(process_kill::Kill(f)),
        Fault::ProcessPause(f) => Box::new(process_pause::Pause(f)),
        Fault::ProcessRestart(f) => Box::new(process_restart::Restart(f)),
        Fault::Command(f) => Box::new(command::Command(f)),
        Fault::ProxyLatency(f) => Box::new(toxics::Latency(f)),
        Fault::ProxyBandwidth(f) => Box::new(toxics::Bandwidth(f)),
        Fault::ProxySlowClose(f) => Box::new(toxics::SlowClose(f)),
        Fault::ProxyTimeout(f) => Box::new(toxics::Timeout(f)),
        Fault::ProxyResetPeer(f) => Box::new(toxics::ResetPeer(f)),
        Fault::ProxySlicer(f) => Box::new(toxics::Slicer(f)),
        Fault::ProxyLimitData(f) => Box::new(toxics::LimitData(f)),
        Fault::ProxyDown(f) => Box::new(proxy_down::Down(f)),
        Fault::ProxyDrop(f) => Box::new(toxics::Drop(f)),
        Fault::ProxyCorrupt(f) => Box::new(toxics::Corrupt(f)),
        Fault::HttpAbort(f) => Box::new(toxics::HttpAbort(f)),
        Fault::HttpDelay(f) => Box::new(toxics::HttpDelay(f)),
        Fault::CpuStress(f) => Box::new(cpu_stress::Cpu(f)),
        Fault::MemoryStress(f) => Box::new(memory_stress::Memory(f)),
        Fault::DiskFill(f) => Box::new(disk_fill::Fill(f)),
        Fault::NetPartition(f) => Box::new(net_partition::Partition(f)),
        Fault::NetLoss(f) => Box::new(net_loss::Loss(f)),
        Fault::NetBandwidth(f) => Box::new(net_bandwidth::Bandwidth(f)),
        Fault::PostgresCorrupt(f) => Box::new(postgres_corrupt::Corrupt(f)),
        Fault::PostgresRevokeLogin(f) => Box::new(postgres_revoke_login::RevokeLogin(f)),
        Fault::PostgresTerminateConnections(f) => Box::new(postgres_terminate::Terminate(f)),
        Fault::PostgresExhaustConnections(f) => Box::new(postgres_exhaust::Exhaust(f)),
        Fault::PostgresLockTable(f) => Box::new(postgres_lock_table::LockTable(f)),
        Fault::PersonAway(f) => Box::new(person::Away(f)),
        Fault::PersonNoAccess(f) => Box::new(person::NoAccess(f)),
    }
}

/// What can be checked before anything is applied, without the target alive: its
/// target is declared and of the right type, what it needs is declared
/// (a `restart:` for `process.restart`). `targets` must include setup processes.
pub fn check(fault: &Fault, targets: &Targets) -> Result<(), FaultError> {
    route(fault).check(targets)
}

/// Checks `fault`, resolves its target now (a restarted process has a new pid) and
/// computes its undo record. Changes nothing. `activity` names what it adds (a proxy
/// toxic), so two faults on one proxy never clash.
pub fn prepare(fault: &Fault, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
    let kind = route(fault);
    kind.check(targets)?;
    kind.prepare(targets, activity)
}

/// Rolls back from the record alone (as `livefire recover` does). Returns what it did.
pub fn undo(record: &UndoRecord) -> Result<String, FaultError> {
    undo_with(record, None)
}

/// Rolls back, with the run's live proxies when the run is still going.
pub fn undo_with(record: &UndoRecord, live: Option<&proxy::Live>) -> Result<String, FaultError> {
    match record {
        UndoRecord::ProxyToxic {
            owner,
            proxy,
            toxic,
        } => Ok(proxy::undo(owner, proxy, Some(toxic), live)?),
        UndoRecord::ProxyEnable { owner, proxy } => Ok(proxy::undo(owner, proxy, None, live)?),
        UndoRecord::Signal { process, signal } => process::undo_signal(*process, *signal),
        UndoRecord::Command {
            run,
            user,
            cwd,
            timeout_ms,
        } => {
            crate::exec::run(run, user.as_deref(), cwd.as_deref(), *timeout_ms)?.check()?;
            Ok(format!("`{run}` exited 0"))
        }
        UndoRecord::StressWorker { token } => Ok(stress::stop(token)?),
        UndoRecord::FillFile { path, marker, size } => disk_fill::undo(path, marker, *size),
        UndoRecord::NftTable {
            netns,
            table,
            token,
        } => Ok(net::delete_table(&net::Place(netns.clone()), table, token)?),
        UndoRecord::Qdisc {
            netns,
            devices,
            handle,
        } => Ok(net::remove_tbf(
            &net::Place(netns.clone()),
            devices,
            *handle,
        )?),
        UndoRecord::SavedPage {
            pg,
            file,
            offset,
            len,
            copy,
        } => postgres_corrupt::undo(pg, file, *offset, *len, copy),
        UndoRecord::PostgresLogin {
            dsn,
            role,
            had_login,
        } => postgres_revoke_login::undo(dsn, role, *had_login),
        UndoRecord::PostgresSessions {
            dsn,
            tag,
            since,
            what,
        } => pg_sessions::undo(dsn, tag, since, what),
        UndoRecord::KubernetesRun { .. } => crate::external::kubernetes(record),
    }
}
