//! The background fetcher: which call windows to read, and when.
//!
//! At first start it reads the whole lookback once and only remembers the rows (the
//! baseline), so counters start at zero. Then every poll interval it reads the recent window,
//! widened back to the end of the last complete read if polls failed meanwhile, so an outage
//! leaves no silent gap; every late interval it reads the late window instead (the hours in
//! which Graph publishes most of its stragglers); and every sweep interval it reads the whole
//! lookback to catch rows Graph published days late. Long windows are read as time
//! sub-windows in parallel (`--graph.concurrency`), and a sweep that fails part-way resumes
//! with the sub-windows it did not finish. Rows are counted by [`TenantState`], exactly once,
//! whatever windows overlap. A failed poll is counted, logged with what to do, and retried at
//! the next tick.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::counting::state::{Ingest, TenantState};
use crate::counting::store::StateStore;
use crate::exposition::metrics::ExporterMetrics;
use crate::source::graph::{CallWindow, Function, GraphClient, GraphError, WindowRead, MAX_WINDOW};
use tve_clock::Clock;

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
    pub fn as_str(self) -> &'static str {
        match self {
            PollKind::Baseline => "baseline",
            PollKind::Recent => "recent",
            PollKind::Late => "late",
            PollKind::Sweep => "sweep",
        }
    }
}

/// The last poll, for the landing page.
#[derive(Debug, Clone)]
pub struct PollReport {
    pub kind: PollKind,
    pub window: CallWindow,
    pub finished_at: DateTime<Utc>,
    pub took: Duration,
    pub result: Result<WindowRead, String>,
    pub ingested: u64,
}

/// What the HTTP server shows about the poller.
#[derive(Debug, Default)]
pub struct PollerStatus {
    ready: AtomicBool,
    last: Mutex<Option<PollReport>>,
    last_success: Mutex<Option<DateTime<Utc>>>,
}

impl PollerStatus {
    /// True once the first poll (the baseline) read its whole window.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn last_poll(&self) -> Option<PollReport> {
        self.last.lock().clone()
    }

    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        *self.last_success.lock()
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
}

/// Polls one tenant's Direct Routing calls.
pub struct Poller {
    pub graph: Arc<GraphClient>,
    pub state: Arc<Mutex<TenantState>>,
    pub status: Arc<PollerStatus>,
    pub metrics: ExporterMetrics,
    pub clock: Clock,
    pub schedule: Schedule,
    pub progress: Progress,
    /// `--state.path`: where the state is committed after every poll.
    pub store: Option<StateStore>,
}

