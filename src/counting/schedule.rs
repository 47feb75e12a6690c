//! The schedule: which call window to read next, and what a finished poll changes.
//!
//! Pure planning code, testable without a Graph client: from the configured [`Schedule`],
//! the [`Progress`] so far and the time, it plans the two lanes the poller runs side by
//! side, the recent poll and the long reads (a late poll or a sweep), cuts long windows
//! into sub-windows, sets where counting begins at first start, and records how a poll
//! ended, so that a failed poll leaves no silent gap and a failed sweep resumes where it
//! stopped. The poller carries the plans out.

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

    /// The recent poll's window at `now`: the recent window, widened back to the end of the
    /// last complete read if polls failed meanwhile, so that an outage leaves no gap.
    pub fn recent(&self, progress: &Progress, now: DateTime<Utc>) -> CallWindow {
        let now = whole_seconds(now);
        let from = self.tier_start(progress, self.recent_window, now);
        CallWindow {
            from,
            to: now.max(from),
        }
    }

    /// The long read due at `now`, if any: a sweep (or what a failed one left), else a late
    /// poll. One runs at a time, so a sweep that outlasts the sweep interval is stretched,
    /// not stacked, and late polls wait for it (it reads the late window first).
    pub fn long_read(
        &self,
        progress: &Progress,
        now: DateTime<Utc>,
    ) -> Option<(PollKind, CallWindow)> {
        let now = whole_seconds(now);
        let due = |kind| self.due_at(progress, kind).is_none_or(|at| now >= at);
        let floor = progress.forgotten_before;
        if let Some(pending) = self.resumable_sweep(progress, now) {
            let from = pending
                .window
                .from
                .max(floor.unwrap_or(pending.window.from));
            return Some((
                PollKind::Sweep,
                CallWindow {
                    from,
                    to: pending.window.to.max(from),
                },
            ));
        }
        let kind = if due(PollKind::Sweep) {
            PollKind::Sweep
        } else if self.has_late_tier() && due(PollKind::Late) {
            PollKind::Late
        } else {
            return None;
        };
        let from = match kind {
            PollKind::Sweep => self.lookback_start(progress, now),
            _ => self.tier_start(progress, self.late_window, now),
        };
        Some((
            kind,
            CallWindow {
                from,
                to: now.max(from),
            },
        ))
    }

    /// When the next long read of `kind` is due; `None` when it is due at once (none ran
    /// yet), and for the recent poll, which runs every poll interval whatever happened.
    pub fn due_at(&self, progress: &Progress, kind: PollKind) -> Option<DateTime<Utc>> {
        let (last, interval) = match kind {
            PollKind::Sweep => (progress.last_sweep, self.sweep_interval),
            PollKind::Late => (progress.last_late, self.late_interval),
            PollKind::Recent => return None,
        };
        last.map(|at| at + to_chrono(interval))
    }

    /// The oldest call start any window may reach at `now`: the lookback, never below
    /// forgotten rows (even if the system clock steps back).
    fn lookback_start(&self, progress: &Progress, now: DateTime<Utc>) -> DateTime<Utc> {
        let start = now - to_chrono(self.lookback);
        progress.forgotten_before.map_or(start, |f| f.max(start))
    }

    /// Where a tier's window starts: `window` back from now, or earlier where the last
    /// complete read ended, within the lookback.
    fn tier_start(
        &self,
        progress: &Progress,
        window: Duration,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let start = now - to_chrono(window);
        progress
            .covered_until
            .map_or(start, |covered| covered.min(start))
            .max(self.lookback_start(progress, now))
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

pub(crate) fn whole_seconds(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(chrono::Duration::seconds(1))
        .unwrap_or(now)
}

/// Long windows are cut into sub-windows no shorter than this, so that cutting adds few
/// pages (each sub-window ends with a partly filled page).
pub const MIN_SUB_WINDOW: Duration = Duration::from_secs(3 * 3600);

/// A sweep is read in parts of this length, newest first: the late window's rows are
/// counted in its first minutes however long the rest takes under the budget, and a sweep
/// that fails resumes from the parts it did not finish.
pub const SWEEP_PART: Duration = Duration::from_secs(6 * 3600);

/// What a poll reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollKind {
    /// The recent window.
    Recent,
    /// The late window: rows published hours after their call.
    Late,
    /// The whole lookback, for rows published days late.
    Sweep,
}

