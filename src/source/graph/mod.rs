//! The Microsoft Graph client of one tenant: the call-log functions and call records.
//!
//! It reads one call window page by page, following `@odata.nextLink` only back to the
//! configured Graph host (the bearer token goes nowhere else), and a call record with its
//! sessions (`call_record.rs`). Every request goes through one loop (`request.rs`) that owns
//! everything about talking to Graph politely: retries with capped, jittered exponential
//! backoff for transient failures, `Retry-After` honoured tenant-wide (while one is pending
//! no request goes to that tenant), one token refresh on a 401, and errors that tell the
//! user what to fix, with Graph's error code, message and request-id. Before any of that,
//! every request takes its place in the tenant's [`RequestBudget`], so that Graph need not
//! throttle at all.

use request::Answer;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Url;

mod body;
mod budget;
mod call_record;
mod error;
mod request;
mod retry;
mod window;

pub use crate::source::Priority;
pub use budget::{
    BudgetLimits, RequestBudget, DEFAULT_FUNCTION_BUDGET, DEFAULT_TENANT_BUDGET, GRAPH_APP_LIMIT,
    GRAPH_FUNCTION_LIMIT,
};

pub use body::{ResponseLimits, DEFAULT_MAX_PAGE_ROWS, DEFAULT_MAX_RESPONSE_SIZE};
pub use call_record::{CallRecordResponse, DEFAULT_CALL_RECORD_BUDGET, GRAPH_CALL_RECORD_LIMIT};
pub use error::{refusal_hint, GraphError, PollErrorReason};
pub use retry::{parse_retry_after, RetryPolicy, MAX_RETRY_AFTER};
pub use window::{CallWindow, WindowRead, MAX_WINDOW};

use retry::TenantGate;

use super::metrics::{Endpoint, RetryReason, SourceMetrics};
use super::Function;
use crate::source::auth::TokenCache;
use crate::source::row::{Page, MAX_PAGE_ROWS_PARSED, TOO_MANY_ROWS};

/// Pages one window may have: 10 million rows. More means a nextLink loop.
const MAX_PAGES_PER_WINDOW: u64 = 10_000;

/// A Graph client for one tenant.
pub struct GraphClient {
    http: reqwest::Client,
    endpoint: Url,
    tokens: Arc<TokenCache>,
    gate: TenantGate,
    budget: Arc<RequestBudget>,
    /// The call records' own budget (`--call-quality.rate-limit`).
    call_record_budget: Arc<RequestBudget>,
    retry: RetryPolicy,
    metrics: SourceMetrics,
    /// Sub-windows read at the same time (`--graph.concurrency`).
    concurrency: usize,
    /// Requests in flight to the tenant, at most `concurrency`.
    in_flight: tokio::sync::Semaphore,
    /// What one response may hold (`--graph.max-response-size`, `--graph.max-page-rows`).
    limits: ResponseLimits,
    /// Requests in flight of every tenant of the process (`--tenants.max-concurrent-reads`),
    /// when it reads several.
    process_reads: Option<Arc<tokio::sync::Semaphore>>,
}

/// Sub-windows read at the same time unless `--graph.concurrency` says otherwise. One: the
/// request budget, not the readers, sets the pace (45 requests a minute is one request every
/// 1.3 s, which one reader keeps up with while Graph answers a page in under a second), and
/// with a single request in flight none is on its way while a `Retry-After` is pending, as
/// Graph asks. More readers help only when Graph is slower than the budget.
pub const DEFAULT_CONCURRENCY: usize = 1;
/// The most `--graph.concurrency` accepts.
pub const MAX_CONCURRENCY: usize = 32;

impl GraphClient {
    pub fn new(
        http: reqwest::Client,
        endpoint: Url,
        tokens: Arc<TokenCache>,
        retry: RetryPolicy,
        metrics: SourceMetrics,
    ) -> Self {
        GraphClient {
            http,
            endpoint,
            tokens,
            gate: TenantGate::default(),
            budget: Arc::new(RequestBudget::new(
                BudgetLimits::default(),
                tve_clock::Clock::system(),
            )),
            call_record_budget: Arc::new(RequestBudget::for_call_records(
                DEFAULT_CALL_RECORD_BUDGET,
                tve_clock::Clock::system(),
            )),
            retry,
            metrics,
            concurrency: DEFAULT_CONCURRENCY,
            in_flight: tokio::sync::Semaphore::new(DEFAULT_CONCURRENCY),
            limits: ResponseLimits::default(),
            process_reads: None,
        }
    }

