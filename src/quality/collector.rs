//! The collector's loop: takes the established calls counting hands it
//! ([`EstablishedCalls`]), fetches each record when it is due, and counts it once.
//!
//! Each round fetches the records due now (within the call-record budget, through the
//! tenant's Graph client), then writes every outcome in one transaction: records counted
//! (their streams into the totals), records to try again later, records given up. Only
//! then does memory follow and `/metrics` show the new totals, so a failed write or a crash
//! mid-round costs at most a second fetch, never a second count.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tve_clock::Clock;

use super::metrics::QualityMetrics;
use super::queue::{Admitted, GiveUp, Pending, Queue, QueueOptions};
use super::record::{read_record, read_session_page, RecordStreams};
use super::store::{Batch, QualityStore};
use super::totals::QualityTotals;
use crate::counting::state::RowKey;
use crate::counting::store::EstablishedCalls;
use crate::source::graph::{CallRecordResponse, GraphClient, GraphError};
use crate::source::EstablishedCall;

/// Records fetched in one round at most: the rest wait for the next.
const ROUND_LIMIT: usize = 256;
/// How often settled records are looked through for those whose call left the lookback
/// (clock ms): a day's records are a hundred thousand ids.
const EXPIRY_EVERY_MS: i64 = 5 * 60 * 1000;
/// Session pages of one record at most (a call has a few sessions, 60 to a page): more
/// means a nextLink loop.
const MAX_SESSION_PAGES: usize = 100;

/// The call-quality collector of one tenant.
#[derive(Clone)]
pub struct CallQuality {
    shared: Arc<Shared>,
}

struct Shared {
    graph: Arc<GraphClient>,
    clock: Clock,
    options: QueueOptions,
    inner: Mutex<Inner>,
    store: Option<Arc<QualityStore>>,
    metrics: QualityMetrics,
    /// What `/metrics` shows: totals as last written, and their generation.
    exposed: Mutex<(u64, Arc<QualityTotals>)>,
}

struct Inner {
    queue: Queue,
    totals: QualityTotals,
    /// Calls handed over but not yet written to the file.
    unheld: Vec<EstablishedCall>,
    /// When settled records were last looked through for expiry (clock ms).
    expiry_checked_ms: Option<i64>,
}

impl Inner {
    /// Whether settled records are due to be looked through for expiry (then noted as
    /// done): every [`EXPIRY_EVERY_MS`], since it walks every settled id.
    fn expiry_due(&mut self, now_ms: i64) -> bool {
        let due = self
            .expiry_checked_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= EXPIRY_EVERY_MS);
        if due {
            self.expiry_checked_ms = Some(now_ms);
        }
        due
    }
}

/// What one round of fetches came to.
#[derive(Default)]
struct Outcome {
    batch: Batch,
    totals: QualityTotals,
    given_up: Vec<GiveUp>,
    counted: u64,
    /// The ids fetched (not skipped).
    fetched: Vec<String>,
}

/// The streams not placed are saved with the totals: the counter follows them, from the
/// saved count on (never back: a tenant restarted in the process keeps its counter).
fn show_not_placed(metrics: &QualityMetrics, totals: &QualityTotals) {
    metrics
        .not_placed
        .inc_by(totals.not_placed.saturating_sub(metrics.not_placed.get()));
}

/// What fetching one record came to.
enum Fetched {
    Counted(RecordStreams),
    NotFound,
    /// Worth trying again later (throttled beyond retries, Graph down, no permission yet).
    Failed(GraphError),
    /// Not fetched: the exporter is stopping.
    Skipped,
    /// A record no retry will make readable.
    Unusable(String),
}

impl CallQuality {
    /// The collector, starting from what `store` held (or empty without `--state.path`).
    pub fn new(
        graph: Arc<GraphClient>,
        clock: Clock,
        options: QueueOptions,
        restored: Option<(QualityStore, Queue, QualityTotals)>,
        metrics: QualityMetrics,
    ) -> Self {
        let (store, queue, totals) = match restored {
            Some((store, queue, totals)) => (Some(Arc::new(store)), queue, totals),
            None => (None, Queue::default(), QualityTotals::default()),
        };
        metrics.pending.set(queue.pending.len() as i64);
        show_not_placed(&metrics, &totals);
        let exposed = Mutex::new((0, Arc::new(totals.clone())));
        CallQuality {
            shared: Arc::new(Shared {
                graph,
                clock,
                options,
                inner: Mutex::new(Inner {
                    queue,
                    totals,
                    unheld: Vec::new(),
                    expiry_checked_ms: None,
                }),
                store,
                metrics,
                exposed,
            }),
        }
    }

