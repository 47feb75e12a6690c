//! The self-metrics of counting: how polls went (errors by reason, duration by kind, the
//! last success), how many row ids are remembered, readiness, and failed saves of the state.
//!
//! Recorded by the poller and the store, registered by [`crate::exposition`] with the rest.

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::schedule::PollKind;
use crate::source::graph::PollErrorReason;
use crate::source::Function;

/// The counting layer's metrics, shared by the pollers of every source.
#[derive(Clone)]
pub struct CountingMetrics {
    pub last_success: GaugeVec,
    pub poll_errors: IntCounterVec,
    pub poll_duration: HistogramVec,
    pub polls_delayed: IntCounterVec,
    pub counting_since: GaugeVec,
    pub schedule_pages_per_hour: GaugeVec,
    pub budget_utilisation: GaugeVec,
    pub remembered_rows: IntGaugeVec,
    pub ready: IntGauge,
    pub poll_interval: Gauge,
    pub state_write_errors: IntCounter,
    /// Sources initialised whose first poll has not been saved yet: `ready` is 1 once none
    /// is left, as `/-/ready` says.
    sources_not_ready: Arc<AtomicUsize>,
}

impl CountingMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let p = |name: &str| format!("teams_voice_exporter_{name}");
        let metrics = CountingMetrics {
            last_success: GaugeVec::new(
                Opts::new(p("last_success_timestamp_seconds"), "Unix time of the last poll that read its whole call window."),
                &["endpoint"],
            )?,
            poll_errors: IntCounterVec::new(
                Opts::new(p("poll_errors_total"), "Polls that failed to read their whole call window, by reason."),
                &["endpoint", "reason"],
            )?,
            poll_duration: HistogramVec::new(
                HistogramOpts::new(p("poll_duration_seconds"), "Time a poll took, by kind: recent window, late window, or sweep of the lookback.")
                    .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0]),
                &["endpoint", "kind"],
            )?,
            polls_delayed: IntCounterVec::new(
                Opts::new(p("polls_delayed_total"), "Polls that started later than their interval asked: a recent poll after one that outlasted --poll.interval, a late poll or sweep that waited for another long read. Windows reach back, so nothing is lost, only counted later."),
                &["endpoint", "kind"],
            )?,
            counting_since: GaugeVec::new(
                Opts::new(p("counting_since_timestamp_seconds"), "Unix time from which calls are counted: one recent window before the first start (kept across restarts with --state.path, then moved on as calls leave the lookback). Calls that started earlier are history and are not counted."),
                &["endpoint"],
            )?,
            schedule_pages_per_hour: GaugeVec::new(
                Opts::new(p("schedule_pages_per_hour"), "Graph pages an hour the poll schedule needs, by kind, at the call rate seen so far."),
                &["endpoint", "kind"],
            )?,
            budget_utilisation: GaugeVec::new(
                Opts::new(p("schedule_budget_utilisation_ratio"), "Pages an hour the poll schedule needs (with a full lookback) over the requests an hour the request budget allows (--graph.rate-limit, or the source's share of --graph.tenant-rate-limit if smaller); above 1 the schedule does not fit and sweeps are stretched first."),
                &["endpoint"],
            )?,
            remembered_rows: IntGaugeVec::new(
                Opts::new(p("remembered_rows"), "Row ids remembered for exactly-once counting (until their call start leaves the lookback)."),
                &["endpoint"],
            )?,
            ready: IntGauge::new(p("ready"), "1 once a poll of every source has read its whole window (what /-/ready reports).")?,
            // Alerts need it to tell a stale exporter ("no success for three poll
            // intervals") from a slowly polling one.
            poll_interval: Gauge::new(p("poll_interval_seconds"), "How often the recent window is read (--poll.interval).")?,
            state_write_errors: IntCounter::new(p("state_write_errors_total"), "Failed attempts to save the state to --state.path (a read-only or full disk, say); the state is kept in memory and saved at the next successful attempt.")?,
            sources_not_ready: Arc::default(),
        };
        registry.register(Box::new(metrics.last_success.clone()))?;
        registry.register(Box::new(metrics.poll_errors.clone()))?;
        registry.register(Box::new(metrics.poll_duration.clone()))?;
        registry.register(Box::new(metrics.polls_delayed.clone()))?;
        registry.register(Box::new(metrics.counting_since.clone()))?;
        registry.register(Box::new(metrics.schedule_pages_per_hour.clone()))?;
        registry.register(Box::new(metrics.budget_utilisation.clone()))?;
        registry.register(Box::new(metrics.remembered_rows.clone()))?;
        registry.register(Box::new(metrics.ready.clone()))?;
        registry.register(Box::new(metrics.poll_interval.clone()))?;
        registry.register(Box::new(metrics.state_write_errors.clone()))?;
        Ok(metrics)
    }

    /// Creates the series of `function` at zero, so that alerts and `increase()` see the
    /// first failure and sweep rather than a series appearing from nothing.
    pub fn initialise(&self, function: Function) {
        let endpoint = function.name();
        for reason in PollErrorReason::ALL {
            self.poll_errors
                .with_label_values(&[endpoint, reason.as_str()]);
        }
        // The stale-poll alert allows for the duration of sweeps.
        for kind in PollKind::ALL {
            self.poll_duration
                .with_label_values(&[endpoint, kind.as_str()]);
            self.polls_delayed
                .with_label_values(&[endpoint, kind.as_str()]);
        }
        self.remembered_rows.with_label_values(&[endpoint]);
        self.sources_not_ready.fetch_add(1, Ordering::AcqRel);
    }

    /// A source's first poll has been saved; `ready` turns 1 with the last one.
    pub fn source_ready(&self) {
        let before = self
            .sources_not_ready
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .unwrap_or(0);
        if before <= 1 {
            self.ready.set(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_every_initialised_source_is() {
        let metrics = CountingMetrics::register(&Registry::new()).unwrap();
        metrics.initialise(Function::DirectRoutingCalls);
        metrics.initialise(Function::PstnCalls);
        metrics.source_ready();
        assert_eq!(
            metrics.ready.get(),
            0,
            "one source still polls its first window"
        );
        metrics.source_ready();
        assert_eq!(metrics.ready.get(), 1);
    }
}
