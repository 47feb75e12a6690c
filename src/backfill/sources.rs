//! The sources a backfill reads, built from the exporter's own flags: every enabled
//! call-log function of the one tenant (or of every tenant of `--config.file`), each tenant
//! with its tokens, Graph client and request budget as the live exporter gives it; and
//! where each source's live counting began, from `--state.path`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::source::{AnySource, SourceRun};
use super::BackfillError;
use crate::app::{self, DemoTenant};
use crate::cli::{BackfillArgs, Config, EnvSecrets, ExporterArgs};
use crate::counting::store::saved_progress;
use crate::source::auth::Credential;
use crate::source::direct_routing::DirectRouting;
use crate::source::graph::{GraphClient, RequestBudget};
use crate::source::metrics::SourceMetrics;
use crate::source::pstn::Pstn;
use crate::source::{Function, Tenant};
use crate::tenants::config::TenantsFile;
use tve_clock::Clock;

/// A tenant to read: its id, its `tenant` label and its credential.
struct TenantToRead {
    id: String,
    name: String,
    credential: Credential,
}

/// The sources, the configuration they were built from, and the simulated tenant of
/// `--demo`, which must serve until the backfill ends.
pub struct Built {
    pub sources: Vec<AnySource>,
    pub config: Config,
    pub _demo: Option<DemoTenant>,
}

fn config_error(error: impl std::fmt::Display) -> BackfillError {
    BackfillError::Config(error.to_string())
}

pub async fn build(args: &BackfillArgs, env: EnvSecrets) -> Result<Built, BackfillError> {
    let exporter = &args.exporter;
    let mut config = exporter.config().map_err(config_error)?;
    // As the exporter does before anything is counted (issue #18).
    crate::source::labels::LabelLimits::install(exporter.limits.labels());
    crate::source::destination::load_numbering_plans();
    let clock = Clock::system();
    let (tenants, demo) = match &exporter.tenants.config_file {
        Some(path) => (tenants_of_file(exporter, &env, path)?, None),
        None => {
            let (credential, demo) = app::credential(exporter, &env, &mut config, &clock)
                .await
                .map_err(config_error)?;
            let tenant = credential.tenant();
            // The `tenant` label the live exporter gives its one tenant.
            let name = match (&exporter.tenants.tenant_name, &tenant) {
                (Some(name), _) => name.clone(),
                (None, Tenant::Id(id)) => id.clone(),
                (None, Tenant::ManagedIdentityOwn) => "default".to_owned(),
            };
            let id = tenant.as_str().to_owned();
            (
                vec![TenantToRead {
                    id,
                    name,
                    credential,
                }],
                demo,
            )
        }
    };
    let http = app::http_client(&config).map_err(config_error)?;
    let mut sources = Vec::new();
    // As live: --tenants.max-concurrent-reads bounds the requests in flight of all tenants.
    let process_reads = Arc::new(tokio::sync::Semaphore::new(
        exporter.tenants.max_concurrent_reads,
    ));
    for tenant in tenants {
        let metrics =
            SourceMetrics::register(&prometheus::Registry::new()).map_err(config_error)?;
        let tokens = app::token_cache(&http, tenant.credential, &config, metrics.clone())
            .map_err(config_error)?;
        // One budget per tenant, shared by its functions, as Graph's limits are per tenant.
        let graph = Arc::new(
            GraphClient::new(
                http.clone(),
                config.graph_endpoint.clone(),
                Arc::new(tokens),
                config.retry.clone(),
                metrics,
            )
            .with_budget(Arc::new(RequestBudget::new(config.budget, clock.clone())))
            .with_response_limits(exporter.limits.response())
            .with_concurrency(config.graph_concurrency)
            .with_process_reads(process_reads.clone()),
        );
        for function in &config.functions {
            let (id, name, graph) = (tenant.id.clone(), tenant.name.clone(), graph.clone());
            // The end is set once the range is known.
            let end = DateTime::<Utc>::MAX_UTC;
            sources.push(match function {
                Function::DirectRoutingCalls => {
                    AnySource::DirectRouting(SourceRun::new(id, name, end, graph))
                }
                Function::PstnCalls => AnySource::Pstn(SourceRun::new(id, name, end, graph)),
            });
        }
    }
    Ok(Built {
        sources,
        config,
        _demo: demo,
    })
}

fn tenants_of_file(
    exporter: &ExporterArgs,
    env: &EnvSecrets,
    path: &std::path::Path,
) -> Result<Vec<TenantToRead>, BackfillError> {
    let file = TenantsFile::load(path).map_err(config_error)?;
    file.tenants
        .into_iter()
        .map(|entry| {
            let credential = match &entry.credential {
                None => exporter
                    .azure
                    .credential
                    .credential_for(env, &entry.id)
                    .map_err(|e| e.to_string()),
                Some(own) => own
                    .credential_args(&exporter.azure.credential, &entry.id)
                    .and_then(|(flags, secrets)| {
                        flags.credential(&secrets).map_err(|e| e.to_string())
                    }),
            };
            let credential = credential
                .map_err(|e| BackfillError::Config(format!("tenant {}: {e}", entry.name)))?;
            Ok(TenantToRead {
                id: entry.id,
                name: entry.name,
                credential,
            })
        })
        .collect()
}

/// How far back `--from` may reach: `--retention`, or Graph's default for each function.
pub fn retention(args: &BackfillArgs, functions: &[Function]) -> Vec<(Function, Duration)> {
    functions
        .iter()
        .map(|f| (*f, args.retention.unwrap_or_else(|| f.default_retention())))
        .collect()
}

/// Where each source's live counting began (its first start's boundary), from
/// `--state.path`; `None` for a source without a state file (not counted live yet).
pub fn first_starts(
    config: &Config,
    sources: &[AnySource],
    exporter: &ExporterArgs,
) -> Result<Vec<Option<DateTime<Utc>>>, BackfillError> {
    let Some(state) = &config.state else {
        return Ok(vec![None; sources.len()]);
    };
    let now = Utc::now();
    sources
        .iter()
        .map(|source| {
            let (tenant_id, function) = match source {
                AnySource::DirectRouting(s) => (s.tenant_id.as_str(), Function::DirectRoutingCalls),
                AnySource::Pstn(s) => (s.tenant_id.as_str(), Function::PstnCalls),
            };
            // Read from a copy: the file of a running exporter, untouched (`--state.reset`
            // included).
            let options = match exporter.tenants.config_file {
                Some(_) => state.for_tenant(tenant_id),
                None => state.clone(),
            };
            let path = options.path_for(function);
            if !path.exists() {
                return Ok(None);
            }
            let progress = match function {
                Function::DirectRoutingCalls => saved_progress::<DirectRouting>(&path, tenant_id),
                Function::PstnCalls => saved_progress::<Pstn>(&path, tenant_id),
            };
            let fail = |reason: String| BackfillError::FirstStart {
                path: path.display().to_string(),
                reason,
            };
            let boundary = progress
                .map_err(|e| fail(e.to_string()))?
                .filter(|p| p.first_start_done)
                .and_then(|p| p.forgotten_before);
            // The boundary moves on with the lookback once the first start is older than
            // it: then the saved value is no longer where counting began.
            let moved = config.schedule.lookback.saturating_sub(Duration::from_secs(3600));
            match boundary {
                Some(b) if (now - b).to_std().unwrap_or_default() < moved => Ok(Some(b)),
                Some(_) => Err(fail(format!(
                    "the first start is older than the lookback ({}), and the saved boundary has moved on since",
                    humantime::format_duration(config.schedule.lookback)
                ))),
                None => Ok(None),
            }
        })
        .collect()
}
