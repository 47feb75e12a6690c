//! The records waiting to be fetched and those settled, and when each is fetched next:
//! pure planning, in clock milliseconds, saved by [`super::store`].
//!
//! A record is first fetched `wait` after its call ended (Graph publishes a first version
//! 15–60 minutes after the call), then, while Graph answers 404, again after half the wait,
//! doubling up to four waits, until `give_up` after the call: then it is given up as not
//! published. A fetch that failed for a reason retrying can help (throttling, Graph down)
//! says nothing about publication: such a record is tried [`TRANSIENT_ATTEMPTS`] times in a
//! row before it is given up, even past `give_up`, so that a row arriving hours late or an
//! outage does not give records up after one failed request. A settled record (counted or given up) is remembered until its call leaves
//! the lookback, so that a row counted again after a crash (its commit lost) does not
//! queue it again.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::counting::state::RowKey;
use crate::source::EstablishedCall;

/// The collector's timing and bound (`--call-quality.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueOptions {
    pub wait: Duration,
    pub give_up: Duration,
    pub max_pending: usize,
    /// How long a settled record is remembered after its call: the rows' lookback.
    pub remember: Duration,
}

/// A record waiting to be fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub trunk_fqdn: String,
    /// When the call ended (clock ms).
    pub end_ms: i64,
    /// When to fetch it next (clock ms).
    pub due_ms: i64,
    /// Fetches so far.
    pub attempts: u32,
    /// Fetches in a row that failed for a reason retrying can help (not a 404); absent in
    /// files written before it was kept.
    #[serde(default)]
    pub transient_failures: u32,
}

/// Fetches in a row that must fail (throttled beyond retries, Graph down) before a record
/// past its give-up is given up as an error.
pub const TRANSIENT_ATTEMPTS: u32 = 3;

/// Why a record was given up (`reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    NotPublished,
    QueueFull,
    Error,
}

impl GiveUp {
    pub const ALL: [GiveUp; 3] = [GiveUp::NotPublished, GiveUp::QueueFull, GiveUp::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            GiveUp::NotPublished => "not_published",
            GiveUp::QueueFull => "queue_full",
            GiveUp::Error => "error",
        }
    }
}

/// What admitting a call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    Queued(Pending),
    /// Pending or settled already.
    Known,
    /// The queue is at `max_pending`: settled as given up.
    Full,
}

