//! The tenants a process reads, running: each with its own credential and tokens, Graph
//! client, request budget and `Retry-After` gate, and one poller per call-log function, so
//! that a tenant that cannot be read (no consent, no permission, throttled) delays or
//! breaks no other. Only the process's bound on requests in flight
//! (`--tenants.max-concurrent-reads`) is shared, and a request holds its place only while it
//! is on its way.
//!
//! [`Tenants::apply`] takes the tenants to read, at start and at every reload: added ones
//! start, removed ones stop (saving what they counted) and their series go, changed ones
//! restart, and unchanged ones go on counting untouched.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::config::TenantCredential;
use crate::counting::poller::{Poller, PollerStatus};
use crate::counting::schedule::Schedule;
use crate::counting::store::{self, EstablishedCalls, StateError, StateOptions};
use crate::exposition::calls::{CallMetrics, QualityCalls, StateCollector};
use crate::exposition::fleet::{Fleet, SourceView, TenantShown};
use crate::exposition::self_metrics::TenantMetrics;
use crate::quality::args::QualityOptions;
use crate::quality::collector::CallQuality;
use crate::quality::queue::QueueOptions;
use crate::quality::store::{path_beside, QualityStateError, QualityStore};
use crate::source::auth::args::{CredentialArgs, EnvSecrets};
use crate::source::auth::{Credential, TokenCache};
use crate::source::direct_routing::DirectRouting;
use crate::source::graph::{BudgetLimits, RetryPolicy};
use crate::source::graph::{GraphClient, RequestBudget, ResponseLimits};
use crate::source::pstn::Pstn;
use crate::source::{CallLog, Function, Tenant};
use tve_clock::Clock;

/// A tenant to read: who it is, how it is called in the metrics, which credential reads it
/// and where its state is kept.
#[derive(Debug, Clone)]
pub struct TenantPlan {
    /// The directory (tenant) id or verified domain.
    pub id: String,
    /// The `tenant` label value.
    pub name: String,
    pub credential: CredentialPlan,
    /// `None` keeps the state in memory only.
    pub state: Option<StateOptions>,
}

/// Which credential reads a tenant.
#[derive(Debug, Clone)]
pub enum CredentialPlan {
    /// The process's own credential (environment and `--azure.*` flags, a multi-tenant app
    /// registration's), asking this tenant for its tokens.
    Shared,
    /// The tenant's own app registration, from the tenants file.
    Own(TenantCredential),
    /// Loaded already: the single tenant of the environment, or a simulated tenant.
    Given(Credential),
}

impl CredentialPlan {
    /// Whether a reload that plans `other` instead keeps the same credential.
    fn same_as(&self, other: &CredentialPlan) -> bool {
        match (self, other) {
            (CredentialPlan::Shared, CredentialPlan::Shared) => true,
            (CredentialPlan::Own(a), CredentialPlan::Own(b)) => a == b,
            // Only the tenants file is reloaded, and it never gives a loaded credential.
            (CredentialPlan::Given(_), CredentialPlan::Given(_)) => true,
            _ => false,
        }
    }

    /// The credential in words, for the landing page.
    fn describe(&self) -> String {
        match self {
            CredentialPlan::Shared => "the shared (multi-tenant) app registration".to_owned(),
            CredentialPlan::Own(own) => format!("its own app registration ({})", own.kind()),
            CredentialPlan::Given(credential) => credential.kind().to_owned(),
        }
    }
}

impl TenantPlan {
    /// Whether a reload that plans `other` for the same tenant can leave it running.
    fn unchanged(&self, other: &TenantPlan) -> bool {
        self.name == other.name
            && self.state == other.state
            && self.credential.same_as(&other.credential)
    }

    /// The key tenants are told apart by: ids compare without case.
    fn key(&self) -> String {
        self.id.to_ascii_lowercase()
    }
}

