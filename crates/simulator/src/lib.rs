//! A simulated tenant: the project's test double for Microsoft Graph's Direct Routing call
//! log and the Microsoft Entra ID token endpoint, served over real HTTP on a local listener.
//!
//! It backs `--demo` (live, realistic traffic for trying dashboards), the `simulate`
//! subcommand, and the integration tests that compare the exporter's metrics with the
//! simulator's [`GroundTruth`]. It follows `shared/reference/graph-call-logs.md`: the same
//! paths, parameters, paging, error bodies, throttling and token errors as the real
//! services, with faults that can be switched on at start or while running (through
//! [`SimHandle::set_faults`] or `PUT /_sim/faults`).
//!
//! Layout: `model` draws calls, `store` keeps and queries them, `render` writes their JSON,
//! `graph` and `token` answer the two services, `control` the `/_sim/` endpoints.

#![forbid(unsafe_code)]

mod args;
mod assertion;
mod control;
mod graph;
mod identity;
mod model;
mod render;
mod store;
mod token;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::Request;
use parking_lot::{Mutex, RwLock};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use exporter_web::serve::{self, HttpResponse};
use tve_clock::Clock;

use model::{CallRow, Degradation, LiveGenerator, Origin, TICKS_PER_MS};

pub use args::SimulationArgs;
pub use assertion::JWT_BEARER;
pub use identity::{FederatedCredential, ManagedIdentities, FEDERATED_AUDIENCE};
use store::Store;

/// The FQDNs of the simulated tenant's trunks.
pub fn trunk_fqdns() -> impl Iterator<Item = &'static str> {
    model::TRUNKS.iter().map(|t| t.fqdn)
}

/// Trunks of the demo tenant.
pub const DEMO_TRUNKS: usize = model::TRUNKS.len();
/// The most trunks a simulated tenant can have.
pub const MAX_TRUNKS: usize = model::MAX_TRUNKS;

/// Where the Azure instance metadata service hands out managed-identity tokens.
pub const IMDS_TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

/// Tenant id of the demo tenant.
pub const DEMO_TENANT_ID: &str = "00000000-0000-0000-0000-00000000d3e0";
/// Application (client) id registered in the demo tenant.
pub const DEMO_CLIENT_ID: &str = "00000000-0000-0000-0000-0000000c11e7";
/// Client id of the demo VM's system-assigned managed identity.
pub const DEMO_MANAGED_IDENTITY_ID: &str = "00000000-0000-0000-0000-0000000a11d0";
/// Client secret of the demo application. Not a secret: the demo tenant exists only locally.
pub const DEMO_CLIENT_SECRET: &str = "demo~client~secret~not~for~production";

/// Calls a day in the demo tenant: a large enterprise, so that even on a weekend night a
/// few calls a second arrive and a newcomer sees numbers move within seconds.
pub const DEMO_CALLS_PER_DAY: f64 = 300_000.0;
/// How much history the simulated tenant holds at start: a bit over three days, so that
/// every lookback the exporter may use finds rows and rows arrive up to two days late.
pub const DEMO_HISTORY: Duration = Duration::from_secs(74 * 3600);
/// History of the `--demo` tenant: shorter, so that the exporter's first read of the
/// lookback takes a fraction of a second, as if the tenant had started its calls then.
pub const QUICK_DEMO_HISTORY: Duration = Duration::from_secs(12 * 3600);

/// Rows older than the history by more than this are forgotten in live mode.
const PRUNE_SLACK: Duration = Duration::from_secs(2 * 3600);

/// How a simulated tenant is set up.
#[derive(Clone)]
pub struct SimConfig {
    /// Tenant accepted at the token endpoint (path segment).
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Seed of all randomness: the same seed gives the same calls, ids and tokens.
    pub seed: u64,
    pub traffic: Traffic,
    pub faults: Faults,
    /// Rows per page; Graph uses 1,000.
    pub page_size: usize,
    /// Time for visibility, token expiry, throttling and live traffic.
    pub clock: Clock,
    /// Credentials accepted besides the client secret, and the managed identities.
    pub identity: SimIdentity,
}

