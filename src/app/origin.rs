//! Where the tenants read come from (the environment's one, a tenants file, or the
//! simulated provider of `--demo`), and reading the tenants file again on SIGHUP or
//! `POST /-/reload`.

use super::{credential, DemoTenant, StartError};
use crate::cli::{Config, EnvSecrets, ExporterArgs};
use crate::exposition::self_metrics::SelfMetrics;
#[cfg(feature = "demo")]
use crate::source::auth::Credential;
use crate::source::Tenant;
use crate::tenants::plan::TenantsSource;
use crate::tenants::running::{CredentialPlan, TenantPlan, Tenants};
use crate::tenants::shard::Sharding;
use crate::tenants::shard_args::ShardPlan;
use tve_clock::Clock;

pub(super) fn unix_now(clock: &Clock) -> f64 {
    clock.now().timestamp_millis() as f64 / 1e3
}

/// Reads the tenants file again (and with `--shard.auto`, the StatefulSet's replicas) and
/// applies it; an invalid file changes nothing.
pub(super) async fn reload(
    tenants: &mut Tenants,
    origin: &mut TenantOrigin,
    shard_plan: ShardPlan,
    metrics: &SelfMetrics,
    clock: &Clock,
    retention: std::time::Duration,
) -> Result<String, String> {
    let TenantOrigin::File(source) = origin else {
        tracing::info!("reload asked for: nothing to read again, the tenant comes from the environment (--config.file lists many)");
        return Ok("nothing to reload: no --config.file".to_owned());
    };
    if let ShardPlan::Auto { .. } = shard_plan {
        match shard_plan.resolve().await {
            Ok(sharding) => {
                if sharding != source.sharding {
                    tracing::info!(
                        shard = sharding.ordinal,
                        total_shards = sharding.total,
                        "the StatefulSet changed: this process is now another shard"
                    );
                }
                source.sharding = sharding;
                metrics.shard(sharding.ordinal, sharding.total);
            }
            Err(error) => {
                metrics.config_read(false, unix_now(clock));
                tracing::error!(%error, "the shard could not be read again; the tenants read before go on unchanged");
                return Err(error.to_string());
            }
        }
    }
    let source = &*source;
    match source.plans() {
        Ok(plans) => {
            let change = match tenants.apply(plans.clone(), false).await {
                Ok(change) => change,
                Err(error) => return Err(error.to_string()),
            };
            metrics.config_read(true, unix_now(clock));
            source.drop_removed_state(&plans, retention);
            tracing::info!(%change, file = %source.path.display(), "tenants file reloaded");
            Ok(format!("reloaded: {change}"))
        }
        Err(error) => {
            metrics.config_read(false, unix_now(clock));
            tracing::error!(%error, "the tenants file was not reloaded; the tenants read before go on unchanged");
            Err(error.to_string())
        }
    }
}

/// SIGHUP, as a stream of reload requests.
pub(super) fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hangup) => {
            tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    // One pending reload reads the latest file; more add nothing.
                    let _ = sender.try_send(());
                }
            });
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; reload with POST /-/reload")
        }
    }
    #[cfg(not(unix))]
    drop(sender);
    receiver
}

/// Where the tenants read come from.
pub(super) enum TenantOrigin {
    /// The one tenant of the environment's credential.
    Single(TenantPlan),
    /// The tenants file.
    File(TenantsSource),
    /// The simulated tenants of `--demo`.
    Demo(Vec<TenantPlan>),
}

impl TenantOrigin {
    pub(super) fn plans(&self) -> Result<Vec<TenantPlan>, StartError> {
        match self {
            TenantOrigin::Single(plan) => Ok(vec![plan.clone()]),
            TenantOrigin::File(source) => Ok(source.plans()?),
            TenantOrigin::Demo(plans) => Ok(plans.clone()),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            TenantOrigin::Single(plan) if plan.name == plan.id => plan.id.clone(),
            TenantOrigin::Single(plan) => format!("{} (tenant=\"{}\")", plan.id, plan.name),
            TenantOrigin::File(source) => {
                let shard = &source.sharding;
                let mut text = format!("listed in {}", source.path.display());
                if shard.total > 1 {
                    text.push_str(&format!(", shard {} of {}", shard.ordinal, shard.total));
                }
                text
            }
            TenantOrigin::Demo(plans) => format!("{} simulated", plans.len()),
        }
    }

    pub(super) fn credential_kind(&self) -> &'static str {
        match self {
            TenantOrigin::Single(TenantPlan {
                credential: CredentialPlan::Given(credential),
                ..
            }) => credential.kind(),
            TenantOrigin::File(_) => "the shared app registration, or a tenant's own (see Tenants)",
            _ => "client secret",
        }
    }

    /// With a tenants file, `files` state files share the page cache; tenants added by
    /// reloads share what is left, above a floor anyway.
    pub(super) fn share_state_cache(&self, files: usize) {
        if let TenantOrigin::File(_) = self {
            crate::counting::store::share_cache_among(files);
        }
    }

    pub(super) fn drop_removed_state(&self, plans: &[TenantPlan], retention: std::time::Duration) {
        if let TenantOrigin::File(source) = self {
            source.drop_removed_state(plans, retention);
        }
    }
}

/// Where the tenants come from, after starting the simulated tenants for `--demo`.
pub(super) async fn tenant_origin(
    args: &ExporterArgs,
    env: &EnvSecrets,
    config: &mut Config,
    clock: &Clock,
    sharding: Sharding,
) -> Result<(TenantOrigin, Option<DemoTenant>), StartError> {
    if let Some(path) = &args.tenants.config_file {
        let origin = TenantOrigin::File(TenantsSource {
            path: path.clone(),
            state: config.state.clone(),
            sharding,
        });
        return Ok((origin, None));
    }
    let (credential, simulator) = credential(args, env, config, clock).await?;
    #[cfg(feature = "demo")]
    if let Some(sim) = &simulator {
        let tenants = sim.tenants();
        if tenants.len() > 1 {
            return Ok((TenantOrigin::Demo(demo_plans(tenants)), simulator));
        }
    }
    tracing::info!(credential = ?credential, "credential chosen");
    let tenant = credential.tenant();
    let name = match (&args.tenants.tenant_name, &tenant) {
        (Some(name), _) => name.clone(),
        (None, Tenant::Id(id)) => id.clone(),
        (None, Tenant::ManagedIdentityOwn) => "default".to_owned(),
    };
    let plan = TenantPlan {
        id: tenant.as_str().to_owned(),
        name,
        credential: CredentialPlan::Given(credential),
        state: config.state.clone(),
    };
    Ok((TenantOrigin::Single(plan), simulator))
}

/// The simulated provider's tenants (`--simulate.tenants`), each read with the demo's
/// multi-tenant app, or its own app where it has one.
#[cfg(feature = "demo")]
fn demo_plans(tenants: Vec<tve_simulator::SimTenantInfo>) -> Vec<TenantPlan> {
    tenants
        .into_iter()
        .map(|tenant| {
            let (client_id, secret) = match tenant.own_app {
                Some(app) => (app.client_id, app.client_secret),
                None => (
                    tve_simulator::DEMO_CLIENT_ID.to_owned(),
                    tve_simulator::DEMO_CLIENT_SECRET.to_owned(),
                ),
            };
            TenantPlan {
                credential: CredentialPlan::Given(Credential::ClientSecret {
                    tenant_id: tenant.id.clone(),
                    client_id,
                    secret: secret.into(),
                }),
                id: tenant.id,
                name: tenant.name,
                state: None,
            }
        })
        .collect()
}
