//! A running simulated tenant, or provider of tenants: binding its listener, building
//! every tenant's logs (all at once, on the blocking pool), routing requests to the
//! services and the tenant they are for, the tasks that keep live traffic coming, and the
//! public views of the tenants ([`SimTenantView`], [`SimTenantInfo`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::Request;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::graph::hostile::SimResponse;
use exporter_web::serve::{self, HttpResponse};
use tve_clock::Clock;

use crate::call_records::{CallRecordFetches, SimCallRecord};
use crate::config::{AppCredentials, Consent, SimConfig, DEMO_TENANT_NAME};
use crate::direct_routing::{self, Degradation, GroundTruth, LiveTraffic, TrunkNames};
use crate::faults::Faults;
use crate::issued::IssuedTokens;
use crate::pstn::{self, PstnGroundTruth, PstnLiveTraffic};
use crate::stats::{ServedRow, SimStats};
use crate::tenant::{Membership, Provider, Tenant};
use crate::toll_fraud::TollFraud;
use crate::traffic::Traffic;
use crate::{control, graph, token};

/// A running simulated tenant, or provider of tenants. Dropping it stops serving;
/// [`SimHandle::shutdown`] also waits for the tasks to end.
///
/// It dereferences to the home tenant's [`SimTenantView`], so that a single tenant is
/// observed and driven as before (`sim.ground_truth()`, `sim.set_faults(..)`);
/// [`SimHandle::tenant`] gives the view of any tenant.
pub struct SimHandle {
    pub(crate) home: SimTenantView,
    provider: Arc<Provider>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// One tenant of a running simulator, for tests and the exporter's demo: what
/// [`SimHandle`] offers for its home tenant, for this one.
#[derive(Clone)]
pub struct SimTenantView {
    pub(crate) tenant: Arc<Tenant>,
}

/// Who a tenant served by a simulator is, as an exporter's configuration names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimTenantInfo {
    pub id: String,
    pub name: String,
    pub consent: Consent,
    /// Its own application, if it has one.
    pub own_app: Option<AppCredentials>,
}

/// A tenant's logs as drawn at bind, with what continues them.
struct Drawn {
    config: SimConfig,
    member: Membership,
    direct_routing: direct_routing::Log,
    pstn: pstn::Log,
    live: Live,
}

