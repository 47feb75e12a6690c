//! Hours of live traffic on a sped-up clock: row ids are forgotten as their calls leave the
//! lookback, memory stays bounded, and no call is ever counted twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use teams_voice_exporter::counting::poller::{Poller, PollerStatus};
use teams_voice_exporter::counting::schedule::{PollKind, Progress, Schedule};
use teams_voice_exporter::source::direct_routing::DirectRouting;

type TenantState = teams_voice_exporter::counting::state::TenantState<DirectRouting>;
use teams_voice_exporter::exposition::self_metrics::TenantMetrics;
use teams_voice_exporter::source::graph::{BudgetLimits, RequestBudget, RetryPolicy};
use tve_clock::Clock;
use tve_simulator::Faults;

use crate::common::in_process;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_leave_with_the_lookback_and_nothing_is_counted_twice() {
    // Ten simulated minutes per real second, for both the tenant and the poller.
    let clock = Clock::scaled(chrono::Utc::now(), 600.0);
    let sim = in_process::demo_tenant(
        &clock,
        3,
        20_000.0,
        Duration::from_secs(6 * 3600),
        Faults {
            limits: tve_simulator::GraphLimits::DOCUMENTED,
            ..Faults::default()
        },
    )
    .await;
    let metrics = TenantMetrics::new().unwrap();
    let retry = RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    // Graph's limits and the default budget, both on the sped-up clock.
    let graph = in_process::graph_client(&sim, &metrics, retry).with_budget(Arc::new(
        RequestBudget::new(BudgetLimits::default(), clock.clone()),
    ));
    let state = Arc::new(Mutex::new(TenantState::new()));
    let lookback = Duration::from_secs(2 * 3600);
    let poller = Poller {
        graph: Arc::new(graph),
        state: state.clone(),
        status: Arc::new(PollerStatus::default()),
        metrics: metrics.counting,
        clock: clock.clone(),
        schedule: Schedule {
            poll_interval: Duration::from_secs(60),
            recent_window: Duration::from_secs(600),
            late_interval: Duration::from_secs(300),
            late_window: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(600),
            lookback,
        },
        progress: Progress::default(),
        store: None,
        tenant_sources: 1,
    }
    .start()
    .await;

    let started_at = clock.now();
    let boundary = poller.progress().forgotten_before.unwrap();
    poller.poll_recent().await.unwrap();
    let mut remembered = Vec::new();
    let mut sweeps = 0;
    // Three simulated hours: every id remembered at the start leaves the lookback.
    while clock.now() - started_at < chrono::Duration::hours(3) {
        clock.sleep(Duration::from_secs(60)).await;
        poller.poll_recent().await.unwrap();
        if let Some((kind, read)) = poller.poll_long().await {
            read.unwrap();
            sweeps += usize::from(kind == PollKind::Sweep);
        }
        remembered.push(state.lock().remembered_rows());
    }
    assert!(sweeps >= 10, "{sweeps} sweeps");
    let stats = sim.stats();
    assert_eq!(
        stats.throttled_responses, 0,
        "three hours under Graph's limits without a 429: {stats:?}"
    );

    // Bounded memory: ids are forgotten, so what is held is about two hours of calls
    // (20,000 a day is ~1,700 in two hours), not everything seen.
    let held = *remembered.last().unwrap();
    let seen = sim.ground_truth_since(started_at - chrono::Duration::days(30));
    assert!(held < 4000, "remembered {held} ids");
    assert!(
        seen.visible_rows as usize > 2 * held,
        "rows seen {} vs held {held}",
        seen.visible_rows
    );

    // Exactly once: per trunk, nothing counted exceeds the rows of calls that started from
    // the first start's boundary on, although every row was read many times by
    // overlapping windows and sweeps.
    let truth = sim.ground_truth_started_from(boundary);
    let mut appeared: BTreeMap<String, u64> = BTreeMap::new();
    for row in &truth.rows {
        *appeared
            .entry(row.trunk_fqdn.clone().unwrap_or_default().to_lowercase())
            .or_default() += 1;
    }
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for (key, n) in &state.lock().aggregates.function.calls {
        *counted.entry(key.trunk_fqdn.clone()).or_default() += n;
    }
    let total: u64 = counted.values().sum();
    assert!(total > 500, "calls were counted: {total}");
    for (trunk, n) in &counted {
        assert!(
            *n <= appeared.get(trunk).copied().unwrap_or(0),
            "{trunk}: counted {n}, appeared {:?}",
            appeared.get(trunk)
        );
    }
    sim.shutdown().await;
}
