//! The gate every Graph data request passes before it is answered: it numbers the request
//! for the "every Nth" faults, remembers the Retry-Afters the tenant has asked clients to
//! honour, and keeps the sliding windows of Graph's rate limits.
//!
//! Fault settings, the counter and the windows change together under one lock, so that
//! "every Nth request" and the limits stay exact under concurrent requests.
//!
//! # The windows
//!
//! Graph limits the call-log functions per function, per app and per tenant
//! ([`GraphLimits`]). Each limit is a sliding window over the tenant's clock (milliseconds
//! of `Tenant::now_ms`): a request at `t` counts with the requests of `(t - window, t]`,
//! and is refused when they are more than the limit allows. Every request counts, refused
//! or not, in every window it belongs to: its function's (if its path names one), the
//! app's and the tenant's. The tenant's window also holds the other apps' requests, a
//! steady stream `other_apps` describes: arrival k (any integer k) at
//! `bind + floor(k * window / requests)`, counted by formula rather than stored.
//!
//! Call-record requests have a window of their own (`GraphLimits::call_records`) and a
//! Retry-After of their own: they count in no call-log window, and call-log requests not
//! in theirs, as Graph limits the two APIs apart.
//!
//! A refused request is told to come back at the first time, on the grid its Retry-After
//! can express (whole seconds from now, or whole seconds of the epoch for an HTTP date),
//! at which every window it belongs to has room for it, so that a client that waits
//! exactly that long is admitted (unless it sent more meanwhile). That is when the limit
//! that refused it has room again, later only where another window it belongs to is
//! full to the brim. The limit named in the answer is the one that would keep it waiting
//! longest on its own.

use std::collections::{BTreeMap, VecDeque};

use crate::faults::{Faults, GraphLimits, RateLimit};

/// Fault settings and the request state they key on.
pub(crate) struct Gate {
    pub faults: Faults,
    data_requests: u64,
    /// Clock time (ms) until which the last Retry-After of an "every Nth" fault asked the
    /// client to stay away; requests before then are refused.
    throttled_until_ms: Option<i64>,
    /// Clock time (ms) until which the last Retry-After of a rate limit asked the client to
    /// stay away; requests before then are violations, and the windows judge them.
    limited_until_ms: Option<i64>,
    windows: Windows,
    /// The call records' own window and Retry-After, apart from the call logs'.
    call_records: Arrivals,
    call_records_limited_until_ms: Option<i64>,
}

/// What the gate says about one data request.
pub(crate) struct Admission {
    /// The request's number, from 1, for the "every Nth" faults.
    pub request_number: u64,
    /// The faults in force when it arrived.
    pub faults: Faults,
    /// The end (clock ms) of an "every Nth" Retry-After this request came too early for.
    pub pending_until_ms: Option<i64>,
    /// The request came while a Retry-After the tenant sent was still pending.
    pub violated: bool,
    /// The rate limit that refused the request, if one did.
    pub refused: Option<Refusal>,
}

/// A request over a rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The limit that refused it (the longest wait among those that did).
    pub scope: Scope,
    /// When (clock ms) every window it belongs to has room again: its Retry-After.
    pub until_ms: i64,
}

/// Which of Graph's limits a window keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One call-log function, by the name its path uses.
    Function(&'static str),
    /// The app's call-log requests together.
    App,
    /// All apps of the tenant.
    Tenant,
    /// The app's call-record requests, limited apart from the call logs.
    CallRecords,
}

impl Scope {
    /// The category Graph's `TooManyRequests` message names.
    pub fn category(self) -> &'static str {
        match self {
            Scope::Function(name) => name,
            Scope::App => "CallRecords",
            Scope::Tenant => "Tenant",
            Scope::CallRecords => "callRecords",
        }
    }
}

impl Gate {
    /// A gate for a tenant bound at `bind_ms`, from which the other apps' load is spaced.
    pub fn new(faults: Faults, bind_ms: i64) -> Self {
        Gate {
            faults,
            data_requests: 0,
            throttled_until_ms: None,
            limited_until_ms: None,
            windows: Windows::new(bind_ms),
            call_records: Arrivals::default(),
            call_records_limited_until_ms: None,
        }
    }