impl PollKind {
    /// Every kind, for series that must exist from the start.
    pub const ALL: [PollKind; 3] = [PollKind::Recent, PollKind::Late, PollKind::Sweep];

    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PollKind::Recent => "recent",
            PollKind::Late => "late",
            PollKind::Sweep => "sweep",
        }
    }
}

/// Where a poller resumes: enough to decide the next window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The first start has set where counting begins (`forgotten_before`); saved, so a
    /// restart with `--state.path` continues rather than starting anew.
    pub first_start_done: bool,
    pub last_sweep: Option<DateTime<Utc>>,
    /// End of the last window read completely; the next recent window starts no later.
    pub covered_until: Option<DateTime<Utc>>,
    /// Rows that started before this are not read again: forgotten ones, and at first
    /// start the history before the counting boundary. No window may reach below it, even
    /// if the system clock steps back.
    pub forgotten_before: Option<DateTime<Utc>>,
    /// End of the last late window (or sweep) read completely. Not saved: a restart sweeps.
    pub last_late: Option<DateTime<Utc>>,
    /// A sweep that failed part-way: the next sweep reads only its unfinished sub-windows.
    /// Not saved: a restart sweeps the whole lookback anyway.
    pub pending_sweep: Option<PendingSweep>,
}

/// The unfinished part of a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSweep {
    pub window: CallWindow,
    /// Newest first, the order they are read in.
    pub parts: Vec<CallWindow>,
}

impl Progress {
    /// The first start at `now`: counting begins with calls that started one recent window
    /// before it (the boundary, returned), and everything older is history, never read.
    ///
    /// The rule depends on a call's start alone, so it is exact however long reading takes:
    /// Graph gives no time a row was published and a read of many pages is no snapshot, so
    /// a rule of "rows already there at start" could not tell a row published during the
    /// read from one that was there before. The boundary lies one recent window back so
    /// that calls which ended just before the start, and whose rows Graph publishes after
    /// it, are counted too.
    pub fn first_start(&mut self, now: DateTime<Utc>, schedule: &Schedule) -> DateTime<Utc> {
        let now = whole_seconds(now);
        let boundary = now - to_chrono(schedule.recent_window);
        let boundary = self.forgotten_before.map_or(boundary, |f| f.max(boundary));
        self.first_start_done = true;
        self.forgotten_before = Some(boundary);
        // Read from the boundary until a poll succeeds, however long that takes.
        self.covered_until = Some(boundary);
        // Nothing older than the boundary is read, so a sweep or late poll now would only
        // repeat the recent window.
        self.last_sweep = Some(now);
        self.last_late = Some(now);
        boundary
    }

    /// The saved progress of an earlier run, with a sweep due at once: rows that appeared
    /// while the exporter was down are counted by it, while recent polls go on.
    pub fn resumed(self) -> Progress {
        Progress {
            last_sweep: None,
            last_late: None,
            pending_sweep: None,
            ..self
        }
    }

    /// A restart at `now` with a sweep due: the sweep reads the gap since the last
    /// complete read (and resumes where it failed, if it does), so the recent poll reads
    /// only its own window and the exporter is ready in seconds after any outage.
    pub fn restarted(&mut self, now: DateTime<Utc>) {
        let now = whole_seconds(now);
        self.covered_until = Some(self.covered_until.map_or(now, |c| c.max(now)));
    }

    /// The sub-windows to read for `window`: the unfinished ones of a resumed sweep, a
    /// sweep's parts newest first, else the window cut for `readers` parallel readers
    /// (`--graph.concurrency`).
    pub fn sub_windows(
        &self,
        kind: PollKind,
        window: CallWindow,
        readers: usize,
    ) -> Vec<CallWindow> {
        if kind != PollKind::Sweep {
            return split_for_readers(window, readers);
        }
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
        sweep_parts(window)
    }

