//! Wiring: from validated configuration to a running exporter.
//!
//! Builds the pieces in data-flow order (credentials → token cache → Graph client → tenant
//! state → poller → HTTP server), starts the simulated tenant first when asked for the
//! demo, and stops everything cleanly on SIGTERM or Ctrl-C.

use std::sync::Arc;

use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[cfg(feature = "demo")]
use crate::cli::SimulateArgs;
use crate::cli::{Config, ConfigError, EnvSecrets, ExporterArgs};
use crate::counting::store::StateError;
use crate::exposition::fleet::{Fleet, FleetCalls, FleetSelfMetrics};
use crate::exposition::http::{About, Web};
use crate::exposition::render::Exposition;
use crate::exposition::self_metrics::SelfMetrics;
use crate::exposition::web_args::listen_candidates;
use crate::source::auth::{Credential, TokenCache};
use crate::source::cloud::UrlError;
use crate::source::metrics::SourceMetrics;
use crate::tenants::config::TenantsFileError;
use crate::tenants::running::{Context, CredentialPlan, Reading, TenantStartError, Tenants};
use crate::tenants::shard::{ShardError, Sharding};
use crate::tenants::shard_args::{ShardArgsError, ShardPlan};
use exporter_web::web_config::WebConfig;
use tve_clock::Clock;
#[cfg(feature = "demo")]
use tve_simulator::SimHandle;

mod origin;
use origin::{hangups, reload, tenant_origin, unix_now, TenantOrigin};

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
    TenantsFile(#[from] TenantsFileError),
    #[error("{0}")]
    ShardFlags(ShardArgsError),
    #[error("--shard, --total-shards and --shard.auto split the tenants of a tenants file between processes; give --config.file, or leave them out to read the one tenant of AZURE_TENANT_ID")]
    ShardWithoutTenants,
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    Tenant(TenantStartError),
    #[error(transparent)]
    WebConfig(#[from] exporter_web::web_config::WebConfigError),
}

impl StartError {
    /// The process exit code: 2 for what the user must change in the configuration.
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Config(_)
            | StartError::WebConfig(_)
            | StartError::NoDemo
            | StartError::TenantsFile(_)
            | StartError::ShardFlags(_)
            | StartError::ShardWithoutTenants => 2,
            StartError::Tenant(TenantStartError::Credential(_)) => 2,
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
    let (shard_plan, sharding) = shard(&args).await?;
    let (origin, simulator) = tenant_origin(&args, &env, &mut config, &clock, sharding).await?;

    // Before anything is counted: totals read the label limits when they count (issue #18).
    crate::source::labels::LabelLimits::install(args.limits.labels());
    // At start rather than inside the first poll that meets a new row.
    crate::source::destination::load_numbering_plans();
    let fleet = Arc::new(match origin {
        TenantOrigin::Single(_) => Fleet::single_tenant(),
        _ => Fleet::new(),
    });
    let (registry, metrics) = self_metrics(&fleet, &config, sharding, &clock)?;
    let http = http_client(&config)?;

    let about = About {
        tenants: origin.describe(),
        credential: origin.credential_kind(),
        graph_endpoint: config.graph_endpoint.to_string(),
        schedule: config.schedule.clone(),
        budget: config.budget,
        demo: args.demo,
    };
    if config.state.is_none() && !args.demo {
        tracing::warn!("no --state.path: counted calls and remembered row ids are kept in memory only, so a restart sets the counters back to zero and calls that appear while the exporter is down are never counted; give it a file on a persistent volume with --state.path");
    }
    let plans = origin.plans()?;
    check_shared_credential(&args, &env, &plans)?;
    origin.share_state_cache(plans.len() * config.functions.len());
    let (ended, ended_tenants) = tokio::sync::mpsc::unbounded_channel();
    let functions = config.functions.clone();
    let context = Context {
        config: Arc::new(reading(&config)),
        http,
        clock: clock.clone(),
        credential_args: args.azure.credential.clone(),
        env,
        process_reads: Arc::new(tokio::sync::Semaphore::new(
            args.tenants.max_concurrent_reads,
        )),
        response_limits: args.limits.response(),
        ended,
    };
    let mut tenants = Tenants::new(Arc::new(context), fleet.clone());
    let change = tenants
        .apply(plans.clone(), matches!(origin, TenantOrigin::Single(_)))
        .await
        .map_err(StartError::Tenant)?;
    metrics.config_read(true, unix_now(&clock));
    origin.drop_removed_state(&plans, args.tenants.removed_tenant_retention);
    let names: Vec<&str> = config.functions.iter().map(|f| f.name()).collect();
    tracing::info!(collectors = %names.join(","), tenants = change.added.len(), "reading these call logs");

    let listener = listen(&config, &about, &web_config).await?;
    let (reload_requests, reloads) = tokio::sync::mpsc::channel(4);
    let web = Arc::new(Web {
        exposition: Exposition::new(registry, Box::new(FleetCalls(fleet.clone())))
            .with_new_series_hold(config.new_series_hold)
            .with_max_series(args.web.max_series),
        telemetry_path: config.telemetry_path.clone(),
        fleet,
        functions,
        reload: args.web.enable_lifecycle.then_some(reload_requests),
        about,
        web_config,
        basic_auth: Default::default(),
    });
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(crate::exposition::http::run(
        listener,
        web,
        shutdown.clone(),
    ));
    let mut running = Running {
        tenants,
        origin,
        shard_plan,
        metrics,
        clock,
        retention: args.tenants.removed_tenant_retention,
    };
    let outcome = running.until_signal(ended_tenants, reloads).await;
    shutdown.cancel();
    let _ = server.await;
    // Each poller saves what it counted as it stops.
    running.tenants.stop_all().await;
    #[cfg(feature = "demo")]
    if let Some(sim) = simulator {
        sim.shutdown().await;
    }
    #[cfg(not(feature = "demo"))]
    drop(simulator);
    outcome
}

/// The shard flags, checked, and the shard this process is (with `--shard.auto`, read
/// from its StatefulSet).
async fn shard(args: &ExporterArgs) -> Result<(ShardPlan, Sharding), StartError> {
    let plan = args.shard.plan().map_err(StartError::ShardFlags)?;
    if args.tenants.config_file.is_none() && plan != ShardPlan::Fixed(Sharding::SINGLE) {
        return Err(StartError::ShardWithoutTenants);
    }
    Ok((plan, plan.resolve().await?))
}

/// A shared credential that cannot work is the user's to fix before anything runs, not
/// one "down" per tenant.
fn check_shared_credential(
    args: &ExporterArgs,
    env: &EnvSecrets,
    plans: &[crate::tenants::running::TenantPlan],
) -> Result<(), StartError> {
    if let Some(shared) = plans
        .iter()
        .find(|plan| matches!(plan.credential, CredentialPlan::Shared))
    {
        args.azure
            .credential
            .credential_for(env, &shared.id)
            .map_err(ConfigError::from)?;
    }
    Ok(())
}

/// Binds `--web.listen-address` and says so.
async fn listen(
    config: &Config,
    about: &About,
    web_config: &WebConfig,
) -> Result<TcpListener, StartError> {
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
        tenants = %about.tenants,
        "teams-voice-exporter listening"
    );
    Ok(listener)
}

