//! The call metrics: a tenant's aggregates as metric families, by a prometheus
//! [`Collector`].
//!
//! The aggregates stay plain data that can be saved and restored, and become families only
//! when `/metrics` is rendered. Names, labels and HELP texts here are a contract with
//! dashboards, alerts and users' queries: change them only with care (the golden `/metrics`
//! test shows every change).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

use crate::counting::state::{
    Aggregates, Histogram, TenantState, ARRIVAL_DELAY_BUCKETS, DURATION_BUCKETS, SETUP_BUCKETS,
};
use crate::source::Function;

/// Renders a tenant's call aggregates on every scrape.
pub struct StateCollector {
    state: Arc<Mutex<TenantState>>,
    function: Function,
    descs: Vec<Desc>,
}

struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

const CALLS: Family = Family {
    name: "teams_direct_routing_calls_total",
    help: "Direct Routing calls, counted once when their log row first appears in Graph.",
    labels: &[
        "trunk_fqdn",
        "call_type",
        "final_sip_code",
        "successful",
        "media_path_location",
    ],
};
const FAILURES: Family = Family {
    name: "teams_direct_routing_call_failures_total",
    help: "Direct Routing calls that were not established, by final SIP code and Microsoft's call end sub-reason.",
    labels: &["trunk_fqdn", "final_sip_code", "call_end_sub_reason"],
};
const DURATION: Family = Family {
    name: "teams_direct_routing_call_duration_seconds",
    help: "Duration of established Direct Routing calls.",
    labels: &["trunk_fqdn", "call_type"],
};
const SETUP: Family = Family {
    name: "teams_direct_routing_call_setup_seconds",
    help: "Time to establish Direct Routing calls (startDateTime minus inviteDateTime, ringing included), established calls only.",
    labels: &["trunk_fqdn", "call_type"],
};
const INGESTED: Family = Family {
    name: "teams_voice_exporter_rows_ingested_total",
    help: "Rows counted into the call metrics: each row once, the first time it was seen.",
    labels: &["endpoint"],
};
const INVALID: Family = Family {
    name: "teams_voice_exporter_rows_invalid_total",
    help: "Malformed rows skipped (each distinct row once); the log names each one.",
    labels: &["endpoint"],
};
const ARRIVAL: Family = Family {
    name: "teams_voice_exporter_row_arrival_delay_seconds",
    help: "How late Graph publishes rows: first seen minus call end, for counted rows.",
    labels: &["endpoint"],
};
const FAMILIES: [&Family; 7] = [
    &CALLS, &FAILURES, &DURATION, &SETUP, &INGESTED, &INVALID, &ARRIVAL,
];

impl StateCollector {
    pub fn new(state: Arc<Mutex<TenantState>>, function: Function) -> Self {
        let descs = FAMILIES
            .iter()
            .map(|f| {
                Desc::new(
                    f.name.to_owned(),
                    f.help.to_owned(),
                    f.labels.iter().map(|l| (*l).to_owned()).collect(),
                    HashMap::new(),
                )
                .expect("static metric descriptions are valid")
            })
            .collect();
        StateCollector {
            state,
            function,
            descs,
        }
    }
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (_, aggregates) = self.snapshot();
        self.families(&aggregates)
    }
}

impl StateCollector {
    /// The aggregates `/metrics` shows and their generation, taken under the state's lock
    /// and rendered after it is released, so that a scrape never holds up ingestion.
    pub fn snapshot(&self) -> (u64, Arc<Aggregates>) {
        self.state.lock().exposed_snapshot()
    }

    /// The generation of the aggregates `/metrics` shows.
    pub fn generation(&self) -> u64 {
        self.state.lock().generation()
    }

    /// The call metric families of `a`.
    pub fn families(&self, a: &Aggregates) -> Vec<MetricFamily> {
        let endpoint = [self.function.name()];
        let calls = a.calls.iter().map(|(k, v)| {
            let values = [
                k.trunk_fqdn.as_str(),
                k.call_type.as_str(),
                k.final_sip_code.as_str(),
                k.successful,
                k.media_path_location.as_str(),
            ];
            counter(&CALLS, &values, *v)
        });
        let failures = a.failures.iter().map(|(k, v)| {
            let values = [
                k.trunk_fqdn.as_str(),
                k.final_sip_code.as_str(),
                k.call_end_sub_reason.as_str(),
            ];
            counter(&FAILURES, &values, *v)
        });
        let duration = a.duration.iter().map(|(k, h)| {
            histogram(
                &DURATION,
                &[&k.trunk_fqdn, &k.call_type],
                DURATION_BUCKETS,
                h,
            )
        });
        let setup = a
            .setup
            .iter()
            .map(|(k, h)| histogram(&SETUP, &[&k.trunk_fqdn, &k.call_type], SETUP_BUCKETS, h));

        vec![
            family(&CALLS, MetricType::COUNTER, calls.collect()),
            family(&FAILURES, MetricType::COUNTER, failures.collect()),
            family(&DURATION, MetricType::HISTOGRAM, duration.collect()),
            family(&SETUP, MetricType::HISTOGRAM, setup.collect()),
            family(
                &INGESTED,
                MetricType::COUNTER,
                vec![counter(&INGESTED, &endpoint, a.rows_ingested)],
            ),
            family(
                &INVALID,
                MetricType::COUNTER,
                vec![counter(&INVALID, &endpoint, a.rows_invalid)],
            ),
            family(
                &ARRIVAL,
                MetricType::HISTOGRAM,
                vec![histogram(
                    &ARRIVAL,
                    &endpoint,
                    ARRIVAL_DELAY_BUCKETS,
                    &a.arrival_delay,
                )],
            ),
        ]
    }
}

fn labels(family: &Family, values: &[&str]) -> Vec<proto::LabelPair> {
    family
        .labels
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let mut pair = proto::LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect()
}

fn counter(family: &Family, values: &[&str], value: u64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(value as f64);
    let mut metric = proto::Metric::from_label(labels(family, values));
    metric.set_counter(c);
    metric
}

fn histogram(family: &Family, values: &[&str], bounds: &[f64], h: &Histogram) -> proto::Metric {
    let mut cumulative = 0;
    let buckets = bounds
        .iter()
        .zip(&h.buckets)
        .map(|(bound, count)| {
            cumulative += count;
            let mut bucket = proto::Bucket::default();
            bucket.set_upper_bound(*bound);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut out = proto::Histogram::default();
    out.set_bucket(buckets);
    out.set_sample_count(h.count);
    out.set_sample_sum(h.sum);
    let mut metric = proto::Metric::from_label(labels(family, values));
    metric.set_histogram(out);
    metric
}

fn family(f: &Family, kind: MetricType, mut metrics: Vec<proto::Metric>) -> MetricFamily {
    // Stable output order makes scrapes diffable and tests simple.
    metrics.sort_by(|a, b| {
        a.get_label()
            .iter()
            .map(|l| l.value())
            .cmp(b.get_label().iter().map(|l| l.value()))
    });
    let mut family = MetricFamily::default();
    family.set_name(f.name.to_owned());
    family.set_help(f.help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}
