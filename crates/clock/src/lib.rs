//! Time for the poller, the aggregates and the simulator.
//!
//! Everything that reasons about call windows asks a [`Clock`] for "now" and sleeps through
//! it, so tests and demonstrations can run the exporter and the simulated tenant on a clock
//! that moves faster than the wall clock while keeping the same code paths.

#![forbid(unsafe_code)]

mod rate;

pub use rate::{Rate, RateError};

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
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

    /// How many clock seconds pass per real second.
    pub fn factor(&self) -> f64 {
        match &*self.inner {
            Inner::System => 1.0,
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
        }
    }

    /// The real time that `d` of clock time takes.
    pub fn real_duration(&self, d: Duration) -> Duration {
        d.div_f64(self.factor())
    }

    /// Sleeps for `d` of clock time.
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(self.real_duration(d)).await;
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

    #[test]
    fn bad_factor_is_real_time() {
        assert_eq!(Clock::scaled(Utc::now(), f64::NAN).factor(), 1.0);
        assert_eq!(Clock::scaled(Utc::now(), -2.0).factor(), 1.0);
    }
}
