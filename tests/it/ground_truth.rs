//! The exporter's `/metrics`, compared exactly with the simulated tenant's ground truth,
//! through paging, late rows, throttling, outages, short-lived tokens and malformed rows.

use std::time::Duration;

use crate::common::truth::{
    assert_call_metrics, check_histogram, counted_truth, expected, simulator, tail,
};
use crate::common::{
    markers, wait_for, Exporter, ExporterCommand, Metrics, CLIENT, SECRET, TENANT,
};
use tve_simulator::{Faults, Scenario};

#[test]
fn metrics_equal_ground_truth_through_late_rows_throttling_server_errors_and_short_tokens() {
    let scenario = Scenario {
        preexisting_rows: 1500,
        late_rows: 6000,
        span: Duration::from_secs(48 * 3600),
        arrival_spread: Duration::from_secs(12),
        malformed_rows: 6,
    };
    let faults = Faults {
        throttle_every: 7,
        retry_after_secs: 1,
        unavailable_every: 11,
        invalid_json_every: 17,
        token_lifetime_secs: 4,
        revoke_token_every: 23,
        token_unavailable_every: 3,
        slow_page_ms: 10,
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let exporter = Exporter::start(&sim.base_url(), &[]);
    exporter.wait_ready(Duration::from_secs(60));
    let before = exporter.metrics();
    assert_eq!(
        before.sum("teams_direct_routing_calls_total", &[]),
        1500.0,
        "the first poll counted the calls present at start (all started after the boundary)"
    );
    sim.release();

    // Every late row is visible after the spread; then let at least one full sweep finish.
    let want = 7500.0;
    let settled = wait_for(Duration::from_secs(120), "all late rows counted", || {
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[])
            >= want
    });
    settled.unwrap_or_else(|e| {
        panic!(
            "{e}; stats {:?}; log tail:\n{}",
            sim.stats(),
            tail(&exporter.log())
        )
    });
    std::thread::sleep(Duration::from_secs(3));

    let truth = counted_truth(&sim, &exporter);
    assert_eq!(truth.rows.len(), 7500, "the double released every late row");
    let metrics = exporter.metrics();
    let e = expected(&truth);
    assert_call_metrics(&metrics, &e, "late rows");
    assert_eq!(
        metrics.sum("teams_voice_exporter_rows_ingested_total", &[]),
        7500.0
    );
    assert_eq!(
        metrics.sum("teams_voice_exporter_rows_invalid_total", &[]),
        truth.invalid_rows as f64
    );
    assert!(truth.invalid_rows >= 5, "the double served malformed rows");
    assert_eq!(
        metrics.sum("teams_voice_exporter_row_arrival_delay_seconds_count", &[]),
        7500.0
    );

    let stats = sim.stats();
    assert_eq!(
        stats.retry_after_violations, 0,
        "a request was sent inside a Retry-After period: {stats:?}"
    );
    assert!(
        stats.throttled_responses > 0 && stats.unavailable_responses > 0,
        "{stats:?}"
    );
    assert!(
        stats.invalid_json_responses > 0 && stats.unauthorized_responses > 0,
        "{stats:?}"
    );
    assert!(
        stats.token_errors >= 1,
        "Entra ID was unavailable at times: {stats:?}"
    );
    assert!(
        stats.tokens_issued >= 3,
        "4-second tokens were refreshed: {stats:?}"
    );
    assert!(metrics.sum("teams_voice_exporter_graph_throttled_total", &[]) > 0.0);
    assert!(
        metrics.sum("teams_voice_exporter_rows_received_total", &[]) > 9000.0,
        "windows overlap, rows repeat"
    );
    let log = exporter.log();
    assert!(!log.contains(SECRET), "the client secret reached the log");
}