/// The pending records and the settled ones of one tenant.
#[derive(Debug, Default)]
pub struct Queue {
    pub pending: HashMap<String, Pending>,
    /// Settled record id → until when it is remembered (clock ms); ids are GUIDs, kept as
    /// 16 bytes like the rows' (a day's records are a hundred thousand of them).
    pub settled: HashMap<RowKey, i64>,
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Queue {
    /// Where `call` goes; the caller applies the outcome once it is saved.
    pub fn admit(&self, call: &EstablishedCall, options: &QueueOptions) -> Admitted {
        let id = call.correlation_id.as_str();
        if self.pending.contains_key(id) || self.settled.contains_key(&RowKey::from_id(id)) {
            return Admitted::Known;
        }
        if self.pending.len() >= options.max_pending {
            return Admitted::Full;
        }
        let end_ms = call.end.timestamp_millis();
        Admitted::Queued(Pending {
            trunk_fqdn: call.trunk_fqdn.clone(),
            end_ms,
            due_ms: end_ms.saturating_add(ms(options.wait)),
            attempts: 0,
            transient_failures: 0,
        })
    }

    /// Until when a settled record of a call that ended at `end_ms` is remembered.
    pub fn settled_until(end_ms: i64, options: &QueueOptions) -> i64 {
        end_ms
            .saturating_add(ms(options.remember))
            .max(end_ms.saturating_add(ms(options.give_up)))
    }

    /// The ids due at `now_ms`, earliest first, at most `limit`.
    pub fn due(&self, now_ms: i64, limit: usize) -> Vec<(String, Pending)> {
        let mut due: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, p)| p.due_ms <= now_ms)
            .map(|(id, p)| (id.clone(), p.clone()))
            .collect();
        due.sort_by_key(|(_, p)| p.due_ms);
        due.truncate(limit);
        due
    }

    /// When `pending`, just fetched at `now_ms` and not there (404) or failing for a
    /// reason retrying can help (`transient`), is fetched next; `None` when it is time to
    /// give up.
    pub fn retry(
        pending: &Pending,
        now_ms: i64,
        transient: bool,
        options: &QueueOptions,
    ) -> Option<Pending> {
        let deadline = pending.end_ms.saturating_add(ms(options.give_up));
        let transient_failures = if transient {
            pending.transient_failures.saturating_add(1)
        } else {
            0
        };
        if now_ms >= deadline && (!transient || transient_failures >= TRANSIENT_ATTEMPTS) {
            return None;
        }
        let attempts = pending.attempts + 1;
        let first = Queue::first_retry_ms(options);
        let backoff = first
            .saturating_mul(1i64 << attempts.saturating_sub(1).min(20))
            .min(ms(options.wait).saturating_mul(4).max(first));
        let due_ms = now_ms.saturating_add(backoff);
        Some(Pending {
            attempts,
            transient_failures,
            // Past the deadline (transient failures only), the backoff alone.
            due_ms: if now_ms < deadline {
                due_ms.min(deadline)
            } else {
                due_ms
            },
            ..pending.clone()
        })
    }

    /// The first retry's delay after a 404 (and after a failed write): half the wait, at
    /// least a second.
    pub fn first_retry_ms(options: &QueueOptions) -> i64 {
        (ms(options.wait) / 2).max(1000)
    }

    /// Puts off the next fetch of the pending `ids` to `until_ms` at the earliest (in
    /// memory only: after a failed write, so that the next round does not fetch them again
    /// at once).
    pub fn postpone(&mut self, ids: &[String], until_ms: i64) {
        for id in ids {
            if let Some(pending) = self.pending.get_mut(id) {
                pending.due_ms = pending.due_ms.max(until_ms);
            }
        }
    }

    /// Settled records whose call left the lookback: no row can bring them back.
    pub fn expired(&self, now_ms: i64) -> Vec<RowKey> {
        self.settled
            .iter()
            .filter(|(_, until)| **until < now_ms)
            .map(|(key, _)| key.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> QueueOptions {
        QueueOptions {
            wait: Duration::from_secs(20 * 60),
            give_up: Duration::from_secs(6 * 3600),
            max_pending: 2,
            remember: Duration::from_secs(72 * 3600),
        }
    }

    fn call(id: &str) -> EstablishedCall {
        EstablishedCall {
            correlation_id: id.into(),
            trunk_fqdn: "sbc1.contoso.com".into(),
            end: chrono::DateTime::from_timestamp(1_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn admitted_once_and_bounded() {
        let mut queue = Queue::default();
        let Admitted::Queued(pending) = queue.admit(&call("a"), &options()) else {
            panic!("queued");
        };
        assert_eq!(pending.due_ms, 1_000_000_000 + 20 * 60 * 1000);
        queue.pending.insert("a".into(), pending);
        assert_eq!(queue.admit(&call("a"), &options()), Admitted::Known);
        queue.settled.insert(RowKey::from_id("s"), 0);
        assert_eq!(queue.admit(&call("s"), &options()), Admitted::Known);
        queue.pending.insert("b".into(), queue.pending["a"].clone());
        assert_eq!(queue.admit(&call("c"), &options()), Admitted::Full);
    }

    #[test]
    fn retries_back_off_until_give_up() {
        let options = options();
        let Admitted::Queued(mut pending) = Queue::default().admit(&call("a"), &options) else {
            panic!("queued");
        };
        let mut gaps = Vec::new();
        let mut now = pending.due_ms;
        while let Some(next) = Queue::retry(&pending, now, false, &options) {
            gaps.push((next.due_ms - now) / 60_000);
            now = next.due_ms;
            pending = next;
        }
        assert_eq!(
            now,
            pending.end_ms + 6 * 3600 * 1000,
            "the last fetch is at give-up"
        );
        assert_eq!(&gaps[..5], [10, 20, 40, 80, 80]);
        assert!(pending.attempts < 10, "{gaps:?}");
    }

    #[test]
    fn transient_failures_are_retried_past_the_give_up() {
        let options = options();
        let Admitted::Queued(pending) = Queue::default().admit(&call("a"), &options) else {
            panic!("queued");
        };
        // A row that arrives a day after its call: past give-up at its first fetch.
        let mut now = pending.end_ms + 24 * 3600 * 1000;
        assert_eq!(Queue::retry(&pending, now, false, &options), None, "a 404");
        let mut next = pending;
        let mut fetches = 1;
        while let Some(again) = Queue::retry(&next, now, true, &options) {
            assert!(again.due_ms > now, "not at once: {again:?}");
            now = again.due_ms;
            next = again;
            fetches += 1;
        }
        assert_eq!(fetches, TRANSIENT_ATTEMPTS, "fetches before it is given up");
        // A 404 after a failure resets the count before the give-up.
        let Admitted::Queued(pending) = Queue::default().admit(&call("b"), &options) else {
            panic!("queued");
        };
        let failed = Queue::retry(&pending, pending.due_ms, true, &options).unwrap();
        assert_eq!(failed.transient_failures, 1);
        let missing = Queue::retry(&failed, failed.due_ms, false, &options).unwrap();
        assert_eq!(missing.transient_failures, 0);
    }

    #[test]
    fn pending_saved_before_transient_failures_were_kept_still_reads() {
        let old = br#"{"trunk_fqdn":"sbc1.contoso.com","end_ms":1,"due_ms":2,"attempts":3}"#;
        let pending: Pending = serde_json::from_slice(old).unwrap();
        assert_eq!((pending.attempts, pending.transient_failures), (3, 0));
    }

    #[test]
    fn postponed_records_are_not_due_until_then() {
        let mut queue = Queue::default();
        let options = QueueOptions {
            max_pending: 10,
            ..options()
        };
        for id in ["a", "b"] {
            let Admitted::Queued(pending) = queue.admit(&call(id), &options) else {
                panic!("queued");
            };
            queue.pending.insert(id.into(), pending);
        }
        let now = queue.pending["a"].due_ms;
        assert_eq!(queue.due(now, 10).len(), 2);
        queue.postpone(&["a".into(), "gone".into()], now + 600_000);
        let ids: Vec<_> = queue.due(now, 10).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["b"]);
        assert_eq!(queue.due(now + 600_000, 10).len(), 2);
        assert!(!queue.pending.contains_key("gone"));
    }

    #[test]
    fn due_earliest_first() {
        let mut queue = Queue::default();
        let options = QueueOptions {
            max_pending: 10,
            ..options()
        };
        for (id, due) in [("late", 30), ("early", 10), ("future", 99)] {
            let Admitted::Queued(pending) = queue.admit(&call(id), &options) else {
                panic!("queued");
            };
            queue.pending.insert(
                id.into(),
                Pending {
                    due_ms: due,
                    ..pending
                },
            );
        }
        let ids: Vec<_> = queue.due(50, 10).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["early", "late"]);
        assert_eq!(queue.due(50, 1).len(), 1);
    }
}