/// What the simulated Entra ID knows beyond the client secret.
#[derive(Clone, Debug, Default)]
pub struct SimIdentity {
    /// Certificates (DER) uploaded to the application: client assertions must be signed
    /// with one of their keys and name it by thumbprint.
    pub certificates: Vec<Vec<u8>>,
    /// Federated identity credentials of the application (workload identity).
    pub federated: Vec<FederatedCredential>,
    /// Identities the simulated VM's metadata service
    /// (`GET /metadata/identity/oauth2/token`) hands tokens to; none by default.
    pub managed_identity: Option<ManagedIdentities>,
    /// The Graph resource tokens are issued for (the scope's origin). Default: the
    /// tenant's own base URL. Another value issues tokens for a Graph elsewhere, e.g. one
    /// that cannot be reached.
    pub graph_resource: Option<String>,
}

impl SimConfig {
    /// Live realistic traffic for the demo: [`DEMO_CALLS_PER_DAY`] with [`DEMO_HISTORY`]
    /// pre-generated, served to the [`DEMO_CLIENT_ID`] of [`DEMO_TENANT_ID`].
    pub fn demo(clock: Clock) -> Self {
        SimConfig {
            tenant_id: DEMO_TENANT_ID.to_owned(),
            client_id: DEMO_CLIENT_ID.to_owned(),
            client_secret: DEMO_CLIENT_SECRET.to_owned(),
            seed: 0x7ea5_d3e0,
            traffic: Traffic::Live {
                calls_per_day: DEMO_CALLS_PER_DAY,
                history: DEMO_HISTORY,
                trunks: DEMO_TRUNKS,
            },
            faults: Faults {
                rate_limit: Some(RateLimit::GRAPH_PER_APP),
                ..Faults::default()
            },
            page_size: 1000,
            clock,
            // So that managed identity can be tried against `simulate` too.
            identity: SimIdentity {
                managed_identity: Some(ManagedIdentities {
                    system_assigned: Some(DEMO_MANAGED_IDENTITY_ID.to_owned()),
                    user_assigned: Vec::new(),
                }),
                ..SimIdentity::default()
            },
        }
    }
}

impl std::fmt::Debug for SimConfig {
    // Written by hand so the client secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("seed", &self.seed)
            .field("traffic", &self.traffic)
            .field("faults", &self.faults)
            .field("page_size", &self.page_size)
            .field("clock", &self.clock)
            .field("identity", &self.identity)
            .finish()
    }
}

/// Where the tenant's calls come from.
#[derive(Clone, Debug)]
pub enum Traffic {
    /// Realistic traffic generated as the clock runs; `history` of past calls exists at bind.
    Live {
        calls_per_day: f64,
        history: Duration,
        /// Trunks in all: the tenant's six, and copies of them beyond (`--simulate.trunks`).
        trunks: usize,
    },
    /// A fixed set of rows for exact comparisons.
    Scenario(Scenario),
}

/// A deterministic set of rows around the bind time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Scenario {
    /// Calls started over the last `span`, already visible at bind time (the exporter's
    /// first-start baseline must remember but not count these).
    pub preexisting_rows: usize,
    /// Calls started over the last `span` before bind, hidden until [`SimHandle::release`];
    /// each then becomes visible at release + uniform(0, `arrival_spread`).
    pub late_rows: usize,
    pub span: Duration,
    pub arrival_spread: Duration,
    /// Extra malformed rows, hidden until release and appearing like late rows.
    pub malformed_rows: usize,
}

