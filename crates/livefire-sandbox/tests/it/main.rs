//! One integration-test binary for livefire-sandbox. Every test drives the real
//! `livefire-sandbox` program (the same code as `livefire sandbox`) in a temporary folder,
//! and a guard runs `down` whatever happens.

// The support: a sandbox folder, the program, HTTP calls, PostgreSQL checks.
mod support;
// up / status / down on PostgreSQL and on SQLite; an `up` that fails half-way.
mod lifecycle;
// Replication, failover through the helper, and rejoin of the old primary.
mod failover;
// The orders API and its planted defects, each seen only with --defects.
mod service;
// Finding PostgreSQL, durations, and what `up` says without PostgreSQL.
mod setup;