    /// Shares `reads`, the places for requests in flight, with the other tenants' clients.
    pub fn with_process_reads(mut self, reads: Arc<tokio::sync::Semaphore>) -> Self {
        self.process_reads = Some(reads);
        self
    }

    /// Refuses responses beyond `limits`.
    pub fn with_response_limits(mut self, limits: ResponseLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Reads up to `readers` sub-windows at the same time (at least one).
    pub fn with_concurrency(mut self, readers: usize) -> Self {
        self.concurrency = readers.max(1);
        self.in_flight = tokio::sync::Semaphore::new(self.concurrency);
        self
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Takes every request's place from `budget` (the tenant's, shared by its sources).
    pub fn with_budget(mut self, budget: Arc<RequestBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// The tenant's request budget.
    pub fn budget(&self) -> &Arc<RequestBudget> {
        &self.budget
    }

    /// The URL of the first page of `function` over `window`.
    pub fn function_url(&self, function: Function, window: CallWindow) -> Url {
        let base = self.endpoint.as_str().trim_end_matches('/');
        let timestamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let url = format!(
            "{base}/v1.0/communications/callRecords/{}(fromDateTime={},toDateTime={})",
            function.name(),
            timestamp(window.from),
            timestamp(window.to)
        );
        Url::parse(&url).expect("a valid endpoint with a function path is a valid URL")
    }

    /// Reads every page of `function` over `window`, handing each page's rows to `on_page`
    /// as they arrive, so that a failure on page 7 keeps what pages 1–6 held. Each request
    /// takes its place in the budget at `priority` first, so a long read yields to recent
    /// polls between its pages.
    pub async fn read_window(
        &self,
        function: Function,
        window: CallWindow,
        priority: Priority,
        mut on_page: impl FnMut(&Page<'_>),
    ) -> Result<WindowRead, GraphError> {
        let mut url = self.function_url(function, window);
        let mut read = WindowRead::default();
        loop {
            let next_link = self
                .fetch(function, priority, &url, |page| {
                    read.pages += 1;
                    read.rows += page.value.len() as u64;
                    self.metrics
                        .rows_received
                        .with_label_values(&[function.name()])
                        .inc_by(page.value.len() as u64);
                    on_page(page);
                })
                .await?;
            match next_link {
                None => return Ok(read),
                Some(_) if read.pages >= MAX_PAGES_PER_WINDOW => {
                    return Err(GraphError::BadNextLink(format!(
                        "more than {MAX_PAGES_PER_WINDOW} pages for one window; the nextLinks loop"
                    )))
                }
                Some(link) => {
                    let next = self.check_next_link(&link)?;
                    if next == url {
                        return Err(GraphError::BadNextLink(format!(
                            "{link} (points to itself)"
                        )));
                    }
                    url = next;
                }
            }
        }
    }

    fn check_next_link(&self, link: &str) -> Result<Url, GraphError> {
        let next = Url::parse(link).map_err(|_| GraphError::BadNextLink(link.to_owned()))?;
        let same_origin = next.scheme() == self.endpoint.scheme()
            && next.host_str().map(str::to_ascii_lowercase)
                == self.endpoint.host_str().map(str::to_ascii_lowercase)
            && next.port_or_known_default() == self.endpoint.port_or_known_default();
        if !same_origin {
            return Err(GraphError::ForeignNextLink {
                host: next.origin().ascii_serialization(),
                expected: self.endpoint.origin().ascii_serialization(),
            });
        }
        Ok(next)
    }

    /// One page, retried until it arrives as valid JSON or retrying cannot help; hands it to
    /// `on_page` and returns its nextLink.
    async fn fetch(
        &self,
        function: Function,
        priority: Priority,
        url: &Url,
        on_page: impl FnOnce(&Page<'_>),
    ) -> Result<Option<String>, GraphError> {
        let mut on_page = Some(on_page);
        self.request(Endpoint::Function(function), priority, url, |answer| {
            let body = answer?;
            match serde_json::from_slice::<Page>(&body) {
                Ok(page) if page.value.len() > self.limits.max_rows => {
                    Err(GraphError::TooManyRows {
                        host: host_of(url),
                        rows: page.value.len().to_string(),
                        limit: self.limits.max_rows,
                    })
                }
                Err(error) if error.to_string().starts_with(TOO_MANY_ROWS) => {
                    Err(GraphError::TooManyRows {
                        host: host_of(url),
                        rows: format!("more than {MAX_PAGE_ROWS_PARSED}"),
                        limit: self.limits.max_rows,
                    })
                }
                Ok(page) => {
                    if let Some(on_page) = on_page.take() {
                        on_page(&page);
                    }
                    Ok(Answer::Done(page.next_link))
                }
                Err(error) => {
                    // Not serde's message: it would quote the body, which holds personal data.
                    let description = format!(
                        "a page that is not valid ({:?} error at line {} column {}, {} bytes)",
                        error.classify(),
                        error.line(),
                        error.column(),
                        body.len()
                    );
                    Ok(Answer::Again(RetryReason::InvalidJson, description))
                }
            }
        })
        .await
    }
}

/// The host (and port) a response came from, for errors: never the path or the query.
fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => "an unnamed host".to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn windows_split_at_the_limit_without_gaps() {
        let from: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let to: DateTime<Utc> = "2026-07-01T00:00:00Z".parse().unwrap();
        let parts = CallWindow { from, to }.split(MAX_WINDOW);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].from, from);
        assert_eq!(parts[2].to, to);
        assert!(parts.windows(2).all(|w| w[0].to == w[1].from));
        assert!(parts
            .iter()
            .all(|w| w.to - w.from <= chrono::Duration::days(90)));
    }

    /// A client for `endpoint` with a token cache that points there too.
    pub(crate) fn client(endpoint: &str) -> GraphClient {
        let registry = prometheus::Registry::new();
        let metrics = SourceMetrics::register(&registry).unwrap();
        let endpoint: Url = endpoint.parse().unwrap();
        let credential = crate::source::auth::Credential::ClientSecret {
            tenant_id: "t".into(),
            client_id: "c".into(),
            secret: "s".to_owned().into(),
        };
        let http = reqwest::Client::new();
        let tokens = TokenCache::new(
            http.clone(),
            credential,
            &endpoint,
            &endpoint,
            metrics.clone(),
        )
        .unwrap();
        GraphClient::new(
            http,
            endpoint,
            Arc::new(tokens),
            RetryPolicy::default(),
            metrics,
        )
    }

    #[test]
    fn next_links_must_stay_on_the_graph_origin() {
        let graph = client("https://graph.microsoft.com");
        let ok = "https://GRAPH.microsoft.com:443/v1.0/communications/callRecords/getDirectRoutingCalls(fromDateTime=2026-11-27T10:00:00Z,toDateTime=2026-11-27T11:00:00Z)?$skip=1000";
        assert!(graph.check_next_link(ok).is_ok());
        for foreign in [
            "http://graph.microsoft.com/v1.0/x?$skip=1",
            "https://graph.microsoft.com:8443/v1.0/x?$skip=1",
            "https://graph.microsoft.com.evil.example/v1.0/x?$skip=1",
            "https://evil.example/v1.0/x?$skip=1",
        ] {
            assert!(
                matches!(
                    graph.check_next_link(foreign),
                    Err(GraphError::ForeignNextLink { .. })
                ),
                "{foreign}"
            );
        }
        assert!(matches!(
            graph.check_next_link("not a url"),
            Err(GraphError::BadNextLink(_))
        ));
    }

    #[test]
    fn function_urls_carry_unquoted_utc_timestamps() {
        let graph = client("http://127.0.0.1:8080/");
        let window = CallWindow {
            from: "2026-11-27T10:00:00Z".parse().unwrap(),
            to: "2026-11-27T11:00:00Z".parse().unwrap(),
        };
        assert_eq!(
            graph.function_url(Function::DirectRoutingCalls, window).as_str(),
            "http://127.0.0.1:8080/v1.0/communications/callRecords/getDirectRoutingCalls(fromDateTime=2026-11-27T10:00:00Z,toDateTime=2026-11-27T11:00:00Z)"
        );
    }

    #[test]
    fn absurd_retry_after_values_are_bounded() {
        assert_eq!(parse_retry_after("1e30"), None);
        assert_eq!(parse_retry_after("-1"), None);
        let gate = TenantGate::default();
        gate.hold_for(Duration::from_secs(u64::MAX));
        assert!(!gate.is_open());
    }

    #[test]
    fn retry_after_in_both_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let later = SystemTime::now() + Duration::from_secs(30);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(parsed > Duration::from_secs(28) && parsed <= Duration::from_secs(30));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