/// Faults the tenant injects; all off by default.
///
/// "Every Nth" counts all Graph data requests from 1. When several faults fall on the same
/// request, the first of forbidden, revoked token, throttling, unavailability and invalid
/// JSON wins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Graph's throttling: more than `requests` data requests within any `window_secs`
    /// (real time) answer 429 with a Retry-After that says when the window has room
    /// again. Throttled requests count against the limit, as Graph's do. Off by default;
    /// the demo tenant (`--demo`, `simulate`) uses [`RateLimit::GRAPH_PER_APP`].
    pub rate_limit: Option<RateLimit>,
    /// Every Nth data request answers 429 with Retry-After; 0 = off.
    pub throttle_every: u32,
    /// Retry-After on 429 (and on 503 when `unavailable_retry_after`); 0 means 1.
    pub retry_after_secs: u64,
    /// Send Retry-After as an HTTP date (rounded up to a whole second) instead of seconds.
    pub retry_after_http_date: bool,
    /// Every Nth data request answers 503 `serviceNotAvailable`; 0 = off.
    pub unavailable_every: u32,
    pub unavailable_retry_after: bool,
    /// Every Nth data request answers 200 with a truncated JSON body; 0 = off.
    pub invalid_json_every: u32,
    /// Real-time delay before answering each data request.
    pub slow_page_ms: u64,
    /// `expires_in` of issued tokens; 0 means 3599.
    pub token_lifetime_secs: u64,
    /// Every Nth data request answers 401 and invalidates the token it carried; 0 = off.
    pub revoke_token_every: u32,
    /// A base URL (`http://127.0.0.1:4567`) that replaces this tenant's own in every nextLink.
    pub foreign_next_link: Option<String>,
    /// Every data request answers 403 (the app lacks `CallRecords.Read.All`).
    pub forbidden: bool,
    /// The 429s of `throttle_every` carry no Retry-After: the client must back off on its
    /// own (Graph documents this case).
    pub throttle_without_retry_after: bool,
    /// Every Nth token request answers 503 `temporarily_unavailable`, as Entra ID does in
    /// an incident; 0 = off.
    pub token_unavailable_every: u32,
    /// Tokens lack the `CallRecords.Read.All` role (the permission was not granted or not
    /// consented), so Graph answers their requests 403.
    pub missing_call_records_role: bool,
    /// A trunk FQDN (one of [`trunk_fqdns`]) whose calls fail all the time, mostly with
    /// 503 from the SBC and 408, while no other trunk degrades. Off: the demo's
    /// `sbc-legacy.fabrikam.com` fails in minutes 40 to 55 of every hour. Applies to calls
    /// drawn from then on (at start: the whole history).
    pub failing_trunk: Option<String>,
}

/// A request rate limit over a sliding window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub requests: u32,
    pub window_secs: u64,
}

impl RateLimit {
    /// Graph's documented call-records limit for one app in one tenant: 1,500 requests per
    /// 20 seconds (the tenant-wide 10,000 per 20 seconds is never reached by one app).
    pub const GRAPH_PER_APP: RateLimit = RateLimit {
        requests: 1500,
        window_secs: 20,
    };
}

/// The sliding window of a [`RateLimit`]: when recent data requests arrived, in real time.
#[derive(Debug, Default)]
struct RateWindow {
    arrivals: std::collections::VecDeque<std::time::Instant>,
    /// The last Retry-After sent asked the client to stay away until then.
    retry_after_until: Option<std::time::Instant>,
}

/// What the rate limit says about one request.
struct RateVerdict {
    /// Seconds to send as Retry-After when the request is over the limit.
    retry_after_secs: Option<u64>,
    /// The request came while an earlier Retry-After was pending.
    violated: bool,
}

impl RateWindow {
    /// Records a request arriving at `now` (every request counts, throttled or not).
    fn admit(&mut self, limit: RateLimit, now: std::time::Instant) -> RateVerdict {
        let window = Duration::from_secs(limit.window_secs.max(1));
        while self
            .arrivals
            .front()
            .is_some_and(|&at| now.duration_since(at) >= window)
        {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        let violated = self.retry_after_until.is_some_and(|until| now < until);
        let allowed = limit.requests.max(1) as usize;
        if self.arrivals.len() <= allowed {
            return RateVerdict {
                retry_after_secs: None,
                violated,
            };
        }
        // The next request fits once enough of the counted ones have left the window.
        let room_at = self.arrivals[self.arrivals.len() - allowed] + window;
        let wait = room_at.saturating_duration_since(now);
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.max(1);
        let until = now + Duration::from_secs(secs);
        self.retry_after_until = Some(self.retry_after_until.map_or(until, |u| u.max(until)));
        RateVerdict {
            retry_after_secs: Some(secs),
            violated,
        }
    }
}

impl Faults {
    /// Which trunk fails; an unknown FQDN (refused by the command line, but possible through
    /// `PUT /_sim/faults`) leaves the default.
    fn degradation(&self) -> Degradation {
        self.failing_trunk
            .as_deref()
            .and_then(Degradation::of_trunk)
            .unwrap_or_default()
    }