    /// Counts a data request for `function` (the call-log function its path names, if
    /// any) arriving at `now_ms` on the tenant's clock.
    pub fn admit(&mut self, now_ms: i64, function: Option<&'static str>) -> Admission {
        let (pending_until_ms, grid) = self.count(now_ms);
        let violated =
            pending_until_ms.is_some() || self.limited_until_ms.is_some_and(|until| now_ms < until);
        let refused = self
            .windows
            .admit(&self.faults.limits, function, now_ms, grid);
        if let Some(refusal) = refused {
            extend(&mut self.limited_until_ms, refusal.until_ms);
        }
        self.admission(pending_until_ms, violated, refused)
    }

    /// Counts a call-record request arriving at `now_ms`: the "every Nth" faults and their
    /// Retry-After apply as to any data request, but it is judged by the call records'
    /// limit alone, and only a Retry-After of that limit makes it a violation.
    pub fn admit_call_record(&mut self, now_ms: i64) -> Admission {
        let (pending_until_ms, grid) = self.count(now_ms);
        let violated = pending_until_ms.is_some()
            || self
                .call_records_limited_until_ms
                .is_some_and(|until| now_ms < until);
        let refused = match self.faults.limits.call_records {
            Some(limit) => {
                self.call_records.record(now_ms, limit.window_ms());
                let check = Check {
                    scope: Scope::CallRecords,
                    limit,
                    arrivals: &self.call_records,
                    other_apps: None,
                };
                judge(&[check], now_ms, grid)
            }
            None => {
                self.call_records = Arrivals::default();
                None
            }
        };
        if let Some(refusal) = refused {
            extend(&mut self.call_records_limited_until_ms, refusal.until_ms);
        }
        self.admission(pending_until_ms, violated, refused)
    }

    /// Numbers a data request; returns the pending Retry-After of a fault it came too early
    /// for, and the grid its own Retry-After would be on.
    fn count(&mut self, now_ms: i64) -> (Option<i64>, Grid) {
        self.data_requests += 1;
        let pending_until_ms = self.throttled_until_ms.filter(|until| now_ms < *until);
        if pending_until_ms.is_none() {
            self.throttled_until_ms = None;
        }
        let grid = if self.faults.retry_after_http_date {
            Grid::EpochSeconds
        } else {
            Grid::SecondsFromNow
        };
        (pending_until_ms, grid)
    }

    fn admission(
        &self,
        pending_until_ms: Option<i64>,
        violated: bool,
        refused: Option<Refusal>,
    ) -> Admission {
        Admission {
            request_number: self.data_requests,
            faults: self.faults.clone(),
            pending_until_ms,
            violated,
            refused,
        }
    }

    /// Records that a Retry-After of an "every Nth" fault asked clients to stay away until
    /// `until_ms`; an earlier promise that reaches further stands.
    pub fn hold_until(&mut self, until_ms: i64) {
        self.throttled_until_ms = Some(
            self.throttled_until_ms
                .map_or(until_ms, |t| t.max(until_ms)),
        );
    }
}

/// Moves `until` to `to` if that is later (or it is unset).
fn extend(until: &mut Option<i64>, to: i64) {
    *until = Some(until.map_or(to, |t| t.max(to)));
}

/// The times a Retry-After can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grid {
    /// Whole seconds from now (`Retry-After: 3`).
    SecondsFromNow,
    /// Whole seconds of the epoch (`Retry-After: <HTTP date>`).
    EpochSeconds,
}

impl Grid {
    /// The `n`th time after `now_ms` (n >= 1) that this grid can name.
    fn point(self, now_ms: i64, n: i64) -> i64 {
        match self {
            Grid::SecondsFromNow => now_ms.saturating_add(n.saturating_mul(1000)),
            Grid::EpochSeconds => now_ms
                .div_euclid(1000)
                .saturating_add(n)
                .saturating_mul(1000),
        }
    }
}