    /// The totals `/metrics` shows and their generation.
    pub fn snapshot(&self) -> (u64, Arc<QualityTotals>) {
        let exposed = self.shared.exposed.lock();
        (exposed.0, Arc::clone(&exposed.1))
    }

    pub fn generation(&self) -> u64 {
        self.shared.exposed.lock().0
    }

    /// Records pending now.
    pub fn pending(&self) -> usize {
        self.shared.inner.lock().queue.pending.len()
    }

    /// Fetches due records until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let wait = self.shared.options.wait;
        let tick = (wait / 8).clamp(Duration::from_millis(50), Duration::from_secs(10));
        let tick = self.shared.clock.real_duration(tick);
        loop {
            // Not cut short: a record fetched is written before the exporter stops, so that
            // a restart does not fetch it again.
            self.round(&shutdown).await;
            if shutdown.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
        }
    }

    /// Fetches the records due now and writes what came of them; once `shutdown` is
    /// cancelled, finishes the fetches under way and starts no other.
    pub async fn round(&self, shutdown: &CancellationToken) {
        let shared = &self.shared;
        let due = shared
            .inner
            .lock()
            .queue
            .due(shared.clock.now().timestamp_millis(), ROUND_LIMIT);
        if due.is_empty() {
            return self.forget_expired().await;
        }
        let fetched: Vec<(String, Pending, Fetched)> = futures_util::stream::iter(due)
            .map(|(id, pending)| async move {
                let fetched = if shutdown.is_cancelled() {
                    Fetched::Skipped
                } else {
                    self.fetch(&id).await
                };
                (id, pending, fetched)
            })
            .buffer_unordered(shared.graph.concurrency())
            .collect()
            .await;
        let now_ms = shared.clock.now().timestamp_millis();
        let outcome = self.settle(fetched, now_ms);
        // Only this loop settles records and changes the totals; `hold` meanwhile adds
        // other ids only (those pending are `Known` to it).
        let Some(batch) = self.write(outcome.batch).await else {
            // Not fetched again at the next tick: a failing disk must not become a storm of
            // requests to Graph.
            let until = now_ms.saturating_add(Queue::first_retry_ms(&shared.options));
            shared.inner.lock().queue.postpone(&outcome.fetched, until);
            return;
        };
        let mut inner = shared.inner.lock();
        apply(&mut inner.queue, &batch);
        inner.totals = outcome.totals;
        let metrics = &shared.metrics;
        metrics.records_fetched.inc_by(outcome.counted);
        show_not_placed(metrics, &inner.totals);
        for reason in outcome.given_up {
            metrics.given_up.with_label_values(&[reason.as_str()]).inc();
        }
        metrics.pending.set(inner.queue.pending.len() as i64);
        if outcome.counted > 0 {
            let mut exposed = shared.exposed.lock();
            *exposed = (exposed.0 + 1, Arc::new(inner.totals.clone()));
        }
    }

    /// What the fetches of a round come to, to be written in one transaction.
    fn settle(&self, fetched: Vec<(String, Pending, Fetched)>, now_ms: i64) -> Outcome {
        let shared = &self.shared;
        let mut inner = shared.inner.lock();
        let mut out = Outcome {
            totals: inner.totals.clone(),
            ..Outcome::default()
        };
        let batch = &mut out.batch;
        for (id, pending, fetched) in fetched {
            if !matches!(fetched, Fetched::Skipped) {
                out.fetched.push(id.clone());
            }
            let settle = |batch: &mut Batch| {
                batch.pending_remove.push(id.clone());
                let until = Queue::settled_until(pending.end_ms, &shared.options);
                batch.settled_put.push((RowKey::from_id(&id), until));
            };
            match fetched {
                Fetched::Skipped => {}
                Fetched::Counted(streams) => {
                    out.totals.count(&pending.trunk_fqdn, &streams);
                    out.counted += 1;
                    settle(batch);
                }
                Fetched::Unusable(why) => {
                    tracing::warn!(record = %id, reason = %why, "a call record cannot be read; it is given up (teams_voice_exporter_call_records_given_up_total{{reason=\"error\"}})");
                    out.given_up.push(GiveUp::Error);
                    settle(batch);
                }
                Fetched::NotFound | Fetched::Failed(_) => {
                    if let Fetched::Failed(error) = &fetched {
                        tracing::warn!(record = %id, %error, "cannot fetch a call record; it is tried again later");
                    }
                    let transient = matches!(fetched, Fetched::Failed(_));
                    match Queue::retry(&pending, now_ms, transient, &shared.options) {
                        Some(next) => batch.pending_put.push((id, next)),
                        None => {
                            out.given_up.push(match fetched {
                                Fetched::NotFound => GiveUp::NotPublished,
                                _ => GiveUp::Error,
                            });
                            settle(batch);
                        }
                    }
                }
            }
        }
        if out.counted > 0 {
            batch.totals = Some(out.totals.save());
        }
        if inner.expiry_due(now_ms) {
            batch.settled_remove = inner.queue.expired(now_ms);
        }
        out
    }

    async fn forget_expired(&self) {
        let now_ms = self.shared.clock.now().timestamp_millis();
        let expired = {
            let mut inner = self.shared.inner.lock();
            if !inner.expiry_due(now_ms) {
                return;
            }
            inner.queue.expired(now_ms)
        };
        if expired.is_empty() {
            return;
        }
        let batch = Batch {
            settled_remove: expired,
            ..Batch::default()
        };
        if let Some(batch) = self.write(batch).await {
            apply(&mut self.shared.inner.lock().queue, &batch);
        }
    }

    /// Writes `batch` to the file, if there is one, off the async threads (the commit waits
    /// for the disk); `None` (logged, counted) if it failed.
    async fn write(&self, batch: Batch) -> Option<Batch> {
        let Some(store) = &self.shared.store else {
            return Some(batch);
        };
        if batch.is_empty() {
            return Some(batch);
        }
        let writing = Arc::clone(store);
        let written = tokio::task::spawn_blocking(move || {
            let result = writing.write(&batch);
            (batch, result)
        })
        .await;
        match written {
            Ok((batch, Ok(()))) => Some(batch),
            Ok((_, Err(error))) => {
                self.shared.metrics.state_write_errors.inc();
                tracing::error!(path = %store.path().display(), %error, "cannot save the call-quality state; the records of this round are fetched again later and nothing is counted until it can be saved. Make the file writable or free disk space");
                None
            }
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // The runtime is shutting down: the write either finished or never began, and
            // what is not known to be written is fetched again at the next start.
            Err(_) => None,
        }
    }

    async fn fetch(&self, id: &str) -> Fetched {
        let graph = &self.shared.graph;
        let mut url = graph.call_record_url(id);
        let mut streams = RecordStreams::default();
        let mut links = SessionLinks::default();
        loop {
            let body = match graph.get_call_record(&url).await {
                Ok(CallRecordResponse::Found(body)) => body,
                // A session page gone missing: the record is being republished.
                Ok(CallRecordResponse::NotFound) => return Fetched::NotFound,
                Err(error) => return classify(error),
            };
            let read = if links.pages() == 0 {
                read_record(&body)
            } else {
                read_session_page(&body)
            };
            let (more, next) = match read {
                Ok(read) => read,
                Err(error) => return Fetched::Unusable(error.to_string()),
            };
            streams.placed.extend(more.placed);
            streams.not_placed += more.not_placed;
            let Some(link) = next else {
                return Fetched::Counted(streams);
            };
            let next = match graph.call_record_link(&link, id) {
                Ok(next) => next,
                Err(error) => return Fetched::Unusable(error.to_string()),
            };
            if let Err(why) = links.follow(&url, next.clone()) {
                return Fetched::Unusable(why);
            }
            url = next;
        }
    }
}

