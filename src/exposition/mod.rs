//! What Prometheus sees: the exporter's own metrics ([`self_metrics`]), the call metrics
//! ([`calls`]), the tenants read with the `tenant` label on both ([`fleet`]), new call
//! series shown at 0 before their counts ([`first_samples`]), the `/metrics` body made of
//! both ([`render`]), and the HTTP interface that serves it ([`http`]) with the landing
//! page ([`landing`]) and health endpoints.

pub mod calls;
pub mod first_samples;
pub mod fleet;
pub mod http;
pub mod landing;
pub mod render;
pub mod self_metrics;
pub mod series_bound;
pub mod web_args;