/// The arrivals (clock ms, ascending) a window of one scope holds.
#[derive(Debug, Default)]
pub(crate) struct Arrivals(VecDeque<i64>);

impl Arrivals {
    /// Records a request at `now_ms`, forgetting those that left a window of `window_ms`.
    fn record(&mut self, now_ms: i64, window_ms: i64) {
        let left = now_ms.saturating_sub(window_ms);
        while self.0.front().is_some_and(|&at| at <= left) {
            self.0.pop_front();
        }
        self.0.push_back(now_ms);
    }

    /// Requests in `(t - window_ms, t]`, for `t` no earlier than the last arrival.
    fn count_at(&self, t: i64, window_ms: i64) -> u64 {
        let left = t.saturating_sub(window_ms);
        (self.0.len() - self.0.partition_point(|&at| at <= left)) as u64
    }
}

/// The steady load of the tenant's other apps, as a formula over clock time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OtherApps {
    pub load: RateLimit,
    /// Arrival 0 is at this time (the tenant's bind time).
    pub origin_ms: i64,
}

impl OtherApps {
    /// Arrivals in `(t - window_ms, t]`: arrival k is at
    /// `origin + floor(k * load window / load requests)` for every integer k.
    pub fn count_at(&self, t: i64, window_ms: i64) -> u64 {
        // Arrivals at or before `origin + d`, up to a constant: those with
        // k * window < (d + 1) * requests.
        let up_to = |d: i64| -> i128 {
            let numerator = (i128::from(d) + 1) * i128::from(self.load.requests());
            let denominator = i128::from(self.load.window_ms());
            -(-numerator).div_euclid(denominator)
        };
        let end = t.saturating_sub(self.origin_ms);
        let start = end.saturating_sub(window_ms);
        u64::try_from(up_to(end) - up_to(start)).unwrap_or(0)
    }
}

/// The windows of all scopes.
struct Windows {
    bind_ms: i64,
    functions: BTreeMap<&'static str, Arrivals>,
    app: Arrivals,
    tenant: Arrivals,
}

/// One window a request is judged by, with its limit.
struct Check<'a> {
    scope: Scope,
    limit: RateLimit,
    arrivals: &'a Arrivals,
    other_apps: Option<OtherApps>,
}

impl Check<'_> {
    /// Requests in the window ending at `t`, the other apps' included.
    fn count_at(&self, t: i64) -> u64 {
        let window_ms = self.limit.window_ms();
        let others = self
            .other_apps
            .map_or(0, |others| others.count_at(t, window_ms));
        self.arrivals.count_at(t, window_ms).saturating_add(others)
    }

    /// Whether a request arriving at `t` would find room.
    fn has_room_at(&self, t: i64) -> bool {
        self.count_at(t) < u64::from(self.limit.requests())
    }
}

impl Windows {
    fn new(bind_ms: i64) -> Self {
        Windows {
            bind_ms,
            functions: BTreeMap::new(),
            app: Arrivals::default(),
            tenant: Arrivals::default(),
        }
    }

    /// Records a request in every window it belongs to and judges it.
    fn admit(
        &mut self,
        limits: &GraphLimits,
        function: Option<&'static str>,
        now_ms: i64,
        grid: Grid,
    ) -> Option<Refusal> {
        match (limits.per_function, function) {
            (Some(limit), Some(name)) => self
                .functions
                .entry(name)
                .or_default()
                .record(now_ms, limit.window_ms()),
            (None, _) => self.functions.clear(),
            (Some(_), None) => {}
        }
        for (limit, arrivals) in [
            (limits.per_app, &mut self.app),
            (limits.per_tenant, &mut self.tenant),
        ] {
            match limit {
                Some(limit) => arrivals.record(now_ms, limit.window_ms()),
                None => *arrivals = Arrivals::default(),
            }
        }

        let mut checks = Vec::with_capacity(3);
        if let (Some(limit), Some(name)) = (limits.per_function, function) {
            if let Some(arrivals) = self.functions.get(name) {
                checks.push(Check {
                    scope: Scope::Function(name),
                    limit,
                    arrivals,
                    other_apps: None,
                });
            }
        }
        if let Some(limit) = limits.per_app {
            checks.push(Check {
                scope: Scope::App,
                limit,
                arrivals: &self.app,
                other_apps: None,
            });
        }
        if let Some(limit) = limits.per_tenant {
            checks.push(Check {
                scope: Scope::Tenant,
                limit,
                arrivals: &self.tenant,
                other_apps: limits.other_apps.map(|load| OtherApps {
                    load,
                    origin_ms: self.bind_ms,
                }),
            });
        }
        judge(&checks, now_ms, grid)
    }
}

