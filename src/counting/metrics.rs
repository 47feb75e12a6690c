//! The self-metrics of counting for one tenant: how polls went (errors by reason, duration
//! by kind, the last success), how many row ids are remembered, and failed saves of the
//! state.
//!
//! Recorded by the poller and the store; each tenant has its own set, to which
//! [`crate::exposition`] adds the `tenant` label as it renders them.

use prometheus::core::Collector;
use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
};

use super::schedule::PollKind;
use crate::source::graph::PollErrorReason;
use crate::source::Function;

/// The counting layer's metrics of one tenant, shared by the pollers of its sources.
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
    pub state_write_errors: IntCounter,
}

impl CountingMetrics {
    /// Creates the metrics, registered nowhere: [`CountingMetrics::collectors`] gives them
    /// to whoever renders them.
    pub fn new() -> prometheus::Result<Self> {
        let p = |name: &str| format!("teams_voice_exporter_{name}");
        Ok(CountingMetrics {
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
            state_write_errors: IntCounter::new(p("state_write_errors_total"), "Failed attempts to save the state to --state.path (a read-only or full disk, say); the state is kept in memory and saved at the next successful attempt.")?,
        })
    }

    /// Every metric, as collectors.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.last_success.clone()),
            Box::new(self.poll_errors.clone()),
            Box::new(self.poll_duration.clone()),
            Box::new(self.polls_delayed.clone()),
            Box::new(self.counting_since.clone()),
            Box::new(self.schedule_pages_per_hour.clone()),
            Box::new(self.budget_utilisation.clone()),
            Box::new(self.remembered_rows.clone()),
            Box::new(self.state_write_errors.clone()),
        ]
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
    }
}