impl Poller {
    /// The next poll and its window, at `now`.
    pub fn plan(&self, now: DateTime<Utc>) -> (PollKind, CallWindow) {
        let now = now
            .duration_trunc(chrono::Duration::seconds(1))
            .unwrap_or(now);
        let lookback_start = now - to_chrono(self.schedule.lookback);
        let due = |last: Option<DateTime<Utc>>, interval: Duration| {
            last.is_none_or(|at| now - at >= to_chrono(interval))
        };
        let sweep_due = due(self.progress.last_sweep, self.schedule.sweep_interval);
        let late_due = self.schedule.has_late_tier()
            && due(self.progress.last_late, self.schedule.late_interval);
        // After a failed sweep or late poll, a recent poll comes first whatever else is due:
        // the late window lies inside the sweep's, so one bad page there fails both, and
        // letting them take turns would never count a new call.
        let tier_failed = self.progress.sweep_failed || self.progress.late_failed;
        let kind = if !self.progress.baseline_done {
            PollKind::Baseline
        } else if sweep_due && !tier_failed {
            PollKind::Sweep
        } else if late_due && !tier_failed {
            PollKind::Late
        } else {
            PollKind::Recent
        };
        let floor = self.progress.forgotten_before;
        if matches!(kind, PollKind::Baseline | PollKind::Sweep) {
            if let Some(pending) = self.resumable_sweep(now) {
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
            self.progress
                .covered_until
                .map_or(start, |covered| covered.min(start))
                .max(lookback_start)
        };
        let from = match kind {
            PollKind::Baseline | PollKind::Sweep => lookback_start,
            PollKind::Recent => tier_start(self.schedule.recent_window),
            PollKind::Late => tier_start(self.schedule.late_window),
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
    fn resumable_sweep(&self, now: DateTime<Utc>) -> Option<&PendingSweep> {
        self.progress
            .pending_sweep
            .as_ref()
            .filter(|p| now - p.window.to < to_chrono(self.schedule.sweep_interval))
    }

    /// The sub-windows to read for `window`: the unfinished ones of a resumed sweep, else
    /// the window cut for `--graph.concurrency` parallel readers.
    pub fn sub_windows(&self, kind: PollKind, window: CallWindow) -> Vec<CallWindow> {
        if matches!(kind, PollKind::Baseline | PollKind::Sweep) {
            if let Some(pending) = self.progress.pending_sweep.as_ref() {
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
        split_for_readers(window, self.graph.concurrency())
    }

    /// Polls until `shutdown` is cancelled, then saves what was counted (a poll cut short
    /// leaves its counted rows remembered with them, so a restart does not count them again).
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let started = Instant::now();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.poll_once() => {}
            }
            // Keep a steady cadence: a slow poll shortens the wait, not the rate.
            let wait = self
                .clock
                .real_duration(self.schedule.poll_interval)
                .saturating_sub(started.elapsed());
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.persist().await;
    }

    /// Commits the state, the aggregates and the progress in one transaction, then shows
    /// the aggregates on `/metrics`: what a scrape has seen is never lost by a crash.
    async fn persist(&mut self) {
        let Some(mut store) = self.store.take() else {
            return;
        };
        let state = Arc::clone(&self.state);
        let progress = self.progress.clone();
        let commit = tokio::task::spawn_blocking(move || {
            store.commit(&state, &progress);
            store
        });
        match commit.await {
            Ok(store) => self.store = Some(store),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // The runtime is shutting down: the commit either finished or never began.
            Err(_) => return,
        }
        self.state.lock().publish();
    }

    /// Runs the poll that is due now.
    pub async fn poll_once(&mut self) -> Result<WindowRead, GraphError> {
        let function = Function::DirectRoutingCalls;
        let endpoint = function.name();
        let (kind, window) = self.plan(self.clock.now());
        let mode = match kind {
            PollKind::Baseline => Ingest::RememberOnly,
            PollKind::Recent | PollKind::Late | PollKind::Sweep => Ingest::Count,
        };
        let parts = self.sub_windows(kind, window);
        let started = Instant::now();
        tracing::debug!(kind = kind.as_str(), from = %window.from, to = %window.to, parts = parts.len(), "poll starting");
        let mut ingested = 0;
        let mut total = WindowRead::default();
        let mut result = Ok(());
        let mut unfinished = Vec::new();
        {
            let graph = &self.graph;
            let state = &self.state;
            let clock = &self.clock;
            // Each row is counted once whichever sub-window returns it: the state keeps
            // the ids under its lock, and sub-windows are half-open so they share no start.
            let reads = parts.clone().into_iter().map(|part| async move {
                let mut ingested = 0;
                let read = graph
                    .read_window(function, part, |page| {
                        let now = clock.now();
                        let outcome = state.lock().ingest(
                            page.value.iter().map(|raw| raw.get()),
                            mode,
                            now,
                            part.from,
                        );
                        ingested += outcome.ingested;
                    })
                    .await;
                (part, read, ingested)
            });
            let mut reads = futures_util::stream::iter(reads).buffer_unordered(graph.concurrency());
            while let Some((part, read, part_ingested)) = reads.next().await {
                ingested += part_ingested;
                match read {
                    Ok(read) => {
                        total.pages += read.pages;
                        total.rows += read.rows;
                    }
                    Err(error) => {
                        unfinished.push(part);
                        if result.is_ok() {
                            result = Err(error);
                        }
                    }
                }
            }
        }
        // Sub-windows finish in any order; keep the unfinished ones in time order.
        unfinished.sort_by_key(|part| part.from);
        let took = started.elapsed();
        self.metrics
            .poll_duration
            .with_label_values(&[endpoint, kind.as_str()])
            .observe(took.as_secs_f64());
        let finished_at = self.clock.now();

        if kind != PollKind::Baseline {
            self.progress.sweep_failed = kind == PollKind::Sweep && result.is_err();
            self.progress.late_failed = kind == PollKind::Late && result.is_err();
        }
        if matches!(kind, PollKind::Baseline | PollKind::Sweep) {
            self.progress.pending_sweep = result.is_err().then_some(PendingSweep {
                window,
                parts: unfinished,
            });
        }
        let report_result = match &result {
            Ok(()) => {
                let covered = self
                    .progress
                    .covered_until
                    .map_or(window.to, |c| c.max(window.to));
                self.progress.covered_until = Some(covered);
                if matches!(kind, PollKind::Baseline | PollKind::Sweep) {
                    self.progress.last_sweep = Some(window.to);
                }
                if matches!(kind, PollKind::Baseline | PollKind::Sweep | PollKind::Late) {
                    let late = self
                        .progress
                        .last_late
                        .map_or(window.to, |l| l.max(window.to));
                    self.progress.last_late = Some(late);
                }
                // Only rows older than the lookback: no later window reaches them.
                let horizon = window.to - to_chrono(self.schedule.lookback);
                let horizon = self
                    .progress
                    .forgotten_before
                    .map_or(horizon, |h| h.max(horizon));
                self.progress.forgotten_before = Some(horizon);
                let forgotten = self.state.lock().forget_before(horizon);
                self.metrics
                    .last_success
                    .with_label_values(&[endpoint])
                    .set(finished_at.timestamp_millis() as f64 / 1e3);
                *self.status.last_success.lock() = Some(finished_at);
                if kind == PollKind::Baseline {
                    self.progress.baseline_done = true;
                    tracing::info!(
                        rows = total.rows, pages = total.pages, took = ?took,
                        "baseline read: existing rows remembered, counting starts now"
                    );
                } else {
                    tracing::info!(
                        kind = kind.as_str(), rows = total.rows, pages = total.pages,
                        new = ingested, forgotten, took = ?took, "poll complete"
                    );
                }
                Ok(total)
            }
            Err(error) => {
                self.metrics
                    .poll_errors
                    .with_label_values(&[endpoint, error.reason()])
                    .inc();
                tracing::error!(
                    kind = kind.as_str(), %error, rows = total.rows, new = ingested,
                    "poll failed; counted rows are kept and the window is read again at the next poll"
                );
                Err(error.to_string())
            }
        };
        self.persist().await;
        self.metrics
            .remembered_rows
            .with_label_values(&[endpoint])
            .set(self.state.lock().remembered_rows() as i64);
        if result.is_ok() && self.progress.baseline_done {
            // Ready once the baseline is saved (a crash before that repeats it), or after
            // a restart once the first poll has read its window.
            self.status.ready.store(true, Ordering::Release);
            self.metrics.ready.set(1);
        }
        *self.status.last.lock() = Some(PollReport {
            kind,
            window,
            finished_at,
            took,
            result: report_result,
            ingested,
        });
        result.map(|()| total)
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

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poller(progress: Progress) -> Poller {
        let graph = crate::source::graph::tests::client("http://127.0.0.1:9/").with_concurrency(8);
        let metrics = ExporterMetrics::register(&prometheus::Registry::new()).unwrap();
        Poller {
            graph: Arc::new(graph),
            state: Default::default(),
            status: Default::default(),
            metrics,
            clock: Clock::system(),
            schedule: Schedule::default(),
            progress,
            store: None,
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