    fn retry_after_secs(&self) -> u64 {
        self.retry_after_secs.max(1)
    }

    fn token_lifetime_secs(&self) -> u64 {
        if self.token_lifetime_secs == 0 {
            3599
        } else {
            self.token_lifetime_secs
        }
    }
}

/// What the tenant has served so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests to the Graph API surface (`/v1.0/...`), whatever their answer.
    pub data_requests: u64,
    /// Well-formed 200 pages.
    pub pages_served: u64,
    /// Rows on those pages, malformed ones included.
    pub rows_served: u64,
    /// 429 answers, including those to requests that ignored a pending Retry-After.
    pub throttled_responses: u64,
    pub unavailable_responses: u64,
    pub invalid_json_responses: u64,
    /// 401 answers to data requests.
    pub unauthorized_responses: u64,
    pub forbidden_responses: u64,
    pub token_requests: u64,
    pub tokens_issued: u64,
    pub token_errors: u64,
    /// Data requests received while a Retry-After sent earlier was still pending.
    pub retry_after_violations: u64,
    /// Pages whose nextLink pointed at the foreign base URL.
    pub foreign_next_links_served: u64,
    /// 400, 404, 405 and 406 answers to data requests.
    pub bad_requests: u64,
    /// Client assertions (certificate or federated) that passed every check.
    pub client_assertions_accepted: u64,
    /// Accepted assertions whose `jti` had been seen before.
    pub repeated_assertion_ids: u64,
}

/// What the exporter must have seen, for exact comparison with its metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Rows the exporter must have counted. Scenario: the late rows visible now. Live: rows
    /// that became visible after `since` (default: bind time) and are still retained.
    pub rows: Vec<TruthRow>,
    /// Distinct malformed rows visible now, which the exporter must count as invalid.
    pub invalid_rows: u64,
    /// All rows visible now.
    pub visible_rows: u64,
}

/// The values of one well-formed row as its JSON carries them; `None` where the JSON has
/// null (or, for `end` and `failure`, year 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthRow {
    pub id: String,
    /// Exactly as in the row (case included).
    pub trunk_fqdn: Option<String>,
    pub call_type: Option<String>,
    pub final_sip_code: Option<i64>,
    pub call_end_sub_reason: Option<i64>,
    pub successful_call: Option<bool>,
    pub media_path_location: Option<String>,
    pub duration_secs: Option<i64>,
    /// RFC 3339, exactly as in the row.
    pub start: String,
    pub invite: Option<String>,
    pub end: Option<String>,
    pub failure: Option<String>,
}

/// Fault settings and the request counter they key on, changed together under one lock so
/// "every Nth request" stays exact under concurrent requests.
struct Gate {
    faults: Faults,
    data_requests: u64,
    /// Clock time (ms) until which the last Retry-After asked the client to stay away.
    throttled_until_ms: Option<i64>,
    rate: RateWindow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Live,
    Scenario,
}

/// State shared by the request handlers and the traffic task.
struct Tenant {
    tenant_id: String,
    client_id: String,
    client_secret: String,
    page_size: usize,
    clock: Clock,
    mode: Mode,
    base_url: String,
    bind_ms: i64,
    store: RwLock<Store>,
    gate: Mutex<Gate>,
    stats: Mutex<SimStats>,
    /// Issued access tokens.
    tokens: Mutex<HashMap<String, token::IssuedToken>>,
    identity: SimIdentity,
    /// The resource URI of the simulated Graph, without a trailing slash.
    graph_resource: String,
    /// `jti` of accepted client assertions.
    assertion_ids: Mutex<std::collections::HashSet<String>>,
    /// Randomness for tokens and request ids, apart from the calls' so that the calls do not
    /// depend on how many requests arrived.
    service_rng: Mutex<StdRng>,
}

