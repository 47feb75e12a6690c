//! New series are scraped at 0 before they carry their counts (`--web.new-series-hold`), so
//! that Prometheus' `rate()` and `increase()` see their first calls; series restored from
//! `--state.path` are scraped with their saved values at once, so that a restart does not
//! look like a counter reset.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::truth::{counted_truth, expected, simulator};
use crate::common::{wait_for, Exporter, Metrics, Series};
use tve_simulator::{Faults, Scenario};

const ROWS: usize = 1_500;
/// Counted in all: the preexisting rows and the late ones (all started after the first
/// start's boundary).
const ALL: usize = ROWS + 200;

fn scenario() -> Scenario {
    Scenario {
        preexisting_rows: 200,
        late_rows: ROWS,
        span: Duration::from_secs(3600),
        // Rows keep arriving for several polls, so series appear at different scrapes.
        arrival_spread: Duration::from_secs(5),
        malformed_rows: 0,
    }
}

/// The call series: counters and histogram counts.
fn call_series(metrics: &Metrics) -> BTreeMap<Series, f64> {
    metrics
        .samples
        .iter()
        .filter(|((name, _), _)| {
            name == "teams_direct_routing_calls_total"
                || name == "teams_direct_routing_call_failures_total"
                || name.starts_with("teams_direct_routing_call_duration_seconds_count")
                || name.starts_with("teams_direct_routing_call_setup_seconds_count")
        })
        .map(|(series, value)| (series.clone(), *value))
        .collect()
}

fn rows_ingested(metrics: &Metrics) -> f64 {
    metrics.sum("teams_voice_exporter_rows_ingested_total", &[])
}

#[test]
fn new_series_are_scraped_at_zero_before_their_counts_and_lose_nothing() {
    let (_runtime, sim) = simulator(scenario(), Faults::default());
    let exporter = Exporter::start(&sim.base_url(), &["--web.new-series-hold=1500ms"]);
    exporter.wait_ready(Duration::from_secs(60));
    // The first poll counted the calls present at start: their series are new too.
    let at_ready = call_series(&exporter.metrics());
    assert!(!at_ready.is_empty(), "the first poll counted calls");
    sim.release();

    // Scraping three times a poll, as a busy Prometheus would: the first scrape that sees
    // a series starts its hold, so a series shown with its count at once shows here.
    let mut first_seen: BTreeMap<Series, f64> = at_ready;
    let mut last = BTreeMap::new();
    wait_for(
        Duration::from_secs(60),
        "every row counted and shown",
        || {
            let metrics = exporter.metrics();
            last = call_series(&metrics);
            for (series, value) in &last {
                first_seen.entry(series.clone()).or_insert(*value);
            }
            std::thread::sleep(Duration::from_millis(100));
            rows_ingested(&metrics) == ALL as f64 && last.values().all(|v| *v > 0.0)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; last scrape {last:?}; log:\n{}", exporter.log()));

    let shown_with_counts: Vec<_> = first_seen.iter().filter(|(_, v)| **v != 0.0).collect();
    assert!(
        shown_with_counts.is_empty(),
        "series first scraped with their counts: {shown_with_counts:?}"
    );
    assert!(
        first_seen.len() > 20,
        "many series appeared: {first_seen:?}"
    );
    // Held series lose nothing: after their holds every count equals the tenant's.
    let truth = expected(&counted_truth(&sim, &exporter));
    let metrics = exporter.metrics();
    assert_eq!(metrics.of("teams_direct_routing_calls_total"), truth.calls);
    assert_eq!(
        metrics.of("teams_direct_routing_call_failures_total"),
        truth.failures
    );
}

#[test]
fn series_restored_from_the_state_file_are_scraped_with_their_values_at_once() {
    let (_runtime, sim) = simulator(scenario(), Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let state = format!("--state.path={}", dir.path().join("state.redb").display());
    let exporter = Exporter::start(
        &sim.base_url(),
        &[state.as_str(), "--web.new-series-hold=200ms"],
    );
    exporter.wait_ready(Duration::from_secs(60));
    sim.release();
    let mut before = BTreeMap::new();
    wait_for(
        Duration::from_secs(60),
        "every row counted and shown",
        || {
            let metrics = exporter.metrics();
            before = call_series(&metrics);
            std::thread::sleep(Duration::from_millis(100));
            rows_ingested(&metrics) == ALL as f64 && before.values().all(|v| *v > 0.0)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; last scrape {before:?}; log:\n{}", exporter.log()));
    exporter
        .terminate(Duration::from_secs(20))
        .expect("a clean stop");

    // A hold far longer than the test: any series held now would show 0.
    let restarted = Exporter::start(
        &sim.base_url(),
        &[state.as_str(), "--web.new-series-hold=1h"],
    );
    let after = call_series(&restarted.metrics());
    assert_eq!(
        after, before,
        "the first scrape after the restart shows the saved values, none at 0"
    );
}
