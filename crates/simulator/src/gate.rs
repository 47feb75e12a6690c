//! The gate every Graph data request passes before it is answered: it numbers the request
//! for the "every Nth" faults, remembers a Retry-After the tenant has asked clients to
//! honour, and keeps the sliding window of the request rate limit.
//!
//! Fault settings and the counter change together under one lock, so that "every Nth
//! request" stays exact under concurrent requests.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::faults::{Faults, RateLimit};

/// Fault settings and the request state they key on.
pub(crate) struct Gate {
    pub faults: Faults,
    data_requests: u64,
    /// Clock time (ms) until which the last Retry-After asked the client to stay away.
    throttled_until_ms: Option<i64>,
    rate: RateWindow,
}

/// What the gate says about one data request.
pub(crate) struct Admission {
    /// The request's number, from 1, for the "every Nth" faults.
    pub request_number: u64,
    /// The faults in force when it arrived.
    pub faults: Faults,
    /// The end (clock ms) of a Retry-After this request came too early for.
    pub pending_until_ms: Option<i64>,
    /// The rate limit's verdict, when a rate limit is set.
    pub rate: Option<RateVerdict>,
}

impl Gate {
    pub fn new(faults: Faults) -> Self {
        Gate {
            faults,
            data_requests: 0,
            throttled_until_ms: None,
            rate: RateWindow::default(),
        }
    }

    /// Counts a data request arriving at `now_ms` on the tenant's clock.
    pub fn admit(&mut self, now_ms: i64) -> Admission {
        self.data_requests += 1;
        let pending_until_ms = self.throttled_until_ms.filter(|until| now_ms < *until);
        if pending_until_ms.is_none() {
            self.throttled_until_ms = None;
        }
        let rate = self
            .faults
            .rate_limit
            .map(|limit| self.rate.admit(limit, Instant::now()));
        Admission {
            request_number: self.data_requests,
            faults: self.faults.clone(),
            pending_until_ms,
            rate,
        }
    }

    /// Records that a Retry-After asked clients to stay away until `until_ms`; an earlier
    /// promise that reaches further stands.
    pub fn hold_until(&mut self, until_ms: i64) {
        self.throttled_until_ms = Some(
            self.throttled_until_ms
                .map_or(until_ms, |t| t.max(until_ms)),
        );
    }
}

/// The sliding window of a [`RateLimit`]: when recent data requests arrived, in real time.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    arrivals: VecDeque<Instant>,
    /// The last Retry-After sent asked the client to stay away until then.
    retry_after_until: Option<Instant>,
}

/// What the rate limit says about one request.
pub(crate) struct RateVerdict {
    /// Seconds to send as Retry-After when the request is over the limit.
    pub retry_after_secs: Option<u64>,
    /// The request came while an earlier Retry-After was pending.
    pub violated: bool,
}

impl RateWindow {
    /// Records a request arriving at `now` (every request counts, throttled or not).
    pub fn admit(&mut self, limit: RateLimit, now: Instant) -> RateVerdict {
        let window = Duration::from_secs(limit.window_secs.max(1));
        while self
            .arrivals
            .front()
            .is_some_and(|&at| now.duration_since(at) >= window)
        {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        let violated = self.retry_after_until.is_some_and(|until| now < until);
        let allowed = limit.requests.max(1) as usize;
        if self.arrivals.len() <= allowed {
            return RateVerdict {
                retry_after_secs: None,
                violated,
            };
        }
        // The next request fits once enough of the counted ones have left the window.
        let room_at = self.arrivals[self.arrivals.len() - allowed] + window;
        let wait = room_at.saturating_duration_since(now);
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.max(1);
        let until = now + Duration::from_secs(secs);
        self.retry_after_until = Some(self.retry_after_until.map_or(until, |u| u.max(until)));
        RateVerdict {
            retry_after_secs: Some(secs),
            violated,
        }
    }
}