/// The refusal of a request at `now_ms` (already counted in `checks`' windows), if any
/// window holds more than its limit.
fn judge(checks: &[Check<'_>], now_ms: i64, grid: Grid) -> Option<Refusal> {
    let limit_of = |check: &Check<'_>| u64::from(check.limit.requests());
    let refusing: Vec<&Check<'_>> = checks
        .iter()
        .filter(|check| check.count_at(now_ms) > limit_of(check))
        .collect();
    if refusing.is_empty() {
        return None;
    }
    // Beyond two windows from now only the other apps' steady load remains; a limit it
    // fills alone never has room, and a client is told to wait a window.
    let longest_window_ms = checks
        .iter()
        .map(|check| check.limit.window_ms())
        .max()
        .unwrap_or(1000);
    let horizon = longest_window_ms.div_euclid(1000).saturating_mul(2) + 2;
    let first_room = |fits: &dyn Fn(i64) -> bool| {
        (1..=horizon)
            .map(|n| grid.point(now_ms, n))
            .find(|&t| fits(t))
    };
    // The longest wait names the limit; on a tie the narrowest scope (checks run from
    // function to tenant).
    let mut scope = refusing[0].scope;
    let mut longest = i64::MIN;
    for check in &refusing {
        let until = first_room(&|t| check.has_room_at(t)).unwrap_or(i64::MAX);
        if until > longest {
            longest = until;
            scope = check.scope;
        }
    }
    let until_ms = first_room(&|t| checks.iter().all(|check| check.has_room_at(t)))
        .unwrap_or_else(|| now_ms.saturating_add(longest_window_ms));
    Some(Refusal { scope, until_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIND: i64 = 1_800_000_000_000;

    const DR: Option<&str> = Some("getDirectRoutingCalls");
    const PSTN: Option<&str> = Some("getPstnCalls");

    /// Limits per function and per app over `window_secs`, none per tenant.
    fn limited(function: u32, app: u32, window_secs: u64) -> Gate {
        let limit = |requests| {
            Some(RateLimit {
                requests,
                window_secs,
            })
        };
        let limits = GraphLimits {
            per_function: limit(function),
            per_app: limit(app),
            ..GraphLimits::OFF
        };
        Gate::new(
            Faults {
                limits,
                ..Faults::default()
            },
            BIND,
        )
    }

    fn refusal(gate: &mut Gate, at: i64, function: Option<&'static str>) -> Option<Refusal> {
        gate.admit(BIND + at, function).refused
    }

    #[test]
    fn other_apps_are_spread_evenly_before_and_after_bind() {
        let others = OtherApps {
            load: RateLimit {
                requests: 8,
                window_secs: 2,
            },
            origin_ms: BIND,
        };
        for t in [
            BIND - 5_000,
            BIND,
            BIND + 1,
            BIND + 249,
            BIND + 250,
            BIND + 7_777,
        ] {
            assert_eq!(others.count_at(t, 2_000), 8, "at {}", t - BIND);
            assert_eq!(others.count_at(t, 4_000), 16, "at {}", t - BIND);
        }
        // Three every 2 s: spacing 666 ms, so a window of 1 s holds one or two.
        let uneven = OtherApps {
            load: RateLimit {
                requests: 3,
                window_secs: 2,
            },
            origin_ms: BIND,
        };
        let counts: Vec<u64> = (0..2_000)
            .step_by(100)
            .map(|ms| uneven.count_at(BIND + ms, 1_000))
            .collect();
        assert!(counts.iter().all(|&c| c == 1 || c == 2), "{counts:?}");
        assert_eq!(uneven.count_at(BIND, 2_000), 3);
        assert_eq!(uneven.count_at(BIND + 5, 2_000), 3);
    }

    #[test]
    fn the_longest_wait_names_the_limit_and_sets_retry_after() {
        // Function 2, app 3 per 10 s.
        let mut gate = limited(2, 3, 10);
        for (at, function) in [(0, DR), (1_000, DR), (5_000, PSTN)] {
            assert_eq!(refusal(&mut gate, at, function), None, "{at}");
        }
        // Over the app's limit only, which has room again once two have left (at 11 s).
        // The function's window is full though (2 of 2, this one included), so the
        // request would pass only from 15 s: that is its Retry-After.
        let app = Refusal {
            scope: Scope::App,
            until_ms: BIND + 15_000,
        };
        assert_eq!(refusal(&mut gate, 6_000, PSTN), Some(app));
        // Over both: the function has room again once its first two requests have left
        // the window (at 11 s); the app once three have (at 15 s), which is later.
        assert_eq!(refusal(&mut gate, 7_000, DR), Some(app));

        // Equal waits name the narrower limit. Function 3, app 5 per 2 s.
        let mut gate = limited(3, 5, 2);
        for (at, function) in [(0, DR), (100, DR), (200, PSTN), (300, PSTN), (400, DR)] {
            assert_eq!(refusal(&mut gate, at, function), None, "{at}");
        }
        // Both have room from 2.1 s, when the first two have left: 2 s from now on the
        // grid of whole seconds.
        let admission = gate.admit(BIND + 500, DR);
        let expected = Refusal {
            scope: Scope::Function("getDirectRoutingCalls"),
            until_ms: BIND + 2_500,
        };
        assert_eq!(admission.refused, Some(expected));
        assert!(!admission.violated);
        // Back too early: a violation, though the windows, which judge it like any
        // request, have room for it by then.
        let early = gate.admit(BIND + 2_400, PSTN);
        assert!(early.violated);
        assert_eq!(early.refused, None);
    }

    #[test]
    fn an_http_date_names_a_whole_second_of_the_epoch() {
        let mut gate = limited(1, 100, 2);
        gate.faults.retry_after_http_date = true;
        assert_eq!(refusal(&mut gate, 300, DR), None);
        // Room from 2.3 s: the first whole second after that.
        let refused = refusal(&mut gate, 700, DR).expect("refused");
        assert_eq!(refused.until_ms, BIND + 3_000);
    }

    #[test]
    fn other_apps_alone_can_fill_the_tenant() {
        let mut limits = GraphLimits {
            per_tenant: Some(RateLimit {
                requests: 10,
                window_secs: 2,
            }),
            other_apps: Some(RateLimit {
                requests: 10,
                window_secs: 2,
            }),
            ..GraphLimits::OFF
        };
        let mut gate = Gate::new(
            Faults {
                limits,
                ..Faults::default()
            },
            BIND,
        );
        let refused = refusal(&mut gate, 0, DR).expect("no room ever");
        assert_eq!(refused.scope, Scope::Tenant);
        assert_eq!(refused.until_ms, BIND + 2_000, "told to wait a window");
        limits.other_apps = Some(RateLimit {
            requests: 9,
            window_secs: 2,
        });
        gate.faults.limits = limits;
        // The refused request still counts: 9 + 1 + this one, and this one keeps the
        // tenant's last place taken until it leaves the window.
        let refused = refusal(&mut gate, 1_000, DR).expect("refused");
        assert_eq!(refused.until_ms, BIND + 3_000);
        assert_eq!(refusal(&mut gate, 3_000, DR), None);
    }
}
