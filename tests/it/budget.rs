//! Graph's documented call-log limits, enforced by the simulated tenant on sped-up windows
//! (10 requests per 2 s per function instead of 50 per 60 s): the exporter keeps to its
//! request budget, recent rows stay fresh while a long sweep runs, another app that fills
//! the tenant's shared limit is waited out, and the first start counts exactly the calls
//! from its boundary on, against a slow Graph.

use std::time::{Duration, Instant};

use crate::common::truth::{counting_since, expected, tail, Expected};
use crate::common::{simulated_traffic, wait_for, Exporter};
use tve_simulator::{Faults, GraphLimits, RateLimit, SimHandle, Traffic, DEMO_TRUNKS};

/// Graph's documented limits, 30 times faster (as the demo runs them).
fn fast_limits() -> GraphLimits {
    GraphLimits {
        per_function: Some(RateLimit {
            requests: 10,
            window_secs: 2,
        }),
        per_app: Some(RateLimit {
            requests: 40,
            window_secs: 2,
        }),
        per_tenant: Some(RateLimit {
            requests: 200,
            window_secs: 2,
        }),
        other_apps: None,
        call_records: None,
    }
}

fn live(calls_per_day: f64, history_hours: u64) -> Traffic {
    Traffic::Live {
        calls_per_day,
        history: Duration::from_secs(history_hours * 3600),
        trunks: DEMO_TRUNKS,
    }
}

fn sweeps_done(exporter: &Exporter) -> f64 {
    exporter.metrics().sum(
        "teams_voice_exporter_poll_duration_seconds_count",
        &[("kind", "sweep")],
    )
}

/// Waits for a sweep that starts after now to finish: every row visible now with a call
/// start inside the lookback has been read by then.
fn wait_for_a_later_sweep(exporter: &Exporter, sim: &SimHandle, timeout: Duration) {
    let done = sweeps_done(exporter);
    // The sweep running now (if any) may have passed rows visible now; the next one has not.
    wait_for(timeout, "a sweep that started after now", || {
        sweeps_done(exporter) >= done + 2.0
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}; stats {:?}; log tail:\n{}",
            sim.stats(),
            tail(&exporter.log())
        )
    });
}

/// Exactly once: what the exporter counted lies between the distinct rows the tenant had
/// served just before and just after (a row counted twice, or a served row never counted,
/// breaks one side), and it holds every row visible before the last sweep started.
fn assert_counted_exactly_once(exporter: &Exporter, sim: &SimHandle, visible_before: &Expected) {
    // The simulator notes a row as served when it writes the page, before its (slow)
    // answer reaches the exporter: rows served seconds ago have arrived.
    let settled_at = sim.clock().now() - chrono::Duration::seconds(5);
    let served_before = sim
        .served_rows()
        .iter()
        .filter(|row| row.first_served_at <= settled_at)
        .count() as f64;
    let metrics = exporter.metrics();
    let served_after = sim.served_rows().len() as f64;
    let counted = metrics.sum("teams_voice_exporter_rows_ingested_total", &[]);
    assert!(
        served_before <= counted && counted <= served_after,
        "counted {counted}, distinct rows served {served_before}..{served_after}"
    );
    // Series by series, the counts reach at least the truth of the earlier moment.
    for (labels, want) in &visible_before.calls {
        let got = metrics
            .of("teams_direct_routing_calls_total")
            .get(labels)
            .copied()
            .unwrap_or(0.0);
        assert!(
            got >= *want,
            "{labels:?}: counted {got}, expected at least {want}"
        );
    }
}

#[test]
fn a_long_sweep_under_graphs_limits_draws_no_429_and_recent_rows_stay_fresh() {
    let (_runtime, sim) =
        simulated_traffic(live(200_000.0, 8), Faults::default(), Default::default());
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("state.redb");
    let state_flag = format!("--state.path={}", path.display());

    // A first run that counts six hours back and saves where counting began, so that the
    // second run's restart sweep reads six hours (50 pages): a long read under the budget.
    let first = Exporter::start(
        &sim.base_url(),
        &["--poll.recent-window=6h", "--poll.lookback=6h", &state_flag],
    );
    first.wait_ready(Duration::from_secs(60));
    first.terminate(Duration::from_secs(20));
    sim.set_faults(Faults {
        limits: fast_limits(),
        ..Faults::default()
    });
    let throttled_before = sim.stats().throttled_responses;

    let started = Instant::now();
    let exporter = Exporter::start(
        &sim.base_url(),
        &[
            "--poll.interval=2s",
            "--poll.recent-window=15m",
            "--poll.sweep-interval=20s",
            "--poll.lookback=6h",
            "--graph.rate-limit=9/2s",
            "--graph.tenant-rate-limit=36/2s",
            &state_flag,
        ],
    );
    exporter.wait_ready(Duration::from_secs(30));
    let ready_after = started.elapsed();
    assert!(
        ready_after < Duration::from_secs(10),
        "ready after {ready_after:?}"
    );
    let ready_at = sim.clock().now();
    let boundary = counting_since(&exporter.metrics());
    let visible_before = expected(&sim.ground_truth_started_from(boundary));
    wait_for_a_later_sweep(&exporter, &sim, Duration::from_secs(120));

    let stats = sim.stats();
    assert_eq!(
        stats.throttled_responses, throttled_before,
        "the budget kept every request under Graph's limits: {stats:?}"
    );
    assert_eq!(stats.retry_after_violations, 0, "{stats:?}");
    let log = exporter.log();
    let sweep_took: Vec<f64> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["kind"] == "sweep" && line["pages"].as_u64() > Some(20))
        .filter_map(|line| {
            line["took"]
                .as_str()
                .and_then(|t| humantime::parse_duration(t).ok())
        })
        .map(|took| took.as_secs_f64())
        .collect();
    assert!(
        sweep_took.iter().any(|&t| t > 5.0),
        "a sweep of many pages ran for seconds under the budget: {sweep_took:?}"
    );

    // Rows that appeared while the sweeps ran, of calls inside the recent window, were
    // counted within two poll intervals (4 s).
    let fresh: Vec<f64> = sim
        .served_rows()
        .iter()
        .filter(|row| row.visible_at > ready_at)
        .filter(|row| row.visible_at - row.start <= chrono::Duration::minutes(15))
        .map(|row| (row.first_served_at - row.visible_at).num_milliseconds() as f64 / 1e3)
        .collect();
    assert!(
        fresh.len() >= 5,
        "rows appeared during the test: {}",
        fresh.len()
    );
    let slowest = fresh.iter().copied().fold(0.0, f64::max);
    assert!(
        slowest <= 4.0,
        "a recent row took {slowest} s to be counted"
    );

    assert_counted_exactly_once(&exporter, &sim, &visible_before);
}

