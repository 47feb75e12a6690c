//! Time as the simulated call logs keep and print it: 100 ns ticks, the units the traffic
//! model counts in, and Graph's varied ways of writing a timestamp.
//!
//! Timestamps are kept in ticks because Graph prints up to seven fractional digits, and a
//! row's stored start must equal the start its JSON shows so that window filtering here and
//! parsing in the exporter agree to the last digit.

use std::fmt::Write;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};

pub(crate) const TICKS_PER_SEC: i64 = 10_000_000;
pub(crate) const TICKS_PER_MS: i64 = 10_000;

pub(crate) const MS_PER_SEC: i64 = 1_000;
pub(crate) const MS_PER_MIN: i64 = 60 * MS_PER_SEC;
pub(crate) const MS_PER_HOUR: i64 = 60 * MS_PER_MIN;
pub(crate) const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// How Graph prints an absent `endDateTime` or `failureDateTime`.
pub(crate) const YEAR_ONE: &str = "0001-01-01T00:00:00Z";

/// How a row prints its timestamps: the low three bits give the number of fractional
/// digits (0–7), [`TimeStyle::OFFSET`] selects `+00:00` instead of `Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeStyle(pub u8);

impl TimeStyle {
    pub const OFFSET: u8 = 8;

    pub fn digits(self) -> u32 {
        u32::from(self.0 & 7)
    }

    pub fn plus_offset(self) -> bool {
        self.0 & Self::OFFSET != 0
    }

    /// Truncates `ticks` to the precision this style prints.
    pub fn quantize(self, ticks: i64) -> i64 {
        let step = 10_i64.pow(7 - self.digits());
        ticks.div_euclid(step) * step
    }
}

/// Appends `ticks` as an ISO 8601 UTC timestamp in the row's style.
pub(crate) fn write_timestamp(out: &mut String, ticks: i64, style: TimeStyle) {
    let seconds = ticks.div_euclid(TICKS_PER_SEC);
    let fraction = ticks.rem_euclid(TICKS_PER_SEC);
    let Some(time) = DateTime::from_timestamp(seconds, 0) else {
        out.push_str(YEAR_ONE);
        return;
    };
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    let digits = style.digits();
    if digits > 0 {
        let shown = fraction / 10_i64.pow(7 - digits);
        let _ = write!(out, ".{:0width$}", shown, width = digits as usize);
    }
    out.push_str(if style.plus_offset() { "+00:00" } else { "Z" });
}

pub(crate) fn timestamp(ticks: i64, style: TimeStyle) -> String {
    let mut out = String::with_capacity(33);
    write_timestamp(&mut out, ticks, style);
    out
}

/// Milliseconds of `duration`, saturating: configured spans may be absurdly long.
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The time `ticks` stand for (the epoch if out of range).
pub(crate) fn datetime_of_ticks(ticks: i64) -> DateTime<Utc> {
    let nanos = ticks.rem_euclid(TICKS_PER_SEC) * 100;
    DateTime::from_timestamp(ticks.div_euclid(TICKS_PER_SEC), nanos as u32).unwrap_or_default()
}

/// The time of clock milliseconds `ms` (the epoch if out of range).
pub(crate) fn datetime_of_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Ticks of `time`, rounded up: with stored starts in whole ticks, `start >= ceil(t)` holds
/// exactly when `start >= t`.
pub(crate) fn ceil_ticks(time: DateTime<Utc>) -> Option<i64> {
    let nanos = i64::from(time.timestamp_subsec_nanos());
    time.timestamp()
        .checked_mul(TICKS_PER_SEC)?
        .checked_add((nanos + 99) / 100)
}
