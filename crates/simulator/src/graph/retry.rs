//! Retry-After as the simulated Graph sends it: in seconds or as an HTTP date, and the
//! promise behind it, which the gate holds against clients that come back too early. (The
//! rate limits' Retry-After comes from the gate, which knows when its windows have room.)

use std::time::{Duration, UNIX_EPOCH};

use crate::faults::Faults;
use crate::tenant::Tenant;

/// Records that the client must wait and returns the Retry-After value telling it so.
pub(crate) fn start_retry_after(tenant: &Tenant, faults: &Faults, now_ms: i64) -> String {
    let wait_ms = i64::try_from(faults.retry_after_secs())
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let mut until_ms = now_ms.saturating_add(wait_ms);
    if faults.retry_after_http_date {
        // HTTP dates have whole seconds; rounding up keeps the promise "not before".
        until_ms = until_ms
            .div_euclid(1000)
            .saturating_add(i64::from(until_ms % 1000 != 0))
            * 1000;
    }
    tenant.gate.lock().hold_until(until_ms);
    retry_after_value(faults, until_ms, now_ms)
}

/// Retry-After telling a client at `now_ms` to come back at `until_ms`.
pub(crate) fn retry_after_value(faults: &Faults, until_ms: i64, now_ms: i64) -> String {
    if faults.retry_after_http_date {
        http_date(until_ms)
    } else {
        let remaining_ms = until_ms.saturating_sub(now_ms).max(1);
        remaining_ms
            .div_euclid(1000)
            .saturating_add(i64::from(remaining_ms % 1000 != 0))
            .to_string()
    }
}

fn http_date(ms: i64) -> String {
    let time = u64::try_from(ms)
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH);
    httpdate::fmt_http_date(time)
}
