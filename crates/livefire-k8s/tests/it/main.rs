//! livefire-k8s's tests, one binary.

/// `livefire k8s render`: golden manifests, their round trip through k8s-openapi, and
/// bad input refused before anything is printed.
mod render;

/// A small Kubernetes API on 127.0.0.1 for the launcher's tests.
mod fake_api;

/// The launcher through the `Launcher` trait, against the fake API.
mod launcher;

/// A real cluster, only with LIVEFIRE_K8S_TEST=1 (else SKIPPED, loudly).
mod real_cluster;
