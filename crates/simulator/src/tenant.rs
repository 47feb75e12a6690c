//! The state of a simulated tenant that its services share: the configuration they answer
//! by, its call logs, the fault gate, issued tokens and the statistics.
//!
//! It holds one log per call-log function and lists them in [`Tenant::call_logs`]; the
//! services reach the logs only through that list, so this and `handle` (which builds the
//! logs at bind) are the only generic code that names a function.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, MutexGuard};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tve_clock::Clock;

use crate::call_log::CallLog;
use crate::config::{SimConfig, SimIdentity};
use crate::direct_routing::{self, trunk_fqdns, Degradation, GroundTruth};
use crate::faults::Faults;
use crate::gate::Gate;
use crate::ids::{random_uuid, uuid};
use crate::issued::IssuedTokens;
use crate::pstn::{self, PstnGroundTruth};
use crate::stats::{ServedRow, SimStats};
use crate::time::ceil_ticks;
use crate::traffic::Mode;

/// State shared by the request handlers and the traffic task.
pub(crate) struct Tenant {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub page_size: usize,
    pub clock: Clock,
    pub mode: Mode,
    pub base_url: String,
    pub bind_ms: i64,
    pub direct_routing: direct_routing::Log,
    pub pstn: pstn::Log,
    pub gate: Mutex<Gate>,
    stats: Mutex<SimStats>,
    pub tokens: IssuedTokens,
    pub identity: SimIdentity,
    /// The resource URI of the simulated Graph, without a trailing slash.
    pub graph_resource: String,
    /// `jti` of accepted client assertions.
    pub assertion_ids: Mutex<HashSet<String>>,
    /// Randomness for tokens and request ids, apart from the calls' so that the calls do not
    /// depend on how many requests arrived.
    pub service_rng: Mutex<StdRng>,
}

impl Tenant {
    /// A tenant reached at `base_url`, bound at `bind_ms` with its call logs.
    pub fn new(
        config: SimConfig,
        base_url: String,
        bind_ms: i64,
        direct_routing: direct_routing::Log,
        pstn: pstn::Log,
    ) -> Self {
        Tenant {
            tenant_id: config.tenant_id,
            client_id: config.client_id,
            client_secret: config.client_secret,
            page_size: config.page_size.max(1),
            mode: config.traffic.mode(),
            bind_ms,
            direct_routing,
            pstn,
            gate: Mutex::new(Gate::new(config.faults, bind_ms)),
            stats: Mutex::new(SimStats::default()),
            tokens: IssuedTokens::default(),
            graph_resource: config
                .identity
                .graph_resource
                .clone()
                .unwrap_or_else(|| base_url.clone())
                .trim_end_matches('/')
                .to_owned(),
            base_url,
            identity: config.identity,
            assertion_ids: Mutex::new(HashSet::new()),
            service_rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x5e41_ce00_7e4a_4711)),
            clock: config.clock,
        }
    }

    /// Every call-log function the tenant serves.
    pub fn call_logs(&self) -> [&dyn CallLog; 2] {
        [&self.direct_routing, &self.pstn]
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub fn stats(&self) -> MutexGuard<'_, SimStats> {
        self.stats.lock()
    }

    pub fn new_uuid(&self) -> String {
        uuid(random_uuid(&mut *self.service_rng.lock()))
    }

    pub fn ground_truth(&self, since: Option<DateTime<Utc>>) -> GroundTruth {
        let since_ms = since.map_or(self.bind_ms, |since| since.timestamp_millis());
        direct_routing::ground_truth(&self.direct_routing, self.mode, since_ms, self.now_ms())
    }

    /// The well-formed rows of every log served so far, each once.
    pub fn served_rows(&self) -> Vec<ServedRow> {
        let mut rows = Vec::new();
        for log in self.call_logs() {
            log.served_rows(&mut rows);
        }
        rows
    }

    /// Every well-formed row visible now whose call started at or after `from`.
    pub fn ground_truth_started_from(&self, from: DateTime<Utc>) -> GroundTruth {
        direct_routing::ground_truth_started_from(
            &self.direct_routing,
            from_ticks(from),
            self.now_ms(),
        )
    }

    /// The PSTN log's [`Tenant::ground_truth`].
    pub fn pstn_ground_truth(&self, since: Option<DateTime<Utc>>) -> PstnGroundTruth {
        let since_ms = since.map_or(self.bind_ms, |since| since.timestamp_millis());
        pstn::ground_truth(&self.pstn, self.mode, since_ms, self.now_ms())
    }

    /// The PSTN log's [`Tenant::ground_truth_started_from`].
    pub fn pstn_ground_truth_started_from(&self, from: DateTime<Utc>) -> PstnGroundTruth {
        pstn::ground_truth_started_from(&self.pstn, from_ticks(from), self.now_ms())
    }

    pub fn release(&self) -> bool {
        let now_ms = self.now_ms();
        // Every log must release, so no short-circuiting `any`.
        let mut released = false;
        for log in self.call_logs() {
            released |= log.release(now_ms);
        }
        if released {
            tracing::info!("simulated tenant released its late rows");
        }
        released
    }

    pub fn set_faults(&self, faults: Faults) {
        tracing::info!(?faults, "simulated tenant faults changed");
        if let Some(fqdn) = faults.failing_trunk.as_deref() {
            if Degradation::of_trunk(fqdn).is_none() {
                tracing::warn!(
                    failing_trunk = fqdn,
                    trunks = ?trunk_fqdns().collect::<Vec<_>>(),
                    "no simulated trunk has this name; no trunk fails all the time"
                );
            }
        }
        self.gate.lock().faults = faults;
    }
}

/// Ticks of `from`, rounded up: rows start in whole ticks, so `start >= ceil(from)` exactly
/// when `start >= from`.
fn from_ticks(from: DateTime<Utc>) -> i64 {
    ceil_ticks(from).unwrap_or(if from.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}