/// How every tenant is read: the configuration's part that is the same for all.
#[derive(Debug, Clone)]
pub struct Reading {
    pub graph_endpoint: reqwest::Url,
    pub authority_host: reqwest::Url,
    pub retry: RetryPolicy,
    /// `--graph.concurrency`: each tenant's requests in flight.
    pub graph_concurrency: usize,
    /// `--graph.rate-limit` and `--graph.tenant-rate-limit`: each tenant's budget.
    pub budget: BudgetLimits,
    pub schedule: Schedule,
    /// The call-log functions read (`--collector.*`).
    pub functions: Vec<Function>,
    /// `--collector.call-quality` (with Direct Routing only): `None` when off.
    pub call_quality: Option<QualityOptions>,
}

impl Reading {
    /// The call-quality collector's options, if it runs: it reads the records of Direct
    /// Routing calls, so not without them.
    fn call_quality(&self) -> Option<QualityOptions> {
        self.call_quality
            .filter(|_| self.functions.contains(&Function::DirectRoutingCalls))
    }
}

/// What every tenant is started with.
pub struct Context {
    pub config: Arc<Reading>,
    pub http: reqwest::Client,
    pub clock: Clock,
    /// The shared credential's flags and secrets, and the base of tenants' own ones.
    pub credential_args: CredentialArgs,
    pub env: EnvSecrets,
    /// Places for requests in flight, shared by every tenant.
    pub process_reads: Arc<tokio::sync::Semaphore>,
    pub response_limits: ResponseLimits,
    /// Told the name of a tenant whose poller ended without being asked to (a bug).
    pub ended: tokio::sync::mpsc::UnboundedSender<String>,
}

/// Why a tenant could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TenantStartError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Credential(String),
    #[error("cannot set up its token requests: {0}")]
    Tokens(String),
    #[error(transparent)]
    CallQuality(#[from] QualityStateError),
}

/// A running tenant.
struct Running {
    plan: TenantPlan,
    shown: Arc<TenantShown>,
    shutdown: CancellationToken,
    pollers: Vec<JoinHandle<()>>,
}

/// How a reload changed the tenants read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
    /// Tenants that could not start, with why (shown as down with the fix).
    pub failed: Vec<(String, String)>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |names: &[String]| {
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            }
        };
        write!(
            f,
            "{} added{}, {} removed{}, {} changed{}, {} unchanged",
            self.added.len(),
            list(&self.added),
            self.removed.len(),
            list(&self.removed),
            self.changed.len(),
            list(&self.changed),
            self.unchanged
        )?;
        if !self.failed.is_empty() {
            write!(f, "; {} could not start", self.failed.len())?;
        }
        Ok(())
    }
}

/// The tenants a process reads.
pub struct Tenants {
    context: Arc<Context>,
    fleet: Arc<Fleet>,
    running: BTreeMap<String, Running>,
}

impl Tenants {
    pub fn new(context: Arc<Context>, fleet: Arc<Fleet>) -> Self {
        Tenants {
            context,
            fleet,
            running: BTreeMap::new(),
        }
    }

    /// The tenants shown.
    pub fn fleet(&self) -> &Arc<Fleet> {
        &self.fleet
    }

    /// Reads `plans` from now on. With `strict`, a tenant that cannot start is an error
    /// (the single tenant of the environment: the process must not run without it);
    /// otherwise it is shown as down with why, and the others run.
    pub async fn apply(
        &mut self,
        plans: Vec<TenantPlan>,
        strict: bool,
    ) -> Result<Change, TenantStartError> {
        let mut change = Change::default();
        let mut wanted: BTreeMap<String, TenantPlan> = BTreeMap::new();
        for plan in plans {
            wanted.insert(plan.key(), plan);
        }
        // Stop first, all at once: a changed tenant's state file must be closed before it
        // reopens, and one tenant's stop must not wait for another's.
        let keys_before: Vec<String> = self.running.keys().cloned().collect();
        let mut stopping = Vec::new();
        for key in &keys_before {
            if wanted
                .get(key)
                .is_some_and(|plan| self.running[key].plan.unchanged(plan))
            {
                wanted.remove(key);
                change.unchanged += 1;
                continue;
            }
            let Some(running) = self.running.remove(key) else {
                continue;
            };
            if !wanted.contains_key(key) {
                change.removed.push(running.plan.name.clone());
            }
            stopping.push(stop(running));
        }
        futures_util::future::join_all(stopping).await;
        for (key, plan) in wanted {
            let name = plan.name.clone();
            // A tenant stopped above and planned again has changed; it is named as it is now.
            if keys_before.contains(&key) {
                change.changed.push(name.clone());
            } else {
                change.added.push(name.clone());
            }
            let running = match self.start(plan.clone()).await {
                Ok(running) => running,
                Err(error) if strict => {
                    self.show();
                    return Err(error);
                }
                Err(error) => {
                    tracing::error!(tenant = %name, %error, "the tenant cannot be read; the others are");
                    change.failed.push((name, error.to_string()));
                    self.not_started(plan, error)
                }
            };
            self.running.insert(key, running);
        }
        self.show();
        Ok(change)
    }

