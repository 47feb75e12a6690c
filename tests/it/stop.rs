//! A poller stopped while a commit is under way: the stop waits for that commit, saves once
//! more, and leaves the state file closed, so that a tenant changed by a reload can open it
//! again at once.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::IntCounter;
use teams_voice_exporter::counting::poller::{Poller, PollerStatus};
use teams_voice_exporter::counting::schedule::Schedule;
use teams_voice_exporter::counting::store::{restore, EstablishedCalls, StateOptions, StateStore};
use teams_voice_exporter::exposition::self_metrics::TenantMetrics;
use teams_voice_exporter::source::direct_routing::DirectRouting;
use teams_voice_exporter::source::graph::RetryPolicy;
use teams_voice_exporter::source::EstablishedCall;
use tokio_util::sync::CancellationToken;
use tve_clock::Clock;
use tve_simulator::{Faults, DEMO_TENANT_ID};

use crate::common::in_process;

/// Stands for the call-quality collector: its first `hold` (made inside a commit) says it
/// has begun and blocks until the test lets it go, keeping that commit under way.
struct SlowHolder {
    begun: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<Option<mpsc::Receiver<()>>>,
}

impl EstablishedCalls for SlowHolder {
    fn hold(&self, _calls: Vec<EstablishedCall>) -> Result<(), String> {
        if let Some(begun) = self.begun.lock().take() {
            let release = self.release.lock().take().expect("one release");
            begun.send(()).unwrap();
            release.recv().unwrap();
        }
        Ok(())
    }
}

fn write_errors() -> IntCounter {
    IntCounter::new("state_write_errors", "test").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_a_commit_waits_for_it_saves_and_closes_the_state_file() {
    let clock = Clock::system();
    let sim = in_process::demo_tenant(
        &clock,
        5,
        50_000.0,
        Duration::from_secs(3600),
        Faults::default(),
    )
    .await;
    let metrics = TenantMetrics::new().unwrap();
    let graph = in_process::graph_client(&sim, &metrics, RetryPolicy::default());
    let dir = tempfile::tempdir().unwrap();
    let options = StateOptions {
        path: dir.path().join("state.redb"),
        reset: false,
    };
    let restored =
        restore::<DirectRouting>(Some(&options), DEMO_TENANT_ID, write_errors()).unwrap();
    let state = Arc::new(Mutex::new(restored.state));
    let poller = Poller {
        graph: Arc::new(graph),
        state: Arc::clone(&state),
        status: Arc::new(PollerStatus::default()),
        metrics: metrics.counting,
        clock,
        schedule: Schedule {
            poll_interval: Duration::from_millis(200),
            recent_window: Duration::from_secs(1800),
            late_interval: Duration::from_secs(300),
            late_window: Duration::from_secs(3600),
            sweep_interval: Duration::from_secs(600),
            lookback: Duration::from_secs(2 * 3600),
        },
        progress: restored.progress,
        store: restored.store,
        tenant_sources: 1,
    };
    let (begun_tx, begun) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let holder = Arc::new(SlowHolder {
        begun: Mutex::new(Some(begun_tx)),
        release: Mutex::new(Some(release_rx)),
    });
    let shutdown = CancellationToken::new();
    let mut run = tokio::spawn(poller.run_holding(holder, shutdown.clone()));

    tokio::task::spawn_blocking(move || begun.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("a commit handed established calls to the holder");
    shutdown.cancel();
    let returned = tokio::time::timeout(Duration::from_secs(1), &mut run).await;
    assert!(
        returned.is_err(),
        "the poller stopped while its commit was still writing: the state file stays open \
         and what was counted since is not saved"
    );
    release.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the poller stops once the commit is done")
        .unwrap();

    // Closed: it opens at once, and holds everything counted, the final commit included.
    let (_store, saved) =
        StateStore::<DirectRouting>::open(&options, DEMO_TENANT_ID, write_errors())
            .expect("the stopped poller closed its state file");
    let saved = saved.expect("something was saved");
    let counted = state.lock().aggregates.rows_ingested;
    assert!(counted > 0);
    assert_eq!(saved.aggregates.rows_ingested, counted);
}
