//! What Prometheus sees: the exporter's own metrics and the call metrics ([`metrics`]), and
//! the HTTP interface that serves them with the landing page and health endpoints ([`http`]).

pub mod http;
pub mod metrics;
pub mod web_args;
