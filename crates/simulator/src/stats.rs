//! What the simulated tenant has served so far, for tests and benchmarks to check the
//! exporter's behaviour against (`SimHandle::stats`, `GET /_sim/stats`).

use serde::{Deserialize, Serialize};

/// What the tenant has served so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests to the Graph API surface (`/v1.0/...`), whatever their answer.
    pub data_requests: u64,
    /// Well-formed 200 pages.
    pub pages_served: u64,
    /// Rows on those pages, malformed ones included.
    pub rows_served: u64,
    /// 429 answers, including those to requests that ignored a pending Retry-After.
    pub throttled_responses: u64,
    pub unavailable_responses: u64,
    pub invalid_json_responses: u64,
    /// 401 answers to data requests.
    pub unauthorized_responses: u64,
    pub forbidden_responses: u64,
    pub token_requests: u64,
    pub tokens_issued: u64,
    pub token_errors: u64,
    /// Data requests received while a Retry-After sent earlier was still pending.
    pub retry_after_violations: u64,
    /// Pages whose nextLink pointed at the foreign base URL.
    pub foreign_next_links_served: u64,
    /// 400, 404, 405 and 406 answers to data requests.
    pub bad_requests: u64,
    /// Client assertions (certificate or federated) that passed every check.
    pub client_assertions_accepted: u64,
    /// Accepted assertions whose `jti` had been seen before.
    pub repeated_assertion_ids: u64,
}
