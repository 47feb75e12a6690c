//! What the integration tests share: the real exporter binary as a child process, the
//! simulated tenant, a `/metrics` parser of their own, and waiting.

pub mod in_process;
pub mod markers;
pub mod metrics;
pub mod pki;
pub mod process;
pub mod truth;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use metrics::{Metrics, Series};
pub use process::{Exporter, ExporterCommand};

pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT: &str = "66666666-7777-8888-9999-000000000000";
pub const SECRET: &str = "test~SECRET~value~never~printed";

/// A simulated tenant with `identity`, served from its own runtime, for tests that run
/// the exporter binary against it.
pub fn simulated_tenant(
    scenario: tve_simulator::Scenario,
    faults: tve_simulator::Faults,
    identity: tve_simulator::SimIdentity,
) -> (tokio::runtime::Runtime, tve_simulator::SimHandle) {
    simulated_traffic(tve_simulator::Traffic::Scenario(scenario), faults, identity)
}

/// A simulated tenant with `traffic` (a scenario, or live calls on the system clock).
pub fn simulated_traffic(
    traffic: tve_simulator::Traffic,
    faults: tve_simulator::Faults,
    identity: tve_simulator::SimIdentity,
) -> (tokio::runtime::Runtime, tve_simulator::SimHandle) {
    simulated_provider(traffic, faults, identity, Vec::new())
}

/// A simulated provider: the home tenant ([`TENANT`], named `contoso`) and `tenants`, each
/// with `traffic` and `faults` of its own, served from one address.
pub fn simulated_provider(
    traffic: tve_simulator::Traffic,
    faults: tve_simulator::Faults,
    identity: tve_simulator::SimIdentity,
    tenants: Vec<tve_simulator::SimTenantSpec>,
) -> (tokio::runtime::Runtime, tve_simulator::SimHandle) {
    use tve_simulator::{SimConfig, SimHandle};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = SimConfig {
        tenants,
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        client_secret: SECRET.into(),
        seed: 7,
        traffic,
        faults,
        page_size: 1000,
        clock: tve_clock::Clock::system(),
        identity,
    };
    let sim = runtime
        .block_on(SimHandle::bind(config, ([127, 0, 0, 1], 0).into()))
        .unwrap();
    (runtime, sim)
}

/// Polls `condition` until it holds or `timeout` passes.
pub fn wait_for(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        if condition() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