impl Tenant {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn stats(&self) -> parking_lot::MutexGuard<'_, SimStats> {
        self.stats.lock()
    }

    fn new_uuid(&self) -> String {
        render::uuid(model::random_uuid(&mut *self.service_rng.lock()))
    }

    fn ground_truth(&self, since: Option<DateTime<Utc>>) -> GroundTruth {
        let now_ms = self.now_ms();
        let since_ms = since.map_or(self.bind_ms, |since| since.timestamp_millis());
        let store = self.store.read();
        let counted = |row: &CallRow| match self.mode {
            Mode::Scenario => row.origin == Origin::Late,
            Mode::Live => row.origin == Origin::Live && row.visible_ms > since_ms,
        };
        let mut visible_rows = 0;
        let mut rows = Vec::new();
        for row in store.visible(now_ms) {
            visible_rows += 1;
            if counted(row) {
                rows.push(render::truth_row(row));
            }
        }
        GroundTruth {
            rows,
            invalid_rows: store.visible_malformed(now_ms),
            visible_rows,
        }
    }

    fn release(&self) -> bool {
        let released = self.store.write().release(self.now_ms());
        if released {
            tracing::info!("simulated tenant released its late rows");
        }
        released
    }

    fn set_faults(&self, faults: Faults) {
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

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> HttpResponse {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let response = if path == "/" || path.starts_with("/_sim/") || path == "/_sim" {
            control::handle(&self, request).await
        } else if path.starts_with("/v1.0/") || path == "/v1.0" {
            graph::handle(&self, request).await
        } else if token::is_token_path(&path) {
            token::handle(&self, request).await
        } else if path == IMDS_TOKEN_PATH {
            identity::imds(&self, &request)
        } else {
            graph::not_found(&self, &request)
        };
        tracing::debug!(%method, %path, status = response.status().as_u16(), "simulated tenant answered");
        response
    }
}

