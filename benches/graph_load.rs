//! What the exporter asks of Microsoft Graph under Graph's documented call-log limits
//! (50 requests per 60 s per function, 200 per app, 1,000 per tenant), measured on the
//! simulated tenant, which enforces them as sliding windows and answers 429 beyond.
//!
//! `schedule`: the default schedule and request budget (45/60s per function) for six
//! simulated hours on a tenant of 100,000 and one of 300,000 calls a day, with a 72-hour
//! lookback. The poller's two lanes run as in production, on a clock sped up so that hours
//! pass in minutes; the simulator's windows run on the same clock. Before the run the
//! lookback is read once without limits, as a long-running exporter would have, and the
//! last sweep is set five hours back, so a full 72-hour sweep runs one hour in. Reported:
//! 429s (must be zero), every call counted exactly once (the rows visible when the last
//! sweep started, against the row ids the state remembers, and rows counted against the
//! distinct rows the simulator served), the time from a row appearing in Graph to it being
//! counted (p50, p99), by tier and during or outside sweeps, the sweep's duration against
//! the ideal `pages / budget`, Graph requests per hour, and the exporter's own feasibility
//! verdict.
//!
//! `ready`: time to ready at a first start against each tenant (74 hours of history), on
//! the real clock, with Graph's limits and 150 ms per page standing for Graph's latency.
//!
//! Run with `cargo bench --bench graph_load` (both), or `-- schedule` / `-- ready`.
//! `TVE_BENCH_HOURS` (default 6) sets the simulated hours, `TVE_BENCH_SPEED` (default 20)
//! the simulated seconds per real second, `TVE_BENCH_CALLS` (default `100000,300000`) the
//! tenants, and `TVE_BENCH_PAGE_MS` (default 0 for `schedule`) a real-time latency the
//! simulator adds to every page.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use teams_voice_exporter::counting::poller::{Poller, PollerStatus, Polling};
use teams_voice_exporter::counting::schedule::{PollKind, Progress, Schedule};
use teams_voice_exporter::counting::state::RowKey;
use teams_voice_exporter::exposition::self_metrics::TenantMetrics;
use teams_voice_exporter::source::direct_routing::DirectRouting;
use teams_voice_exporter::source::graph::{BudgetLimits, RequestBudget, RetryPolicy};
use tokio_util::sync::CancellationToken;
use tve_clock::{Clock, Rate};
use tve_simulator::{Faults, GraphLimits, SimHandle};

// The integration tests' in-process demo tenant and Graph client.
#[path = "../tests/it/common/in_process.rs"]
mod in_process;

type TenantState = teams_voice_exporter::counting::state::TenantState<DirectRouting>;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tenants() -> Vec<f64> {
    std::env::var("TVE_BENCH_CALLS")
        .unwrap_or_else(|_| "100000,300000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("TVE_BENCH_CALLS: numbers"))
        .collect()
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
        if runs("ready") {
            for calls in tenants() {
                ready(calls).await;
            }
        }
        if runs("schedule") {
            for calls in tenants() {
                schedule(calls).await;
            }
        }
    });
}

async fn tenant(clock: Clock, calls_per_day: f64, limits: GraphLimits, page_ms: u64) -> SimHandle {
    let faults = Faults {
        limits,
        slow_page_ms: page_ms,
        ..Faults::default()
    };
    in_process::demo_tenant(
        &clock,
        7,
        calls_per_day,
        Duration::from_secs(74 * 3600),
        faults,
    )
    .await
}

/// A poller of `sim` with `budget`, sharing `state`.
fn poller(
    sim: &SimHandle,
    metrics: &TenantMetrics,
    budget: BudgetLimits,
    state: Arc<Mutex<TenantState>>,
    progress: Progress,
) -> Poller<DirectRouting> {
    let graph = in_process::graph_client(sim, metrics, RetryPolicy::default())
        .with_budget(Arc::new(RequestBudget::new(budget, sim.clock().clone())));
    Poller {
        graph: Arc::new(graph),
        state,
        status: Arc::new(PollerStatus::default()),
        metrics: metrics.counting.clone(),
        clock: sim.clock().clone(),
        schedule: Schedule::default(),
        progress,
        store: None,
        tenant_sources: 1,
    }
}

/// Runs `polling`'s lanes in a task until the returned token is cancelled.
fn spawn(
    polling: Polling<DirectRouting>,
) -> (
    Arc<Polling<DirectRouting>>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let polling = Arc::new(polling);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let polling = Arc::clone(&polling);
        let shutdown = shutdown.clone();
        async move { polling.run(shutdown).await }
    });
    (polling, shutdown, task)
}

