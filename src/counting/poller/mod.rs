//! The background fetcher: which call windows to read, and when.
//!
//! At first start nothing is read before counting begins: the boundary is set one recent
//! window before the start (see [`Progress::first_start`]), so the exporter is ready after
//! its first recent poll, in seconds, whatever the lookback holds. Then two lanes run side
//! by side. The recent lane reads the recent window every poll interval, widened back to
//! the end of the last complete read if polls failed meanwhile, so an outage leaves no
//! silent gap. The long-read lane reads the late window every late interval (the hours in
//! which Graph publishes most of its stragglers) and the whole lookback every sweep
//! interval (rows Graph published days late), one read at a time, newest part first. Both
//! take every request from the tenant's request budget, the recent lane first, so a sweep
//! never holds new calls back; a sweep that fails part-way resumes with the parts it did
//! not finish. Rows are counted by [`TenantState`], exactly once, whatever windows overlap.
//! A failed poll is counted, logged with what to do, and retried at the next tick.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

mod parts;
use parts::PartsRead;

use super::feasibility::{self, Feasibility};
use super::metrics::CountingMetrics;
use super::schedule::{to_chrono, PollKind, Progress, Schedule};
use crate::counting::state::TenantState;
use crate::counting::store::{EstablishedCalls, StateStore};
use crate::source::graph::{CallWindow, GraphClient, GraphError, Priority, WindowRead};
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
    /// A first read has finished, successful or not.
    read_once: AtomicBool,
    last: Mutex<Option<PollReport>>,
    last_success: Mutex<Option<DateTime<Utc>>>,
    counting_since: Mutex<Option<DateTime<Utc>>>,
    feasibility: Mutex<Option<Feasibility>>,
    long_read: Mutex<Option<(PollKind, DateTime<Utc>)>>,
    last_sweep: Mutex<Option<PollReport>>,
}

impl PollerStatus {
    /// True once a poll has read its whole window.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// True once a first poll has finished, whether it read its window or failed: a tenant
    /// that cannot be read (no consent, no permission) must not hold back the readiness
    /// of every other.
    pub fn has_read_once(&self) -> bool {
        self.read_once.load(Ordering::Acquire)
    }

    /// Whether the latest poll read its whole window (false before the first).
    pub fn is_up(&self) -> bool {
        self.last
            .lock()
            .as_ref()
            .is_some_and(|poll| poll.result.is_ok())
    }

    pub fn last_poll(&self) -> Option<PollReport> {
        self.last.lock().clone()
    }

    pub fn last_success(&self) -> Option<DateTime<Utc>> {
        *self.last_success.lock()
    }

    /// The oldest call start counted: the first start's boundary, later the lookback's
    /// start. Earlier calls are not counted.
    pub fn counting_since(&self) -> Option<DateTime<Utc>> {
        *self.counting_since.lock()
    }

    /// The last sweep, complete or not.
    pub fn last_sweep(&self) -> Option<PollReport> {
        self.last_sweep.lock().clone()
    }

    /// The long read (late poll or sweep) running now, and when it started.
    pub fn long_read(&self) -> Option<(PollKind, DateTime<Utc>)> {
        *self.long_read.lock()
    }

    /// The schedule against the request budget, once a poll has shown the call rate.
    pub fn feasibility(&self) -> Option<Feasibility> {
        *self.feasibility.lock()
    }
}

/// Polls one source: a tenant's calls of the call-log function `L`. Built by the caller,
/// then [`Poller::start`]ed.
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
    /// How many sources of the tenant share its request budget (one per function read).
    pub tenant_sources: usize,
}

