//! The `--graph.*` flags: where Microsoft Graph is and how patiently it is read.
//!
//! They are checked here, beside the client that obeys them, so that a limit the client
//! relies on (a timeout above zero, a backoff that cannot hammer Graph, a bounded number of
//! readers) is refused at start with the flag at fault.

use std::time::Duration;

use clap::Args;
use reqwest::Url;

use crate::flag::parse_duration;
use crate::source::cloud::{root_url, Cloud, UrlError};
use crate::source::graph::{RetryPolicy, DEFAULT_CONCURRENCY, MAX_CONCURRENCY};

/// Microsoft Graph's flags.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Microsoft Graph root URL; http:// is accepted for local testing [default: the
    /// --azure.cloud's, https://graph.microsoft.com].
    // The doc comment is the --help text, where a link would show as <...>.
    #[allow(rustdoc::bare_urls)]
    #[arg(long = "graph.endpoint", value_name = "URL")]
    pub graph_endpoint: Option<String>,
    /// Time limit for one Graph request, response body included.
    #[arg(long = "graph.timeout", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub graph_timeout: Duration,
    /// Retries of one page after transient failures (429, 408, 500, 502, 503, 504, timeouts,
    /// connection errors, an unreadable page, Entra ID unavailable) before the poll fails.
    #[arg(long = "graph.max-retries", default_value_t = 6, value_name = "N")]
    pub graph_max_retries: u32,
    /// First retry delay; it doubles with each retry (with jitter), up to one minute.
    #[arg(long = "graph.retry-backoff", default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub graph_retry_backoff: Duration,
    /// Time sub-windows of a long read (a sweep of the lookback) fetched at the same time;
    /// a Retry-After from Graph holds all of them back.
    #[arg(long = "graph.concurrency", default_value_t = DEFAULT_CONCURRENCY, value_name = "N")]
    pub graph_concurrency: usize,
}

/// How the Graph client reads, from valid `--graph.*` flags.
#[derive(Debug, Clone)]
pub struct GraphOptions {
    /// `--graph.timeout`.
    pub timeout: Duration,
    /// `--graph.max-retries` and `--graph.retry-backoff`.
    pub retry: RetryPolicy,
    /// `--graph.concurrency`.
    pub concurrency: usize,
}

/// A `--graph.*` flag whose value the client cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum GraphArgsError {
    #[error("--graph.timeout must be longer than zero, e.g. 60s")]
    ZeroTimeout,
    #[error("--graph.concurrency must be between 1 and {MAX_CONCURRENCY} ({DEFAULT_CONCURRENCY} is the default): Graph allows an app 75 requests a second per tenant, and more readers only draw throttling")]
    Concurrency,
    #[error("--graph.retry-backoff must be at least 10ms (1s is the default), so retries never hammer Graph")]
    RetryBackoff,
}

impl GraphArgsError {
    /// The flag at fault.
    pub fn flag(&self) -> &'static str {
        match self {
            GraphArgsError::ZeroTimeout => "--graph.timeout",
            GraphArgsError::Concurrency => "--graph.concurrency",
            GraphArgsError::RetryBackoff => "--graph.retry-backoff",
        }
    }
}

impl GraphArgs {
    /// The Graph root: `--graph.endpoint`, or else the cloud's.
    pub fn endpoint(&self, cloud: Cloud) -> Result<Url, UrlError> {
        let (cloud_graph, _) = cloud.endpoints();
        root_url(
            "--graph.endpoint",
            self.graph_endpoint.as_deref().unwrap_or(cloud_graph),
        )
    }

    /// Checks the flags that shape each request.
    pub fn options(&self) -> Result<GraphOptions, GraphArgsError> {
        if self.graph_timeout.is_zero() {
            return Err(GraphArgsError::ZeroTimeout);
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.graph_concurrency) {
            return Err(GraphArgsError::Concurrency);
        }
        if self.graph_retry_backoff < Duration::from_millis(10) {
            return Err(GraphArgsError::RetryBackoff);
        }
        Ok(GraphOptions {
            timeout: self.graph_timeout,
            retry: RetryPolicy {
                max_retries: self.graph_max_retries,
                initial_backoff: self.graph_retry_backoff,
                max_backoff: Duration::from_secs(60).max(self.graph_retry_backoff),
            },
            concurrency: self.graph_concurrency,
        })
    }
}
