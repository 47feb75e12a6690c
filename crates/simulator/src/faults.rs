//! The faults a simulated tenant can inject, as set at start or while running (through
//! `SimHandle::set_faults` or `PUT /_sim/faults`), and Graph's request rate limits.
//!
//! Only settings live here; `gate` applies them to each data request, `graph` and `token`
//! answer accordingly.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tve_clock::Rate;

/// Faults the tenant injects; all off by default.
///
/// "Every Nth" counts all Graph data requests from 1. When several faults fall on the same
/// request, the first of forbidden, revoked token, throttling, unavailability and invalid
/// JSON wins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Graph's throttling of the call-log functions (per function, per app, per tenant),
    /// checked before any other fault. Off by default; the demo tenant (`--demo`,
    /// `simulate`) enforces [`GraphLimits::DOCUMENTED`].
    pub limits: GraphLimits,
    /// Every Nth data request answers 429 with Retry-After; 0 = off.
    pub throttle_every: u32,
    /// Retry-After on the 429s of `throttle_every` (and on 503 when
    /// `unavailable_retry_after`); 0 means 1. The limits' Retry-After says when their
    /// windows have room.
    pub retry_after_secs: u64,
    /// Send Retry-After as an HTTP date (rounded up to a whole second) instead of seconds,
    /// for the limits too.
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
    /// Without `failing_trunk`, no trunk degrades (instead of the legacy SBC's quarter of
    /// every hour): a provider's customers when the home tenant has the failing trunk, so
    /// that an alert names one tenant even where another has an SBC of the same name.
    pub quiet_trunks: bool,
    /// Toll fraud: from `toll_fraud_after_secs` after the tenant's start (or from when
    /// this is switched on, if later) one account places a few short international calls a
    /// minute of tenant time to [`crate::TOLL_FRAUD_COUNTRY`], which the tenant never calls
    /// otherwise: `ByotOut` over a Direct Routing trunk and `user_out` on its Calling Plan,
    /// with high charges, published within seconds. Off again, the calls stop.
    pub toll_fraud: bool,
    /// How long after the tenant's start the toll fraud begins; None: 120 s
    /// (`--simulate.toll-fraud-after`).
    pub toll_fraud_after_secs: Option<u64>,
    /// Calls a day of live PSTN traffic (`getPstnCalls`: Calling Plan and Operator
    /// Connect); None: `PSTN_SHARE` of the Direct Routing volume, on top of it. Read at
    /// start for the history and every second for live traffic. Scenarios ignore it.
    pub pstn_calls_per_day: Option<u64>,
    /// Every row served gets a call type, trunk FQDN, SIP code, sub-reason and media
    /// location derived from its id: the same on every page, new for nearly every row, as
    /// a broken or hostile upstream could send (`graph::hostile`).
    pub random_labels: bool,
    /// Every page opens with rows that are not JSON objects: an array, a string, a number,
    /// null, a boolean and an array nested 100,000 deep; the same six on every page (so a
    /// page of `page_size` rows has six more: above 994, more than Graph's 1,000).
    pub non_object_rows: bool,
    /// Every data request that would get a page gets instead a valid page this many MiB
    /// large, streamed without Content-Length (the simulator holds 64 KiB of it); 0 = off.
    pub oversized_page_mib: u32,
    /// How long after a call's end its call record is published at the least: each
    /// record appears at end + uniform(delay, 4 × delay), never before its call-log row is
    /// visible (`--simulate.call-record-delay`, 15 min there: records 15–60 min after the
    /// call, as Graph documents). Zero: with its row. Read at every request, so changing
    /// it moves the publication of every record.
    pub call_record_delay: Duration,
    /// Share (0.0–1.0) of call records never published, chosen by the seed and the call's
    /// correlation id: they answer 404 for as long as the call is kept.
    pub unpublished_call_records: f64,
    /// Sessions on a call record's page (the record itself, then each
    /// `sessions@odata.nextLink` page); 0 means Graph's 60.
    pub call_record_session_page: usize,
}