/// A started poller: the two lanes' shared state.
pub struct Polling<L: CallLog> {
    graph: Arc<GraphClient>,
    state: Arc<Mutex<TenantState<L>>>,
    status: Arc<PollerStatus>,
    metrics: CountingMetrics,
    clock: Clock,
    schedule: Schedule,
    progress: Mutex<Progress>,
    /// Shared with the commit under way, which holds the lock until it is done even when
    /// the poll that started it is cut short by a stop: the stop's final commit then waits
    /// for it, and the file is closed when the poller returns.
    store: Arc<tokio::sync::Mutex<Option<StateStore<L>>>>,
    tenant_sources: usize,
    /// Where the reads in flight start, by lane: rows above the lowest are not forgotten,
    /// since a read in flight may still return them.
    in_flight: Mutex<[Option<DateTime<Utc>>; 2]>,
    /// The call rate each kind of read last showed (rows per hour), for the feasibility
    /// estimate; every read underestimates (rows are still to come), so the largest wins.
    rate_seen: Mutex<[f64; 3]>,
    /// The call-quality collector, which takes every established call counted.
    holder: Option<Arc<dyn EstablishedCalls>>,
}

/// Which lane a read runs in.
#[derive(Debug, Clone, Copy)]
enum Lane {
    Recent = 0,
    Long = 1,
}

impl<L: CallLog> Poller<L> {
    /// Sets where counting begins if this is the first start (and saves it, so a crash
    /// does not move it), and returns the poller ready to run.
    pub async fn start(self) -> Polling<L> {
        let mut progress = self.progress;
        let first_start = !progress.first_start_done;
        if first_start {
            let boundary = progress.first_start(self.clock.now(), &self.schedule);
            tracing::info!(
                counting_since = %boundary.to_rfc3339(),
                "first start: calls that started from one recent window before now are counted when their rows appear; older calls are history and are not counted"
            );
        } else if progress.last_sweep.is_none() {
            progress.restarted(self.clock.now());
        }
        *self.status.counting_since.lock() = progress.forgotten_before;
        if let Some(since) = progress.forgotten_before {
            self.metrics
                .counting_since
                .with_label_values(&[L::FUNCTION.name()])
                .set(since.timestamp() as f64);
        }
        let polling = Polling {
            graph: self.graph,
            state: self.state,
            status: self.status,
            metrics: self.metrics,
            clock: self.clock,
            schedule: self.schedule,
            progress: Mutex::new(progress),
            store: Arc::new(tokio::sync::Mutex::new(self.store)),
            tenant_sources: self.tenant_sources,
            in_flight: Mutex::new([None, None]),
            rate_seen: Mutex::new([0.0; 3]),
            holder: None,
        };
        // Until the first recent poll shows its size, room for two pages a poll.
        polling.reserve_for_recent(2);
        let budget = polling.graph.budget().limits();
        tracing::info!(
            endpoint = L::FUNCTION.name(),
            per_function = %budget.per_function,
            per_tenant = %budget.per_tenant,
            "request budget: every request to Graph waits for room in these sliding windows, recent polls first"
        );
        if first_start {
            polling.persist().await;
        }
        polling
    }

    /// Starts and polls until `shutdown` is cancelled, then saves what was counted.
    pub async fn run(self, shutdown: CancellationToken) {
        self.start().await.run(shutdown).await
    }

    /// [`Poller::run`], handing every established call counted to `holder` (the
    /// call-quality collector) before the commit that saves its row.
    pub async fn run_holding(self, holder: Arc<dyn EstablishedCalls>, shutdown: CancellationToken) {
        self.state.lock().collect_established();
        let mut polling = self.start().await;
        polling.holder = Some(holder);
        polling.run(shutdown).await
    }
}

impl<L: CallLog> Polling<L> {
    /// Runs both lanes until `shutdown` is cancelled, then saves what was counted (a poll
    /// cut short leaves its counted rows remembered with them, so a restart does not count
    /// them again).
    pub async fn run(&self, shutdown: CancellationToken) {
        tokio::join!(self.recent_lane(&shutdown), self.long_lane(&shutdown));
        self.persist().await;
    }

