//! What the exporter asks of Microsoft Graph, measured on the simulated tenant.
//!
//! `cost` (`cost default`, `cost before`): the Graph pages and rows the poll schedule reads per hour for a tenant of
//! 100,000 calls a day, on a clock sped up so that hours pass in minutes. The simulator and
//! the poller run in this process on the same sped-up clock; the figures are the
//! simulator's own request counters (`GET /_sim/stats`) after the first-start baseline.
//! It runs the default schedule and the one before issue #7 (recent window 1 h every
//! minute, sweep every hour), then forces a sweep and checks that every row the simulator
//! published was counted exactly once (within the rows that appeared while the baseline
//! was being read, which may count either way).
//!
//! `sweep`: how long a sweep of the 72-hour lookback (300,000 rows) takes when the
//! simulator throttles at Graph's documented per-app rate (1,500 requests per 20 s,
//! sliding; 429 with Retry-After), for 1, 2, 4 and 8 parallel sub-window readers, against
//! the ideal the throttle allows (pages / 75 per second). Sweeps run back to back for at
//! least a minute, so the throttle's burst allowance is amortised; the first (cold) sweep
//! is reported on its own.
//!
//! Run with `cargo bench --bench graph_load` (both), `cargo bench --bench graph_load --
//! cost` or `-- sweep`. `TVE_BENCH_HOURS` (default 12) sets the simulated hours per
//! schedule, `TVE_BENCH_SPEED` (default 120) how many simulated seconds pass per real
//! second, `TVE_BENCH_SWEEP_SECS` (default 60) how long sweeps run back to back, and
//! `TVE_BENCH_READERS` (default `1,2,4,8`) the concurrencies, and `TVE_BENCH_PAGE_MS`
//! (default 0) a latency the simulator adds to every answer, standing for Graph's own.
//! `TVE_BENCH_RECENT_WINDOW` and `TVE_BENCH_LATE_INTERVAL` (e.g. `30m`) try other values
//! in the default schedule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use parking_lot::Mutex;
use teams_voice_exporter::counting::poller::{Poller, PollerStatus};
use teams_voice_exporter::counting::schedule::{PollKind, Progress, Schedule};
use teams_voice_exporter::source::direct_routing::DirectRouting;

type TenantState = teams_voice_exporter::counting::state::TenantState<DirectRouting>;
use teams_voice_exporter::exposition::self_metrics::SelfMetrics;
use teams_voice_exporter::source::auth::{Credential, TokenCache};
use teams_voice_exporter::source::graph::{GraphClient, RetryPolicy};
use tve_clock::Clock;
use tve_simulator::{
    Faults, RateLimit, SimConfig, SimHandle, SimStats, Traffic, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID, DEMO_TRUNKS,
};

const CALLS_PER_DAY: f64 = 100_000.0;
/// Readers in the cost runs: parallel sub-windows, so that the exactness check covers them.
const COST_READERS: usize = 8;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runs = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if runs("cost default") || runs("cost before") {
            cost(&runs).await;
        }
        if runs("sweep") {
            sweep().await;
        }
    });
}

