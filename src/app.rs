//! Wiring: from validated configuration to a running exporter.
//!
//! Builds the pieces in data-flow order (credentials → token cache → Graph client → tenant
//! state → poller → HTTP server), starts the simulated tenant first when asked for the
//! demo, and stops everything cleanly on SIGTERM or Ctrl-C.

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[cfg(feature = "demo")]
use crate::cli::SimulateArgs;
use crate::cli::{Config, ConfigError, EnvSecrets, ExporterArgs};
use crate::counting::poller::{Poller, PollerStatus};
use crate::counting::store::{self, StateError};
use crate::exposition::calls::{AllCalls, CallMetrics, StateCollector};
use crate::exposition::http::{About, SourceView, Web};
use crate::exposition::render::Exposition;
use crate::exposition::self_metrics::SelfMetrics;
use crate::exposition::web_args::listen_candidates;
use crate::source::auth::{Credential, TokenCache};
use crate::source::cloud::UrlError;
use crate::source::direct_routing::DirectRouting;
use crate::source::graph::{GraphClient, RequestBudget};
use crate::source::metrics::SourceMetrics;
use crate::source::pstn::Pstn;
use crate::source::{CallLog, Function, Tenant};
use exporter_web::web_config::WebConfig;
use futures_util::future::BoxFuture;
use tve_clock::Clock;
#[cfg(feature = "demo")]
use tve_simulator::SimHandle;

/// Why the exporter could not start, or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {address}: {reason}. Choose another --web.listen-address, or stop what uses the port")]
    Listen { address: String, reason: String },
    #[error("cannot start the simulated tenant: {0}")]
    Simulator(std::io::Error),
    #[error("this build has no simulated tenant (--demo): build it with the default `demo` feature, or configure credentials for a real tenant")]
    NoDemo,
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the poller stopped: {0}; please report this as a bug")]
    PollerStopped(String),
    #[error(transparent)]
    WebConfig(#[from] exporter_web::web_config::WebConfigError),
}

impl StartError {
    /// The process exit code: 2 for what the user must change in the configuration.
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Config(_) | StartError::WebConfig(_) | StartError::NoDemo => 2,
            _ => 1,
        }
    }
}

/// Runs the exporter until SIGTERM or Ctrl-C. `env` holds the secrets `main` read from
/// the environment.
pub async fn run_exporter(args: ExporterArgs, env: EnvSecrets) -> Result<(), StartError> {
    let mut config = args.config()?;
    let web_config = Arc::new(WebConfig::load(args.web.web_config_file.as_deref())?);
    let clock = Clock::system();

    let (credential, simulator) = credential(&args, &env, &mut config, &clock).await?;

    // Before anything is counted: totals read the label limits when they count (issue #18).
    crate::source::labels::LabelLimits::install(args.limits.labels());
    let registry = Registry::new();
    let metrics = SelfMetrics::register(&registry)?;
    crate::source::labels::register(&registry)?;
    metrics
        .start_time
        .set(clock.now().timestamp_millis() as f64 / 1e3);
    metrics
        .counting
        .poll_interval
        .set(config.schedule.poll_interval.as_secs_f64());
    let http = http_client(&config)?;

    let tenant = credential.tenant();
    let about = About {
        tenant_id: tenant.as_str().to_owned(),
        credential: credential.kind(),
        graph_endpoint: config.graph_endpoint.to_string(),
        schedule: config.schedule.clone(),
        budget: config.budget,
        demo: args.demo,
    };
    tracing::info!(credential = ?credential, "credential chosen");
    let tokens = token_cache(&http, credential, &config, metrics.source.clone())?;
    let graph = GraphClient::new(
        http,
        config.graph_endpoint.clone(),
        Arc::new(tokens),
        config.retry.clone(),
        metrics.source.clone(),
    )
    .with_concurrency(config.graph_concurrency)
    .with_budget(Arc::new(RequestBudget::new(config.budget, clock.clone())))
    .with_response_limits(args.limits.response());

    if config.state.is_none() && !args.demo {
        tracing::warn!("no --state.path: counted calls and remembered row ids are kept in memory only, so a restart sets the counters back to zero and calls that appear while the exporter is down are never counted; give it a file on a persistent volume with --state.path");
    }
    let sources = start_sources(Arc::new(graph), &tenant, &config, &metrics, &clock)?;
    let names: Vec<&str> = config.functions.iter().map(|f| f.name()).collect();
    tracing::info!(collectors = %names.join(","), "reading these call logs");

    let listener = bind(&config.listen_address).await?;
    let address = listener
        .local_addr()
        .map_or_else(|_| config.listen_address.clone(), |a| a.to_string());
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        address = %address,
        telemetry_path = %config.telemetry_path,
        tls = web_config.tls(),
        graph = %about.graph_endpoint,
        tenant = %about.tenant_id,
        "teams-voice-exporter listening"
    );
    let mut calls = Vec::with_capacity(sources.len());
    let mut views = Vec::with_capacity(sources.len());
    let mut pollers = Vec::with_capacity(sources.len());
    for source in sources {
        calls.push(source.calls);
        views.push(source.view);
        pollers.push(source.poller);
    }
    let web = Arc::new(Web {
        exposition: Exposition::new(registry, Box::new(AllCalls(calls)))
            .with_new_series_hold(config.new_series_hold)
            .with_max_series(args.web.max_series),
        telemetry_path: config.telemetry_path.clone(),
        sources: views,
        about,
        web_config,
        basic_auth: Default::default(),
    });
    let outcome = serve_until_signal(pollers, listener, web).await;
    #[cfg(feature = "demo")]
    if let Some(sim) = simulator {
        sim.shutdown().await;
    }
    #[cfg(not(feature = "demo"))]
    drop(simulator);
    outcome
}

