//! The schedule: which call window to read next, and what a finished poll changes.
//!
//! Pure planning code, testable without a Graph client: from the configured [`Schedule`],
//! the [`Progress`] so far and the time, it picks the poll (baseline, recent, late or
//! sweep) and its window, cuts long windows into sub-windows for parallel readers, and
//! records how a poll ended, so that a failed poll leaves no silent gap and a failed sweep
//! resumes where it stopped. The poller carries the plans out.

use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};

use crate::source::graph::{CallWindow, MAX_WINDOW};

/// When and how far back to read.
///
/// The defaults follow when Graph publishes rows (see BENCHMARKS.md, "Graph cost per
/// hour"): most rows appear within minutes of the call's end, so the recent window is short
/// and read every minute; the rest mostly within hours, which the late window catches every
/// quarter hour; a few up to two days late, which the sweep of the whole lookback catches
/// every six hours (it reaches rows published up to 66 hours after their call).
#[derive(Debug, Clone)]
pub struct Schedule {
    pub poll_interval: Duration,
    pub recent_window: Duration,
    /// How often to read the late window; zero switches the late tier off.
    pub late_interval: Duration,
    pub late_window: Duration,
    pub sweep_interval: Duration,
    pub lookback: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            poll_interval: Duration::from_secs(60),
            recent_window: Duration::from_secs(15 * 60),
            late_interval: Duration::from_secs(15 * 60),
            late_window: Duration::from_secs(6 * 3600),
            sweep_interval: Duration::from_secs(6 * 3600),
            lookback: Duration::from_secs(72 * 3600),
        }
    }
}

impl Schedule {
    /// Whether the late tier reads anything the recent window and the sweep do not.
    pub fn has_late_tier(&self) -> bool {
        !self.late_interval.is_zero()
            && self.late_window > self.recent_window
            && self.late_interval < self.sweep_interval
    }

    /// The next poll and its window, at `now`.
    pub fn plan(&self, progress: &Progress, now: DateTime<Utc>) -> (PollKind, CallWindow) {
        let now = now
            .duration_trunc(chrono::Duration::seconds(1))
            .unwrap_or(now);
        let lookback_start = now - to_chrono(self.lookback);
        let due = |last: Option<DateTime<Utc>>, interval: Duration| {
            last.is_none_or(|at| now - at >= to_chrono(interval))
        };
        let sweep_due = due(progress.last_sweep, self.sweep_interval);
        let late_due = self.has_late_tier() && due(progress.last_late, self.late_interval);
        // After a failed sweep or late poll, a recent poll comes first whatever else is due:
        // the late window lies inside the sweep's, so one bad page there fails both, and
        // letting them take turns would never count a new call.
        let tier_failed = progress.sweep_failed || progress.late_failed;
        let kind = if !progress.baseline_done {
            PollKind::Baseline
        } else if sweep_due && !tier_failed {
            PollKind::Sweep
        } else if late_due && !tier_failed {
            PollKind::Late
        } else {
            PollKind::Recent
        };
        let floor = progress.forgotten_before;
        if matches!(kind, PollKind::Baseline | PollKind::Sweep) {
            if let Some(pending) = self.resumable_sweep(progress, now) {
                let from = pending
                    .window
                    .from
                    .max(floor.unwrap_or(pending.window.from));
                return (
                    kind,
                    CallWindow {
                        from,
                        to: pending.window.to.max(from),
                    },
                );
            }
        }
        let tier_start = |window: Duration| {
            let start = now - to_chrono(window);
            progress
                .covered_until
                .map_or(start, |covered| covered.min(start))
                .max(lookback_start)
        };
        let from = match kind {
            PollKind::Baseline | PollKind::Sweep => lookback_start,
            PollKind::Recent => tier_start(self.recent_window),
            PollKind::Late => tier_start(self.late_window),
        };
        let from = from.max(floor.unwrap_or(from));
        (
            kind,
            CallWindow {
                from,
                to: now.max(from),
            },
        )
    }

    /// The sweep that failed part-way, while resuming it is still worth it: once a whole
    /// sweep interval has passed, a fresh sweep reads more for the same pages.
    fn resumable_sweep<'p>(
        &self,
        progress: &'p Progress,
        now: DateTime<Utc>,
    ) -> Option<&'p PendingSweep> {
        progress
            .pending_sweep
            .as_ref()
            .filter(|p| now - p.window.to < to_chrono(self.sweep_interval))
    }
}

