//! The exporter against a broken or hostile upstream (issue #18): random label values at a
//! high rate, a 200 MiB page at every poll, rows that are not objects. The series it serves
//! stay bounded with every call counted, its memory stays bounded, and malformed rows are
//! counted invalid.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::truth::{counted_truth, simulator, tail};
use crate::common::{wait_for, Exporter};
use tve_simulator::{Faults, Scenario};

/// What the label-bound test allows: small limits, so that the rows' random values reach
/// them many times over.
const LIMITS: [(&str, &str, usize); 5] = [
    ("trunk_fqdn", "--labels.max-trunks=40", 40),
    ("call_type", "--labels.max-call-types=8", 8),
    ("final_sip_code", "--labels.max-sip-codes=15", 15),
    ("call_end_sub_reason", "--labels.max-sub-reasons=25", 25),
    ("media_path_location", "--labels.max-media-locations=6", 6),
];
const MAX_SERIES: usize = 20_000;
/// The log line of a label at its limit.
const FULL: &str = "a label has reached its limit of distinct values; calls with new values are counted under \"other\" (teams_voice_exporter_label_values_folded_total); raise the label's --labels.max-* flag if the tenant really has that many";

#[test]
fn random_label_values_stay_bounded_and_every_call_is_counted() {
    let scenario = Scenario {
        preexisting_rows: 2_000,
        late_rows: 8_000,
        span: Duration::from_secs(48 * 3600),
        // 8,000 rows with new label values within 4 s: 2,000 a second.
        arrival_spread: Duration::from_secs(4),
        malformed_rows: 0,
    };
    let faults = Faults {
        random_labels: true,
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let max_series = format!("--web.max-series={MAX_SERIES}");
    let mut flags: Vec<&str> = LIMITS.iter().map(|(_, flag, _)| *flag).collect();
    flags.push(&max_series);
    let exporter = Exporter::start(&sim.base_url(), &flags);
    exporter.wait_ready(Duration::from_secs(60));
    sim.release();
    wait_for(Duration::from_secs(120), "every row counted", || {
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[])
            >= 10_000.0
    })
    .unwrap_or_else(|e| panic!("{e}; log tail:\n{}", tail(&exporter.log())));
    std::thread::sleep(Duration::from_secs(2));

    let truth = counted_truth(&sim, &exporter);
    assert_eq!(truth.rows.len(), 10_000);
    let metrics = exporter.metrics();
    // Every call counted, whatever its label values became.
    assert_eq!(
        metrics.sum("teams_direct_routing_calls_total", &[]),
        truth.rows.len() as f64,
        "the total over all label values is the rows served"
    );
    let failed = truth
        .rows
        .iter()
        .filter(|row| row.successful_call == Some(false))
        .count();
    assert_eq!(
        metrics.sum("teams_direct_routing_call_failures_total", &[]),
        failed as f64
    );
    // Each label within its limit, plus `other` and `unknown`.
    let calls = metrics.of("teams_direct_routing_calls_total");
    let failures = metrics.of("teams_direct_routing_call_failures_total");
    for (label, _, limit) in LIMITS {
        let values: BTreeSet<&str> = calls
            .keys()
            .chain(failures.keys())
            .filter_map(|labels| labels.get(label).map(String::as_str))
            .filter(|value| !["other", "unknown"].contains(value))
            .collect();
        assert!(
            values.len() <= limit,
            "{label}: {} values above its limit {limit}",
            values.len()
        );
        let folded = metrics.sum(
            "teams_voice_exporter_label_values_folded_total",
            &[("endpoint", "getDirectRoutingCalls"), ("label", label)],
        );
        assert!(folded > 0.0, "{label} folded no row");
    }
    // The series served, under the bound and as the gauge says.
    let served = metrics.sum("teams_voice_exporter_call_series", &[]);
    assert!(served > 0.0 && served <= MAX_SERIES as f64, "{served}");
    assert_eq!(
        metrics.sum("teams_voice_exporter_call_series_dropped", &[]),
        0.0
    );
    // The log names the labels folded, never a value.
    for (label, _, _) in LIMITS {
        assert!(
            exporter.logged_where(FULL, |line| line["label"] == label),
            "the log names {label}:\n{}",
            tail(&exporter.log())
        );
    }
    assert!(
        !exporter.log().contains("hostile.example"),
        "a label value was logged"
    );
}

