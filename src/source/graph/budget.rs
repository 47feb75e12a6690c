//! The exporter's own request budget, kept below Graph's documented limits for the call-log
//! functions, so that in normal operation Graph never has to throttle it.
//!
//! Graph counts requests over sliding 60-second windows: 50 per function per tenant, 200 per
//! app per tenant (all call-log functions together), 1,000 per tenant shared with every
//! other app. Every request to a call-log function takes a place in two windows kept the
//! same way here, its function's and its tenant's, before it is sent; when either is full it
//! waits until the oldest request leaves the window. Two priorities share the budget: the
//! recent poll, which must never wait behind the long reads (late polls and sweeps), and
//! those long reads, which leave a reserve sized to the recent poll free in every window and
//! give way to any recent request that is waiting. Graph's own `Retry-After` stays the
//! second line of defence (see `retry`): another app of the tenant can fill the shared
//! limit, which no budget here can see.
//!
//! Windows count in clock time (the [`Clock`]), as the simulated tenant's limits do, so that
//! a sped-up clock speeds both up alike.

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tve_clock::{Clock, Rate};

use crate::source::{Function, Priority};

/// Graph's documented limit per call-log function per tenant.
pub const GRAPH_FUNCTION_LIMIT: Rate = Rate::new(50, Duration::from_secs(60));
/// Graph's documented limit per app per tenant, all call-log functions together.
pub const GRAPH_APP_LIMIT: Rate = Rate::new(200, Duration::from_secs(60));
/// The default budget per function: 10 % under Graph's limit, for clock skew between the
/// exporter and Graph and for a second exporter briefly running during a rolling update.
pub const DEFAULT_FUNCTION_BUDGET: Rate = Rate::new(45, Duration::from_secs(60));
/// The default budget per tenant, 10 % under Graph's per-app limit.
pub const DEFAULT_TENANT_BUDGET: Rate = Rate::new(180, Duration::from_secs(60));

/// The budget's two limits (`--graph.rate-limit`, `--graph.tenant-rate-limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    pub per_function: Rate,
    pub per_tenant: Rate,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        BudgetLimits {
            per_function: DEFAULT_FUNCTION_BUDGET,
            per_tenant: DEFAULT_TENANT_BUDGET,
        }
    }
}

/// One sliding window: when the requests still inside it were sent (clock milliseconds).
#[derive(Debug)]
struct Window {
    limit: u32,
    span_ms: i64,
    sent: VecDeque<i64>,
}

impl Window {
    fn new(rate: Rate) -> Self {
        Window {
            limit: rate.requests.max(1),
            span_ms: i64::try_from(rate.per.as_millis()).unwrap_or(i64::MAX),
            sent: VecDeque::new(),
        }
    }

    fn prune(&mut self, now_ms: i64) {
        while self
            .sent
            .front()
            .is_some_and(|&at| now_ms.saturating_sub(at) >= self.span_ms)
        {
            self.sent.pop_front();
        }
    }

    /// When one more request fits with `held_back` places kept free: `None` for now.
    fn room_at(&self, held_back: u32) -> Option<i64> {
        let allowed = self.limit.saturating_sub(held_back).max(1) as usize;
        if self.sent.len() < allowed {
            return None;
        }
        // Room once all but `allowed - 1` of the counted requests have left the window.
        Some(self.sent[self.sent.len() - allowed].saturating_add(self.span_ms))
    }
}

/// One function's window and the reserve its recent poll needs.
#[derive(Debug)]
struct FunctionLedger {
    function: Function,
    window: Window,
    reserve: u32,
}

/// Every window of a tenant, and who waits: the pure part of the budget.
#[derive(Debug)]
struct Ledger {
    per_function: Rate,
    tenant: Window,
    functions: Vec<FunctionLedger>,
    /// Recent requests waiting now; background requests give way while there are any.
    recent_waiting: u32,
}

/// Why a request cannot go yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Until this clock time (ms), when a window has room.
    Until(i64),
    /// Until a waiting recent request has gone.
    ForRecent,
}

impl Ledger {
    fn new(limits: BudgetLimits) -> Self {
        Ledger {
            per_function: limits.per_function,
            tenant: Window::new(limits.per_tenant),
            functions: Vec::new(),
            recent_waiting: 0,
        }
    }

    /// Where `function`'s ledger is, created on first use.
    fn function_index(&mut self, function: Function) -> usize {
        if let Some(index) = self.functions.iter().position(|f| f.function == function) {
            return index;
        }
        self.functions.push(FunctionLedger {
            function,
            window: Window::new(self.per_function),
            reserve: 0,
        });
        self.functions.len() - 1
    }

