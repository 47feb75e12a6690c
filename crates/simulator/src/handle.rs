//! A running simulated tenant: binding its listener, building its logs, routing requests to
//! the services, and the task that keeps live traffic coming.

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

use crate::config::SimConfig;
use crate::direct_routing::{self, Degradation, GroundTruth, LiveTraffic};
use crate::faults::Faults;
use crate::pstn::{self, PstnGroundTruth, PstnLiveTraffic};
use crate::stats::{ServedRow, SimStats};
use crate::tenant::Tenant;
use crate::toll_fraud::TollFraud;
use crate::traffic::Traffic;
use crate::{control, graph, token};

/// A running simulated tenant. Dropping it stops serving; [`SimHandle::shutdown`] also waits
/// for the tasks to end.
pub struct SimHandle {
    pub(crate) tenant: Arc<Tenant>,
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
        let tenant_traffic = config.traffic.clone();
        let seed = config.seed;
        let degradation = Degradation::for_failing_trunk(config.faults.failing_trunk.as_deref());
        let pstn_calls_per_day = config.faults.pstn_calls_per_day;
        // Each log draws its history on its own thread, at once.
        let pstn_traffic = traffic.clone();
        let drawing_pstn = tokio::task::spawn_blocking(move || {
            pstn::start(&pstn_traffic, seed, bind_ms, pstn_calls_per_day)
        });
        let (direct_routing, live) = tokio::task::spawn_blocking(move || {
            direct_routing::start(&traffic, seed, bind_ms, degradation)
        })
        .await
        .map_err(std::io::Error::other)?;
        let (pstn, pstn_live) = drawing_pstn.await.map_err(std::io::Error::other)?;
        let tenant = Arc::new(Tenant::new(config, base_url, bind_ms, direct_routing, pstn));
        let (rows, visible) = {
            let store = tenant.direct_routing.read();
            (store.len(), store.visible(bind_ms).count())
        };
        let (pstn_rows, pstn_visible) = {
            let store = tenant.pstn.read();
            (store.len(), store.visible(bind_ms).count())
        };
        tracing::info!(
            base_url = %tenant.base_url,
            tenant_id = %tenant.tenant_id,
            mode = ?tenant.mode,
            rows,
            visible,
            pstn_rows,
            pstn_visible,
            "simulated tenant listening"
        );

        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let handler_tenant = Arc::clone(&tenant);
        let handler = move |request: Request<Incoming>, _peer: SocketAddr| {
            route(Arc::clone(&handler_tenant), request)
        };
        tasks.push(tokio::spawn(serve::serve(
            listener,
            shutdown.clone(),
            handler,
        )));
        // Scenarios have no live traffic, but toll fraud can still be switched on.
        let live = Live {
            direct_routing: live,
            pstn: pstn_live,
            toll_fraud: TollFraud::new(seed),
            direct_routing_calls_per_day: match &tenant_traffic {
                Traffic::Live { calls_per_day, .. } => *calls_per_day,
                Traffic::Scenario(_) => 0.0,
            },
        };
        tasks.push(tokio::spawn(generate_live_traffic(
            Arc::clone(&tenant),
            live,
            shutdown.clone(),
        )));
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

    /// Ground truth now by call start: every well-formed row visible now whose call started
    /// at or after `from`, whatever its origin (history, live, preexisting or late), with
    /// `invalid_rows` and `visible_rows` as in [`SimHandle::ground_truth`]. An exporter that
    /// counts the calls that started from a time on (its first start minus one recent
    /// window) must have counted exactly these.
    pub fn ground_truth_started_from(&self, from: DateTime<Utc>) -> GroundTruth {
        self.tenant.ground_truth_started_from(from)
    }

    /// The PSTN log's ground truth now, by the rules of [`SimHandle::ground_truth`]: in a
    /// scenario its late rows visible now, in live mode its rows that became visible since
    /// bind (the toll fraud's included).
    pub fn pstn_ground_truth(&self) -> PstnGroundTruth {
        self.tenant.pstn_ground_truth(None)
    }

    /// The PSTN log's [`SimHandle::ground_truth_since`].
    pub fn pstn_ground_truth_since(&self, since: DateTime<Utc>) -> PstnGroundTruth {
        self.tenant.pstn_ground_truth(Some(since))
    }

    /// The PSTN log's [`SimHandle::ground_truth_started_from`]: every well-formed PSTN row
    /// visible now whose call started at or after `from`.
    pub fn pstn_ground_truth_started_from(&self, from: DateTime<Utc>) -> PstnGroundTruth {
        self.tenant.pstn_ground_truth_started_from(from)
    }

    /// Every well-formed row served on a page since bind, once, in the order first served:
    /// its call's start, when it became visible and when it was first served. The ground
    /// truth of the exporter's latency (from call start or from visibility to its metrics).
    pub fn served_rows(&self) -> Vec<ServedRow> {
        self.tenant.served_rows()
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

/// Hands a request to the service its path belongs to.
async fn route(tenant: Arc<Tenant>, request: Request<Incoming>) -> SimResponse {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // Only Graph's data requests may stream (an oversized page); the rest are buffered.
    let buffered = |response: HttpResponse| response.map(http_body_util::Either::Left);
    let response = if path == "/" || path.starts_with("/_sim/") || path == "/_sim" {
        buffered(control::handle(&tenant, request).await)
    } else if path.starts_with("/v1.0/") || path == "/v1.0" {
        graph::handle(&tenant, request).await
    } else if token::is_token_path(&path) {
        buffered(token::handle(&tenant, request).await)
    } else if path == token::IMDS_TOKEN_PATH {
        buffered(token::imds(&tenant, &request))
    } else {
        buffered(graph::not_found(&tenant, &request))
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
            let degradation = Degradation::for_failing_trunk(faults.failing_trunk.as_deref());
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
