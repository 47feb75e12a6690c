//! The `--graph.*` flags: where Microsoft Graph is and how patiently it is read.
//!
//! They are checked here, beside the client that obeys them, so that a limit the client
//! relies on (a timeout above zero, a backoff that cannot hammer Graph, a bounded number of
//! readers) is refused at start with the flag at fault.

use std::time::Duration;

use clap::Args;
use reqwest::Url;

use tve_clock::Rate;

use crate::flag::parse_duration;
use crate::source::cloud::{root_url, Cloud, UrlError};
use crate::source::graph::{
    BudgetLimits, RetryPolicy, DEFAULT_CONCURRENCY, DEFAULT_FUNCTION_BUDGET, DEFAULT_TENANT_BUDGET,
    GRAPH_APP_LIMIT, GRAPH_FUNCTION_LIMIT, MAX_CONCURRENCY,
};

/// How much faster the `--demo` schedule runs than the default one (a poll every 2 s, not
/// every minute); its simulated tenant's limits and the budget are sped up alike, so the
/// demo keeps to its budget as a real deployment does.
pub const DEMO_SPEED: u32 = 30;

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
    /// a Retry-After from Graph holds all of them back. The request budget sets the pace:
    /// more readers help only when Graph answers a page slower than the budget allows.
    #[arg(long = "graph.concurrency", default_value_t = DEFAULT_CONCURRENCY, value_name = "N")]
    pub graph_concurrency: usize,
    /// Requests the exporter sends to each call-log function of a tenant, at most, within
    /// any DURATION: Graph allows 50 per 60s and throttles beyond [default: 45/60s; 45/2s
    /// with --demo].
    #[arg(long = "graph.rate-limit", value_name = "N/DURATION")]
    pub graph_rate_limit: Option<Rate>,
    /// Requests the exporter sends to all call-log functions of a tenant together, at most,
    /// within any DURATION: Graph allows an app 200 per 60s per tenant [default: 180/60s;
    /// 180/2s with --demo].
    #[arg(long = "graph.tenant-rate-limit", value_name = "N/DURATION")]
    pub graph_tenant_rate_limit: Option<Rate>,
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
    /// `--graph.rate-limit` and `--graph.tenant-rate-limit`.
    pub budget: BudgetLimits,
}

/// A `--graph.*` flag whose value the client cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum GraphArgsError {
    #[error("--graph.timeout must be longer than zero, e.g. 60s")]
    ZeroTimeout,
    #[error("--graph.concurrency must be between 1 and {MAX_CONCURRENCY} ({DEFAULT_CONCURRENCY} is the default): the request budget (--graph.rate-limit) sets the pace, and more readers only wait for it")]
    Concurrency,
    #[error("--graph.rate-limit ({function}) allows more requests than --graph.tenant-rate-limit ({tenant}) over the same time; the tenant's limit covers all its call-log functions, so raise it or lower --graph.rate-limit")]
    BudgetAboveTenant { function: Rate, tenant: Rate },
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
            GraphArgsError::BudgetAboveTenant { .. } => "--graph.rate-limit",
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

    /// Checks the flags that shape each request; `demo` speeds the default budget up as
    /// the demo's schedule is.
    pub fn options(&self, demo: bool) -> Result<GraphOptions, GraphArgsError> {
        if self.graph_timeout.is_zero() {
            return Err(GraphArgsError::ZeroTimeout);
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.graph_concurrency) {
            return Err(GraphArgsError::Concurrency);
        }
        if self.graph_retry_backoff < Duration::from_millis(10) {
            return Err(GraphArgsError::RetryBackoff);
        }
        let speed = if demo { DEMO_SPEED } else { 1 };
        let sped_up = |rate: Rate| Rate::new(rate.requests, rate.per / speed);
        let budget = BudgetLimits {
            per_function: self
                .graph_rate_limit
                .unwrap_or_else(|| sped_up(DEFAULT_FUNCTION_BUDGET)),
            per_tenant: self
                .graph_tenant_rate_limit
                .unwrap_or_else(|| sped_up(DEFAULT_TENANT_BUDGET)),
        };
        if budget.per_function.per_hour() > budget.per_tenant.per_hour() {
            return Err(GraphArgsError::BudgetAboveTenant {
                function: budget.per_function,
                tenant: budget.per_tenant,
            });
        }
        if !demo {
            warn_above_graph(
                budget.per_function,
                GRAPH_FUNCTION_LIMIT,
                "--graph.rate-limit",
            );
            warn_above_graph(
                budget.per_tenant,
                GRAPH_APP_LIMIT,
                "--graph.tenant-rate-limit",
            );
        }
        Ok(GraphOptions {
            timeout: self.graph_timeout,
            retry: RetryPolicy {
                max_retries: self.graph_max_retries,
                initial_backoff: self.graph_retry_backoff,
                max_backoff: Duration::from_secs(60).max(self.graph_retry_backoff),
            },
            concurrency: self.graph_concurrency,
            budget,
        })
    }
}

/// A budget above Graph's documented limit is allowed (Microsoft may raise it, or a proxy
/// may stand in for Graph) but draws 429s from Graph as it is documented today.
pub(crate) fn warn_above_graph(budget: Rate, graph: Rate, flag: &str) {
    if budget.per_hour() > graph.per_hour() {
        tracing::warn!(
            flag,
            budget = %budget,
            graph_limit = %graph,
            "the request budget is above Graph's documented limit: Graph will throttle, and every throttled request holds the tenant back for its Retry-After"
        );
    }
}