    /// Keeps `pages` of every window of `function` free for its recent poll, at most half of
    /// the window, so that long reads always make progress.
    fn set_reserve(&mut self, function: Function, pages: u32) {
        let index = self.function_index(function);
        let entry = &mut self.functions[index];
        entry.reserve = pages.min(entry.window.limit / 2);
    }

    /// Takes a place for one request of `function` at `now_ms`, or says how long to wait.
    fn try_take(
        &mut self,
        function: Function,
        priority: Priority,
        now_ms: i64,
    ) -> Result<(), Wait> {
        let background = priority == Priority::Background;
        if background && self.recent_waiting > 0 {
            return Err(Wait::ForRecent);
        }
        let index = self.function_index(function);
        let tenant_reserve: u32 = self.functions.iter().map(|f| f.reserve).sum();
        let (tenant, entry) = (&mut self.tenant, &mut self.functions[index]);
        tenant.prune(now_ms);
        entry.window.prune(now_ms);
        let (function_held, tenant_held) = if background {
            (entry.reserve, tenant_reserve.min(tenant.limit / 2))
        } else {
            (0, 0)
        };
        match entry
            .window
            .room_at(function_held)
            .max(tenant.room_at(tenant_held))
        {
            Some(at) => Err(Wait::Until(at.max(now_ms.saturating_add(1)))),
            None => {
                entry.window.sent.push_back(now_ms);
                tenant.sent.push_back(now_ms);
                Ok(())
            }
        }
    }
}

/// A tenant's request budget, shared by the readers of all its sources.
pub struct RequestBudget {
    limits: BudgetLimits,
    clock: Clock,
    ledger: Mutex<Ledger>,
    /// Wakes background requests when a recent one has gone.
    recent_gone: Notify,
}

/// Counts a recent request as waiting for as long as it exists, so that a request dropped
/// while waiting (a poll cut short at shutdown) cannot hold background reads back for good.
struct RecentWaiting<'a> {
    budget: &'a RequestBudget,
    counted: bool,
}

impl RecentWaiting<'_> {
    fn count(&mut self, ledger: &mut Ledger) {
        if !self.counted {
            ledger.recent_waiting += 1;
            self.counted = true;
        }
    }
}

impl Drop for RecentWaiting<'_> {
    fn drop(&mut self) {
        if self.counted {
            let mut ledger = self.budget.ledger.lock();
            ledger.recent_waiting = ledger.recent_waiting.saturating_sub(1);
            drop(ledger);
            self.budget.recent_gone.notify_waiters();
        }
    }
}

impl RequestBudget {
    pub fn new(limits: BudgetLimits, clock: Clock) -> Self {
        RequestBudget {
            limits,
            ledger: Mutex::new(Ledger::new(limits)),
            clock,
            recent_gone: Notify::new(),
        }
    }

    /// The budget of the call records (`--call-quality.rate-limit`), a budget of its own:
    /// Graph limits them apart from the call-log functions. One window holds them all.
    pub fn for_call_records(limit: Rate, clock: Clock) -> Self {
        Self::new(
            BudgetLimits {
                per_function: limit,
                per_tenant: limit,
            },
            clock,
        )
    }

    /// Takes a place in a budget of one kind of request ([`RequestBudget::for_call_records`]):
    /// its window is kept under Direct Routing's key, whose calls the records are.
    pub async fn take_one(&self, priority: Priority) -> Duration {
        self.take(Function::DirectRoutingCalls, priority).await
    }