#[test]
fn another_app_filling_the_tenants_limit_is_waited_out_and_nothing_is_lost() {
    let mut limits = fast_limits();
    // The tenant allows 20 requests per 2 s and other apps send 18 of them: the exporter's
    // recent polls alone need more than the 2 left.
    limits.per_tenant = Some(RateLimit {
        requests: 20,
        window_secs: 2,
    });
    limits.other_apps = Some(RateLimit {
        requests: 18,
        window_secs: 2,
    });
    let faults = Faults {
        limits,
        ..Faults::default()
    };
    let (_runtime, sim) = simulated_traffic(live(200_000.0, 2), faults, Default::default());
    let exporter = Exporter::start(
        &sim.base_url(),
        &[
            "--poll.interval=1s",
            "--poll.recent-window=15m",
            "--poll.sweep-interval=5s",
            "--graph.rate-limit=9/2s",
            "--graph.tenant-rate-limit=36/2s",
        ],
    );
    exporter.wait_ready(Duration::from_secs(60));
    wait_for(
        Duration::from_secs(60),
        "Graph throttles the exporter",
        || sim.stats().throttled_per_tenant > 0,
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}; stats {:?}; log tail:\n{}",
            sim.stats(),
            tail(&exporter.log())
        )
    });
    let boundary = counting_since(&exporter.metrics());
    let visible_before = expected(&sim.ground_truth_started_from(boundary));
    wait_for_a_later_sweep(&exporter, &sim, Duration::from_secs(120));

    let stats = sim.stats();
    assert_eq!(
        stats.retry_after_violations, 0,
        "a request went out inside a Retry-After: {stats:?}"
    );
    assert_eq!(
        stats.throttled_per_function + stats.throttled_per_app,
        0,
        "{stats:?}"
    );
    let metrics = exporter.metrics();
    assert!(metrics.sum("teams_voice_exporter_graph_throttled_total", &[]) > 0.0);
    assert!(
        exporter.logged_where("Graph throttled a request despite the request budget; every request to the tenant waits for its Retry-After. If the limit is the tenant's, another app of the tenant uses most of it; otherwise lower --graph.rate-limit or --graph.tenant-rate-limit", |line| line["limit"] == "Tenant"),
        "the log names the tenant's limit:\n{}",
        tail(&exporter.log())
    );
    assert_counted_exactly_once(&exporter, &sim, &visible_before);
}

#[test]
fn the_first_start_counts_every_call_from_its_boundary_and_none_of_the_history() {
    let faults = Faults {
        limits: fast_limits(),
        // A slow Graph: the first polls take seconds while calls keep appearing.
        slow_page_ms: 700,
        ..Faults::default()
    };
    let (_runtime, sim) = simulated_traffic(live(300_000.0, 12), faults, Default::default());
    let history = sim.ground_truth_started_from(sim.clock().now() - chrono::Duration::hours(13));
    assert!(
        history.rows.len() > 100_000,
        "history at start: {}",
        history.rows.len()
    );

    let start_time = sim.clock().now();
    let started = Instant::now();
    let exporter = Exporter::start(
        &sim.base_url(),
        &[
            "--poll.interval=1s",
            "--poll.recent-window=15m",
            "--poll.sweep-interval=10s",
            "--graph.rate-limit=9/2s",
            "--graph.tenant-rate-limit=36/2s",
        ],
    );
    exporter.wait_ready(Duration::from_secs(30));
    let ready_after = started.elapsed();
    assert!(
        ready_after < Duration::from_secs(10),
        "ready after {ready_after:?}"
    );
    let boundary = counting_since(&exporter.metrics());
    let since_start = sim.clock().now() - boundary;
    assert!(
        since_start >= chrono::Duration::minutes(15) && since_start < chrono::Duration::minutes(16),
        "the boundary lies one recent window before the start: {since_start}"
    );
    let visible_before = expected(&sim.ground_truth_started_from(boundary));
    wait_for_a_later_sweep(&exporter, &sim, Duration::from_secs(120));

    let served = sim.served_rows();
    assert!(
        served.iter().all(|row| row.start >= boundary),
        "no row of the history was read, so none was counted"
    );
    assert!(
        served
            .iter()
            .filter(|row| row.visible_at > start_time)
            .count()
            > 20,
        "many calls published after the start were read"
    );
    assert_counted_exactly_once(&exporter, &sim, &visible_before);
}