/// One source per enabled function (`--collector.*`), all sharing the tenant's Graph client
/// and so its request budget.
fn start_sources(
    graph: Arc<GraphClient>,
    tenant: &Tenant,
    config: &Config,
    metrics: &SelfMetrics,
    clock: &Clock,
) -> Result<Vec<Source>, StartError> {
    // At start rather than inside the first poll that meets a new row.
    crate::source::destination::load_numbering_plans();
    let mut sources = Vec::with_capacity(config.functions.len());
    for &function in &config.functions {
        let (graph, clock) = (graph.clone(), clock.clone());
        sources.push(match function {
            Function::DirectRoutingCalls => {
                Source::start::<DirectRouting>(graph, tenant, config, metrics, clock)?
            }
            Function::PstnCalls => Source::start::<Pstn>(graph, tenant, config, metrics, clock)?,
        });
    }
    Ok(sources)
}

/// A source's poller, ready to run until its token is cancelled.
type RunPoller = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// One source's counting, ready to run, whatever its function: its poller, the collector
/// of its call metrics, and what the HTTP server shows about both.
struct Source {
    poller: RunPoller,
    calls: Box<dyn CallMetrics>,
    view: SourceView,
}

impl Source {
    /// Restores the source's state (`--state.path`) and sets up its poller.
    fn start<L: CallLog>(
        graph: Arc<GraphClient>,
        tenant: &Tenant,
        config: &Config,
        metrics: &SelfMetrics,
        clock: Clock,
    ) -> Result<Self, StartError> {
        metrics.initialise(L::FUNCTION);
        let restored = store::restore::<L>(
            config.state.as_ref(),
            tenant.as_str(),
            metrics.counting.state_write_errors.clone(),
        )?;
        metrics
            .counting
            .remembered_rows
            .with_label_values(&[L::FUNCTION.name()])
            .set(restored.state.remembered_rows() as i64);
        let state = Arc::new(Mutex::new(restored.state));
        let status = Arc::new(PollerStatus::default());
        let poller = Poller {
            graph,
            state: state.clone(),
            status: status.clone(),
            metrics: metrics.counting.clone(),
            clock,
            schedule: config.schedule.clone(),
            progress: restored.progress,
            store: restored.store,
            tenant_sources: config.functions.len(),
        };
        Ok(Source {
            poller: Box::new(move |shutdown| Box::pin(poller.run(shutdown))),
            calls: Box::new(StateCollector::new(state)),
            view: SourceView {
                function: L::FUNCTION,
                status,
                state: restored.status,
            },
        })
    }
}

/// Serves `web` and runs the pollers until SIGTERM or Ctrl-C, then stops all cleanly.
async fn serve_until_signal(
    pollers: Vec<RunPoller>,
    listener: TcpListener,
    web: Arc<Web>,
) -> Result<(), StartError> {
    let shutdown = CancellationToken::new();
    let mut polling = tokio::task::JoinSet::new();
    for poller in pollers {
        polling.spawn(poller(shutdown.clone()));
    }
    let server = tokio::spawn(crate::exposition::http::run(
        listener,
        web,
        shutdown.clone(),
    ));
    // A poller only ends when asked to; if one ends otherwise (a bug that panicked), its
    // metrics would freeze while /-/healthy still said yes, so the process stops instead
    // and the supervisor restarts it.
    let outcome = tokio::select! {
        _ = wait_for_signal() => {
            tracing::info!("stopping");
            Ok(())
        }
        Some(ended) = polling.join_next() => Err(StartError::PollerStopped(match ended {
            Err(error) if error.is_panic() => "it panicked (see the log above)".to_owned(),
            _ => "it ended unexpectedly".to_owned(),
        })),
    };
    shutdown.cancel();
    let _ = server.await;
    // Each poller saves what it counted as it stops.
    while polling.join_next().await.is_some() {}
    outcome
}

/// A simulated tenant started for `--demo`, stopped with the exporter.
#[cfg(feature = "demo")]
pub type DemoTenant = SimHandle;
/// Without the `demo` feature there is no simulated tenant to start.
#[cfg(not(feature = "demo"))]
pub type DemoTenant = std::convert::Infallible;

/// The credential to use; with `--demo`, the simulated tenant's, after starting it and
/// pointing the configuration at it.
pub async fn credential(
    args: &ExporterArgs,
    env: &EnvSecrets,
    config: &mut Config,
    clock: &Clock,
) -> Result<(Credential, Option<DemoTenant>), StartError> {
    if !args.demo {
        let credential = args.azure.credential.credential(env);
        return Ok((credential.map_err(ConfigError::from)?, None));
    }
    demo_credential(args, config, clock).await
}