/// Long windows are cut into sub-windows no shorter than this, so that cutting adds few
/// pages (each sub-window ends with a partly filled page).
pub const MIN_SUB_WINDOW: Duration = Duration::from_secs(3 * 3600);

/// What a poll reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollKind {
    /// First start: the lookback, remembered but not counted.
    Baseline,
    /// The recent window.
    Recent,
    /// The late window: rows published hours after their call.
    Late,
    /// The whole lookback, for rows published days late.
    Sweep,
}

impl PollKind {
    /// Every kind, for series that must exist from the start.
    pub const ALL: [PollKind; 4] = [
        PollKind::Baseline,
        PollKind::Recent,
        PollKind::Late,
        PollKind::Sweep,
    ];

    /// Whether this kind reads the whole lookback (and can resume part-way).
    pub fn reads_whole_lookback(self) -> bool {
        matches!(self, PollKind::Baseline | PollKind::Sweep)
    }

    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PollKind::Baseline => "baseline",
            PollKind::Recent => "recent",
            PollKind::Late => "late",
            PollKind::Sweep => "sweep",
        }
    }
}

/// Where a poller resumes: enough to decide the next window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub baseline_done: bool,
    pub last_sweep: Option<DateTime<Utc>>,
    /// End of the last window read completely; the next recent window starts no later.
    pub covered_until: Option<DateTime<Utc>>,
    /// Rows that started before this were forgotten; no window may reach below it again,
    /// even if the system clock steps back.
    pub forgotten_before: Option<DateTime<Utc>>,
    /// The last sweep failed: the next poll reads the recent window, so that a sweep that
    /// keeps failing does not stop new calls from being counted.
    pub sweep_failed: bool,
    /// End of the last late window (or sweep) read completely. Not saved: a restart sweeps.
    pub last_late: Option<DateTime<Utc>>,
    /// The last late poll failed; like `sweep_failed`. Not saved.
    pub late_failed: bool,
    /// A sweep that failed part-way: the next sweep reads only its unfinished sub-windows.
    /// Not saved: a restart sweeps the whole lookback anyway.
    pub pending_sweep: Option<PendingSweep>,
}

/// The unfinished part of a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSweep {
    pub window: CallWindow,
    pub parts: Vec<CallWindow>,
}

impl Progress {
    /// The saved progress of an earlier run, with a sweep due at once: rows that appeared
    /// while the exporter was down are counted by the first poll.
    pub fn resumed(self) -> Progress {
        Progress {
            last_sweep: None,
            sweep_failed: false,
            last_late: None,
            late_failed: false,
            pending_sweep: None,
            ..self
        }
    }

    /// The sub-windows to read for `window`: the unfinished ones of a resumed sweep, else
    /// the window cut for `readers` parallel readers (`--graph.concurrency`).
    pub fn sub_windows(
        &self,
        kind: PollKind,
        window: CallWindow,
        readers: usize,
    ) -> Vec<CallWindow> {
        if matches!(kind, PollKind::Baseline | PollKind::Sweep) {
            if let Some(pending) = self.pending_sweep.as_ref() {
                if pending.window.to == window.to {
                    // Rows below `window.from` were forgotten meanwhile: never read them again.
                    return pending
                        .parts
                        .iter()
                        .map(|part| CallWindow {
                            from: part.from.max(window.from),
                            to: part.to,
                        })
                        .filter(|part| part.from < part.to)
                        .collect();
                }
            }
        }
        split_for_readers(window, readers)
    }

