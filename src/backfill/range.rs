//! The range a backfill covers and how it is cut: days read one at a time (each far below
//! Graph's 90 days a request), and the step grid every series is sampled on.
//!
//! Everything here is pure arithmetic on times, checked before any request is sent, so
//! that bad input costs nothing and leaves no file behind.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::BackfillError;
use crate::counting::schedule::whole_seconds;
use crate::source::Function;

/// The length of one piece read before its steps are written.
pub const DAY_SECS: i64 = 86_400;

/// Parses `--from` or `--to`: RFC 3339 (`2026-09-01T00:00:00Z`) or a date (`2026-09-01`,
/// midnight UTC). Sub-second parts are dropped: samples are written in whole seconds.
pub fn parse_time(flag: &'static str, text: &str) -> Result<DateTime<Utc>, BackfillError> {
    let text = text.trim();
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        });
    match parsed {
        Some(t) => Ok(whole_seconds(t)),
        None => Err(BackfillError::BadTime {
            flag,
            value: text.to_owned(),
        }),
    }
}

/// The checked range and its grid. `to` is the latest end of any source; a source whose
/// live counting began earlier ends at its own boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Seconds between samples; divides a day.
    pub step: i64,
}

impl Range {
    /// Checks the range against the step, the clock and Graph's retention of `functions`.
    pub fn check(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: Duration,
        now: DateTime<Utc>,
        retention: &[(Function, Duration)],
    ) -> Result<Range, BackfillError> {
        let step_secs = step.as_secs() as i64;
        if step_secs < 1 || step.subsec_nanos() != 0 || DAY_SECS % step_secs != 0 {
            return Err(BackfillError::BadStep(
                humantime::format_duration(step).to_string(),
            ));
        }
        if from >= to {
            return Err(BackfillError::Empty {
                from: from.to_rfc3339(),
                to: to.to_rfc3339(),
            });
        }
        if to > now {
            return Err(BackfillError::Future(to.to_rfc3339()));
        }
        for (function, kept) in retention {
            // A retention longer than chrono's calendar (`--retention=1000000y`) is no limit.
            let Some(oldest) = chrono::Duration::from_std(*kept)
                .ok()
                .and_then(|kept| now.checked_sub_signed(kept))
            else {
                continue;
            };
            if from < oldest {
                return Err(BackfillError::BeyondRetention {
                    from: from.to_rfc3339(),
                    function: function.description(),
                    days: kept.as_secs() / 86_400,
                    oldest: whole_seconds(oldest + chrono::Duration::seconds(1)).to_rfc3339(),
                });
            }
        }
        Ok(Range {
            from,
            to,
            step: step_secs,
        })
    }

    /// How many day pieces the range is read in (the last may be shorter).
    pub fn days(&self) -> u32 {
        let secs = (self.to - self.from).num_seconds();
        ((secs + DAY_SECS - 1) / DAY_SECS) as u32
    }

    /// The `day`th piece, `[from + day, from + day + 1d)` cut at `to`.
    pub fn day(&self, day: u32) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = self.from + chrono::Duration::seconds(i64::from(day) * DAY_SECS);
        let end = (start + chrono::Duration::seconds(DAY_SECS)).min(self.to);
        (start, end)
    }

    pub fn steps_per_day(&self) -> u32 {
        (DAY_SECS / self.step) as u32
    }

    /// The step of the day piece starting at `day_start` that a call started at `start`
    /// belongs to: its sample is the first one at or after the call's start plus nothing,
    /// that is, step `k` holds the calls of `[day_start + k·step, day_start + (k+1)·step)`.
    pub fn step_of(&self, day_start: DateTime<Utc>, start: DateTime<Utc>) -> u32 {
        ((start - day_start).num_seconds().max(0) / self.step) as u32
    }

    /// When step `k` of the day piece at `day_start` is sampled: at its end, so that a
    /// sample counts exactly the calls that started before it.
    pub fn sample_time(&self, day_start: DateTime<Utc>, k: u32) -> DateTime<Utc> {
        day_start + chrono::Duration::seconds((i64::from(k) + 1) * self.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn dates_and_timestamps_parse() {
        assert_eq!(
            parse_time("--from", "2026-09-01").unwrap(),
            t("2026-09-01T00:00:00Z")
        );
        assert_eq!(
            parse_time("--from", "2026-09-01T10:00:00.75+02:00").unwrap(),
            t("2026-09-01T08:00:00Z")
        );
        assert!(parse_time("--from", "yesterday").is_err());
    }

    #[test]
    fn bad_ranges_are_refused_before_anything_is_read() {
        let now = t("2026-12-01T00:00:00Z");
        let dr = [(
            Function::DirectRoutingCalls,
            Function::DirectRoutingCalls.default_retention(),
        )];
        let check = |from: &str, to: &str, step| Range::check(t(from), t(to), step, now, &dr);
        assert!(matches!(
            check("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z", FIVE_MINUTES),
            Err(BackfillError::Empty { .. })
        ));
        assert!(matches!(
            check("2026-06-01T00:00:00Z", "2026-11-01T00:00:00Z", FIVE_MINUTES),
            Err(BackfillError::BeyondRetention { days: 150, .. })
        ));
        assert!(matches!(
            check("2026-11-01T00:00:00Z", "2026-12-02T00:00:00Z", FIVE_MINUTES),
            Err(BackfillError::Future(_))
        ));
        assert!(matches!(
            check(
                "2026-11-01T00:00:00Z",
                "2026-11-02T00:00:00Z",
                Duration::from_secs(7 * 60)
            ),
            Err(BackfillError::BadStep(_))
        ));
        assert!(check("2026-07-05T00:00:00Z", "2026-11-02T00:00:00Z", FIVE_MINUTES).is_ok());
    }

    #[test]
    fn a_retention_beyond_the_calendar_is_no_limit() {
        let now = t("2026-12-01T00:00:00Z");
        let forever = [(
            Function::DirectRoutingCalls,
            Duration::from_secs(1_000_000 * 365 * 86_400),
        )];
        let range = Range::check(
            t("2000-01-01T00:00:00Z"),
            t("2026-11-01T00:00:00Z"),
            FIVE_MINUTES,
            now,
            &forever,
        );
        assert!(range.is_ok());
    }

    #[test]
    fn days_and_steps_cover_the_range_once() {
        let now = t("2026-12-01T00:00:00Z");
        let range = Range::check(
            t("2026-11-01T00:00:00Z"),
            t("2026-11-03T10:02:00Z"),
            FIVE_MINUTES,
            now,
            &[],
        )
        .unwrap();
        assert_eq!(range.days(), 3);
        assert_eq!(
            range.day(2),
            (t("2026-11-03T00:00:00Z"), t("2026-11-03T10:02:00Z"))
        );
        let day = range.day(1).0;
        assert_eq!(range.step_of(day, t("2026-11-02T00:04:59Z")), 0);
        assert_eq!(range.step_of(day, t("2026-11-02T00:05:00Z")), 1);
        assert_eq!(range.sample_time(day, 0), t("2026-11-02T00:05:00Z"));
        assert_eq!(range.steps_per_day(), 288);
    }
}