    async fn recent_lane(&self, shutdown: &CancellationToken) {
        let interval = self.clock.real_duration(self.schedule.poll_interval);
        loop {
            let started = Instant::now();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.poll_recent() => {}
            }
            let took = started.elapsed();
            if took > interval {
                // The next poll starts late: its window reaches back, nothing is lost.
                self.delayed(PollKind::Recent);
            }
            // Keep a steady cadence: a slow poll shortens the wait, not the rate.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval.saturating_sub(took)) => {}
            }
        }
    }

    async fn long_lane(&self, shutdown: &CancellationToken) {
        let tick = self.clock.real_duration(self.schedule.poll_interval);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.poll_long() => {}
            }
            // Checked every poll interval: a late poll or sweep starts at most that late,
            // and one that failed is tried again after it.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// Reads the recent window now.
    pub async fn poll_recent(&self) -> Result<WindowRead, GraphError> {
        let window = self
            .schedule
            .recent(&self.progress.lock(), self.clock.now());
        self.poll(Lane::Recent, PollKind::Recent, window).await
    }

    /// Runs the long read that is due now (a late poll or a sweep), if one is.
    pub async fn poll_long(&self) -> Option<(PollKind, Result<WindowRead, GraphError>)> {
        let now = self.clock.now();
        let (kind, window) = {
            let progress = self.progress.lock();
            let (kind, window) = self.schedule.long_read(&progress, now)?;
            let due = self.schedule.due_at(&progress, kind);
            if due.is_some_and(|due| now - due > to_chrono(2 * self.schedule.poll_interval)) {
                self.delayed(kind);
            }
            (kind, window)
        };
        Some((kind, self.poll(Lane::Long, kind, window).await))
    }

    /// The progress so far.
    pub fn progress(&self) -> Progress {
        self.progress.lock().clone()
    }

    pub fn status(&self) -> &Arc<PollerStatus> {
        &self.status
    }

    fn delayed(&self, kind: PollKind) {
        self.metrics
            .polls_delayed
            .with_label_values(&[L::FUNCTION.name(), kind.as_str()])
            .inc();
    }

    async fn poll(
        &self,
        lane: Lane,
        kind: PollKind,
        window: CallWindow,
    ) -> Result<WindowRead, GraphError> {
        let parts = self
            .progress
            .lock()
            .sub_windows(kind, window, self.graph.concurrency());
        self.in_flight.lock()[lane as usize] = Some(window.from);
        let started = Instant::now();
        if let Lane::Long = lane {
            *self.status.long_read.lock() = Some((kind, self.clock.now()));
        }
        tracing::debug!(kind = kind.as_str(), from = %window.from, to = %window.to, parts = parts.len(), "poll starting");
        let priority = match kind {
            PollKind::Recent => Priority::Recent,
            PollKind::Late | PollKind::Sweep => Priority::Background,
        };
        let read = self.read_parts(priority, parts).await;
        let took = started.elapsed();
        if let Lane::Long = lane {
            *self.status.long_read.lock() = None;
        }
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
            .lock()
            .finish(kind, window, outcome, self.schedule.lookback);
        if let Some(horizon) = horizon {
            *self.status.counting_since.lock() = Some(horizon);
            self.metrics
                .counting_since
                .with_label_values(&[L::FUNCTION.name()])
                .set(horizon.timestamp() as f64);
        }
        let report_result = match &result {
            Ok(()) => {
                let forgotten = horizon.map_or(0, |h| self.forget_before(lane, h));
                self.succeeded(kind, window, &total, ingested, forgotten, took, finished_at);
                Ok(total)
            }
            Err(error) => {
                self.in_flight.lock()[lane as usize] = None;
                self.failed(kind, error, &total, ingested);
                Err(error.to_string())
            }
        };
        self.persist().await;
        self.metrics
            .remembered_rows
            .with_label_values(&[L::FUNCTION.name()])
            .set(self.state.lock().remembered_rows() as i64);
        if result.is_ok() {
            // Ready once a read is saved: counting has begun and what it counted survives.
            self.status.ready.store(true, Ordering::Release);
        }
        let report = PollReport {
            kind,
            window,
            finished_at,
            took,
            result: report_result,
            ingested,
        };
        if kind == PollKind::Sweep {
            *self.status.last_sweep.lock() = Some(report.clone());
        }
        *self.status.last.lock() = Some(report);
        self.status.read_once.store(true, Ordering::Release);
        result.map(|()| total)
    }

    /// Forgets rows below `horizon`, but none a read in flight in the other lane may still
    /// return: it was planned earlier and may reach further back.
    fn forget_before(&self, lane: Lane, horizon: DateTime<Utc>) -> usize {
        let floor = {
            let mut in_flight = self.in_flight.lock();
            in_flight[lane as usize] = None;
            in_flight.iter().flatten().min().copied()
        };
        let horizon = floor.map_or(horizon, |floor| floor.min(horizon));
        self.state.lock().forget_before(horizon)
    }

    /// Commits the state, the aggregates and the progress in one transaction, and shows
    /// what it wrote on `/metrics` (see [`StateStore::commit`]): what a scrape has seen is
    /// never lost by a crash. Commits of the two lanes take turns.
    async fn persist(&self) {
        // Owned, so that the blocking commit keeps the lock (and the store) until it ends:
        // a poll cut short by a stop drops this future, not the commit.
        let mut guard = Arc::clone(&self.store).lock_owned().await;
        if guard.is_none() {
            if let Some(holder) = &self.holder {
                // Nothing is saved without --state.path: the calls are only kept in memory.
                let _ = holder.hold(self.state.lock().take_established());
            }
            return;
        }
        let state = Arc::clone(&self.state);
        let progress = self.progress.lock().clone();
        let holder = self.holder.clone();
        let commit = tokio::task::spawn_blocking(move || {
            if let Some(store) = guard.as_mut() {
                store.commit_holding(&state, &progress, holder.as_deref());
            }
        });
        if let Err(error) = commit.await {
            if error.is_panic() {
                std::panic::resume_unwind(error.into_panic());
            }
            // Otherwise the runtime is shutting down: the commit finished or never began.
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn succeeded(
        &self,
        kind: PollKind,
        window: CallWindow,
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
        tracing::info!(
            kind = kind.as_str(), rows = total.rows, pages = total.pages,
            new = ingested, forgotten, took = ?took, "poll complete"
        );
        if kind == PollKind::Recent {
            self.reserve_for_recent(total.pages);
        }
        self.assess(kind, window, total);
    }

    /// Keeps room in every budget window for recent polls of `pages` pages (and one more),
    /// whatever long read runs.
    fn reserve_for_recent(&self, pages: u64) {
        let per_window = self.graph.budget().limits().per_function.per;
        let polls_per_window = (per_window.as_secs_f64()
            / self.schedule.poll_interval.as_secs_f64())
        .ceil()
        .max(1.0);
        let reserve = (pages + 1) as f64 * polls_per_window;
        self.graph
            .budget()
            .reserve_for_recent(L::FUNCTION, reserve.min(f64::from(u32::MAX)) as u32);
    }

    /// Updates the schedule's feasibility from the call rate this read showed, and says so
    /// when the verdict changes.
    fn assess(&self, kind: PollKind, window: CallWindow, total: &WindowRead) {
        let hours = (window.to - window.from).num_seconds() as f64 / 3600.0;
        if hours <= 0.0 {
            return;
        }
        let rate = {
            let mut seen = self.rate_seen.lock();
            seen[kind as usize] = total.rows as f64 / hours;
            seen.iter().copied().fold(0.0, f64::max)
        };
        let assessed = feasibility::assess(
            &self.schedule,
            rate,
            self.graph.budget().limits(),
            self.tenant_sources,
        );
        let endpoint = L::FUNCTION.name();
        for (kind, pages) in [
            (PollKind::Recent, assessed.recent_pages_per_hour),
            (PollKind::Late, assessed.late_pages_per_hour),
            (PollKind::Sweep, assessed.sweep_pages_per_hour),
        ] {
            self.metrics
                .schedule_pages_per_hour
                .with_label_values(&[endpoint, kind.as_str()])
                .set(pages);
        }
        self.metrics
            .budget_utilisation
            .with_label_values(&[endpoint])
            .set(assessed.utilisation());
        let previous = self.status.feasibility.lock().replace(assessed);
        if previous.map(|p| p.verdict) == Some(assessed.verdict) {
            return;
        }
        if assessed.verdict.fits() {
            tracing::info!(
                endpoint,
                "the poll schedule fits the request budget: {assessed}"
            );
        } else {
            tracing::warn!(
                endpoint,
                verdict = ?assessed.verdict,
                "the poll schedule does not fit the request budget: {assessed}; {}",
                assessed.remedy()
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