async fn tenant(clock: Clock, page_ms: u64) -> SimHandle {
    SimHandle::bind(
        SimConfig {
            tenant_id: DEMO_TENANT_ID.into(),
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: DEMO_CLIENT_SECRET.into(),
            seed: 7,
            traffic: Traffic::Live {
                calls_per_day: CALLS_PER_DAY,
                history: Duration::from_secs(74 * 3600),
                trunks: DEMO_TRUNKS,
            },
            faults: Faults {
                rate_limit: Some(RateLimit::GRAPH_PER_APP),
                slow_page_ms: page_ms,
                ..Faults::default()
            },
            page_size: 1000,
            clock,
            identity: Default::default(),
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .expect("the simulated tenant binds a loopback port")
}

fn poller(sim: &SimHandle, schedule: Schedule, readers: usize) -> Poller<DirectRouting> {
    let base: reqwest::Url = sim.base_url().parse().unwrap();
    let metrics = SelfMetrics::register(&prometheus::Registry::new()).unwrap();
    let http = reqwest::Client::new();
    let credential = Credential::ClientSecret {
        tenant_id: DEMO_TENANT_ID.into(),
        client_id: DEMO_CLIENT_ID.into(),
        secret: DEMO_CLIENT_SECRET.to_owned().into(),
    };
    let tokens = TokenCache::new(
        http.clone(),
        credential,
        &base,
        &base,
        metrics.source.clone(),
    )
    .unwrap();
    let graph = GraphClient::new(
        http,
        base,
        Arc::new(tokens),
        RetryPolicy::default(),
        metrics.source.clone(),
    )
    .with_concurrency(readers);
    Poller {
        graph: Arc::new(graph),
        state: Arc::new(Mutex::new(TenantState::new())),
        status: Arc::new(PollerStatus::default()),
        metrics: metrics.counting,
        clock: sim.clock().clone(),
        schedule,
        progress: Progress::default(),
        store: None,
    }
}

/// The simulator's counters, read over HTTP as a separate `simulate` process would be.
async fn stats(sim: &SimHandle) -> SimStats {
    reqwest::get(format!("{}/_sim/stats", sim.base_url()))
        .await
        .and_then(|r| r.error_for_status())
        .expect("GET /_sim/stats")
        .json()
        .await
        .expect("/_sim/stats is JSON")
}

fn counted(state: &Mutex<TenantState>) -> u64 {
    state.lock().aggregates.function.calls.values().sum()
}

#[derive(Default, Clone, Copy)]
struct Tally {
    polls: u64,
    pages: u64,
    rows: u64,
    new: u64,
}

async fn cost(runs: &dyn Fn(&str) -> bool) {
    let hours: f64 = env("TVE_BENCH_HOURS", 12.0);
    let speed: f64 = env("TVE_BENCH_SPEED", 120.0);
    println!(
        "Graph cost per hour: {CALLS_PER_DAY} calls a day, {hours} simulated hours per schedule, clock x{speed}"
    );
    let before = Schedule {
        recent_window: Duration::from_secs(3600),
        late_interval: Duration::ZERO,
        sweep_interval: Duration::from_secs(3600),
        ..Schedule::default()
    };
    let mut default = Schedule::default();
    if let Ok(window) = std::env::var("TVE_BENCH_RECENT_WINDOW") {
        default.recent_window =
            humantime::parse_duration(&window).expect("TVE_BENCH_RECENT_WINDOW");
    }
    if let Ok(interval) = std::env::var("TVE_BENCH_LATE_INTERVAL") {
        default.late_interval =
            humantime::parse_duration(&interval).expect("TVE_BENCH_LATE_INTERVAL");
    }
    for (name, schedule) in [("default", default), ("before #7", before)] {
        if runs(&format!("cost {name}")) {
            cost_of(name, schedule, hours, speed).await;
        }
    }
}

async fn cost_of(name: &str, schedule: Schedule, hours: f64, speed: f64) {
    let clock = Clock::scaled(Utc::now(), speed);
    let sim = tenant(clock.clone(), 0).await;
    let mut poller = poller(&sim, schedule.clone(), COST_READERS);
    let baseline_started = clock.now();
    poller.poll_once().await.expect("baseline");
    let baseline_done = clock.now();
    let start_stats = stats(&sim).await;
    let started = clock.now();
    let mut tally = [Tally::default(); 4];
    let mut largest_recent = 0;
    // The poller's own cadence (`Poller::run`), driven here so each poll can be tallied.
    while (clock.now() - started).num_seconds() as f64 <= hours * 3600.0 {
        let tick = Instant::now();
        poller.poll_once().await.expect("poll");
        let report = poller.status.last_poll().unwrap();
        let read = report.result.as_ref().unwrap();
        let t = &mut tally[report.kind as usize];
        t.polls += 1;
        t.pages += read.pages;
        t.rows += read.rows;
        t.new += report.ingested;
        if report.kind == PollKind::Recent {
            largest_recent = largest_recent.max(read.pages);
        }
        let wait = clock
            .real_duration(schedule.poll_interval)
            .saturating_sub(tick.elapsed());
        tokio::time::sleep(wait).await;
    }
    let end_stats = stats(&sim).await;
    let elapsed_h = (clock.now() - started).num_seconds() as f64 / 3600.0;
    let per_hour = |n: u64| n as f64 / elapsed_h;
    let pages = end_stats.pages_served - start_stats.pages_served;
    let requests = end_stats.data_requests - start_stats.data_requests;
    let rows = end_stats.rows_served - start_stats.rows_served;
    println!(
        "\n{name}: interval {:?}, recent window {:?}, late window {:?} every {:?}, sweep every {:?}, lookback {:?}",
        schedule.poll_interval,
        schedule.recent_window,
        schedule.late_window,
        schedule.late_interval,
        schedule.sweep_interval,
        schedule.lookback
    );
    println!(
        "  {elapsed_h:.1} simulated hours: {:.0} pages/h, {:.0} requests/h, {:.0} rows/h; {} throttled",
        per_hour(pages),
        per_hour(requests),
        per_hour(rows),
        end_stats.throttled_responses - start_stats.throttled_responses
    );
    for kind in [PollKind::Recent, PollKind::Late, PollKind::Sweep] {
        let t = tally[kind as usize];
        if t.polls == 0 {
            continue;
        }
        println!(
            "  {:>6}: {:>5} polls, {:>6.0} pages/h ({:.1} a poll), {:>8.0} rows/h, counted {} new rows",
            kind.as_str(),
            t.polls,
            per_hour(t.pages),
            t.pages as f64 / t.polls as f64,
            per_hour(t.rows),
            t.new
        );
    }
    println!("  largest recent poll: {largest_recent} pages");

    // Read everything once more: what the schedule had not yet counted shows here.
    let before_final = counted(&poller.state);
    // Every row visible now is read by the sweep; rows that appear while it runs may or may
    // not be, so they only widen the upper bound.
    let lower = sim.ground_truth_since(baseline_done).rows.len() as u64;
    poller.progress.last_sweep = None;
    poller.progress.pending_sweep = None;
    poller.poll_once().await.expect("final sweep");
    let report = poller.status.last_poll().unwrap();
    let sweep_pages = report.result.as_ref().unwrap().pages;
    let total = counted(&poller.state);
    let upper = sim.ground_truth_since(baseline_started).rows.len() as u64;
    println!(
        "  final sweep ({sweep_pages} pages) counted {} rows the schedule had not reached yet; counted {total}, the simulator published {lower} after the baseline and before this sweep ({upper} counting those that appeared during either): {}",
        total - before_final,
        if (lower..=upper).contains(&total) { "within range" } else { "OUT OF RANGE" }
    );
    println!(
        "  reading the whole lookback at every poll instead: {sweep_pages} pages x {:.0} polls/h = {:.0} pages/h",
        3600.0 / schedule.poll_interval.as_secs_f64(),
        sweep_pages as f64 * 3600.0 / schedule.poll_interval.as_secs_f64()
    );
    assert!(
        (lower..=upper).contains(&total),
        "counted {total}, expected {lower}..={upper}"
    );
    sim.shutdown().await;
}

async fn sweep() {
    let sustain = Duration::from_secs(env("TVE_BENCH_SWEEP_SECS", 60));
    let readers: Vec<usize> = std::env::var("TVE_BENCH_READERS")
        .unwrap_or_else(|_| "1,2,4,8".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let page_ms: u64 = env("TVE_BENCH_PAGE_MS", 0);
    let limit = RateLimit::GRAPH_PER_APP;
    let allowed_per_sec = f64::from(limit.requests) / limit.window_secs as f64;
    println!(
        "\nFull sweep under throttling: {CALLS_PER_DAY} calls a day, 72 h lookback, {} requests per {} s (sliding), {page_ms} ms added to every answer, sweeps back to back for {sustain:?}",
        limit.requests, limit.window_secs
    );
    println!(
        "{:>7} {:>6} {:>7} {:>10} {:>7} {:>7} {:>10} {:>9} {:>8} {:>6} {:>10}",
        "readers",
        "pages",
        "rows",
        "cold sweep",
        "sweeps",
        "429s",
        "violations",
        "mean",
        "ideal",
        "ratio",
        "pages/s"
    );
    for readers in readers {
        // A fresh tenant per run: each starts with an empty throttle window.
        let sim = tenant(Clock::system(), page_ms).await;
        let mut poller = poller(&sim, Schedule::default(), readers);
        let first = stats(&sim).await;
        let started = Instant::now();
        poller.poll_once().await.expect("the first sweep");
        let cold = started.elapsed();
        let read = *poller.status.last_poll().unwrap().result.as_ref().unwrap();
        let mut sweeps = 1;
        while started.elapsed() < sustain {
            poller.progress.last_sweep = None;
            let kind = poller.plan(poller.clock.now()).0;
            assert_eq!(kind, PollKind::Sweep);
            poller.poll_once().await.expect("a sweep");
            sweeps += 1;
        }
        let elapsed = started.elapsed();
        let last = stats(&sim).await;
        let pages = last.pages_served - first.pages_served;
        let mean = elapsed / sweeps;
        let ideal = Duration::from_secs_f64(read.pages as f64 / allowed_per_sec);
        println!(
            "{readers:>7} {:>6} {:>7} {:>9.2}s {sweeps:>7} {:>7} {:>10} {:>8.2}s {:>7.2}s {:>6.2} {:>10.1}",
            read.pages,
            read.rows,
            cold.as_secs_f64(),
            last.throttled_responses - first.throttled_responses,
            last.retry_after_violations - first.retry_after_violations,
            mean.as_secs_f64(),
            ideal.as_secs_f64(),
            mean.as_secs_f64() / ideal.as_secs_f64(),
            pages as f64 / elapsed.as_secs_f64()
        );
        sim.shutdown().await;
    }
}
