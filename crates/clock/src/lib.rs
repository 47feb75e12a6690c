//! Time for the poller, the aggregates and the simulator.
//!
//! Everything that reasons about call windows asks a [`Clock`] for "now" and sleeps through
//! it, so tests and demonstrations can run the exporter and the simulated tenant on a clock
//! that moves faster than the wall clock while keeping the same code paths, and tests that
//! must be exact on one that moves only when told to ([`Clock::manual`]).

#![forbid(unsafe_code)]

mod rate;

pub use rate::{Rate, RateError};

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

/// A source of the current time that can run faster than real time.
///
/// Cloning is cheap; clones share the same origin, so every part of the process that holds a
/// clone agrees on "now".
#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
enum Inner {
    System,
    Scaled {
        real_origin: Instant,
        clock_origin: DateTime<Utc>,
        factor: f64,
    },
    /// Moves only when told to; sleepers wake when it has moved far enough.
    Manual(watch::Sender<DateTime<Utc>>),
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Clock {
            inner: Arc::new(Inner::System),
        }
    }

    /// A clock that starts at `start` and advances `factor` times faster than real time.
    ///
    /// # Panics
    /// Never; a `factor` that is not a positive finite number is treated as 1.
    pub fn scaled(start: DateTime<Utc>, factor: f64) -> Self {
        let factor = if factor.is_finite() && factor > 0.0 {
            factor
        } else {
            1.0
        };
        Clock {
            inner: Arc::new(Inner::Scaled {
                real_origin: Instant::now(),
                clock_origin: start,
                factor,
            }),
        }
    }

    /// A clock that starts at `start` and moves only through [`Clock::advance`], for tests
    /// that must not depend on how fast the machine is: every request, expiry and window
    /// then happens at a time the test chose. [`Clock::sleep`] on it ends once the clock
    /// has been advanced far enough.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Clock {
            inner: Arc::new(Inner::Manual(watch::Sender::new(start))),
        }
    }

    /// Moves a manual clock forward by `by` and wakes the sleepers whose time has come.
    /// Other clocks move by themselves; for them this does nothing.
    pub fn advance(&self, by: Duration) {
        if let Inner::Manual(now) = &*self.inner {
            let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
            now.send_modify(|now| *now = now.checked_add_signed(by).unwrap_or(*now));
        }
    }

    /// How many clock seconds pass per real second (1 for a manual clock, which does not
    /// move with real time at all).
    pub fn factor(&self) -> f64 {
        match &*self.inner {
            Inner::System | Inner::Manual(_) => 1.0,
            Inner::Scaled { factor, .. } => *factor,
        }
    }

    /// The current time on this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match &*self.inner {
            Inner::System => Utc::now(),
            Inner::Scaled {
                real_origin,
                clock_origin,
                factor,
            } => {
                let real = real_origin.elapsed().as_secs_f64() * factor;
                *clock_origin + chrono::Duration::microseconds((real * 1e6) as i64)
            }
            Inner::Manual(now) => *now.borrow(),
        }
    }

    /// The real time that `d` of clock time takes.
    pub fn real_duration(&self, d: Duration) -> Duration {
        d.div_f64(self.factor())
    }

    /// Sleeps for `d` of clock time; on a manual clock, until it has been advanced by `d`.
    pub async fn sleep(&self, d: Duration) {
        let Inner::Manual(now) = &*self.inner else {
            tokio::time::sleep(self.real_duration(d)).await;
            return;
        };
        let by = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        // Subscribed before the first look, so that no advance between the two is missed.
        let mut moved = now.subscribe();
        let Some(until) = moved.borrow_and_update().checked_add_signed(by) else {
            return std::future::pending().await;
        };
        while *moved.borrow_and_update() < until {
            // The sender lives as long as `self`, so the channel never closes meanwhile.
            if moved.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scaled_clock_runs_faster() {
        let start = Utc::now();
        let clock = Clock::scaled(start, 3600.0);
        clock.sleep(Duration::from_secs(36)).await; // 10 ms of real time
        let elapsed = clock.now() - start;
        assert!(elapsed >= chrono::Duration::seconds(36), "{elapsed}");
        assert!(elapsed < chrono::Duration::seconds(3600), "{elapsed}");
    }

    #[tokio::test]
    async fn manual_clock_moves_only_when_advanced() {
        let start = Utc::now();
        let clock = Clock::manual(start);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(clock.now(), start);
        let sleep = clock.sleep(Duration::from_secs(10));
        tokio::pin!(sleep);
        // Polls the sleep once: `true` if it ended.
        macro_rules! ended {
            () => {
                tokio::select! {
                    biased;
                    () = &mut sleep => true,
                    () = std::future::ready(()) => false,
                }
            };
        }
        assert!(!ended!());
        clock.advance(Duration::from_secs(4));
        assert_eq!(clock.now(), start + chrono::Duration::seconds(4));
        assert!(!ended!());
        clock.advance(Duration::from_secs(6));
        assert!(ended!());
        assert_eq!(clock.now(), start + chrono::Duration::seconds(10));
        // Advancing other clocks does nothing.
        Clock::system().advance(Duration::from_secs(3600));
    }

    #[test]
    fn bad_factor_is_real_time() {
        assert_eq!(Clock::scaled(Utc::now(), f64::NAN).factor(), 1.0);
        assert_eq!(Clock::scaled(Utc::now(), -2.0).factor(), 1.0);
    }
}