#[test]
fn a_200_mib_page_at_every_poll_keeps_memory_bounded() {
    let scenario = Scenario {
        preexisting_rows: 300,
        span: Duration::from_secs(24 * 3600),
        ..Scenario::default()
    };
    let faults = Faults {
        oversized_page_mib: 200,
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults.clone());
    let exporter = Exporter::start(&sim.base_url(), &[]);
    let refused = |exporter: &Exporter| {
        exporter.metrics().sum(
            "teams_voice_exporter_poll_errors_total",
            &[("reason", "response_too_large")],
        )
    };
    wait_for(Duration::from_secs(90), "ten refused pages", || {
        refused(&exporter) >= 10.0
    })
    .unwrap_or_else(|e| panic!("{e}; log tail:\n{}", tail(&exporter.log())));
    let peak = exporter.peak_resident_bytes().expect("VmHWM");
    eprintln!("peak resident memory: {} KiB", peak / 1024);
    assert!(
        peak < 64 * 1024 * 1024,
        "peak resident memory {} MiB",
        peak / (1024 * 1024)
    );
    let log = exporter.log();
    let host = sim.base_url().trim_start_matches("http://").to_owned();
    assert!(
        log.contains(&format!("the response from {host} is more than 8.0 MiB")),
        "the error names the host and the size; log tail:\n{}",
        tail(&log)
    );

    // Graph well again: the calls are counted.
    sim.set_faults(Faults::default());
    wait_for(Duration::from_secs(60), "the calls counted", || {
        exporter
            .metrics()
            .sum("teams_direct_routing_calls_total", &[])
            == 300.0
    })
    .unwrap_or_else(|e| panic!("{e}; log tail:\n{}", tail(&exporter.log())));
}

#[test]
fn rows_that_are_not_objects_are_counted_invalid() {
    let scenario = Scenario {
        preexisting_rows: 200,
        span: Duration::from_secs(24 * 3600),
        ..Scenario::default()
    };
    let faults = Faults {
        non_object_rows: true,
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let exporter = Exporter::start(&sim.base_url(), &[]);
    exporter.wait_ready(Duration::from_secs(60));
    // Several sweeps: the same six rows on every page are counted once.
    std::thread::sleep(Duration::from_secs(3));
    let metrics = exporter.metrics();
    assert_eq!(metrics.sum("teams_direct_routing_calls_total", &[]), 200.0);
    assert_eq!(
        metrics.sum("teams_voice_exporter_rows_invalid_total", &[]),
        6.0,
        "an array, a string, a number, null, a boolean and 100,000 nested arrays"
    );
}

#[test]
fn at_the_series_bound_the_series_beyond_it_are_left_out_and_reported() {
    let scenario = Scenario {
        preexisting_rows: 500,
        span: Duration::from_secs(24 * 3600),
        ..Scenario::default()
    };
    let (_runtime, sim) = simulator(scenario, Faults::default());
    let exporter = Exporter::start(&sim.base_url(), &["--web.max-series=60"]);
    exporter.wait_ready(Duration::from_secs(60));
    wait_for(Duration::from_secs(30), "every row counted", || {
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[])
            >= 500.0
    })
    .unwrap_or_else(|e| panic!("{e}; log tail:\n{}", tail(&exporter.log())));
    let metrics = exporter.metrics();
    let served = metrics.sum("teams_voice_exporter_call_series", &[]);
    let dropped = metrics.sum("teams_voice_exporter_call_series_dropped", &[]);
    assert!(served <= 60.0 && served > 0.0, "{served}");
    assert!(dropped > 0.0, "500 calls make more than 60 series");
    assert_eq!(
        metrics.sum("teams_voice_exporter_call_series_limit", &[]),
        60.0
    );
    assert!(
        exporter.logged("call series beyond --web.max-series are left out of /metrics (their calls are still counted); raise --web.max-series or lower the label limits (--labels.max-*)"),
        "the bound is logged:\n{}",
        tail(&exporter.log())
    );
    // Counting goes on behind the bound.
    assert_eq!(
        metrics.sum("teams_voice_exporter_rows_ingested_total", &[]),
        500.0
    );
}

#[test]
fn a_page_of_more_rows_than_graph_sends_is_refused() {
    // Pages of 1,000 rows, and six rows that are not objects on each: 1,006.
    let scenario = Scenario {
        preexisting_rows: 1_500,
        span: Duration::from_secs(24 * 3600),
        ..Scenario::default()
    };
    let faults = Faults {
        non_object_rows: true,
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let exporter = Exporter::start(&sim.base_url(), &[]);
    wait_for(Duration::from_secs(60), "a refused page", || {
        exporter.metrics().sum(
            "teams_voice_exporter_poll_errors_total",
            &[("reason", "response_too_large")],
        ) >= 1.0
    })
    .unwrap_or_else(|e| panic!("{e}; log tail:\n{}", tail(&exporter.log())));
    let host = sim.base_url().trim_start_matches("http://").to_owned();
    assert!(
        exporter.log().contains(&format!(
            "a page from {host} has 1006 rows, above --graph.max-page-rows (1000)"
        )),
        "{}",
        tail(&exporter.log())
    );
    assert_eq!(
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[]),
        0.0,
        "nothing of a refused page is counted"
    );
}