    /// Records how a poll of `kind` over `window` ended: `Ok` when it read the whole
    /// window, else the sub-windows it did not finish. After a complete read, returns the
    /// horizon below which remembered rows may be forgotten.
    pub fn finish(
        &mut self,
        kind: PollKind,
        window: CallWindow,
        outcome: Result<(), Vec<CallWindow>>,
        lookback: Duration,
    ) -> Option<DateTime<Utc>> {
        if kind != PollKind::Baseline {
            self.sweep_failed = kind == PollKind::Sweep && outcome.is_err();
            self.late_failed = kind == PollKind::Late && outcome.is_err();
        }
        let whole = kind.reads_whole_lookback();
        if let Err(mut unfinished) = outcome {
            if whole {
                // Sub-windows finish in any order; keep the unfinished ones in time order.
                unfinished.sort_by_key(|part| part.from);
                self.pending_sweep = Some(PendingSweep {
                    window,
                    parts: unfinished,
                });
            }
            return None;
        }
        if whole {
            self.pending_sweep = None;
            self.last_sweep = Some(window.to);
        }
        self.covered_until = Some(self.covered_until.map_or(window.to, |c| c.max(window.to)));
        if kind != PollKind::Recent {
            self.last_late = Some(self.last_late.map_or(window.to, |l| l.max(window.to)));
        }
        // Only rows older than the lookback: no later window reaches them.
        let horizon = window.to - to_chrono(lookback);
        let horizon = self.forgotten_before.map_or(horizon, |h| h.max(horizon));
        self.forgotten_before = Some(horizon);
        if kind == PollKind::Baseline {
            self.baseline_done = true;
        }
        Some(horizon)
    }
}

/// Cuts `window` into parts no longer than Graph's 90-day limit and, for several readers,
/// into up to two parts per reader (so that a slow part does not leave readers idle), none
/// shorter than [`MIN_SUB_WINDOW`]. Parts are half-open, contiguous, and end on whole
/// seconds.
pub fn split_for_readers(window: CallWindow, readers: usize) -> Vec<CallWindow> {
    let mut parts = Vec::new();
    for chunk in window.split(MAX_WINDOW) {
        let seconds = (chunk.to - chunk.from).num_seconds().max(0) as u64;
        let by_length = seconds.div_ceil(MIN_SUB_WINDOW.as_secs()).max(1);
        let count = by_length.min(2 * readers as u64);
        if readers <= 1 || count <= 1 {
            parts.push(chunk);
            continue;
        }
        parts.extend(chunk.split(Duration::from_secs(seconds.div_ceil(count))));
    }
    parts
}