    /// Stops every tenant, each saving what it counted.
    pub async fn stop_all(&mut self) {
        let running = std::mem::take(&mut self.running);
        futures_util::future::join_all(running.into_values().map(stop)).await;
    }

    fn show(&self) {
        self.fleet
            .set(self.running.values().map(|r| r.shown.clone()).collect());
    }

    /// A tenant that could not start, shown as down with why.
    fn not_started(&self, plan: TenantPlan, error: TenantStartError) -> Running {
        let shown = Arc::new(TenantShown {
            name: plan.name.clone(),
            id: plan.id.clone(),
            credential: plan.credential.describe(),
            metrics: TenantMetrics::new().expect("valid metric descriptions"),
            calls: Vec::new(),
            sources: Vec::new(),
            problem: Some(error.to_string()),
        });
        Running {
            plan,
            shown,
            shutdown: CancellationToken::new(),
            pollers: Vec::new(),
        }
    }

    async fn start(&self, plan: TenantPlan) -> Result<Running, TenantStartError> {
        let context = &self.context;
        let config = &context.config;
        let mut metrics = TenantMetrics::new().expect("valid metric descriptions");
        if config.call_quality().is_some() {
            metrics = metrics
                .with_call_quality()
                .expect("valid metric descriptions");
        }
        let credential = self.credential(&plan)?;
        let tenant = credential.tenant();
        let tokens = TokenCache::new(
            context.http.clone(),
            credential,
            &config.authority_host,
            &config.graph_endpoint,
            metrics.source.clone(),
        )
        .map_err(|e| TenantStartError::Tokens(e.to_string()))?;
        let graph = GraphClient::new(
            context.http.clone(),
            config.graph_endpoint.clone(),
            Arc::new(tokens),
            config.retry.clone(),
            metrics.source.clone(),
        )
        .with_concurrency(config.graph_concurrency)
        .with_budget(Arc::new(RequestBudget::new(
            config.budget,
            context.clock.clone(),
        )))
        .with_response_limits(context.response_limits)
        .with_process_reads(context.process_reads.clone());
        let graph = match config.call_quality() {
            Some(options) => graph.with_call_record_budget(Arc::new(
                RequestBudget::for_call_records(options.rate, context.clock.clone()),
            )),
            None => graph,
        };
        let graph = Arc::new(graph);
        let quality = self.call_quality(&graph, &tenant, &plan, &metrics)?;
        let mut sources = Vec::with_capacity(config.functions.len());
        for &function in &config.functions {
            let start = match function {
                Function::DirectRoutingCalls => Source::start::<DirectRouting>,
                Function::PstnCalls => Source::start::<Pstn>,
            };
            let holder = match (function, &quality) {
                (Function::DirectRoutingCalls, Some(quality)) => {
                    Some(Arc::new(quality.clone()) as Arc<dyn EstablishedCalls>)
                }
                _ => None,
            };
            let started = start(
                graph.clone(),
                &tenant,
                &plan,
                config,
                &metrics,
                context.clock.clone(),
                holder,
            )?;
            sources.push(started);
        }
        let shutdown = CancellationToken::new();
        let mut calls = Vec::with_capacity(sources.len());
        let mut views = Vec::with_capacity(sources.len());
        let mut pollers = Vec::with_capacity(sources.len());
        for source in sources {
            calls.push(source.calls);
            views.push(source.view);
            pollers.push(self.spawn(&plan.name, source.poller, shutdown.clone()));
        }
        if let Some(quality) = quality {
            calls.push(Box::new(QualityCalls(quality.clone())));
            let run: RunPoller = Box::new(move |shutdown| Box::pin(quality.run(shutdown)));
            pollers.push(self.spawn(&plan.name, run, shutdown.clone()));
        }
        let shown = Arc::new(TenantShown {
            name: plan.name.clone(),
            id: plan.id.clone(),
            credential: plan.credential.describe(),
            metrics,
            calls,
            sources: views,
            problem: None,
        });
        Ok(Running {
            plan,
            shown,
            shutdown,
            pollers,
        })
    }