/// The session pages of one record read so far: a nextLink that leads back to one of
/// them, or more than [`MAX_SESSION_PAGES`], is a loop in Graph's answer, never followed.
#[derive(Default)]
struct SessionLinks {
    read: HashSet<reqwest::Url>,
}

impl SessionLinks {
    fn pages(&self) -> usize {
        self.read.len()
    }

    /// Notes `read` as read and checks that `next` may be followed.
    fn follow(&mut self, read: &reqwest::Url, next: reqwest::Url) -> Result<(), String> {
        self.read.insert(read.clone());
        if self.read.contains(&next) {
            return Err("a sessions nextLink that leads back to a page already read (a loop in Graph's answer; the record is given up, nothing to do unless it recurs)".into());
        }
        if self.read.len() >= MAX_SESSION_PAGES {
            return Err(format!("more than {MAX_SESSION_PAGES} session pages (a call has a few sessions; this is a nextLink loop in Graph's answer, and the record is given up: report it if it recurs)"));
        }
        Ok(())
    }
}

fn classify(error: GraphError) -> Fetched {
    match error {
        GraphError::ForeignNextLink { .. }
        | GraphError::BadNextLink(_)
        | GraphError::ResponseTooLarge { .. }
        | GraphError::TooManyRows { .. }
        | GraphError::Refused { status: 400, .. } => Fetched::Unusable(error.to_string()),
        other => Fetched::Failed(other),
    }
}