    /// The clock the windows count in.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn limits(&self) -> BudgetLimits {
        self.limits
    }

    /// Keeps room for `pages` requests of `function`'s recent poll in every window.
    pub fn reserve_for_recent(&self, function: Function, pages: u32) {
        self.ledger.lock().set_reserve(function, pages);
    }

    /// Waits until one request to `function` fits the budget and takes its place; returns
    /// how long it waited, in clock time (zero when it did not wait).
    pub async fn take(&self, function: Function, priority: Priority) -> Duration {
        let started = self.clock.now();
        let mut waiting = RecentWaiting {
            budget: self,
            counted: false,
        };
        let mut waited = false;
        loop {
            // Registered before the check, so a recent request going meanwhile still wakes it.
            let recent_gone = self.recent_gone.notified();
            let now = self.clock.now();
            let verdict = {
                let mut ledger = self.ledger.lock();
                let verdict = ledger.try_take(function, priority, now.timestamp_millis());
                if verdict.is_err() && priority == Priority::Recent {
                    waiting.count(&mut ledger);
                }
                verdict
            };
            let until_ms = match verdict {
                Ok(()) if !waited => return Duration::ZERO,
                Ok(()) => {
                    drop(waiting);
                    return (self.clock.now() - started).to_std().unwrap_or_default();
                }
                Err(Wait::ForRecent) => None,
                Err(Wait::Until(until_ms)) => Some(until_ms),
            };
            let sleep = async {
                match until_ms {
                    Some(until_ms) => {
                        let wait = Duration::from_millis(
                            until_ms.saturating_sub(now.timestamp_millis()).max(1) as u64,
                        );
                        self.clock.sleep(wait).await
                    }
                    None => std::future::pending().await,
                }
            };
            waited = true;
            tokio::select! {
                _ = sleep => {}
                _ = recent_gone => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Function = Function::DirectRoutingCalls;

    fn ledger(per_function: u32, per_tenant: u32) -> Ledger {
        Ledger::new(BudgetLimits {
            per_function: Rate::new(per_function, Duration::from_secs(60)),
            per_tenant: Rate::new(per_tenant, Duration::from_secs(60)),
        })
    }

    #[test]
    fn a_full_window_frees_when_its_oldest_request_leaves() {
        let mut ledger = ledger(3, 100);
        for at in [0, 10_000, 20_000] {
            assert_eq!(ledger.try_take(F, Priority::Background, at), Ok(()));
        }
        assert_eq!(
            ledger.try_take(F, Priority::Background, 30_000),
            Err(Wait::Until(60_000))
        );
        assert_eq!(ledger.try_take(F, Priority::Background, 60_000), Ok(()));
        assert_eq!(
            ledger.try_take(F, Priority::Recent, 60_001),
            Err(Wait::Until(70_000))
        );
    }

    #[test]
    fn the_tenant_window_holds_every_function() {
        let mut ledger = ledger(10, 2);
        assert_eq!(ledger.try_take(F, Priority::Recent, 0), Ok(()));
        assert_eq!(ledger.try_take(F, Priority::Recent, 1), Ok(()));
        assert_eq!(
            ledger.try_take(F, Priority::Recent, 2),
            Err(Wait::Until(60_000))
        );
    }

    #[test]
    fn long_reads_leave_the_recent_polls_reserve_free() {
        let mut ledger = ledger(10, 100);
        ledger.set_reserve(F, 3);
        let mut at = 0;
        while ledger.try_take(F, Priority::Background, at).is_ok() {
            at += 1;
        }
        assert_eq!(at, 7, "background stops with the reserve of 3 still free");
        for _ in 0..3 {
            assert_eq!(ledger.try_take(F, Priority::Recent, at), Ok(()));
            at += 1;
        }
        assert!(ledger.try_take(F, Priority::Recent, at).is_err());
    }

    #[test]
    fn the_reserve_never_starves_long_reads() {
        let mut ledger = ledger(10, 100);
        ledger.set_reserve(F, 50);
        let taken = (0..10)
            .filter(|&at| ledger.try_take(F, Priority::Background, at).is_ok())
            .count();
        assert_eq!(taken, 5, "at most half the window is held back");
    }

    #[test]
    fn long_reads_give_way_to_a_waiting_recent_request() {
        let mut ledger = ledger(10, 100);
        ledger.recent_waiting = 1;
        assert_eq!(
            ledger.try_take(F, Priority::Background, 0),
            Err(Wait::ForRecent)
        );
        assert_eq!(ledger.try_take(F, Priority::Recent, 0), Ok(()));
    }

    #[tokio::test]
    async fn a_recent_request_dropped_while_waiting_releases_long_reads() {
        let budget = RequestBudget::new(
            BudgetLimits {
                per_function: Rate::new(1, Duration::from_secs(3600)),
                per_tenant: Rate::new(10, Duration::from_secs(3600)),
            },
            Clock::system(),
        );
        budget.take(F, Priority::Recent).await;
        {
            let waiting = budget.take(F, Priority::Recent);
            tokio::pin!(waiting);
            // Polled once: it counts itself as waiting, then is dropped.
            let polled = futures_util::FutureExt::now_or_never(waiting.as_mut());
            assert!(polled.is_none());
            assert_eq!(budget.ledger.lock().recent_waiting, 1);
        }
        assert_eq!(budget.ledger.lock().recent_waiting, 0);
    }
}