#[test]
fn a_next_link_to_another_host_is_refused() {
    let foreign = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    foreign.set_nonblocking(true).unwrap();
    let foreign_url = format!("http://{}", foreign.local_addr().unwrap());
    let scenario = Scenario {
        preexisting_rows: 2500,
        span: Duration::from_secs(3600),
        ..Scenario::default()
    };
    let faults = Faults {
        foreign_next_link: Some(foreign_url),
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let exporter = Exporter::start(&sim.base_url(), &[]);
    wait_for(Duration::from_secs(30), "a refused nextLink", || {
        exporter.metrics().sum(
            "teams_voice_exporter_poll_errors_total",
            &[("reason", "bad_next_link")],
        ) >= 2.0
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", tail(&exporter.log())));
    assert!(
        matches!(foreign.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "nothing was sent to the foreign host"
    );
    assert_eq!(
        exporter.get("/-/ready").0,
        503,
        "no poll has read its window: not ready"
    );
    assert!(exporter
        .log()
        .contains("refusing to follow @odata.nextLink"));
    assert!(sim.stats().foreign_next_links_served >= 2);
}

#[test]
fn missing_permission_is_reported_with_the_fix_and_not_retried() {
    let scenario = Scenario {
        preexisting_rows: 10,
        span: Duration::from_secs(3600),
        ..Scenario::default()
    };
    let (_runtime, sim) = simulator(
        scenario,
        Faults {
            forbidden: true,
            ..Faults::default()
        },
    );
    let exporter = Exporter::start(&sim.base_url(), &["--poll.interval=1s"]);
    wait_for(Duration::from_secs(20), "a forbidden poll", || {
        exporter.metrics().sum(
            "teams_voice_exporter_poll_errors_total",
            &[("reason", "forbidden")],
        ) >= 2.0
    })
    .unwrap();
    let metrics = exporter.metrics();
    let polls = metrics.sum("teams_voice_exporter_poll_errors_total", &[]);
    let requests = metrics.sum(
        "teams_voice_exporter_graph_requests_total",
        &[("endpoint", "getDirectRoutingCalls"), ("code", "403")],
    );
    assert_eq!(
        requests, polls,
        "one request per poll: a 403 is not retried"
    );
    let log = exporter.log();
    assert!(
        log.contains("CallRecords.Read.All") && log.contains("admin consent"),
        "{log}"
    );
    assert!(log.contains("request-id"), "Graph's request id is logged");
    assert_eq!(
        exporter.get("/-/healthy").0,
        200,
        "a failing poll does not take the exporter down"
    );
}

#[test]
fn a_wrong_secret_names_the_aadsts_code_and_never_shows_the_secret() {
    let scenario = Scenario {
        preexisting_rows: 10,
        span: Duration::from_secs(3600),
        ..Scenario::default()
    };
    let (_runtime, sim) = simulator(scenario, Faults::default());
    let wrong = "wrong~secret~value~12345";
    let exporter = ExporterCommand::new(&["--poll.interval=500ms"])
        .against(&sim.base_url())
        .envs(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_SECRET", wrong),
        ])
        .spawn();
    wait_for(Duration::from_secs(20), "a refused token", || {
        exporter.logged_where(markers::POLL_FAILED, |line| {
            line["error"]
                .as_str()
                .is_some_and(|error| error.contains("AADSTS7000215"))
        })
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", exporter.log()));
    let log = exporter.log();
    assert!(
        log.contains("not its Secret ID"),
        "the hint says what to do: {log}"
    );
    assert!(!log.contains(wrong), "the secret reached the log");
    let (_, body) = exporter.get("/metrics");
    assert!(!body.contains(wrong));
    assert!(
        body.contains(&format!(
            "teams_voice_exporter_token_refreshes_total{{tenant=\"{TENANT}\",result=\"AADSTS7000215\"}}"
        )),
        "{body}"
    );
    assert!(
        Metrics::parse(&body).sum(
            "teams_voice_exporter_poll_errors_total",
            &[("reason", "token_refused")]
        ) >= 1.0
    );
}

/// Waits until the exporter has counted `rows` rows.
fn wait_ingested(exporter: &Exporter, rows: f64) {
    wait_for(Duration::from_secs(60), "late rows counted", || {
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[])
            >= rows
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", tail(&exporter.log())));
}

#[test]
fn an_outage_loses_nothing_and_counts_nothing_twice() {
    let scenario = Scenario {
        preexisting_rows: 800,
        late_rows: 2000,
        span: Duration::from_secs(48 * 3600),
        arrival_spread: Duration::from_secs(3),
        malformed_rows: 0,
    };
    let (_runtime, sim) = simulator(scenario, Faults::default());
    let exporter = Exporter::start(&sim.base_url(), &["--graph.max-retries=1"]);
    exporter.wait_ready(Duration::from_secs(60));

    // Graph goes down; the late rows appear while every poll fails.
    sim.set_faults(Faults {
        unavailable_every: 1,
        ..Faults::default()
    });
    sim.release();
    wait_for(Duration::from_secs(30), "polls failing", || {
        exporter.metrics().sum(
            "teams_voice_exporter_poll_errors_total",
            &[("reason", "retries_exhausted")],
        ) >= 3.0
    })
    .unwrap();
    assert_eq!(
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[]),
        800.0,
        "only the calls present at start"
    );
    assert_eq!(exporter.get("/-/ready").0, 200, "stays ready and serving");

    sim.set_faults(Faults::default());
    wait_for(Duration::from_secs(60), "all rows counted", || {
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[])
            >= 2800.0
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", tail(&exporter.log())));
    std::thread::sleep(Duration::from_secs(3));
    let truth = counted_truth(&sim, &exporter);
    let metrics = exporter.metrics();
    let e = expected(&truth);
    assert_eq!(metrics.of("teams_direct_routing_calls_total"), e.calls);
    assert_eq!(
        metrics.of("teams_direct_routing_call_failures_total"),
        e.failures
    );
    check_histogram(
        &metrics,
        "teams_direct_routing_call_duration_seconds",
        &e.duration,
    );
}

#[test]
fn retry_after_as_an_http_date_and_on_503_holds_back_every_request() {
    let scenario = Scenario {
        preexisting_rows: 3500,
        late_rows: 500,
        span: Duration::from_secs(6 * 3600),
        arrival_spread: Duration::from_secs(2),
        malformed_rows: 0,
    };
    let faults = Faults {
        throttle_every: 4,
        retry_after_secs: 1,
        retry_after_http_date: true,
        unavailable_every: 5,
        unavailable_retry_after: true,
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let exporter = Exporter::start(&sim.base_url(), &[]);
    exporter.wait_ready(Duration::from_secs(60));
    sim.release();
    wait_ingested(&exporter, 4000.0);
    let stats = sim.stats();
    assert!(
        stats.throttled_responses >= 3 && stats.unavailable_responses >= 3,
        "{stats:?}"
    );
    assert_eq!(stats.retry_after_violations, 0, "{stats:?}");
    let metrics = exporter.metrics();
    assert_eq!(
        metrics.sum("teams_voice_exporter_rows_ingested_total", &[]),
        4000.0
    );
    assert!(metrics.sum("teams_voice_exporter_graph_throttled_total", &[]) >= 6.0);
}

#[test]
fn throttling_without_retry_after_backs_off_and_counts_everything() {
    let scenario = Scenario {
        preexisting_rows: 2500,
        late_rows: 1500,
        span: Duration::from_secs(6 * 3600),
        arrival_spread: Duration::from_secs(2),
        malformed_rows: 0,
    };
    let faults = Faults {
        throttle_every: 3,
        throttle_without_retry_after: true,
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let exporter = Exporter::start(&sim.base_url(), &[]);
    exporter.wait_ready(Duration::from_secs(60));
    sim.release();
    wait_ingested(&exporter, 4000.0);
    let metrics = exporter.metrics();
    let e = expected(&counted_truth(&sim, &exporter));
    assert_eq!(metrics.of("teams_direct_routing_calls_total"), e.calls);
    assert!(
        metrics.sum(
            "teams_voice_exporter_graph_retries_total",
            &[("reason", "throttled")]
        ) >= 3.0
    );
}

/// Sweeps read as parallel sub-windows (`--graph.concurrency`) still count every row once:
/// rows near sub-window boundaries, pages that fail and are retried, a sub-window that
/// returns rows another already counted.
#[test]
fn parallel_sub_windows_count_every_row_exactly_once() {
    let scenario = Scenario {
        preexisting_rows: 3000,
        late_rows: 6000,
        span: Duration::from_secs(60 * 3600),
        arrival_spread: Duration::from_secs(8),
        malformed_rows: 0,
    };
    let faults = Faults {
        unavailable_every: 9,
        slow_page_ms: 5,
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let exporter = Exporter::start(&sim.base_url(), &["--graph.concurrency=8"]);
    exporter.wait_ready(Duration::from_secs(60));
    assert!(
        exporter.logged_where(markers::POLL_STARTING, |line| line["parts"] == 16),
        "the 72-hour lookback is read as 16 sub-windows"
    );
    sim.release();
    wait_for(Duration::from_secs(120), "all late rows counted", || {
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[])
            >= 9000.0
    })
    .unwrap_or_else(|e| panic!("{e}; log tail:\n{}", tail(&exporter.log())));
    // Two more sweeps over every row: nothing may be counted again.
    std::thread::sleep(Duration::from_secs(5));

    let truth = counted_truth(&sim, &exporter);
    assert_eq!(truth.rows.len(), 9000);
    let metrics = exporter.metrics();
    assert_eq!(
        metrics.of("teams_direct_routing_calls_total"),
        expected(&truth).calls,
        "calls_total differs from ground truth"
    );
    assert_eq!(
        metrics.sum("teams_voice_exporter_rows_ingested_total", &[]),
        9000.0
    );
    let stats = sim.stats();
    assert!(stats.unavailable_responses > 0, "{stats:?}");
}
