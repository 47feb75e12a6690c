//! How the client waits: the retry policy, the tenant-wide gate that holds every request
//! back while a `Retry-After` is pending, and reading `Retry-After` itself.

use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

/// The longest `Retry-After` obeyed; longer values are taken as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How the client retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts after the first, for one page.
    pub max_retries: u32,
    /// First backoff; it doubles with each retry, with full jitter.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Holds back every request to a tenant while a `Retry-After` is pending.
#[derive(Debug, Default)]
pub(super) struct TenantGate {
    not_before: Mutex<Option<tokio::time::Instant>>,
}

impl TenantGate {
    pub(super) async fn wait(&self) {
        loop {
            let until = *self.not_before.lock();
            match until {
                Some(until) if until > tokio::time::Instant::now() => {
                    tokio::time::sleep_until(until).await
                }
                _ => return,
            }
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.not_before
            .lock()
            .is_none_or(|until| until <= tokio::time::Instant::now())
    }

    pub(super) fn hold_for(&self, delay: Duration) {
        // A Retry-After beyond an hour is a broken header, not a plan; an hour bounds it.
        let delay = delay.min(MAX_RETRY_AFTER);
        let until = tokio::time::Instant::now() + delay;
        let mut not_before = self.not_before.lock();
        if not_before.is_none_or(|current| current < until) {
            *not_before = Some(until);
        }
    }
}

/// Parses `Retry-After` as seconds or an HTTP date; a date in the past means "now".
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}
