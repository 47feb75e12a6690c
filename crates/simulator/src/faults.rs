//! The faults a simulated tenant can inject, as set at start or while running (through
//! `SimHandle::set_faults` or `PUT /_sim/faults`), and Graph's request rate limit.
//!
//! Only settings live here; `gate` applies them to each data request, `graph` and `token`
//! answer accordingly.

use serde::{Deserialize, Serialize};

/// Faults the tenant injects; all off by default.
///
/// "Every Nth" counts all Graph data requests from 1. When several faults fall on the same
/// request, the first of forbidden, revoked token, throttling, unavailability and invalid
/// JSON wins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Graph's throttling: more than `requests` data requests within any `window_secs`
    /// (real time) answer 429 with a Retry-After that says when the window has room
    /// again. Throttled requests count against the limit, as Graph's do. Off by default;
    /// the demo tenant (`--demo`, `simulate`) uses [`RateLimit::GRAPH_PER_APP`].
    pub rate_limit: Option<RateLimit>,
    /// Every Nth data request answers 429 with Retry-After; 0 = off.
    pub throttle_every: u32,
    /// Retry-After on 429 (and on 503 when `unavailable_retry_after`); 0 means 1.
    pub retry_after_secs: u64,
    /// Send Retry-After as an HTTP date (rounded up to a whole second) instead of seconds.
    pub retry_after_http_date: bool,
    /// Every Nth data request answers 503 `serviceNotAvailable`; 0 = off.
    pub unavailable_every: u32,
    pub unavailable_retry_after: bool,
    /// Every Nth data request answers 200 with a truncated JSON body; 0 = off.
    pub invalid_json_every: u32,
    /// Real-time delay before answering each data request.
    pub slow_page_ms: u64,
    /// `expires_in` of issued tokens; 0 means 3599.
    pub token_lifetime_secs: u64,
    /// Every Nth data request answers 401 and invalidates the token it carried; 0 = off.
    pub revoke_token_every: u32,
    /// A base URL (`http://127.0.0.1:4567`) that replaces this tenant's own in every nextLink.
    pub foreign_next_link: Option<String>,
    /// Every data request answers 403 (the app lacks `CallRecords.Read.All`).
    pub forbidden: bool,
    /// The 429s of `throttle_every` carry no Retry-After: the client must back off on its
    /// own (Graph documents this case).
    pub throttle_without_retry_after: bool,
    /// Every Nth token request answers 503 `temporarily_unavailable`, as Entra ID does in
    /// an incident; 0 = off.
    pub token_unavailable_every: u32,
    /// Tokens lack the `CallRecords.Read.All` role (the permission was not granted or not
    /// consented), so Graph answers their requests 403.
    pub missing_call_records_role: bool,
    /// A trunk FQDN (one of `trunk_fqdns()`) whose calls fail all the time, mostly with 503
    /// from the SBC and 408, while no other trunk degrades. Off: the demo's
    /// `sbc-legacy.fabrikam.com` fails in minutes 40 to 55 of every hour. Applies to calls
    /// drawn from then on (at start: the whole history).
    pub failing_trunk: Option<String>,
}

/// A request rate limit over a sliding window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub requests: u32,
    pub window_secs: u64,
}

impl RateLimit {
    /// Graph's documented call-records limit for one app in one tenant: 1,500 requests per
    /// 20 seconds (the tenant-wide 10,000 per 20 seconds is never reached by one app).
    pub const GRAPH_PER_APP: RateLimit = RateLimit {
        requests: 1500,
        window_secs: 20,
    };
}

impl Faults {
    pub(crate) fn retry_after_secs(&self) -> u64 {
        self.retry_after_secs.max(1)
    }

    pub(crate) fn token_lifetime_secs(&self) -> u64 {
        if self.token_lifetime_secs == 0 {
            3599
        } else {
            self.token_lifetime_secs
        }
    }
}

/// Whether the `request_number`th request (counted from 1) falls on an "every Nth" fault.
pub(crate) fn is_every(request_number: u64, every: u32) -> bool {
    every > 0 && request_number.is_multiple_of(u64::from(every))
}