impl SimHandle {
    /// Binds `addr` (port 0 allowed), creates the rows of the home tenant and of every
    /// tenant in `config.tenants` and starts serving (and, for live traffic, generating
    /// calls). Fails with `InvalidInput` when two tenants share an id or name, or a trunk
    /// domain is not a DNS name.
    pub async fn bind(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let base_url = base_url_for(addr);
        let bind_ms = config.clock.now().timestamp_millis();
        let tokens = Arc::new(IssuedTokens::default());

        // Drawing days of history takes a moment; keep it off the async workers, and draw
        // the tenants at once (the blocking pool runs them on as many threads as it has).
        let drawing: Vec<_> = tenant_configs(config, &tokens)?
            .into_iter()
            .map(|(config, member, names)| {
                tokio::task::spawn_blocking(move || draw(config, member, names, bind_ms))
            })
            .collect();
        let mut tenants = Vec::with_capacity(drawing.len());
        let mut lives = Vec::with_capacity(drawing.len());
        for drawn in drawing {
            let drawn = drawn.await.map_err(std::io::Error::other)?;
            let tenant = Arc::new(Tenant::new(
                drawn.config,
                drawn.member,
                base_url.clone(),
                bind_ms,
                drawn.direct_routing,
                drawn.pstn,
            ));
            log_tenant(&tenant, bind_ms);
            lives.push((Arc::clone(&tenant), drawn.live));
            tenants.push(tenant);
        }
        let provider = Arc::new(Provider::new(tenants, tokens));
        let home = SimTenantView {
            tenant: Arc::clone(provider.home()),
        };
        tracing::info!(
            base_url = %base_url,
            tenants = provider.all().len(),
            "simulated tenants listening"
        );

        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let handler_provider = Arc::clone(&provider);
        let handler = move |request: Request<Incoming>, _peer: SocketAddr| {
            route(Arc::clone(&handler_provider), request)
        };
        tasks.push(tokio::spawn(serve::serve(
            listener,
            shutdown.clone(),
            handler,
        )));
        for (tenant, live) in lives {
            tasks.push(tokio::spawn(generate_live_traffic(
                tenant,
                live,
                shutdown.clone(),
            )));
        }
        Ok(SimHandle {
            home,
            provider,
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
        self.home.tenant.base_url.clone()
    }

    /// Every tenant served, the home tenant first.
    pub fn tenants(&self) -> Vec<SimTenantInfo> {
        self.provider
            .all()
            .iter()
            .map(|tenant| SimTenantInfo {
                id: tenant.tenant_id.clone(),
                name: tenant.name.clone(),
                consent: tenant.consent,
                own_app: tenant.own_app.clone(),
            })
            .collect()
    }

    /// The tenant with this id or name (any case).
    pub fn tenant(&self, id_or_name: &str) -> Option<SimTenantView> {
        self.provider
            .by_id_or_name(id_or_name)
            .map(|tenant| SimTenantView {
                tenant: Arc::clone(tenant),
            })
    }

    /// Starts the late arrivals of every tenant's scenario; later calls do nothing.
    pub fn release(&self) {
        for tenant in self.provider.all() {
            tenant.release();
        }
    }

    /// The clock the tenants run on.
    pub fn clock(&self) -> &Clock {
        &self.home.tenant.clock
    }

    /// Stops accepting requests, lets those in flight finish and ends the traffic tasks.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl std::ops::Deref for SimHandle {
    type Target = SimTenantView;

    fn deref(&self) -> &SimTenantView {
        &self.home
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl SimTenantView {
    pub fn id(&self) -> &str {
        &self.tenant.tenant_id
    }

    pub fn name(&self) -> &str {
        &self.tenant.name
    }

    /// Starts the late arrivals of this tenant's scenario; later calls do nothing.
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

    /// Ground truth now by call start: every well-formed row visible now whose call started
    /// at or after `from`, whatever its origin (history, live, preexisting or late), with
    /// `invalid_rows` and `visible_rows` as in [`SimTenantView::ground_truth`]. An exporter
    /// that counts the calls that started from a time on (its first start minus one recent
    /// window) must have counted exactly these.
    pub fn ground_truth_started_from(&self, from: DateTime<Utc>) -> GroundTruth {
        self.tenant.ground_truth_started_from(from)
    }

    /// The PSTN log's ground truth now, by the rules of [`SimTenantView::ground_truth`]: in
    /// a scenario its late rows visible now, in live mode its rows that became visible
    /// since bind (the toll fraud's included).
    pub fn pstn_ground_truth(&self) -> PstnGroundTruth {
        self.tenant.pstn_ground_truth(None)
    }

    /// The PSTN log's [`SimTenantView::ground_truth_since`].
    pub fn pstn_ground_truth_since(&self, since: DateTime<Utc>) -> PstnGroundTruth {
        self.tenant.pstn_ground_truth(Some(since))
    }

    /// The PSTN log's [`SimTenantView::ground_truth_started_from`]: every well-formed PSTN
    /// row visible now whose call started at or after `from`.
    pub fn pstn_ground_truth_started_from(&self, from: DateTime<Utc>) -> PstnGroundTruth {
        self.tenant.pstn_ground_truth_started_from(from)
    }

    /// The call record of every established Direct Routing call the tenant keeps (its
    /// row's `correlationId` is the record's id), in call start order, with when Graph
    /// publishes it under the faults in force (None: never) and the whole record. Rows
    /// that wait for [`SimTenantView::release`] get theirs once released; calls older than
    /// 30 days, or pruned from a live log, have none.
    pub fn call_records(&self) -> Vec<SimCallRecord> {
        self.tenant.call_records(None)
    }

    /// How often each call record was asked for (the record itself, not its session
    /// pages), by record id; records never asked for are not in here.
    pub fn call_record_fetches(&self) -> HashMap<String, CallRecordFetches> {
        self.tenant.call_record_fetches()
    }

    /// Every well-formed row served on a page since bind, once, in the order first served:
    /// its call's start, when it became visible and when it was first served. The ground
    /// truth of the exporter's latency (from call start or from visibility to its metrics).
    pub fn served_rows(&self) -> Vec<ServedRow> {
        self.tenant.served_rows()
    }
}

/// The configuration, membership and trunk names of every tenant `config` asks for, the
/// home tenant first: a customer gets the home tenant's settings but for its id, its
/// volume, its seed and its trunks.
fn tenant_configs(
    config: SimConfig,
    tokens: &Arc<IssuedTokens>,
) -> std::io::Result<Vec<(SimConfig, Membership, TrunkNames)>> {
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
    let mut tenants = Vec::with_capacity(config.tenants.len() + 1);
    for (index, spec) in config.tenants.iter().enumerate() {
        let taken = |other: &str| {
            other.eq_ignore_ascii_case(&spec.id) || other.eq_ignore_ascii_case(&spec.name)
        };
        if spec.name.is_empty()
            || taken(&config.tenant_id)
            || taken(DEMO_TENANT_NAME)
            || config.tenants[..index]
                .iter()
                .any(|other| taken(&other.id) || taken(&other.name))
        {
            return Err(invalid(format!(
                "simulated tenant '{}' ({}) needs a name and an id no other tenant has",
                spec.name, spec.id
            )));
        }
        let domain = spec
            .trunk_domain
            .clone()
            .unwrap_or_else(|| format!("{}.com", spec.name));
        let names = TrunkNames::in_domain(&domain).ok_or_else(|| {
            invalid(format!(
                "the trunk domain '{domain}' of simulated tenant '{}' is not a DNS name; use letters, digits, '-' and '.'",
                spec.name
            ))
        })?;
        let mut customer = config.clone();
        customer.tenants = Vec::new();
        customer.tenant_id = spec.id.clone();
        customer.seed = config
            .seed
            .wrapping_add(spec.seed_offset.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        if let Traffic::Live { calls_per_day, .. } = &mut customer.traffic {
            *calls_per_day = spec.calls_per_day;
        }
        // The VM and its managed identities are the provider's, in the home tenant.
        customer.identity.managed_identity = None;
        // The failing trunk and the toll fraud are the home tenant's story: a customer with
        // an SBC of the same name stays healthy, so alerts must tell the two apart.
        customer.faults.toll_fraud = false;
        if customer.faults.failing_trunk.take().is_some() {
            customer.faults.quiet_trunks = true;
        }
        let member = Membership {
            index: index + 1,
            name: spec.name.clone(),
            consent: spec.consent,
            own_app: spec.own_app.clone(),
            tokens: Arc::clone(tokens),
        };
        tenants.push((customer, member, names));
    }
    let home = Membership {
        index: 0,
        name: DEMO_TENANT_NAME.to_owned(),
        consent: Consent::Granted,
        own_app: None,
        tokens: Arc::clone(tokens),
    };
    let mut home_config = config;
    home_config.tenants = Vec::new();
    tenants.insert(0, (home_config, home, TrunkNames::default()));
    Ok(tenants)
}

/// Draws a tenant's logs at bind and what continues them.
fn draw(config: SimConfig, member: Membership, names: TrunkNames, bind_ms: i64) -> Drawn {
    let seed = config.seed;
    let degradation = Degradation::of_faults(&config.faults, &names);
    let (pstn, pstn_live) = pstn::start(
        &config.traffic,
        seed,
        bind_ms,
        config.faults.pstn_calls_per_day,
    );
    let (direct_routing, live) =
        direct_routing::start(&config.traffic, seed, bind_ms, degradation, names);
    // Scenarios have no live traffic, but toll fraud can still be switched on.
    let live = Live {
        direct_routing: live,
        pstn: pstn_live,
        toll_fraud: TollFraud::new(seed),
        direct_routing_calls_per_day: match &config.traffic {
            Traffic::Live { calls_per_day, .. } => *calls_per_day,
            Traffic::Scenario(_) => 0.0,
        },
    };
    Drawn {
        config,
        member,
        direct_routing,
        pstn,
        live,
    }
}

fn log_tenant(tenant: &Tenant, bind_ms: i64) {
    let (rows, visible) = {
        let store = tenant.direct_routing.read();
        (store.len(), store.visible(bind_ms).count())
    };
    let (pstn_rows, pstn_visible) = {
        let store = tenant.pstn.read();
        (store.len(), store.visible(bind_ms).count())
    };
    tracing::debug!(
        tenant_id = %tenant.tenant_id,
        tenant = %tenant.name,
        consent = ?tenant.consent,
        mode = ?tenant.mode,
        rows,
        visible,
        pstn_rows,
        pstn_visible,
        "simulated tenant drawn"
    );
}

/// Hands a request to the service its path belongs to, for the tenant it names.
async fn route(provider: Arc<Provider>, request: Request<Incoming>) -> SimResponse {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // Only Graph's data requests may stream (an oversized page); the rest are buffered.
    let buffered = |response: HttpResponse| response.map(http_body_util::Either::Left);
    let home = provider.home();
    let response = if path == "/" || path.starts_with("/_sim/") || path == "/_sim" {
        buffered(control::handle(&provider, request).await)
    } else if path.starts_with("/v1.0/") || path == "/v1.0" {
        let tenant = Arc::clone(provider.by_token(graph::bearer_token(&request)));
        graph::handle(&tenant, request).await
    } else if token::is_token_path(&path) {
        // A tenant not served here is the home tenant's to refuse (AADSTS90002).
        let tenant = token::tenant_segment(&path)
            .and_then(|segment| provider.by_segment(&segment))
            .unwrap_or(home);
        buffered(token::handle(tenant, request).await)
    } else if path == token::IMDS_TOKEN_PATH {
        buffered(token::imds(home, &request))
    } else {
        buffered(graph::not_found(home, &request))
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), "simulated tenant answered");
    response
}

/// What keeps a tenant's logs growing: live traffic of each log, and the toll fraud.
struct Live {
    direct_routing: Option<LiveTraffic>,
    pstn: Option<PstnLiveTraffic>,
    toll_fraud: TollFraud,
    direct_routing_calls_per_day: f64,
}

/// Adds the calls that started since the last pass every clock second, with the failing
/// trunk, PSTN volume and toll fraud the faults ask for at that moment.
async fn generate_live_traffic(tenant: Arc<Tenant>, mut live: Live, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tenant.clock.sleep(Duration::from_secs(1)) => {}
        }
        let now_ms = tenant.now_ms();
        let faults = tenant.gate.lock().faults.clone();
        if let Some(direct_routing) = live.direct_routing.as_mut() {
            let degradation = Degradation::of_faults(&faults, tenant.direct_routing.names());
            direct_routing.step(&tenant.direct_routing, now_ms, degradation);
        }
        if let Some(pstn) = live.pstn.as_mut() {
            let calls_per_day =
                pstn::calls_per_day(live.direct_routing_calls_per_day, faults.pstn_calls_per_day);
            pstn.step(&tenant.pstn, now_ms, calls_per_day);
        }
        live.toll_fraud.step(
            &faults,
            tenant.bind_ms,
            now_ms,
            &tenant.direct_routing,
            &tenant.pstn,
        );
    }
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
