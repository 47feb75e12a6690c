//! The collector's self-metrics for one tenant: records counted, pending, given up (by
//! reason) and streams that could not be placed. Its requests show in the Graph request
//! metrics under `endpoint="callRecords"`; [`crate::exposition`] adds the `tenant` label.

use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

use super::queue::GiveUp;

/// The collector's metrics of one tenant.
#[derive(Clone)]
pub struct QualityMetrics {
    pub records_fetched: IntCounter,
    pub pending: IntGauge,
    pub given_up: IntCounterVec,
    pub not_placed: IntCounter,
    pub state_write_errors: IntCounter,
}

impl QualityMetrics {
    pub fn new() -> prometheus::Result<Self> {
        let p = |name: &str| format!("teams_voice_exporter_{name}");
        let metrics = QualityMetrics {
            records_fetched: IntCounter::new(p("call_records_fetched_total"), "Call records fetched and counted into the teams_direct_routing_audio_* metrics (--collector.call-quality), each once.")?,
            pending: IntGauge::new(p("call_records_pending"), "Call records of counted calls waiting for Graph to publish them, or for a retry (at most --call-quality.max-pending).")?,
            given_up: IntCounterVec::new(
                Opts::new(p("call_records_given_up_total"), "Call records never counted, by reason: not_published (still 404 after --call-quality.give-up), queue_full (--call-quality.max-pending reached), error (a record Graph should not have sent, or 3 failed fetches in a row at or past give-up)."),
                &["reason"],
            )?,
            not_placed: IntCounter::new(p("call_quality_streams_not_placed_total"), "Audio streams of call records whose segment does not join one Teams client and the trunk side (a mediation server or gateway), so their direction relative to the trunk is unknown; not in the audio metrics. Saved with them beside --state.path.")?,
            state_write_errors: IntCounter::new(p("call_quality_state_write_errors_total"), "Failed writes of the call-quality state file beside --state.path; counting waits until it can be written.")?,
        };
        for reason in GiveUp::ALL {
            metrics.given_up.with_label_values(&[reason.as_str()]);
        }
        Ok(metrics)
    }

    /// Every metric, as collectors.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.records_fetched.clone()),
            Box::new(self.pending.clone()),
            Box::new(self.given_up.clone()),
            Box::new(self.not_placed.clone()),
            Box::new(self.state_write_errors.clone()),
        ]
    }
}