/// Graph's request limits for the call-log functions (`getDirectRoutingCalls`,
/// `getPstnCalls`, ...) and, apart from them, for call records, as
/// `shared/reference/graph-call-logs.md` documents them; each is off when `None`.
///
/// Every data request counts in every window it belongs to, throttled or not, as Graph's
/// do: the window of the function its path names (none if it names no call-log function),
/// the app's and the tenant's. A request that finds any of them full answers 429 with a
/// Retry-After of the whole seconds until there is room again, and a message naming the
/// limit that refused it. Windows slide over the tenant's clock time, not real time, so a
/// clock that runs N times faster runs the limits N times faster too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GraphLimits {
    /// Requests to one call-log function of the tenant (Graph: "per collection");
    /// documented: 50 per 60 s.
    pub per_function: Option<RateLimit>,
    /// Requests of the app (the tenant's client) to all call-log functions together;
    /// documented: 200 per 60 s.
    pub per_app: Option<RateLimit>,
    /// Requests of all apps of the tenant together: this app's, and those of
    /// `other_apps`; documented: 1,000 per 60 s.
    pub per_tenant: Option<RateLimit>,
    /// The steady load the tenant's other apps put on `per_tenant`: `requests` every
    /// `window_secs`, evenly spaced in clock time (and before bind as after). None: this
    /// app is the tenant's only one.
    pub other_apps: Option<RateLimit>,
    /// Requests of the app for call records (`/communications/callRecords/{id}` and its
    /// session pages), which Graph limits apart from the call-log functions: they count
    /// here alone, not in the three windows above, nor do those count here. Documented:
    /// 1,500 per 20 s per app per tenant.
    pub call_records: Option<RateLimit>,
}

impl GraphLimits {
    /// Graph's documented limits for the call-log functions, no other apps.
    pub const DOCUMENTED: GraphLimits = GraphLimits {
        per_function: Some(RateLimit::PER_FUNCTION),
        per_app: Some(RateLimit::PER_APP),
        per_tenant: Some(RateLimit::PER_TENANT),
        other_apps: None,
        call_records: Some(RateLimit::CALL_RECORDS),
    };

    /// No limits at all.
    pub const OFF: GraphLimits = GraphLimits {
        per_function: None,
        per_app: None,
        per_tenant: None,
        other_apps: None,
        call_records: None,
    };
}

/// A request rate limit over a sliding window: at most `requests` within any `window_secs`
/// of the tenant's clock. 0 in either field counts as 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub requests: u32,
    pub window_secs: u64,
}

impl RateLimit {
    /// Graph's limit on an app's call-record requests per tenant: 1,500 per 20 seconds.
    pub const CALL_RECORDS: RateLimit = RateLimit {
        requests: 1500,
        window_secs: 20,
    };
    /// Graph's limit per call-log function per tenant: 50 requests per 60 seconds.
    pub const PER_FUNCTION: RateLimit = RateLimit {
        requests: 50,
        window_secs: 60,
    };
    /// Graph's limit per app per tenant for the call-log functions together: 200 requests
    /// per 60 seconds.
    pub const PER_APP: RateLimit = RateLimit {
        requests: 200,
        window_secs: 60,
    };
    /// Graph's limit per tenant, shared by all its apps: 1,000 requests per 60 seconds.
    pub const PER_TENANT: RateLimit = RateLimit {
        requests: 1000,
        window_secs: 60,
    };

    /// Requests allowed in a window (at least 1).
    pub(crate) fn requests(&self) -> u32 {
        self.requests.max(1)
    }

    /// The window's length in clock milliseconds (at least a second).
    pub(crate) fn window_ms(&self) -> i64 {
        i64::try_from(self.window_secs.max(1))
            .unwrap_or(i64::MAX)
            .saturating_mul(1000)
    }
}

impl From<RateLimit> for Rate {
    fn from(limit: RateLimit) -> Rate {
        Rate::new(limit.requests, Duration::from_secs(limit.window_secs))
    }
}

impl TryFrom<Rate> for RateLimit {
    /// Why the rate is not a limit: its window is not a whole number of seconds.
    type Error = String;

    fn try_from(rate: Rate) -> Result<RateLimit, String> {
        if rate.per.subsec_nanos() != 0 || rate.per.is_zero() {
            return Err(format!(
                "the window of {} requests per {:?} is not a whole number of seconds",
                rate.requests, rate.per
            ));
        }
        Ok(RateLimit {
            requests: rate.requests,
            window_secs: rate.per.as_secs(),
        })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}s", self.requests, self.window_secs)
    }
}

impl Faults {
    pub(crate) fn retry_after_secs(&self) -> u64 {
        self.retry_after_secs.max(1)
    }

    /// When toll fraud begins, in clock ms, for a tenant bound at `bind_ms`.
    pub(crate) fn toll_fraud_from_ms(&self, bind_ms: i64) -> i64 {
        let after_secs = self.toll_fraud_after_secs.unwrap_or(120);
        let after_ms = i64::try_from(after_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        bind_ms.saturating_add(after_ms)
    }

    /// Sessions on one page of a call record.
    pub(crate) fn call_record_session_page(&self) -> usize {
        if self.call_record_session_page == 0 {
            60
        } else {
            self.call_record_session_page
        }
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
