//! What Prometheus sees: the exporter's own metrics ([`self_metrics`]), the call metrics
//! ([`calls`]), the `/metrics` body made of both ([`render`]), and the HTTP interface that
//! serves it with the landing page and health endpoints ([`http`]).

pub mod calls;
pub mod http;
pub mod render;
pub mod self_metrics;
pub mod web_args;
