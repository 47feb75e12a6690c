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

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::metrics::CountingMetrics;
use super::schedule::{PollKind, Progress, Schedule};
use crate::counting::state::{Ingest, TenantState};
use crate::counting::store::StateStore;
use crate::source::graph::{CallWindow, GraphClient, GraphError, WindowRead};
use crate::source::CallLog;
use tve_clock::Clock;

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

/// Polls one source: a tenant's calls of the call-log function `L`.
pub struct Poller<L: CallLog> {
    pub graph: Arc<GraphClient>,
    pub state: Arc<Mutex<TenantState<L>>>,
    pub status: Arc<PollerStatus>,
    pub metrics: CountingMetrics,
    pub clock: Clock,
    pub schedule: Schedule,
    pub progress: Progress,
    /// `--state.path`: where the state is committed after every poll.
    pub store: Option<StateStore<L>>,
}

impl<L: CallLog> Poller<L> {
    /// The next poll and its window, at `now`.
    pub fn plan(&self, now: DateTime<Utc>) -> (PollKind, CallWindow) {
        self.schedule.plan(&self.progress, now)
    }

    /// The sub-windows to read for `window` (see [`Progress::sub_windows`]).
    pub fn sub_windows(&self, kind: PollKind, window: CallWindow) -> Vec<CallWindow> {
        self.progress
            .sub_windows(kind, window, self.graph.concurrency())
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
        let (kind, window) = self.plan(self.clock.now());
        let parts = self.sub_windows(kind, window);
        let started = Instant::now();
        tracing::debug!(kind = kind.as_str(), from = %window.from, to = %window.to, parts = parts.len(), "poll starting");
        let read = self.read_parts(kind, parts).await;
        let took = started.elapsed();
        self.metrics
            .poll_duration
            .with_label_values(&[L::FUNCTION.name(), kind.as_str()])
            .observe(took.as_secs_f64());
        let finished_at = self.clock.now();
        let PartsRead {
            total,
            ingested,
            result,
            unfinished,
        } = read;
        let outcome = match &result {
            Ok(()) => Ok(()),
            Err(_) => Err(unfinished),
        };
        let horizon = self
            .progress
            .finish(kind, window, outcome, self.schedule.lookback);
        let report_result = match &result {
            Ok(()) => {
                let forgotten = horizon.map_or(0, |h| self.state.lock().forget_before(h));
                self.succeeded(kind, &total, ingested, forgotten, took, finished_at);
                Ok(total)
            }
            Err(error) => {
                self.failed(kind, error, &total, ingested);
                Err(error.to_string())
            }
        };
        self.persist().await;
        self.metrics
            .remembered_rows
            .with_label_values(&[L::FUNCTION.name()])
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

    /// Reads `parts` with up to `--graph.concurrency` at a time, counting their rows as
    /// pages arrive.
    async fn read_parts(&self, kind: PollKind, parts: Vec<CallWindow>) -> PartsRead {
        let mode = match kind {
            PollKind::Baseline => Ingest::RememberOnly,
            PollKind::Recent | PollKind::Late | PollKind::Sweep => Ingest::Count,
        };
        let graph = &self.graph;
        let state = &self.state;
        let clock = &self.clock;
        // Each row is counted once whichever sub-window returns it: the state keeps the
        // ids under its lock, and sub-windows are half-open so they share no start.
        let reads = parts.into_iter().map(|part| async move {
            let mut ingested = 0;
            let read = graph
                .read_window(L::FUNCTION, part, |page| {
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
        let mut out = PartsRead {
            total: WindowRead::default(),
            ingested: 0,
            result: Ok(()),
            unfinished: Vec::new(),
        };
        while let Some((part, read, part_ingested)) = reads.next().await {
            out.ingested += part_ingested;
            match read {
                Ok(read) => {
                    out.total.pages += read.pages;
                    out.total.rows += read.rows;
                }
                Err(error) => {
                    out.unfinished.push(part);
                    if out.result.is_ok() {
                        out.result = Err(error);
                    }
                }
            }
        }
        out
    }

    fn succeeded(
        &self,
        kind: PollKind,
        total: &WindowRead,
        ingested: u64,
        forgotten: usize,
        took: Duration,
        finished_at: DateTime<Utc>,
    ) {
        self.metrics
            .last_success
            .with_label_values(&[L::FUNCTION.name()])
            .set(finished_at.timestamp_millis() as f64 / 1e3);
        *self.status.last_success.lock() = Some(finished_at);
        if kind == PollKind::Baseline {
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
    }

    fn failed(&self, kind: PollKind, error: &GraphError, total: &WindowRead, ingested: u64) {
        self.metrics
            .poll_errors
            .with_label_values(&[L::FUNCTION.name(), error.reason().as_str()])
            .inc();
        tracing::error!(
            kind = kind.as_str(), %error, rows = total.rows, new = ingested,
            "poll failed; counted rows are kept and the window is read again at the next poll"
        );
    }
}

/// What reading a poll's sub-windows came to.
struct PartsRead {
    total: WindowRead,
    ingested: u64,
    /// The first failure, if any part failed.
    result: Result<(), GraphError>,
    /// The parts that failed, in the order they finished.
    unfinished: Vec<CallWindow>,
}
