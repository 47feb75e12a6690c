//! The flags of reading many tenants: the tenants file (`--config.file`), the `tenant` label
//! of the single tenant (`--tenant.name`), the process's bound on requests in flight, and
//! how long a removed tenant's state is kept.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Requests in flight across every tenant unless `--tenants.max-concurrent-reads` says
/// otherwise: each tenant sends one at a time by default (`--graph.concurrency`) at most 50
/// a minute per function, so 16 keeps hundreds of tenants at their budgets while Graph
/// answers a page in under a second.
pub const DEFAULT_CONCURRENT_READS: usize = 16;

/// The many-tenant flags.
#[derive(Debug, Args)]
pub struct TenantArgs {
    /// Tenants file (YAML, see README "Many tenants"): every tenant it lists is read, each
    /// with its own tokens, budget and state; SIGHUP (or POST /-/reload with
    /// --web.enable-lifecycle) reads it again. Without it, the one tenant of AZURE_TENANT_ID.
    #[arg(long = "config.file", value_name = "FILE", conflicts_with = "demo")]
    pub config_file: Option<PathBuf>,
    /// The `tenant` label of the single tenant read without --config.file (default: its
    /// tenant id; "default" for a managed identity's own tenant).
    #[arg(
        long = "tenant.name",
        value_name = "NAME",
        conflicts_with = "config_file",
        value_parser = tenant_name
    )]
    pub tenant_name: Option<String>,
    /// Requests to Graph in flight at once, all tenants together. A request holds its place
    /// only while it is on its way, never while it waits for Retry-After or the budget.
    #[arg(long = "tenants.max-concurrent-reads", default_value_t = DEFAULT_CONCURRENT_READS, value_parser = concurrent_reads, value_name = "N")]
    pub max_concurrent_reads: usize,
    /// How long the state files of a tenant removed from the tenants file (or moved to
    /// another shard) are kept: adding it back within this time loses nothing.
    #[arg(long = "state.removed-tenant-retention", default_value = "24h", value_parser = crate::flag::parse_duration, value_name = "DURATION")]
    pub removed_tenant_retention: Duration,
}

fn concurrent_reads(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err("expected a whole number from 1 to 1024".to_owned()),
    }
}

fn tenant_name(text: &str) -> Result<String, String> {
    match super::config::label_value_problem(text) {
        None => Ok(text.to_owned()),
        Some(reason) => Err(format!(
            "the tenant name {reason}; give 1 to {} characters without control characters or white space at either end",
            super::config::MAX_NAME_CHARS
        )),
    }
}
