//! The exporter's library parts run inside the test, without the binary: a simulated demo
//! tenant on the caller's runtime, and a Graph client of it, for tests (and
//! `benches/graph_load.rs`) that drive a poller themselves.

use std::sync::Arc;
use std::time::Duration;

use teams_voice_exporter::exposition::self_metrics::TenantMetrics;
use teams_voice_exporter::source::auth::{Credential, TokenCache};
use teams_voice_exporter::source::graph::{GraphClient, RetryPolicy};
use tve_clock::Clock;
use tve_simulator::{
    Faults, SimConfig, SimHandle, Traffic, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID,
};

/// The demo tenant with live calls on `clock`: `calls_per_day`, and `history` of them
/// before now.
pub async fn demo_tenant(
    clock: &Clock,
    seed: u64,
    calls_per_day: f64,
    history: Duration,
    faults: Faults,
) -> SimHandle {
    SimHandle::bind(
        SimConfig {
            tenants: Vec::new(),
            tenant_id: DEMO_TENANT_ID.into(),
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: DEMO_CLIENT_SECRET.into(),
            seed,
            traffic: Traffic::Live {
                calls_per_day,
                history,
                trunks: tve_simulator::DEMO_TRUNKS,
            },
            faults,
            page_size: 1000,
            clock: clock.clone(),
            identity: Default::default(),
        },
        ([127, 0, 0, 1], 0).into(),
    )
    .await
    .unwrap()
}

/// A Graph client of the demo tenant `sim` with its client secret, counting into `metrics`.
pub fn graph_client(sim: &SimHandle, metrics: &TenantMetrics, retry: RetryPolicy) -> GraphClient {
    let base: reqwest::Url = sim.base_url().parse().unwrap();
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
    GraphClient::new(http, base, Arc::new(tokens), retry, metrics.source.clone())
}
