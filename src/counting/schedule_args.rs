//! The `--poll.*` flags: which call windows the poller reads, and how often.
//!
//! The tiers only count every row once together when they fit into each other (a recent
//! window inside the lookback, sweeps often enough that no late row falls out of the
//! lookback unread), so the schedule is checked as a whole here, before anything polls.

use std::time::Duration;

use clap::Args;

use crate::counting::schedule::Schedule;
use crate::flag::parse_duration;
use crate::source::graph::MAX_WINDOW;
use crate::source::Function;

/// The poll schedule's flags.
#[derive(Debug, Args)]
pub struct PollArgs {
    /// How often to read the recent window [default: 1m; 2s with --demo].
    #[arg(long = "poll.interval", value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Option<Duration>,
    /// How far back each regular poll reads (by call start time).
    #[arg(long = "poll.recent-window", default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub recent_window: Duration,
    /// How often to read the late window instead of the recent one, to count rows Graph
    /// published hours late; 0 switches this tier off [default: 15m; 20s with --demo].
    #[arg(long = "poll.late-interval", value_parser = parse_duration, value_name = "DURATION")]
    pub late_interval: Option<Duration>,
    /// How far back the late-window polls read (by call start time).
    #[arg(long = "poll.late-window", default_value = "6h", value_parser = parse_duration, value_name = "DURATION")]
    pub late_window: Duration,
    /// How often to read the whole lookback, to count rows Graph published days late [default: 6h; 2m with --demo].
    #[arg(long = "poll.sweep-interval", value_parser = parse_duration, value_name = "DURATION")]
    pub sweep_interval: Option<Duration>,
    /// How far back sweeps read, and how long row ids are remembered. A row Graph publishes
    /// later than the lookback minus the sweep interval after its call may not be counted.
    #[arg(long = "poll.lookback", default_value = "72h", value_parser = parse_duration, value_name = "DURATION")]
    pub lookback: Duration,
}

/// A poll schedule that would miss rows or cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("--poll.interval {} is too short; use at least 100ms (1m is the default)", show(.interval))]
    IntervalTooShort { interval: Duration },
    #[error("--poll.recent-window must be longer than zero, e.g. 15m")]
    EmptyRecentWindow,
    #[error("--poll.lookback ({}) must be at least --poll.recent-window ({})", show(.lookback), show(.recent_window))]
    LookbackShorterThanRecentWindow {
        lookback: Duration,
        recent_window: Duration,
    },
    #[error("--poll.late-interval ({}) must be at least --poll.interval ({}), or 0 to switch the late tier off", show(.late_interval), show(.interval))]
    LateIntervalTooShort {
        late_interval: Duration,
        interval: Duration,
    },
    #[error("--poll.sweep-interval ({}) must be at least --poll.interval ({})", show(.sweep_interval), show(.interval))]
    SweepIntervalTooShort {
        sweep_interval: Duration,
        interval: Duration,
    },
    #[error("--poll.sweep-interval ({}) must not be longer than --poll.lookback ({}): rows published late would fall out of the lookback before a sweep reads them", show(.sweep_interval), show(.lookback))]
    SweepIntervalTooLong {
        sweep_interval: Duration,
        lookback: Duration,
    },
    #[error("--poll.lookback {} is longer than Graph keeps call logs (150 days); use at most 150d (72h is the default; {} per request is Graph's limit and longer lookbacks are read in parts)", show(.lookback), show(&MAX_WINDOW))]
    BeyondRetention { lookback: Duration },
}

fn show(duration: &Duration) -> humantime::FormattedDuration {
    humantime::format_duration(*duration)
}

impl ScheduleError {
    /// The flag at fault (the first one the message names).
    pub fn flag(&self) -> &'static str {
        match self {
            ScheduleError::IntervalTooShort { .. } => "--poll.interval",
            ScheduleError::EmptyRecentWindow => "--poll.recent-window",
            ScheduleError::LookbackShorterThanRecentWindow { .. }
            | ScheduleError::BeyondRetention { .. } => "--poll.lookback",
            ScheduleError::LateIntervalTooShort { .. } => "--poll.late-interval",
            ScheduleError::SweepIntervalTooShort { .. }
            | ScheduleError::SweepIntervalTooLong { .. } => "--poll.sweep-interval",
        }
    }
}

impl PollArgs {
    /// The schedule the flags ask for, checked; `demo` changes the defaults.
    pub fn schedule(&self, demo: bool) -> Result<Schedule, ScheduleError> {
        // The demo polls faster so that a newcomer sees numbers move within seconds.
        let defaults = Schedule::default();
        let (poll_interval, late_interval, sweep_interval) = if demo {
            (
                Duration::from_secs(2),
                Duration::from_secs(20),
                Duration::from_secs(120),
            )
        } else {
            (
                defaults.poll_interval,
                defaults.late_interval,
                defaults.sweep_interval,
            )
        };
        let schedule = Schedule {
            poll_interval: self.poll_interval.unwrap_or(poll_interval),
            recent_window: self.recent_window,
            late_interval: self.late_interval.unwrap_or(late_interval),
            late_window: self.late_window,
            sweep_interval: self.sweep_interval.unwrap_or(sweep_interval),
            lookback: self.lookback,
        };
        check_schedule(&schedule)?;
        Ok(schedule)
    }
}

/// Checks the poll schedule makes sense; a lookback over Graph's 90-day limit is read in
/// 90-day parts, so only a lookback past Graph's retention is refused.
pub fn check_schedule(s: &Schedule) -> Result<(), ScheduleError> {
    let interval = s.poll_interval;
    if interval < Duration::from_millis(100) {
        Err(ScheduleError::IntervalTooShort { interval })
    } else if s.recent_window.is_zero() {
        Err(ScheduleError::EmptyRecentWindow)
    } else if s.lookback < s.recent_window {
        Err(ScheduleError::LookbackShorterThanRecentWindow {
            lookback: s.lookback,
            recent_window: s.recent_window,
        })
    } else if !s.late_interval.is_zero() && s.late_interval < interval {
        Err(ScheduleError::LateIntervalTooShort {
            late_interval: s.late_interval,
            interval,
        })
    } else if s.sweep_interval < interval {
        Err(ScheduleError::SweepIntervalTooShort {
            sweep_interval: s.sweep_interval,
            interval,
        })
    } else if s.sweep_interval > s.lookback {
        Err(ScheduleError::SweepIntervalTooLong {
            sweep_interval: s.sweep_interval,
            lookback: s.lookback,
        })
    } else if s.lookback > Function::DirectRoutingCalls.default_retention() {
        Err(ScheduleError::BeyondRetention {
            lookback: s.lookback,
        })
    } else {
        Ok(())
    }
}