/// The process's own metrics, with every tenant's (`fleet`) among them.
fn self_metrics(
    fleet: &Arc<Fleet>,
    config: &Config,
    sharding: Sharding,
    clock: &Clock,
) -> Result<(Registry, SelfMetrics), StartError> {
    let registry = Registry::new();
    let metrics = SelfMetrics::register(&registry)?;
    crate::source::labels::register(&registry)?;
    registry.register(Box::new(FleetSelfMetrics(fleet.clone())))?;
    metrics.start_time.set(unix_now(clock));
    metrics
        .poll_interval
        .set(config.schedule.poll_interval.as_secs_f64());
    metrics.shard(sharding.ordinal, sharding.total);
    Ok((registry, metrics))
}

/// How every tenant is read, from the configuration.
fn reading(config: &Config) -> Reading {
    Reading {
        graph_endpoint: config.graph_endpoint.clone(),
        authority_host: config.authority_host.clone(),
        retry: config.retry.clone(),
        graph_concurrency: config.graph_concurrency,
        budget: config.budget,
        schedule: config.schedule.clone(),
        functions: config.functions.clone(),
        call_quality: config.call_quality,
    }
}

/// The tenants running, with what reading the tenants file again needs.
struct Running {
    tenants: Tenants,
    origin: TenantOrigin,
    shard_plan: ShardPlan,
    metrics: SelfMetrics,
    clock: Clock,
    retention: std::time::Duration,
}

impl Running {
    /// Runs until SIGTERM or Ctrl-C, reloading on SIGHUP and `POST /-/reload`.
    async fn until_signal(
        &mut self,
        mut ended_tenants: tokio::sync::mpsc::UnboundedReceiver<String>,
        mut reloads: tokio::sync::mpsc::Receiver<
            tokio::sync::oneshot::Sender<Result<String, String>>,
        >,
    ) -> Result<(), StartError> {
        let mut hangups = hangups();
        // A poller only ends when asked to; if one ends otherwise (a bug that panicked),
        // its metrics would freeze while /-/healthy still said yes, so the process stops
        // instead and the supervisor restarts it.
        loop {
            tokio::select! {
                _ = wait_for_signal() => {
                    tracing::info!("stopping");
                    return Ok(());
                }
                Some(tenant) = ended_tenants.recv() => {
                    return Err(StartError::PollerStopped(format!("a poller of tenant {tenant} ended (see the log above)")));
                }
                Some(answer) = reloads.recv() => {
                    let _ = answer.send(self.reload().await);
                }
                Some(()) = hangups.recv() => {
                    let _ = self.reload().await;
                }
            }
        }
    }

    async fn reload(&mut self) -> Result<String, String> {
        reload(
            &mut self.tenants,
            &mut self.origin,
            self.shard_plan,
            &self.metrics,
            &self.clock,
            self.retention,
        )
        .await
    }
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
    if args.simulation.call_record_delay.is_none() {
        sim_config.faults.call_record_delay = tve_simulator::DEMO_CALL_RECORD_DELAY;
    }
    if let Some(quality) = config.call_quality.as_mut() {
        // The first fetch when the simulated tenant starts publishing records, as the
        // default wait does against Graph's 15-60 minutes.
        if !args.call_quality.wait_given() {
            quality.wait = sim_config.faults.call_record_delay.min(quality.give_up / 2);
        }
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
        call_records: documented.call_records.map(faster),
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
