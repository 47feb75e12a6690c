//! The state of a simulated tenant that its services share: the configuration they answer
//! by, its call logs, the fault gate, issued tokens and the statistics; and the
//! [`Provider`], the tenants served from one address, which finds the tenant a request is
//! for (by the token endpoint's tenant segment, or by the tenant its bearer token was
//! issued for).
//!
//! It holds one log per call-log function and lists them in [`Tenant::call_logs`]; the
//! services reach the logs only through that list, so this and `handle` (which builds the
//! logs at bind) are the only generic code that names a function.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, MutexGuard};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tve_clock::Clock;

use crate::call_log::CallLog;
use crate::call_records::{self, CallRecordFetches, Fetches, SimCallRecord};
use crate::config::{AppCredentials, Consent, SimConfig, SimIdentity};
use crate::direct_routing::{self, Degradation, GroundTruth, DEMO_TRUNKS};
use crate::faults::Faults;
use crate::gate::Gate;
use crate::ids::{random_uuid, uuid};
use crate::issued::IssuedTokens;
use crate::pstn::{self, PstnGroundTruth};
use crate::stats::{ServedRow, SimStats};
use crate::store::StoredRow;
use crate::time::ceil_ticks;
use crate::traffic::Mode;

/// State shared by the request handlers and the traffic task.
pub(crate) struct Tenant {
    pub tenant_id: String,
    /// The customer's short name; the tenant also answers to `NAME.onmicrosoft.com`.
    pub name: String,
    /// The provider's multi-tenant application (the home tenant's own).
    pub client_id: String,
    pub client_secret: String,
    pub consent: Consent,
    /// `(client_id, client_secret)` of an application registered in this tenant alone.
    pub own_app: Option<AppCredentials>,
    /// Its place among the provider's tenants, which issued tokens remember.
    pub index: usize,
    pub page_size: usize,
    pub clock: Clock,
    pub mode: Mode,
    pub base_url: String,
    pub bind_ms: i64,
    pub direct_routing: direct_routing::Log,
    pub pstn: pstn::Log,
    pub gate: Mutex<Gate>,
    stats: Mutex<SimStats>,
    /// Seed of the tenant's call records (with each call's correlation id).
    pub seed: u64,
    /// How often each call record was asked for.
    pub call_record_fetches: Mutex<Fetches>,
    /// The tokens of every tenant of the provider.
    pub tokens: Arc<IssuedTokens>,
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
    /// A tenant reached at `base_url`, bound at `bind_ms` with its call logs, as `member`
    /// of a provider.
    pub fn new(
        config: SimConfig,
        member: Membership,
        base_url: String,
        bind_ms: i64,
        direct_routing: direct_routing::Log,
        pstn: pstn::Log,
    ) -> Self {
        Tenant {
            tenant_id: config.tenant_id,
            name: member.name,
            client_id: config.client_id,
            client_secret: config.client_secret,
            consent: member.consent,
            own_app: member.own_app,
            index: member.index,
            page_size: config.page_size.max(1),
            mode: config.traffic.mode(),
            bind_ms,
            direct_routing,
            pstn,
            gate: Mutex::new(Gate::new(config.faults, bind_ms)),
            stats: Mutex::new(SimStats::default()),
            seed: config.seed,
            call_record_fetches: Mutex::new(Fetches::default()),
            tokens: member.tokens,
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

    /// Whether the token endpoint's tenant segment names this tenant: its id or
    /// `NAME.onmicrosoft.com`, in any case.
    pub fn answers_to(&self, segment: &str) -> bool {
        segment.eq_ignore_ascii_case(&self.tenant_id)
            || segment
                .strip_suffix(ONMICROSOFT)
                .is_some_and(|name| name.eq_ignore_ascii_case(&self.name))
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

    /// The call record of every established Direct Routing call Graph keeps now, its
    /// publication time by the faults in force; none yet for rows waiting for release.
    /// Only calls that started at or after `from` (ticks), if given.
    pub fn call_records(&self, from: Option<i64>) -> Vec<SimCallRecord> {
        let now_ms = self.now_ms();
        let faults = self.gate.lock().faults.clone();
        let names = self.direct_routing.names();
        let store = self.direct_routing.read();
        store
            .rows()
            .filter(|row| from.is_none_or(|from| row.start >= from))
            .filter(|row| row.lookup_key().is_some() && call_records::retained(row.start, now_ms))
            .filter_map(|row| {
                call_records::sim_record(row, &faults, self.seed, names, &self.base_url)
            })
            .collect()
    }

    /// How often each call record was asked for, by id.
    pub fn call_record_fetches(&self) -> std::collections::HashMap<String, CallRecordFetches> {
        self.call_record_fetches.lock().snapshot()
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
            let names = self.direct_routing.names();
            if Degradation::of_trunk(fqdn, names).is_none() {
                tracing::warn!(
                    tenant = %self.name,
                    failing_trunk = fqdn,
                    trunks = ?(0..DEMO_TRUNKS).map(|trunk| names.fqdn(trunk, 0)).collect::<Vec<_>>(),
                    "no simulated trunk of this tenant has this name; no trunk fails all the time"
                );
            }
        }
        self.gate.lock().faults = faults;
    }
}

/// What makes a tenant one of a provider's.
pub(crate) struct Membership {
    pub index: usize,
    pub name: String,
    pub consent: Consent,
    pub own_app: Option<AppCredentials>,
    pub tokens: Arc<IssuedTokens>,
}

/// The tenants served from one address: the home tenant first, then the customers.
pub(crate) struct Provider {
    tenants: Vec<Arc<Tenant>>,
    tokens: Arc<IssuedTokens>,
}

impl Provider {
    /// `tenants` in their `Membership::index` order, sharing `tokens`; at least one.
    pub fn new(tenants: Vec<Arc<Tenant>>, tokens: Arc<IssuedTokens>) -> Self {
        debug_assert!(!tenants.is_empty());
        Provider { tenants, tokens }
    }

    pub fn home(&self) -> &Arc<Tenant> {
        &self.tenants[0]
    }

    pub fn all(&self) -> &[Arc<Tenant>] {
        &self.tenants
    }

    /// The tenant a token endpoint's tenant segment names.
    pub fn by_segment(&self, segment: &str) -> Option<&Arc<Tenant>> {
        self.tenants
            .iter()
            .find(|tenant| tenant.answers_to(segment))
    }

    /// The tenant named by id or by name (the control endpoints' `tenant` parameter).
    pub fn by_id_or_name(&self, key: &str) -> Option<&Arc<Tenant>> {
        self.tenants.iter().find(|tenant| {
            tenant.tenant_id.eq_ignore_ascii_case(key) || tenant.name.eq_ignore_ascii_case(key)
        })
    }

    /// The tenant a bearer token was issued for; the home tenant for a token never issued,
    /// whose request it counts and answers (401), as a single tenant does.
    pub fn by_token(&self, token: &str) -> &Arc<Tenant> {
        self.tokens
            .tenant_of(token)
            .and_then(|index| self.tenants.get(index))
            .unwrap_or_else(|| self.home())
    }
}

/// The tenant segment's suffix of a tenant named by its initial domain.
const ONMICROSOFT: &str = ".onmicrosoft.com";

/// Ticks of `from`, rounded up: rows start in whole ticks, so `start >= ceil(from)` exactly
/// when `start >= from`.
fn from_ticks(from: DateTime<Utc>) -> i64 {
    ceil_ticks(from).unwrap_or(if from.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}
