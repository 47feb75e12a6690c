//! What the simulated tenant has served so far, for tests and benchmarks to check the
//! exporter's behaviour against (`SimHandle::stats`, `GET /_sim/stats`), and when each row
//! was first served (`SimHandle::served_rows`), the ground truth of the exporter's latency.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::time::{datetime_of_ms, datetime_of_ticks};

/// What the tenant has served so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests to the Graph API surface (`/v1.0/...`), whatever their answer.
    pub data_requests: u64,
    /// Well-formed 200 pages.
    pub pages_served: u64,
    /// Rows on those pages, malformed ones included.
    pub rows_served: u64,
    /// Data requests by the call-log function their path names (`getDirectRoutingCalls`,
    /// ...), whatever their answer; requests that name none are not in here.
    pub data_requests_by_function: BTreeMap<String, u64>,
    /// 429 answers, all causes: the rate limits, the "every Nth" throttling fault and
    /// requests that ignored a pending Retry-After of that fault.
    pub throttled_responses: u64,
    /// 429s of the per-function rate limit. A request several limits refused counts under
    /// the one that kept it waiting longest (on a tie, the narrowest).
    pub throttled_per_function: u64,
    /// 429s of the per-app rate limit.
    pub throttled_per_app: u64,
    /// 429s of the tenant-wide rate limit (this app's requests and the other apps' load).
    pub throttled_per_tenant: u64,
    pub unavailable_responses: u64,
    pub invalid_json_responses: u64,
    /// 401 answers to data requests.
    pub unauthorized_responses: u64,
    pub forbidden_responses: u64,
    pub token_requests: u64,
    pub tokens_issued: u64,
    pub token_errors: u64,
    /// Data requests received while a Retry-After sent earlier (by a rate limit or a fault)
    /// was still pending.
    pub retry_after_violations: u64,
    /// Pages whose nextLink pointed at the foreign base URL.
    pub foreign_next_links_served: u64,
    /// 400, 404, 405 and 406 answers to data requests.
    pub bad_requests: u64,
    /// Client assertions (certificate or federated) that passed every check.
    pub client_assertions_accepted: u64,
    /// Accepted assertions whose `jti` had been seen before.
    pub repeated_assertion_ids: u64,
    /// Requests for call records (`/communications/callRecords/{id}` and its session
    /// pages), whatever their answer; also counted in `data_requests`.
    pub call_record_requests: u64,
    /// 429 answers to call-record requests: their own limit, the throttling fault, or a
    /// pending Retry-After of that fault; also counted in `throttled_responses`.
    pub call_record_throttled: u64,
    /// 404 answers to call-record requests: not published yet, never published, unknown or
    /// older than 30 days.
    pub call_record_not_found: u64,
    /// Records and session pages answered 200.
    pub call_record_pages_served: u64,
}

/// A well-formed row the tenant has served on a page: when its call started, when it
/// became visible and when a page first carried it. Benchmarks measure the exporter's
/// latency against these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServedRow {
    /// The call's start, as the row prints it.
    pub start: DateTime<Utc>,
    /// When the row became visible in results (clock time).
    pub visible_at: DateTime<Utc>,
    /// When a page first carried it (clock time).
    pub first_served_at: DateTime<Utc>,
}

/// A [`ServedRow`] as a log keeps it: ticks and clock milliseconds, 24 bytes a row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServedRecord {
    pub start_ticks: i64,
    pub visible_ms: i64,
    pub served_ms: i64,
}

impl From<ServedRecord> for ServedRow {
    fn from(record: ServedRecord) -> ServedRow {
        ServedRow {
            start: datetime_of_ticks(record.start_ticks),
            visible_at: datetime_of_ms(record.visible_ms),
            first_served_at: datetime_of_ms(record.served_ms),
        }
    }
}
