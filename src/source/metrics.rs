//! The self-metrics of reading a source: requests to Graph and Entra ID, throttling,
//! retries, rows received and token refreshes.
//!
//! They live beside the code that records them, so that the Graph client and the token
//! cache need nothing from the layers above; [`crate::exposition`] registers them with the
//! rest. Every label value is a typed, bounded set written once ([`Endpoint`],
//! [`RetryReason`]), so a series cannot drift from the value that initialised it.

use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::{CounterVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::{Function, Priority};

/// The `endpoint` label: a call-log function, the call records, or Entra ID's token
/// endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Function(Function),
    /// `/communications/callRecords/{id}` and its session pages (`--collector.call-quality`).
    CallRecords,
    Token,
}

impl Endpoint {
    /// The label value: the function's Graph name, or `token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Function(function) => function.name(),
            Endpoint::CallRecords => "callRecords",
            Endpoint::Token => "token",
        }
    }
}

/// Why a request to Graph was repeated (`graph_retries_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// 429, or a Retry-After on a server error.
    Throttled,
    /// 408, 500, 502, 503 or 504.
    ServerError,
    /// A page that is not the JSON Graph documents.
    InvalidJson,
    /// No response: a connection error or a timeout.
    Connection,
    /// Entra ID could not hand out a token just then.
    TokenUnavailable,
}

impl RetryReason {
    /// Every reason, for series that must exist from the start.
    pub const ALL: [RetryReason; 5] = [
        RetryReason::Throttled,
        RetryReason::ServerError,
        RetryReason::InvalidJson,
        RetryReason::Connection,
        RetryReason::TokenUnavailable,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Throttled => "throttled",
            RetryReason::ServerError => "server_error",
            RetryReason::InvalidJson => "invalid_json",
            RetryReason::Connection => "connection",
            RetryReason::TokenUnavailable => "token_unavailable",
        }
    }
}

/// The metrics of talking to Graph and Entra ID for one tenant, shared by its Graph client
/// and token cache. Each tenant has its own set; the exposition adds the `tenant` label
/// when it renders them, so that the code that records them needs no tenant at all.
#[derive(Clone)]
pub struct SourceMetrics {
    pub graph_requests: IntCounterVec,
    pub graph_request_duration: HistogramVec,
    pub graph_throttled: IntCounterVec,
    pub graph_retries: IntCounterVec,
    pub rows_received: IntCounterVec,
    pub token_refreshes: IntCounterVec,
    pub budget_delayed: IntCounterVec,
    pub budget_wait: CounterVec,
}

impl SourceMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Self::new()?;
        for collector in metrics.collectors() {
            registry.register(collector)?;
        }
        Ok(metrics)
    }

    /// Creates the metrics, registered nowhere: [`SourceMetrics::collectors`] gives them to
    /// whoever renders them.
    pub fn new() -> prometheus::Result<Self> {
        let p = |name: &str| format!("teams_voice_exporter_{name}");
        Ok(SourceMetrics {
            graph_requests: IntCounterVec::new(
                Opts::new(p("graph_requests_total"), "HTTP requests sent to Microsoft Graph and Entra ID, by endpoint and response status code (\"error\" when no response arrived)."),
                &["endpoint", "code"],
            )?,
            graph_request_duration: HistogramVec::new(
                HistogramOpts::new(p("graph_request_duration_seconds"), "Time from sending a request to Graph or Entra ID until its whole response was read.")
                    .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
                &["endpoint"],
            )?,
            graph_throttled: IntCounterVec::new(
                Opts::new(p("graph_throttled_total"), "Responses from Graph that asked us to slow down (429, or 503 with Retry-After)."),
                &["endpoint"],
            )?,
            graph_retries: IntCounterVec::new(
                Opts::new(p("graph_retries_total"), "Requests to Graph repeated after a transient failure, by reason."),
                &["endpoint", "reason"],
            )?,
            rows_received: IntCounterVec::new(
                Opts::new(p("rows_received_total"), "Rows read from Graph, every read counted, repeats across windows and sweeps included."),
                &["endpoint"],
            )?,
            budget_delayed: IntCounterVec::new(
                Opts::new(p("graph_budget_delayed_requests_total"), "Requests to Graph that waited for the exporter's request budget (--graph.rate-limit, --graph.tenant-rate-limit) before they were sent, by priority: recent (the recent poll) or background (late polls and sweeps)."),
                &["endpoint", "priority"],
            )?,
            budget_wait: CounterVec::new(
                Opts::new(p("graph_budget_wait_seconds_total"), "Time requests to Graph waited for the exporter's request budget, by priority."),
                &["endpoint", "priority"],
            )?,
            token_refreshes: IntCounterVec::new(
                Opts::new(p("token_refreshes_total"), "Access token requests to Entra ID, by result (success, or the AADSTS error)."),
                &["result"],
            )?,
        })
    }

    /// Every metric, as collectors.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.graph_requests.clone()),
            Box::new(self.graph_request_duration.clone()),
            Box::new(self.graph_throttled.clone()),
            Box::new(self.graph_retries.clone()),
            Box::new(self.rows_received.clone()),
            Box::new(self.token_refreshes.clone()),
            Box::new(self.budget_delayed.clone()),
            Box::new(self.budget_wait.clone()),
        ]
    }

    /// Records one HTTP request to Graph or Entra ID: its status (or "error") and time.
    pub fn record_request(&self, endpoint: Endpoint, code: &str, started: Instant) {
        let endpoint = endpoint.as_str();
        self.graph_requests
            .with_label_values(&[endpoint, code])
            .inc();
        self.graph_request_duration
            .with_label_values(&[endpoint])
            .observe(started.elapsed().as_secs_f64());
    }

    /// Counts a retry of a request to `endpoint`.
    pub fn record_retry(&self, endpoint: Endpoint, reason: RetryReason) {
        self.graph_retries
            .with_label_values(&[endpoint.as_str(), reason.as_str()])
            .inc();
    }

    /// Counts a request that waited `waited` for the request budget.
    pub fn record_budget_wait(&self, endpoint: Endpoint, priority: Priority, waited: Duration) {
        if waited.is_zero() {
            return;
        }
        let labels = [endpoint.as_str(), priority.as_str()];
        self.budget_delayed.with_label_values(&labels).inc();
        self.budget_wait
            .with_label_values(&labels)
            .inc_by(waited.as_secs_f64());
    }

    /// Creates the series of `function` at zero, so that alerts and `increase()` see the
    /// first event rather than a series appearing from nothing.
    pub fn initialise(&self, function: Function) {
        self.initialise_endpoint(Endpoint::Function(function));
        self.rows_received.with_label_values(&[function.name()]);
    }

    /// Creates the request series of `endpoint` at zero (see [`SourceMetrics::initialise`]).
    pub fn initialise_endpoint(&self, endpoint: Endpoint) {
        let endpoint = endpoint.as_str();
        for priority in [Priority::Recent, Priority::Background] {
            self.budget_delayed
                .with_label_values(&[endpoint, priority.as_str()]);
            self.budget_wait
                .with_label_values(&[endpoint, priority.as_str()]);
        }
        for reason in RetryReason::ALL {
            self.graph_retries
                .with_label_values(&[endpoint, reason.as_str()]);
        }
        self.graph_throttled.with_label_values(&[endpoint]);
    }
}