#[cfg(not(feature = "demo"))]
async fn demo_credential(
    _: &ExporterArgs,
    _: &mut Config,
    _: &Clock,
) -> Result<(Credential, Option<DemoTenant>), StartError> {
    Err(StartError::NoDemo)
}

#[cfg(feature = "demo")]
async fn demo_credential(
    args: &ExporterArgs,
    config: &mut Config,
    clock: &Clock,
) -> Result<(Credential, Option<DemoTenant>), StartError> {
    let mut sim_config = args
        .simulation
        .config(tve_simulator::QUICK_DEMO_HISTORY, clock.clone());
    if sim_config.faults.limits == tve_simulator::GraphLimits::DOCUMENTED {
        // The demo polls 30 times as often as the defaults do; Graph's limits and the
        // budget (see `GraphArgs::options`) run as much faster, so the demo keeps to its
        // budget the way a real deployment does.
        sim_config.faults.limits = demo_limits();
    }
    let sim = SimHandle::bind(sim_config, ([127, 0, 0, 1], 0).into())
        .await
        .map_err(StartError::Simulator)?;
    let base: reqwest::Url = sim.base_url().parse().map_err(|e: url::ParseError| {
        StartError::Simulator(std::io::Error::other(e.to_string()))
    })?;
    config.graph_endpoint = base.clone();
    config.authority_host = base;
    tracing::info!(address = %sim.addr(), "demo: simulated Graph tenant started; no Azure account is used");
    let credential = Credential::ClientSecret {
        tenant_id: tve_simulator::DEMO_TENANT_ID.to_owned(),
        client_id: tve_simulator::DEMO_CLIENT_ID.to_owned(),
        secret: tve_simulator::DEMO_CLIENT_SECRET.to_owned().into(),
    };
    Ok((credential, Some(sim)))
}

/// Graph's documented limits, sped up as the demo's schedule is.
#[cfg(feature = "demo")]
fn demo_limits() -> tve_simulator::GraphLimits {
    use crate::source::graph_args::DEMO_SPEED;
    use tve_simulator::{GraphLimits, RateLimit};
    let faster = |limit: RateLimit| RateLimit {
        requests: limit.requests,
        window_secs: (limit.window_secs / u64::from(DEMO_SPEED)).max(1),
    };
    let documented = GraphLimits::DOCUMENTED;
    GraphLimits {
        per_function: documented.per_function.map(faster),
        per_app: documented.per_app.map(faster),
        per_tenant: documented.per_tenant.map(faster),
        other_apps: None,
    }
}

/// The client for Graph and Entra ID.
pub fn http_client(config: &Config) -> Result<reqwest::Client, StartError> {
    reqwest::Client::builder()
        .user_agent(concat!("teams-voice-exporter/", env!("CARGO_PKG_VERSION")))
        .timeout(config.graph_timeout)
        // A redirect would carry the secret (token request body) or the bearer token to
        // another host, or count rows from somewhere else: neither service redirects.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.graph_timeout.min(std::time::Duration::from_secs(15)))
        .build()
        .map_err(|e| StartError::HttpClient(e.to_string()))
}

/// The token cache for `credential` against the configured login host and Graph.
pub fn token_cache(
    http: &reqwest::Client,
    credential: Credential,
    config: &Config,
    metrics: SourceMetrics,
) -> Result<TokenCache, StartError> {
    TokenCache::new(
        http.clone(),
        credential,
        &config.authority_host,
        &config.graph_endpoint,
        metrics,
    )
    .map_err(|e| {
        StartError::Config(ConfigError::Url(UrlError {
            flag: "--azure.authority-host",
            value: config.authority_host.to_string(),
            reason: e.to_string(),
        }))
    })
}

/// Serves the simulated tenant alone until SIGTERM or Ctrl-C.
#[cfg(feature = "demo")]
pub async fn run_simulator(args: SimulateArgs) -> Result<(), StartError> {
    let config = args
        .simulation
        .config(tve_simulator::DEMO_HISTORY, Clock::system());
    let sim = SimHandle::bind(config, args.listen)
        .await
        .map_err(|e| StartError::Listen {
            address: args.listen.to_string(),
            reason: e.to_string(),
        })?;
    tracing::info!(
        url = %sim.base_url(),
        tenant_id = tve_simulator::DEMO_TENANT_ID,
        client_id = tve_simulator::DEMO_CLIENT_ID,
        "simulated Graph tenant serving; point --graph.endpoint and --azure.authority-host at the url (the client secret is in the README)"
    );
    wait_for_signal().await;
    sim.shutdown().await;
    Ok(())
}

async fn bind(address: &str) -> Result<TcpListener, StartError> {
    let mut last_error = String::new();
    for candidate in listen_candidates(address) {
        match TcpListener::bind(&candidate).await {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = error.to_string(),
        }
    }
    Err(StartError::Listen {
        address: address.to_owned(),
        reason: last_error,
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