async fn ready(calls_per_day: f64) {
    let sim = tenant(Clock::system(), calls_per_day, GraphLimits::DOCUMENTED, 150).await;
    let metrics = TenantMetrics::new().unwrap();
    let state = Arc::new(Mutex::new(TenantState::new()));
    let started = Instant::now();
    let polling = poller(
        &sim,
        &metrics,
        BudgetLimits::default(),
        state.clone(),
        Progress::default(),
    )
    .start()
    .await;
    let (polling, shutdown, task) = spawn(polling);
    while !polling.status().is_ready() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    shutdown.cancel();
    let _ = task.await;
    let stats = sim.stats();
    println!(
        "ready {calls_per_day} calls/day: ready {took:.2?} after start; {} requests, {} pages, {} rows counted, {} throttled; history of {} rows not read",
        stats.data_requests,
        stats.pages_served,
        state.lock().aggregates.rows_ingested,
        stats.throttled_responses,
        sim.ground_truth_started_from(Utc::now() - chrono::Duration::hours(80)).visible_rows
    );
    sim.shutdown().await;
}

/// When a sweep started, and the rows (id, call start) visible then.
type VisibleAtSweep = (DateTime<Utc>, Vec<(String, DateTime<Utc>)>);

/// A period during which a sweep ran (clock time).
#[derive(Debug, Clone, Copy)]
struct Sweep {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "{name}: n={} p50={:.1}s p99={:.1}s max={:.1}s",
        values.len(),
        percentile(&values, 50.0),
        percentile(&values, 99.0),
        values.last().copied().unwrap_or(f64::NAN)
    )
}

