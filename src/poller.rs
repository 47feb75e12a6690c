//! The background fetcher: which call windows to read, and when.
//!
//! At first start it reads the whole lookback once and only remembers the rows (the
//! baseline), so counters start at zero. Then every poll interval it reads the recent window,
//! widened back to the end of the last complete read if polls failed meanwhile, so an outage
//! leaves no silent gap; and every sweep interval it reads the whole lookback to catch rows
//! Graph published late. Rows are counted by [`TenantState`], exactly once, whatever windows
//! overlap. A failed poll is counted, logged with what to do, and retried at the next tick.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::graph::{CallWindow, Function, GraphClient, GraphError, WindowRead, MAX_WINDOW};
use crate::metrics::ExporterMetrics;
use crate::state::store::StateStore;
use crate::state::{Ingest, TenantState};

/// When and how far back to read.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub poll_interval: Duration,
    pub recent_window: Duration,
    pub sweep_interval: Duration,
    pub lookback: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            poll_interval: Duration::from_secs(60),
            recent_window: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(3600),
            lookback: Duration::from_secs(72 * 3600),
        }
    }
}

/// What a poll reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollKind {
    /// First start: the lookback, remembered but not counted.
    Baseline,
    /// The recent window.
    Recent,
    /// The whole lookback, for late rows.
    Sweep,
}

impl PollKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PollKind::Baseline => "baseline",
            PollKind::Recent => "recent",
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
}

impl Progress {
    /// The saved progress of an earlier run, with a sweep due at once: rows that appeared
    /// while the exporter was down are counted by the first poll.
    pub fn resumed(self) -> Progress {
        Progress {
            last_sweep: None,
            sweep_failed: false,
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
        let sweep_due = self
            .progress
            .last_sweep
            .is_none_or(|at| now - at >= to_chrono(self.schedule.sweep_interval));
        let kind = if !self.progress.baseline_done {
            PollKind::Baseline
        } else if sweep_due && !self.progress.sweep_failed {
            PollKind::Sweep
        } else {
            PollKind::Recent
        };
        let from = match kind {
            PollKind::Baseline | PollKind::Sweep => lookback_start,
            PollKind::Recent => {
                let recent = now - to_chrono(self.schedule.recent_window);
                self.progress
                    .covered_until
                    .map_or(recent, |covered| covered.min(recent))
                    .max(lookback_start)
            }
        };
        let from = from.max(self.progress.forgotten_before.unwrap_or(from));
        (
            kind,
            CallWindow {
                from,
                to: now.max(from),
            },
        )
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
            PollKind::Recent | PollKind::Sweep => Ingest::Count,
        };
        let started = Instant::now();
        tracing::debug!(kind = kind.as_str(), from = %window.from, to = %window.to, "poll starting");
        let mut ingested = 0;
        let mut total = WindowRead::default();
        let mut result = Ok(());
        for part in window.split(MAX_WINDOW) {
            let read = self
                .graph
                .read_window(function, part, |page| {
                    let now = self.clock.now();
                    let outcome = self.state.lock().ingest(
                        page.value.iter().map(|raw| raw.get()),
                        mode,
                        now,
                        part.from,
                    );
                    ingested += outcome.ingested;
                })
                .await;
            match read {
                Ok(read) => {
                    total.pages += read.pages;
                    total.rows += read.rows;
                }
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        let took = started.elapsed();
        self.metrics
            .poll_duration
            .with_label_values(&[endpoint, kind.as_str()])
            .observe(took.as_secs_f64());
        let finished_at = self.clock.now();

        if kind != PollKind::Baseline {
            self.progress.sweep_failed = kind == PollKind::Sweep && result.is_err();
        }
        let report_result = match &result {
            Ok(()) => {
                self.progress.covered_until = Some(window.to);
                if matches!(kind, PollKind::Baseline | PollKind::Sweep) {
                    self.progress.last_sweep = Some(window.to);
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

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poller(progress: Progress) -> Poller {
        let graph = crate::graph::tests::client("http://127.0.0.1:9/");
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
    fn recent_window_then_sweep_when_due() {
        let mut p = poller(Progress {
            baseline_done: true,
            last_sweep: Some(at("2026-11-27T09:30:00Z")),
            covered_until: Some(at("2026-11-27T09:59:00Z")),
            ..Progress::default()
        });
        let (kind, window) = p.plan(at("2026-11-27T10:00:00Z"));
        assert_eq!(kind, PollKind::Recent);
        assert_eq!(window.from, at("2026-11-27T09:00:00Z"));
        p.progress.last_sweep = Some(at("2026-11-27T09:00:00Z"));
        assert_eq!(p.plan(at("2026-11-27T10:00:00Z")).0, PollKind::Sweep);
    }

    #[test]
    fn recent_window_reaches_back_over_failed_polls() {
        let p = poller(Progress {
            baseline_done: true,
            last_sweep: Some(at("2026-11-27T09:59:00Z")),
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
            last_sweep: Some(at("2026-11-27T08:00:00Z")),
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
        });
        // The clock stepped back ten minutes: the sweep must not re-read forgotten rows.
        let (kind, window) = p.plan(at("2026-11-27T09:50:00Z"));
        assert_eq!(kind, PollKind::Sweep);
        assert_eq!(window.from, at("2026-11-24T10:00:00Z"));
    }
}