/// A running simulated tenant. Dropping it stops serving; [`SimHandle::shutdown`] also waits
/// for the tasks to end.
pub struct SimHandle {
    tenant: Arc<Tenant>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// Binds `addr` (port 0 allowed), creates the tenant's rows and starts serving (and, for
    /// live traffic, generating calls).
    pub async fn bind(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let base_url = base_url_for(addr);
        let bind_ms = config.clock.now().timestamp_millis();

        // Drawing days of live history takes a moment; keep it off the async workers.
        let traffic = config.traffic.clone();
        let seed = config.seed;
        let degradation = config.faults.degradation();
        let (mode, rows, live) =
            tokio::task::spawn_blocking(move || initial_rows(&traffic, seed, bind_ms, degradation))
                .await
                .map_err(std::io::Error::other)?;
        let row_count = rows.len();
        let tenant = Arc::new(Tenant {
            tenant_id: config.tenant_id,
            client_id: config.client_id,
            client_secret: config.client_secret,
            page_size: config.page_size.max(1),
            mode,
            base_url: base_url.clone(),
            bind_ms,
            store: RwLock::new(Store::new(rows)),
            gate: Mutex::new(Gate {
                faults: config.faults,
                data_requests: 0,
                throttled_until_ms: None,
                rate: RateWindow::default(),
            }),
            stats: Mutex::new(SimStats::default()),
            tokens: Mutex::new(HashMap::new()),
            graph_resource: config
                .identity
                .graph_resource
                .clone()
                .unwrap_or_else(|| base_url.clone())
                .trim_end_matches('/')
                .to_owned(),
            identity: config.identity,
            assertion_ids: Mutex::new(std::collections::HashSet::new()),
            service_rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x5e41_ce00_7e4a_4711)),
            clock: config.clock,
        });
        let visible = tenant.store.read().visible(bind_ms).count();
        tracing::info!(
            base_url = %tenant.base_url,
            tenant_id = %tenant.tenant_id,
            mode = ?mode,
            rows = row_count,
            visible,
            "simulated tenant listening"
        );

        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let handler_tenant = Arc::clone(&tenant);
        let handler = move |request: Request<Incoming>, _peer: SocketAddr| {
            Arc::clone(&handler_tenant).handle(request)
        };
        tasks.push(tokio::spawn(serve::serve(
            listener,
            shutdown.clone(),
            handler,
        )));
        if let Some((generator, keep_ms)) = live {
            tasks.push(tokio::spawn(generate_live_traffic(
                Arc::clone(&tenant),
                generator,
                keep_ms,
                shutdown.clone(),
            )));
        }
        Ok(SimHandle {
            tenant,
            addr,
            shutdown,
            tasks,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the value for both the exporter's Graph endpoint and its
    /// authority host.
    pub fn base_url(&self) -> String {
        self.tenant.base_url.clone()
    }

    /// Starts the late arrivals of a scenario; later calls do nothing.
    pub fn release(&self) {
        self.tenant.release();
    }

    pub fn set_faults(&self, faults: Faults) {
        self.tenant.set_faults(faults);
    }

    pub fn faults(&self) -> Faults {
        self.tenant.gate.lock().faults.clone()
    }

    pub fn stats(&self) -> SimStats {
        self.tenant.stats().clone()
    }

    /// Ground truth now; in live mode counting rows that became visible since bind.
    pub fn ground_truth(&self) -> GroundTruth {
        self.tenant.ground_truth(None)
    }

    /// Ground truth now; in live mode counting rows that became visible after `since`.
    pub fn ground_truth_since(&self, since: DateTime<Utc>) -> GroundTruth {
        self.tenant.ground_truth(Some(since))
    }

    /// The clock the tenant runs on.
    pub fn clock(&self) -> &Clock {
        &self.tenant.clock
    }

    /// Stops accepting requests, lets those in flight finish and ends the traffic task.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The rows a tenant holds at bind time, and for live traffic the generator that continues
/// them with how long rows are kept.
fn initial_rows(
    traffic: &Traffic,
    seed: u64,
    bind_ms: i64,
    degradation: Degradation,
) -> (Mode, Vec<CallRow>, Option<(LiveGenerator, i64)>) {
    match traffic {
        Traffic::Scenario(scenario) => (
            Mode::Scenario,
            model::scenario_rows(seed, scenario, bind_ms, degradation),
            None,
        ),
        Traffic::Live {
            calls_per_day,
            history,
            trunks,
        } => {
            let history_ms = duration_ms(*history);
            let mut generator =
                LiveGenerator::new(seed, *calls_per_day, bind_ms.saturating_sub(history_ms))
                    .with_trunks(*trunks);
            generator.degradation = degradation;
            let rows = generator.generate_until(bind_ms);
            let keep_ms = history_ms.saturating_add(duration_ms(PRUNE_SLACK));
            (Mode::Live, rows, Some((generator, keep_ms)))
        }
    }
}

/// Adds the calls that started since the last pass every clock second and forgets those
/// beyond the history, so a long demo keeps a bounded log.
async fn generate_live_traffic(
    tenant: Arc<Tenant>,
    mut generator: LiveGenerator,
    keep_ms: i64,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tenant.clock.sleep(Duration::from_secs(1)) => {}
        }
        let now_ms = tenant.now_ms();
        generator.degradation = tenant.gate.lock().faults.degradation();
        let calls = generator.generate_until(now_ms);
        let cutoff = now_ms.saturating_sub(keep_ms).saturating_mul(TICKS_PER_MS);
        let mut store = tenant.store.write();
        for call in calls {
            store.insert(call);
        }
        let pruned = store.prune_started_before(cutoff);
        if pruned > 0 {
            tracing::debug!(
                pruned,
                retained = store.len(),
                "simulated tenant pruned old calls"
            );
        }
    }
}

/// The whole body of a request, or `None` if it is larger than `limit` bytes or breaks off.
async fn read_body(body: Incoming, limit: usize) -> Option<bytes::Bytes> {
    use http_body_util::BodyExt;
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes())
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The URL clients use to reach a listener: a wildcard bind is reached over loopback.
fn base_url_for(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(host, addr.port()))
}