async fn schedule(calls_per_day: f64) {
    let hours: f64 = env("TVE_BENCH_HOURS", 6.0);
    // Slow enough that a page's real latency (about 10 ms here) is small against the
    // budget's spacing (1.3 s of clock time); faster runs become latency-bound.
    let speed: f64 = env("TVE_BENCH_SPEED", 20.0);
    let page_ms: u64 = env("TVE_BENCH_PAGE_MS", 0);
    let clock = Clock::scaled(Utc::now(), speed);
    let sim = tenant(clock.clone(), calls_per_day, GraphLimits::OFF, page_ms).await;
    let metrics = TenantMetrics::new().unwrap();
    let state = Arc::new(Mutex::new(TenantState::new()));
    let schedule = Schedule::default();

    // Warm-up: the state of an exporter that has run for days, read without limits.
    let now = clock.now();
    let lookback_start = now - chrono::Duration::from_std(schedule.lookback).unwrap();
    let warm = Progress {
        first_start_done: true,
        forgotten_before: Some(lookback_start),
        covered_until: Some(lookback_start),
        ..Progress::default()
    };
    let unlimited = BudgetLimits {
        per_function: Rate::new(100_000, Duration::from_secs(1)),
        per_tenant: Rate::new(100_000, Duration::from_secs(1)),
    };
    let warm_metrics = TenantMetrics::new().unwrap();
    let warm = poller(&sim, &warm_metrics, unlimited, state.clone(), warm)
        .start()
        .await;
    let (kind, read) = warm.poll_long().await.expect("the warm-up sweep is due");
    assert_eq!(kind, PollKind::Sweep);
    let read = read.expect("the warm-up reads the lookback");
    let mut progress = warm.progress();
    drop(warm);
    println!(
        "schedule {calls_per_day} calls/day: warm-up read {} rows in {} pages",
        read.rows, read.pages
    );

    // The run: Graph's limits, the default budget, the last sweep five hours back.
    sim.set_faults(Faults {
        limits: GraphLimits::DOCUMENTED,
        slow_page_ms: page_ms,
        ..Faults::default()
    });
    let run_start = clock.now();
    progress.last_sweep = Some(run_start - chrono::Duration::hours(5));
    progress.last_late = Some(run_start);
    let before = sim.stats();
    let served_before = sim.served_rows().len();
    let polling = poller(
        &sim,
        &metrics,
        BudgetLimits::default(),
        state.clone(),
        progress,
    )
    .start()
    .await;
    let (polling, shutdown, task) = spawn(polling);

    let mut sweeps: Vec<Sweep> = Vec::new();
    let mut running: Option<DateTime<Utc>> = None;
    // Rows visible when the last sweep started, with a start it reads: it must count them.
    let mut due: Option<VisibleAtSweep> = None;
    let end = run_start + chrono::Duration::seconds((hours * 3600.0) as i64);
    loop {
        clock.sleep(Duration::from_secs(5)).await;
        let now = clock.now();
        match (polling.status().long_read(), running) {
            (Some((PollKind::Sweep, since)), None) => {
                running = Some(since);
                let floor = polling.progress().forgotten_before.unwrap();
                let truth = sim.ground_truth_started_from(floor);
                let rows = truth
                    .rows
                    .into_iter()
                    .map(|row| {
                        let start = DateTime::parse_from_rfc3339(&row.start)
                            .unwrap()
                            .with_timezone(&Utc);
                        (row.id, start)
                    })
                    .collect();
                due = Some((since, rows));
            }
            (None, Some(since)) | (Some((PollKind::Late, _)), Some(since)) => {
                sweeps.push(Sweep {
                    from: since,
                    to: now,
                });
                running = None;
            }
            _ => {}
        }
        if now >= end && running.is_none() && !sweeps.is_empty() {
            break;
        }
    }
    shutdown.cancel();
    let _ = task.await;
    let after = sim.stats();
    let run_hours = (clock.now() - run_start).num_seconds() as f64 / 3600.0;

    // Exactly once.
    let floor = polling.progress().forgotten_before.unwrap();
    let (sweep_started, visible) = due.expect("a sweep ran");
    let (missing, counted) = {
        let state = state.lock();
        let missing = visible
            .iter()
            .filter(|(_, start)| *start >= floor)
            .filter(|(id, _)| state.remembered_until(&RowKey::from_id(id)).is_none())
            .count();
        (missing, state.aggregates.rows_ingested)
    };
    let served = sim.served_rows();
    println!(
        "  exactly once: {counted} rows counted, {} distinct rows served ({}); {missing} of {} rows visible when the last sweep started ({sweep_started}) not counted",
        served.len(),
        if counted == served.len() as u64 { "equal" } else { "DIFFERENT" },
        visible.len()
    );

    // Throttling and cost.
    let throttled = after.throttled_responses - before.throttled_responses;
    let requests = after.data_requests - before.data_requests;
    println!(
        "  {throttled} answered 429; {requests} Graph requests in {run_hours:.2} h = {:.0} an hour",
        requests as f64 / run_hours
    );

    // Latency from appearing to being counted, by tier, during and outside sweeps. A row is
    // the recent poll's when the next recent poll (at most a poll interval away) still has
    // its call in its window; rows just older are the late poll's.
    let recent = chrono::Duration::from_std(
        Schedule::default().recent_window - Schedule::default().poll_interval,
    )
    .unwrap();
    let late = chrono::Duration::from_std(Schedule::default().late_window).unwrap();
    let in_sweep = |t: DateTime<Utc>| sweeps.iter().any(|s| s.from <= t && t <= s.to);
    let mut buckets: [Vec<f64>; 4] = Default::default();
    for row in served.iter().skip(served_before) {
        if row.visible_at < run_start {
            continue;
        }
        let latency = (row.first_served_at - row.visible_at).num_milliseconds() as f64 / 1e3;
        let age = row.visible_at - row.start;
        let index = if age <= recent {
            usize::from(in_sweep(row.first_served_at))
        } else if age <= late {
            2
        } else {
            3
        };
        buckets[index].push(latency);
    }
    let [outside, during, late_tier, sweep_tier] = buckets;
    println!(
        "  {}",
        summary("recent-window rows, outside sweeps", outside)
    );
    println!("  {}", summary("recent-window rows, during sweeps", during));
    println!(
        "  {}",
        summary("late-window rows (counted by late polls)", late_tier)
    );
    println!(
        "  {}",
        summary("older rows (counted by sweeps)", sweep_tier)
    );

    // Sweeps against the ideal.
    for sweep in &sweeps {
        let took = (sweep.to - sweep.from).num_seconds();
        println!(
            "  sweep ran {} .. {}: about {took} s of clock time (sampled every 5 s)",
            sweep.from, sweep.to
        );
    }
    let budget = BudgetLimits::default().per_function;
    if let Some(report) = polling.status().last_sweep() {
        if let Ok(read) = &report.result {
            let took = report.took.as_secs_f64() * speed;
            let ideal = budget.time_for(read.pages as f64).as_secs_f64();
            println!(
                "  last sweep: {} pages in {took:.0} s against an ideal of {ideal:.0} s at {budget}: {:.2}x",
                read.pages,
                took / ideal
            );
        }
    }
    for priority in ["recent", "background"] {
        println!(
            "  requests that waited for the budget, {priority}: {}",
            metrics
                .source
                .budget_delayed
                .with_label_values(&["getDirectRoutingCalls", priority])
                .get()
        );
    }
    if let Some(feasibility) = polling.status().feasibility() {
        println!(
            "  the exporter's estimate: {:?}: {feasibility}",
            feasibility.verdict
        );
    }
    sim.shutdown().await;
}