    /// Records how a poll of `kind` over `window` ended: `Ok` when it read the whole
    /// window, else the sub-windows it did not finish. After a complete read, returns the
    /// horizon below which remembered rows may be forgotten (once no read in flight reaches
    /// below it).
    pub fn finish(
        &mut self,
        kind: PollKind,
        window: CallWindow,
        outcome: Result<(), Vec<CallWindow>>,
        lookback: Duration,
    ) -> Option<DateTime<Utc>> {
        if let Err(mut unfinished) = outcome {
            if kind == PollKind::Sweep {
                // Sub-windows finish in any order; keep the unfinished ones newest first.
                unfinished.sort_by_key(|part| std::cmp::Reverse(part.from));
                self.pending_sweep = Some(PendingSweep {
                    window,
                    parts: unfinished,
                });
            }
            return None;
        }
        if kind == PollKind::Sweep {
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
        Some(horizon)
    }
}

/// A sweep's window in parts of [`SWEEP_PART`] (and Graph's 90-day limit), newest first;
/// the oldest part takes the remainder. Parts are half-open, contiguous, and end on whole
/// seconds.
pub fn sweep_parts(window: CallWindow) -> Vec<CallWindow> {
    let mut parts = Vec::new();
    let mut to = window.to;
    while to > window.from {
        let from = (to - to_chrono(SWEEP_PART)).max(window.from);
        parts.extend(CallWindow { from, to }.split(MAX_WINDOW).into_iter().rev());
        to = from;
    }
    if parts.is_empty() {
        parts.push(window);
    }
    parts
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

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn running(progress: Progress) -> (Schedule, Progress) {
        (Schedule::default(), progress)
    }

    #[test]
    fn first_start_counts_from_one_recent_window_back_and_reads_no_history() {
        let schedule = Schedule::default();
        let mut progress = Progress::default();
        let now = at("2026-11-27T10:00:00.700Z");
        let boundary = progress.first_start(now, &schedule);
        assert_eq!(boundary, at("2026-11-27T09:45:00Z"), "whole seconds");
        assert_eq!(progress.forgotten_before, Some(boundary));
        let window = schedule.recent(&progress, now);
        assert_eq!(
            (window.from, window.to),
            (boundary, at("2026-11-27T10:00:00Z"))
        );
        assert_eq!(
            schedule.long_read(&progress, now),
            None,
            "no read of the history"
        );
        // Recent polls fail for half an hour: the next one still starts at the boundary.
        let later = at("2026-11-27T10:30:00Z");
        assert_eq!(schedule.recent(&progress, later).from, boundary);
        // The late poll and the sweep, when due, never reach below it either.
        let (kind, late) = schedule
            .long_read(&progress, at("2026-11-27T10:15:00Z"))
            .unwrap();
        assert_eq!((kind, late.from), (PollKind::Late, boundary));
        let (kind, sweep) = schedule
            .long_read(&progress, at("2026-11-27T16:00:00Z"))
            .unwrap();
        assert_eq!((kind, sweep.from), (PollKind::Sweep, boundary));
    }

    #[test]
    fn an_unfinished_first_start_keeps_what_was_forgotten() {
        let schedule = Schedule::default();
        let mut progress = Progress {
            forgotten_before: Some(at("2026-11-27T09:50:00Z")),
            ..Progress::default()
        };
        let boundary = progress.first_start(at("2026-11-27T10:00:00Z"), &schedule);
        assert_eq!(boundary, at("2026-11-27T09:50:00Z"));
    }

    #[test]
    fn recent_polls_go_on_whatever_long_read_is_due() {
        let (schedule, mut progress) = running(Progress {
            first_start_done: true,
            last_sweep: Some(at("2026-11-27T04:30:00Z")),
            last_late: Some(at("2026-11-27T09:50:00Z")),
            covered_until: Some(at("2026-11-27T09:59:00Z")),
            ..Progress::default()
        });
        let now = at("2026-11-27T10:00:00Z");
        assert_eq!(
            schedule.recent(&progress, now).from,
            at("2026-11-27T09:45:00Z")
        );
        assert_eq!(schedule.long_read(&progress, now), None);
        progress.last_late = Some(at("2026-11-27T09:45:00Z"));
        let (kind, window) = schedule.long_read(&progress, now).unwrap();
        assert_eq!(
            (kind, window.from),
            (PollKind::Late, at("2026-11-27T04:00:00Z"))
        );
        progress.last_sweep = Some(at("2026-11-27T04:00:00Z"));
        let (kind, window) = schedule.long_read(&progress, now).unwrap();
        assert_eq!(
            (kind, window.from),
            (PollKind::Sweep, at("2026-11-24T10:00:00Z"))
        );
        assert_eq!(
            schedule.recent(&progress, now).from,
            at("2026-11-27T09:45:00Z")
        );
    }

    #[test]
    fn the_late_tier_can_be_switched_off() {
        let (mut schedule, progress) = running(Progress {
            first_start_done: true,
            last_sweep: Some(at("2026-11-27T09:30:00Z")),
            covered_until: Some(at("2026-11-27T09:59:00Z")),
            ..Progress::default()
        });
        let now = at("2026-11-27T10:00:00Z");
        assert_eq!(
            schedule.long_read(&progress, now).unwrap().0,
            PollKind::Late
        );
        schedule.late_interval = Duration::ZERO;
        assert_eq!(schedule.long_read(&progress, now), None);
        schedule.late_interval = Duration::from_secs(900);
        schedule.late_window = schedule.recent_window;
        assert_eq!(schedule.long_read(&progress, now), None);
    }

    #[test]
    fn a_failed_late_poll_is_due_again() {
        let (schedule, mut progress) = running(Progress {
            first_start_done: true,
            last_sweep: Some(at("2026-11-27T09:30:00Z")),
            last_late: Some(at("2026-11-27T09:00:00Z")),
            covered_until: Some(at("2026-11-27T09:59:00Z")),
            ..Progress::default()
        });
        let now = at("2026-11-27T10:00:00Z");
        let (kind, window) = schedule.long_read(&progress, now).unwrap();
        assert_eq!(kind, PollKind::Late);
        assert_eq!(
            progress.finish(kind, window, Err(vec![window]), schedule.lookback),
            None
        );
        assert_eq!(schedule.long_read(&progress, now), Some((kind, window)));
    }

    #[test]
    fn sweeps_are_read_newest_first_in_parts() {
        let window = CallWindow {
            from: at("2026-11-24T10:00:07Z"),
            to: at("2026-11-27T10:00:00Z"),
        };
        let parts = sweep_parts(window);
        assert_eq!(parts.len(), 12);
        assert_eq!(parts[0].to, window.to, "the newest part first");
        assert_eq!(parts[0].from, at("2026-11-27T04:00:00Z"));
        assert_eq!(parts.last().unwrap().from, window.from);
        assert!(parts.windows(2).all(|w| w[1].to == w[0].from), "{parts:?}");
        assert!(parts.iter().all(|p| p.from < p.to));
        let short = CallWindow {
            from: at("2026-11-27T09:45:00Z"),
            to: at("2026-11-27T10:00:00Z"),
        };
        assert_eq!(sweep_parts(short), vec![short]);
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
        let parts = sweep_parts(window);
        let (schedule, mut progress) = running(Progress {
            first_start_done: true,
            last_sweep: Some(at("2026-11-27T04:00:00Z")),
            covered_until: Some(at("2026-11-27T10:01:00Z")),
            ..Progress::default()
        });
        let unfinished = vec![parts[11], parts[5]];
        assert_eq!(
            progress.finish(PollKind::Sweep, window, Err(unfinished), schedule.lookback),
            None
        );
        // A recent poll after the failure moved the horizon on by a minute.
        progress.forgotten_before = Some(at("2026-11-24T10:01:00Z"));
        let (kind, resumed) = schedule
            .long_read(&progress, at("2026-11-27T10:02:00Z"))
            .unwrap();
        assert_eq!(kind, PollKind::Sweep);
        assert_eq!(resumed.to, window.to);
        assert_eq!(resumed.from, at("2026-11-24T10:01:00Z"));
        assert_eq!(
            progress.sub_windows(kind, resumed, 1),
            vec![
                parts[5],
                CallWindow {
                    from: at("2026-11-24T10:01:00Z"),
                    to: parts[11].to
                },
            ],
            "only the unfinished parts, newest first, never below the forgotten rows"
        );
        // A sweep interval later a fresh sweep reads more for the same pages.
        let (kind, fresh) = schedule
            .long_read(&progress, at("2026-11-27T16:00:00Z"))
            .unwrap();
        assert_eq!(kind, PollKind::Sweep);
        assert_eq!(fresh.to, at("2026-11-27T16:00:00Z"));
        assert_eq!(progress.sub_windows(kind, fresh, 1).len(), 12);
    }

    #[test]
    fn recent_window_reaches_back_over_failed_polls() {
        let (schedule, progress) = running(Progress {
            first_start_done: true,
            last_sweep: Some(at("2026-11-27T09:59:00Z")),
            last_late: Some(at("2026-11-27T09:59:00Z")),
            covered_until: Some(at("2026-11-27T07:15:00Z")),
            ..Progress::default()
        });
        let now = at("2026-11-27T10:00:00Z");
        assert_eq!(
            schedule.recent(&progress, now).from,
            at("2026-11-27T07:15:00Z")
        );
        let progress = Progress {
            covered_until: Some(at("2026-11-01T00:00:00Z")),
            ..progress
        };
        assert_eq!(
            schedule.recent(&progress, now).from,
            at("2026-11-24T10:00:00Z"),
            "never beyond the lookback"
        );
    }

    #[test]
    fn a_restart_sweeps_at_once_beside_recent_polls() {
        let saved = Progress {
            first_start_done: true,
            last_sweep: Some(at("2026-11-27T09:59:00Z")),
            covered_until: Some(at("2026-11-27T09:59:30Z")),
            forgotten_before: Some(at("2026-11-24T09:59:00Z")),
            ..Progress::default()
        };
        let (schedule, progress) = running(saved.clone().resumed());
        let now = at("2026-11-27T10:00:00Z");
        let (kind, window) = schedule.long_read(&progress, now).unwrap();
        assert_eq!(
            (kind, window.from),
            (PollKind::Sweep, at("2026-11-24T10:00:00Z"))
        );
        assert_eq!(
            schedule.recent(&progress, now).from,
            at("2026-11-27T09:45:00Z")
        );
        assert_eq!(progress.forgotten_before, saved.forgotten_before);
        // After a day down, the sweep reads the gap; the recent poll only its window.
        let (schedule, mut progress) = running(saved.clone().resumed());
        let later = at("2026-11-28T10:00:00Z");
        progress.restarted(later);
        assert_eq!(
            schedule.recent(&progress, later).from,
            at("2026-11-28T09:45:00Z")
        );
        let (kind, window) = schedule.long_read(&progress, later).unwrap();
        assert_eq!(
            (kind, window.from),
            (PollKind::Sweep, at("2026-11-25T10:00:00Z"))
        );
        // Recent polls that fail from then on widen back to the restart, not further.
        let hour_later = at("2026-11-28T11:00:00Z");
        assert_eq!(schedule.recent(&progress, hour_later).from, later);
        progress.restarted(now);
        assert_eq!(progress.covered_until, Some(later), "never moved back");
    }

    #[test]
    fn windows_never_reach_below_forgotten_rows_even_if_the_clock_steps_back() {
        let (schedule, progress) = running(Progress {
            first_start_done: true,
            last_sweep: None,
            covered_until: Some(at("2026-11-27T10:00:00Z")),
            forgotten_before: Some(at("2026-11-24T10:00:00Z")),
            ..Progress::default()
        });
        // The clock stepped back ten minutes: the sweep must not re-read forgotten rows.
        let (kind, window) = schedule
            .long_read(&progress, at("2026-11-27T09:50:00Z"))
            .unwrap();
        assert_eq!(kind, PollKind::Sweep);
        assert_eq!(window.from, at("2026-11-24T10:00:00Z"));
    }
}