fn apply(queue: &mut Queue, batch: &Batch) {
    for id in &batch.pending_remove {
        queue.pending.remove(id);
    }
    for (id, pending) in &batch.pending_put {
        queue.pending.insert(id.clone(), pending.clone());
    }
    for (key, until) in &batch.settled_put {
        queue.settled.insert(key.clone(), *until);
    }
    for key in &batch.settled_remove {
        queue.settled.remove(key);
    }
}

impl EstablishedCalls for CallQuality {
    fn hold(&self, calls: Vec<EstablishedCall>) -> Result<(), String> {
        let shared = &self.shared;
        let mut inner = shared.inner.lock();
        inner.unheld.extend(calls);
        if inner.unheld.is_empty() {
            return Ok(());
        }
        let mut batch = Batch::default();
        let mut seen = HashSet::new();
        let mut full = 0u64;
        let room = shared
            .options
            .max_pending
            .saturating_sub(inner.queue.pending.len());
        for call in &inner.unheld {
            if !seen.insert(call.correlation_id.as_str()) {
                continue;
            }
            match inner.queue.admit(call, &shared.options) {
                Admitted::Known => {}
                Admitted::Queued(pending) if batch.pending_put.len() < room => {
                    batch
                        .pending_put
                        .push((call.correlation_id.clone(), pending));
                }
                Admitted::Queued(_) | Admitted::Full => {
                    full += 1;
                    let until = Queue::settled_until(call.end.timestamp_millis(), &shared.options);
                    batch
                        .settled_put
                        .push((RowKey::from_id(&call.correlation_id), until));
                }
            }
        }
        if let Some(store) = &shared.store {
            if let Err(error) = store.write(&batch) {
                shared.metrics.state_write_errors.inc();
                return Err(format!("{}: {error}", store.path().display()));
            }
        }
        inner.unheld.clear();
        apply(&mut inner.queue, &batch);
        if full > 0 {
            tracing::warn!(
                max_pending = shared.options.max_pending,
                records = full,
                "the call-record queue is full; the records of newly counted calls are given up. Graph may not be publishing them: check teams_voice_exporter_call_records_given_up_total, or raise --call-quality.max-pending"
            );
            shared
                .metrics
                .given_up
                .with_label_values(&[GiveUp::QueueFull.as_str()])
                .inc_by(full);
        }
        shared.metrics.pending.set(inner.queue.pending.len() as i64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: usize) -> reqwest::Url {
        reqwest::Url::parse(&format!(
            "https://graph.microsoft.com/v1.0/communications/callRecords/x/sessions?$skiptoken={n}"
        ))
        .unwrap()
    }

    #[test]
    fn session_links_that_loop_are_not_followed() {
        let mut links = SessionLinks::default();
        links.follow(&page(0), page(1)).unwrap();
        links.follow(&page(1), page(2)).unwrap();
        assert!(
            links.follow(&page(2), page(0)).is_err(),
            "back to the first"
        );
        let mut links = SessionLinks::default();
        assert!(links.follow(&page(0), page(0)).is_err(), "to itself");
    }

    #[test]
    fn settled_records_are_looked_through_every_few_minutes_only() {
        let mut inner = Inner {
            queue: Queue::default(),
            totals: QualityTotals::default(),
            unheld: Vec::new(),
            expiry_checked_ms: None,
        };
        assert!(inner.expiry_due(1_000), "at the first round");
        assert!(!inner.expiry_due(1_000 + 10_000), "not at the next tick");
        assert!(!inner.expiry_due(1_000 + EXPIRY_EVERY_MS - 1));
        assert!(inner.expiry_due(1_000 + EXPIRY_EVERY_MS));
    }

    #[test]
    fn session_pages_are_bounded() {
        let mut links = SessionLinks::default();
        for n in 0..MAX_SESSION_PAGES - 1 {
            links.follow(&page(n), page(n + 1)).unwrap();
        }
        assert_eq!(links.pages(), MAX_SESSION_PAGES - 1);
        let error = links
            .follow(&page(MAX_SESSION_PAGES - 1), page(MAX_SESSION_PAGES))
            .unwrap_err();
        assert!(error.contains("more than 100 session pages"), "{error}");
    }
}