    /// Runs a poller in the tenant's span (every log line names the tenant), and reports it
    /// if it ends without being asked to.
    fn spawn(&self, name: &str, poller: RunPoller, shutdown: CancellationToken) -> JoinHandle<()> {
        let span = tracing::info_span!("tenant", tenant = %name);
        let task = tokio::spawn(poller(shutdown.clone()).instrument(span));
        let ended = self.context.ended.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            let outcome = task.await;
            if outcome.is_err() || !shutdown.is_cancelled() {
                let _ = ended.send(name);
            }
        })
    }

    /// The tenant's call-quality collector, restored from its file beside the Direct
    /// Routing state file, if it runs.
    fn call_quality(
        &self,
        graph: &Arc<GraphClient>,
        tenant: &Tenant,
        plan: &TenantPlan,
        metrics: &TenantMetrics,
    ) -> Result<Option<CallQuality>, TenantStartError> {
        let config = &self.context.config;
        let (Some(options), Some(quality_metrics)) = (config.call_quality(), &metrics.quality)
        else {
            return Ok(None);
        };
        let restored = match &plan.state {
            Some(state) => {
                let path = path_beside(&state.path_for(Function::DirectRoutingCalls));
                Some(QualityStore::open(&path, tenant.as_str(), state.reset)?)
            }
            None => None,
        };
        let queue = QueueOptions {
            wait: options.wait,
            give_up: options.give_up,
            max_pending: options.max_pending,
            remember: config.schedule.lookback,
        };
        Ok(Some(CallQuality::new(
            graph.clone(),
            self.context.clock.clone(),
            queue,
            restored,
            quality_metrics.clone(),
        )))
    }

    fn credential(&self, plan: &TenantPlan) -> Result<Credential, TenantStartError> {
        let context = &self.context;
        let credential = match &plan.credential {
            CredentialPlan::Given(credential) => return Ok(credential.clone()),
            CredentialPlan::Shared => context
                .credential_args
                .credential_for(&context.env, &plan.id),
            CredentialPlan::Own(own) => {
                let (args, env) = own
                    .credential_args(&context.credential_args, &plan.id)
                    .map_err(TenantStartError::Credential)?;
                args.credential(&env)
            }
        };
        credential.map_err(|e| TenantStartError::Credential(e.to_string()))
    }
}

/// Cancels a tenant's pollers and waits for them to save what they counted.
async fn stop(running: Running) {
    running.shutdown.cancel();
    for poller in running.pollers {
        let _ = poller.await;
    }
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
    /// Restores the source's state and sets up its poller.
    fn start<L: CallLog>(
        graph: Arc<GraphClient>,
        tenant: &Tenant,
        plan: &TenantPlan,
        config: &Reading,
        metrics: &TenantMetrics,
        clock: Clock,
        holder: Option<Arc<dyn EstablishedCalls>>,
    ) -> Result<Self, StateError> {
        metrics.initialise(L::FUNCTION);
        let restored = store::restore::<L>(
            plan.state.as_ref(),
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
            poller: Box::new(move |shutdown| match holder {
                Some(holder) => Box::pin(poller.run_holding(holder, shutdown)),
                None => Box::pin(poller.run(shutdown)),
            }),
            calls: Box::new(StateCollector::new(state)),
            view: SourceView {
                function: L::FUNCTION,
                status,
                state: restored.status,
            },
        })
    }
}