pub(crate) fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schedule and its progress, planned for eight readers.
    struct Planner {
        schedule: Schedule,
        progress: Progress,
    }

    impl Planner {
        fn plan(&self, now: DateTime<Utc>) -> (PollKind, CallWindow) {
            self.schedule.plan(&self.progress, now)
        }

        fn sub_windows(&self, kind: PollKind, window: CallWindow) -> Vec<CallWindow> {
            self.progress.sub_windows(kind, window, 8)
        }
    }

    fn poller(progress: Progress) -> Planner {
        Planner {
            schedule: Schedule::default(),
            progress,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn first_poll_is_the_baseline_over_the_lookback() {
        let (kind, window) = poller(Progress::default()).plan(at("2026-11-27T10:00:00.700Z"));
        assert_eq!(kind, PollKind::Baseline);
        assert_eq!(window.to, at("2026-11-27T10:00:00Z"), "whole seconds");
        assert_eq!(window.from, at("2026-11-24T10:00:00Z"));
    }

    #[test]
    fn recent_window_then_late_window_then_sweep_when_due() {
        let mut p = poller(Progress {
            baseline_done: true,
            last_sweep: Some(at("2026-11-27T04:30:00Z")),
            last_late: Some(at("2026-11-27T09:50:00Z")),
            covered_until: Some(at("2026-11-27T09:59:00Z")),
            ..Progress::default()
        });
        let (kind, window) = p.plan(at("2026-11-27T10:00:00Z"));
        assert_eq!(kind, PollKind::Recent);
        assert_eq!(window.from, at("2026-11-27T09:45:00Z"));
        p.progress.last_late = Some(at("2026-11-27T09:45:00Z"));
        let (kind, window) = p.plan(at("2026-11-27T10:00:00Z"));
        assert_eq!(kind, PollKind::Late);
        assert_eq!(window.from, at("2026-11-27T04:00:00Z"));
        p.progress.last_sweep = Some(at("2026-11-27T04:00:00Z"));
        assert_eq!(p.plan(at("2026-11-27T10:00:00Z")).0, PollKind::Sweep);
    }

    #[test]
    fn the_late_tier_can_be_switched_off() {
        let mut p = poller(Progress {
            baseline_done: true,
            last_sweep: Some(at("2026-11-27T09:30:00Z")),
            covered_until: Some(at("2026-11-27T09:59:00Z")),
            ..Progress::default()
        });
        assert_eq!(p.plan(at("2026-11-27T10:00:00Z")).0, PollKind::Late);
        p.schedule.late_interval = Duration::ZERO;
        assert_eq!(p.plan(at("2026-11-27T10:00:00Z")).0, PollKind::Recent);
        p.schedule.late_interval = Duration::from_secs(900);
        p.schedule.late_window = p.schedule.recent_window;
        assert_eq!(p.plan(at("2026-11-27T10:00:00Z")).0, PollKind::Recent);
    }

    #[test]
    fn a_failed_late_poll_lets_a_recent_poll_through() {
        let mut p = poller(Progress {
            baseline_done: true,
            last_sweep: Some(at("2026-11-27T09:30:00Z")),
            last_late: Some(at("2026-11-27T09:00:00Z")),
            covered_until: Some(at("2026-11-27T09:59:00Z")),
            late_failed: true,
            ..Progress::default()
        });
        assert_eq!(p.plan(at("2026-11-27T10:00:00Z")).0, PollKind::Recent);
        p.progress.late_failed = false;
        assert_eq!(p.plan(at("2026-11-27T10:00:00Z")).0, PollKind::Late);
    }

    #[test]
    fn a_failing_sweep_and_late_poll_cannot_shut_out_the_recent_poll() {
        // Both due, both failing on the same bad page (the late window lies inside the
        // sweep's): every failure is followed by a recent poll.
        let mut p = poller(Progress {
            baseline_done: true,
            last_sweep: Some(at("2026-11-27T01:00:00Z")),
            last_late: Some(at("2026-11-27T09:00:00Z")),
            covered_until: Some(at("2026-11-27T09:59:00Z")),
            ..Progress::default()
        });
        let now = at("2026-11-27T10:00:00Z");
        assert_eq!(p.plan(now).0, PollKind::Sweep);
        p.progress.sweep_failed = true;
        assert_eq!(p.plan(now).0, PollKind::Recent, "after the failed sweep");
        p.progress.sweep_failed = false;
        p.progress.late_failed = true;
        assert_eq!(p.plan(now).0, PollKind::Recent, "after a failed late poll");
        p.progress.late_failed = false;
        assert_eq!(
            p.plan(now).0,
            PollKind::Sweep,
            "the recent poll cleared both"
        );
    }

    #[test]
    fn sub_windows_are_contiguous_whole_seconds_and_few() {
        let window = CallWindow {
            from: at("2026-11-24T10:00:00Z"),
            to: at("2026-11-27T10:00:07Z"),
        };
        for readers in [1, 2, 4, 8, 32] {
            let parts = split_for_readers(window, readers);
            assert_eq!(parts.first().unwrap().from, window.from);
            assert_eq!(parts.last().unwrap().to, window.to);
            assert!(parts.windows(2).all(|w| w[0].to == w[1].from), "{parts:?}");
            assert!(parts
                .iter()
                .all(|p| p.from < p.to && p.from.timestamp_subsec_nanos() == 0));
            let expected = if readers == 1 {
                1
            } else {
                (2 * readers).min(25)
            };
            assert_eq!(parts.len(), expected, "{readers} readers");
        }
        let short = CallWindow {
            from: at("2026-11-27T07:00:00Z"),
            to: at("2026-11-27T10:00:00Z"),
        };
        assert_eq!(
            split_for_readers(short, 4),
            vec![short],
            "short windows stay whole"
        );
    }

    #[test]
    fn a_failed_sweep_resumes_with_its_unfinished_sub_windows() {
        let window = CallWindow {
            from: at("2026-11-24T10:00:00Z"),
            to: at("2026-11-27T10:00:00Z"),
        };
        let parts = split_for_readers(window, 4);
        let mut p = poller(Progress {
            baseline_done: true,
            last_sweep: Some(at("2026-11-27T04:00:00Z")),
            covered_until: Some(at("2026-11-27T10:01:00Z")),
            // A recent poll after the failure moved the horizon on by a minute.
            forgotten_before: Some(at("2026-11-24T10:01:00Z")),
            pending_sweep: Some(PendingSweep {
                window,
                parts: vec![parts[0], parts[5]],
            }),
            ..Progress::default()
        });
        let (kind, resumed) = p.plan(at("2026-11-27T10:02:00Z"));
        assert_eq!(kind, PollKind::Sweep);
        assert_eq!(resumed.to, window.to);
        assert_eq!(resumed.from, at("2026-11-24T10:01:00Z"));
        let to_read = p.sub_windows(kind, resumed);
        assert_eq!(
            to_read,
            vec![
                CallWindow {
                    from: at("2026-11-24T10:01:00Z"),
                    to: parts[0].to
                },
                parts[5]
            ],
            "only the unfinished parts, never below the forgotten rows"
        );
        // A sweep interval later a fresh sweep reads more for the same pages.
        let (kind, fresh) = p.plan(at("2026-11-27T16:00:00Z"));
        assert_eq!(kind, PollKind::Sweep);
        assert_eq!(fresh.to, at("2026-11-27T16:00:00Z"));
        assert_eq!(p.sub_windows(kind, fresh).len(), 16);
        p.progress.pending_sweep = None;
        assert_eq!(p.sub_windows(kind, resumed).len(), 16);
    }

    #[test]
    fn recent_window_reaches_back_over_failed_polls() {
        let p = poller(Progress {
            baseline_done: true,
            last_sweep: Some(at("2026-11-27T09:59:00Z")),
            last_late: Some(at("2026-11-27T09:59:00Z")),
            covered_until: Some(at("2026-11-27T07:15:00Z")),
            ..Progress::default()
        });
        let (kind, window) = p.plan(at("2026-11-27T10:00:00Z"));
        assert_eq!(kind, PollKind::Recent);
        assert_eq!(window.from, at("2026-11-27T07:15:00Z"));
        let p = poller(Progress {
            covered_until: Some(at("2026-11-01T00:00:00Z")),
            ..p.progress.clone()
        });
        assert_eq!(
            p.plan(at("2026-11-27T10:00:00Z")).1.from,
            at("2026-11-24T10:00:00Z"),
            "never beyond the lookback"
        );
    }

    #[test]
    fn a_restart_sweeps_at_once() {
        let saved = Progress {
            baseline_done: true,
            last_sweep: Some(at("2026-11-27T09:59:00Z")),
            covered_until: Some(at("2026-11-27T09:59:30Z")),
            forgotten_before: Some(at("2026-11-24T09:59:00Z")),
            sweep_failed: true,
            ..Progress::default()
        };
        let p = poller(saved.clone().resumed());
        let (kind, window) = p.plan(at("2026-11-27T10:00:00Z"));
        assert_eq!(kind, PollKind::Sweep);
        assert_eq!(window.from, at("2026-11-24T10:00:00Z"));
        assert_eq!(p.progress.forgotten_before, saved.forgotten_before);
        let unfinished = poller(Progress::default().resumed());
        assert_eq!(
            unfinished.plan(at("2026-11-27T10:00:00Z")).0,
            PollKind::Baseline,
            "a baseline cut short is read again"
        );
    }

    #[test]
    fn a_failing_sweep_lets_recent_polls_through() {
        let mut p = poller(Progress {
            baseline_done: true,
            last_sweep: Some(at("2026-11-27T03:00:00Z")),
            last_late: Some(at("2026-11-27T09:59:00Z")),
            covered_until: Some(at("2026-11-27T09:59:00Z")),
            ..Progress::default()
        });
        assert_eq!(p.plan(at("2026-11-27T10:00:00Z")).0, PollKind::Sweep);
        p.progress.sweep_failed = true;
        assert_eq!(p.plan(at("2026-11-27T10:00:00Z")).0, PollKind::Recent);
    }

    #[test]
    fn windows_never_reach_below_forgotten_rows_even_if_the_clock_steps_back() {
        let p = poller(Progress {
            baseline_done: true,
            last_sweep: None,
            covered_until: Some(at("2026-11-27T10:00:00Z")),
            forgotten_before: Some(at("2026-11-24T10:00:00Z")),
            sweep_failed: false,
            ..Progress::default()
        });
        // The clock stepped back ten minutes: the sweep must not re-read forgotten rows.
        let (kind, window) = p.plan(at("2026-11-27T09:50:00Z"));
        assert_eq!(kind, PollKind::Sweep);
        assert_eq!(window.from, at("2026-11-24T10:00:00Z"));
    }
}
