//! livefire-k8s's tests, one binary.

/// `livefire k8s render`: golden manifests, their round trip through k8s-openapi, and
/// bad input refused before anything is printed.
mod render;
