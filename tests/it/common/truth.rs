//! The simulated tenant for integration tests, and what `/metrics` must say according to
//! its ground truth, computed with the tests' own code.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tve_simulator::{Faults, GroundTruth, Scenario, SimHandle};

use super::{labels, Metrics};

pub fn simulator(scenario: Scenario, faults: Faults) -> (tokio::runtime::Runtime, SimHandle) {
    super::simulated_tenant(scenario, faults, Default::default())
}

/// The first start's boundary, as the exporter reports it: it counts the calls that
/// started from then on.
pub fn counting_since(metrics: &super::Metrics) -> DateTime<Utc> {
    counting_since_of(metrics, "getDirectRoutingCalls")
}

/// Where counting began for the source of `endpoint`.
pub fn counting_since_of(metrics: &super::Metrics, endpoint: &str) -> DateTime<Utc> {
    let seconds = metrics.sum(
        "teams_voice_exporter_counting_since_timestamp_seconds",
        &[("endpoint", endpoint)],
    );
    assert!(seconds > 0.0, "the exporter reports where counting began");
    DateTime::from_timestamp(seconds as i64, 0).expect("a time")
}

/// What `exporter` must have counted: every well-formed row visible now whose call started
/// from its boundary on.
pub fn counted_truth(sim: &SimHandle, exporter: &super::Exporter) -> GroundTruth {
    sim.ground_truth_started_from(counting_since(&exporter.metrics()))
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn or_unknown(value: Option<String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// What `/metrics` must say, computed from the ground truth with the test's own code.
pub struct Expected {
    pub calls: BTreeMap<BTreeMap<String, String>, f64>,
    pub failures: BTreeMap<BTreeMap<String, String>, f64>,
    /// (trunk, call type) → observed values.
    pub duration: BTreeMap<(String, String), Vec<f64>>,
    pub setup: BTreeMap<(String, String), Vec<f64>>,
}

pub fn expected(truth: &GroundTruth) -> Expected {
    let mut e = Expected {
        calls: BTreeMap::new(),
        failures: BTreeMap::new(),
        duration: BTreeMap::new(),
        setup: BTreeMap::new(),
    };
    for row in &truth.rows {
        let trunk = or_unknown(row.trunk_fqdn.clone().map(|t| t.to_lowercase()));
        let call_type = or_unknown(row.call_type.clone());
        let code = row
            .final_sip_code
            .map_or("unknown".to_owned(), |c| c.to_string());
        let successful = match row.successful_call {
            Some(true) => "true",
            Some(false) => "false",
            None => "unknown",
        };
        let key = labels(&[
            ("trunk_fqdn", &trunk),
            ("call_type", &call_type),
            ("final_sip_code", &code),
            ("successful", successful),
            (
                "media_path_location",
                &or_unknown(row.media_path_location.clone()),
            ),
        ]);
        *e.calls.entry(key).or_default() += 1.0;
        if row.successful_call == Some(false) {
            let reason = row
                .call_end_sub_reason
                .map_or("unknown".to_owned(), |c| c.to_string());
            let key = labels(&[
                ("trunk_fqdn", &trunk),
                ("final_sip_code", &code),
                ("call_end_sub_reason", &reason),
            ]);
            *e.failures.entry(key).or_default() += 1.0;
        }
        if row.successful_call == Some(true) {
            if let Some(d) = row.duration_secs.filter(|d| *d >= 0) {
                e.duration
                    .entry((trunk.clone(), call_type.clone()))
                    .or_default()
                    .push(d as f64);
            }
            if let Some(invite) = &row.invite {
                let setup = (time(&row.start) - time(invite))
                    .num_microseconds()
                    .unwrap() as f64
                    / 1e6;
                if setup >= 0.0 {
                    e.setup.entry((trunk, call_type)).or_default().push(setup);
                }
            }
        }
    }
    e
}

/// The Direct Routing call metrics of `metrics` (calls, failures, duration and setup
/// histograms) equal `e`; `context` starts every message.
pub fn assert_call_metrics(metrics: &Metrics, e: &Expected, context: &str) {
    assert_eq!(
        metrics.of("teams_direct_routing_calls_total"),
        e.calls,
        "{context}: calls_total differs from the ground truth"
    );
    assert_eq!(
        metrics.of("teams_direct_routing_call_failures_total"),
        e.failures,
        "{context}: failures differ from the ground truth"
    );
    check_histogram(
        metrics,
        "teams_direct_routing_call_duration_seconds",
        &e.duration,
    );
    check_histogram(metrics, "teams_direct_routing_call_setup_seconds", &e.setup);
}

pub fn check_histogram(
    metrics: &Metrics,
    name: &str,
    expected: &BTreeMap<(String, String), Vec<f64>>,
) {
    let counts = metrics.of(&format!("{name}_count"));
    assert_eq!(
        counts.len(),
        expected.len(),
        "{name}: series {:?} vs expected {:?}",
        counts.keys(),
        expected.keys()
    );
    for ((trunk, call_type), values) in expected {
        let series = labels(&[("trunk_fqdn", trunk), ("call_type", call_type)]);
        assert_eq!(
            counts.get(&series),
            Some(&(values.len() as f64)),
            "{name}_count {series:?}"
        );
        let sum: f64 = values.iter().sum();
        let got_sum = metrics.samples[&(format!("{name}_sum"), series.clone())];
        assert!(
            (got_sum - sum).abs() < 1e-6 * sum.max(1.0),
            "{name}_sum {series:?}: {got_sum} vs {sum}"
        );
        let buckets: Vec<_> = metrics
            .of(&format!("{name}_bucket"))
            .into_iter()
            .filter(|(l, _)| l["trunk_fqdn"] == *trunk && l["call_type"] == *call_type)
            .collect();
        assert!(buckets.len() > 5, "{name} has buckets");
        for (bucket_labels, got) in buckets {
            let le: f64 = match bucket_labels["le"].as_str() {
                "+Inf" => f64::INFINITY,
                le => le.parse().unwrap(),
            };
            let want = values.iter().filter(|v| **v <= le).count() as f64;
            assert_eq!(got, want, "{name}_bucket {bucket_labels:?}");
        }
    }
}

pub fn tail(log: &str) -> String {
    let lines: Vec<_> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
