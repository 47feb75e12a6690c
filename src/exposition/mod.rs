//! What Prometheus sees: the exporter's own metrics ([`self_metrics`]), the call metrics
//! ([`calls`]), new call series shown at 0 before their counts ([`first_samples`]), the
//! `/metrics` body made of both ([`render`]), and the HTTP interface that serves it with the
//! landing page and health endpoints ([`http`]).

pub mod calls;
pub mod first_samples;
pub mod http;
pub mod render;
pub mod self_metrics;
pub mod series_bound;
pub mod web_args;
