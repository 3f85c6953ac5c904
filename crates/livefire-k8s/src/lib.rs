//! livefire's Kubernetes back end for split runs: a run's segments as one Indexed Job
//! (pod `i` runs segment `i` of N) beside a ConfigMap that ships the experiment, created,
//! followed and deleted through the Kubernetes API.
//!
//! The objects are typed `k8s-openapi` objects of Kubernetes 1.33 (the crate's feature
//! `v1_33`): the oldest API the crate supports, so they are accepted by every cluster
//! from 1.33 on (Kubernetes keeps `batch/v1` and `v1` backward compatible), and every
//! field used here (Indexed Jobs, `JOB_COMPLETION_INDEX`, topology spread) is older.

pub mod cli;
pub mod cluster;
pub mod launcher;
pub mod names;
pub mod render;
pub mod ship;

pub use render::{Objects, Options, RenderError, Run, ShippedFile, Spread, render};
