//! The `--web.*` flags: where Prometheus finds the metrics and what guards them.
//!
//! The address and path are checked here so that a mistake stops the start instead of
//! leaving Prometheus scraping nothing; the web configuration file is loaded by the
//! exporter-web crate, which knows its format.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::first_samples::{DEFAULT_HOLD, DEMO_HOLD};
use super::series_bound::DEFAULT_MAX_SERIES;
use crate::flag::parse_duration;

/// The default port: in the exporters' range, and clear of node_exporter (9100),
/// blackbox_exporter (9115) and the other widely deployed exporters.
pub const DEFAULT_PORT: u16 = 9885;

/// The HTTP interface's flags.
#[derive(Debug, Args)]
pub struct WebArgs {
    /// Address on which to expose metrics and the web interface (":PORT" for all interfaces).
    #[arg(long = "web.listen-address", default_value_t = format!(":{DEFAULT_PORT}"), value_name = "ADDR")]
    pub listen_address: String,
    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        default_value = "/metrics",
        value_name = "PATH"
    )]
    pub telemetry_path: String,
    /// Web configuration file (Prometheus exporter-toolkit format): TLS, mutual TLS and basic
    /// authentication for every path served.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
    /// How long a call series seen for the first time is shown at 0 before its count, so
    /// that rate() and increase() see its first calls: at least twice the longest scrape
    /// interval of any Prometheus scraping this exporter; 0 shows counts at once
    /// [default: 2m; 30s with --demo].
    #[arg(long = "web.new-series-hold", value_parser = parse_duration, value_name = "DURATION")]
    pub new_series_hold: Option<Duration>,
    /// Most call series one scrape serves (a histogram counts one per bucket plus two);
    /// series beyond it are left out of /metrics, still counted, until it is raised. A
    /// warning is logged from 80% of it on.
    #[arg(long = "web.max-series", default_value_t = DEFAULT_MAX_SERIES, value_parser = at_least_one, value_name = "N")]
    pub max_series: usize,
    /// Serve POST /-/reload, which reads the tenants file (--config.file) again, as
    /// Prometheus' flag of the same name does. SIGHUP reloads without it.
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number above 0".to_owned()),
    }
}

/// A `--web.*` flag that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum WebArgsError {
    #[error("--web.listen-address '{0}' is not an address; use HOST:PORT or :PORT, e.g. :{DEFAULT_PORT}")]
    BadListenAddress(String),
    // The landing page and health endpoints own these paths.
    #[error("--web.telemetry-path '{0}' must start with '/' and must not be '/', '/-/healthy' or '/-/ready'")]
    BadTelemetryPath(String),
}

impl WebArgsError {
    /// The flag at fault.
    pub fn flag(&self) -> &'static str {
        match self {
            WebArgsError::BadListenAddress(_) => "--web.listen-address",
            WebArgsError::BadTelemetryPath(_) => "--web.telemetry-path",
        }
    }
}

impl WebArgs {
    /// Checks the listen address and the telemetry path.
    pub fn check(&self) -> Result<(), WebArgsError> {
        if self
            .listen_address
            .rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            return Err(WebArgsError::BadListenAddress(self.listen_address.clone()));
        }
        let path = &self.telemetry_path;
        if !path.starts_with('/') || ["/", "/-/healthy", "/-/ready"].contains(&path.as_str()) {
            return Err(WebArgsError::BadTelemetryPath(path.clone()));
        }
        Ok(())
    }
}

impl WebArgs {
    /// `--web.new-series-hold`, or its default.
    pub fn new_series_hold(&self, demo: bool) -> Duration {
        self.new_series_hold
            .unwrap_or(if demo { DEMO_HOLD } else { DEFAULT_HOLD })
    }
}

/// Resolves `--web.listen-address`: `:PORT` means every interface.
pub fn listen_candidates(address: &str) -> Vec<String> {
    match address.strip_prefix(':') {
        Some(port) => vec![format!("[::]:{port}"), format!("0.0.0.0:{port}")],
        None => vec![address.to_owned()],
    }
}
