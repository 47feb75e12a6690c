//! Which tenants to read: the tenants file's entries this process's shard owns, each with
//! its credential and state files; and dropping the state files of tenants no longer read
//! once they are older than `--state.removed-tenant-retention`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::config::{TenantsFile, TenantsFileError};
use super::running::{CredentialPlan, TenantPlan};
use super::shard::Sharding;
use crate::counting::store::{tenant_file_key, StateOptions};

/// Where the tenants come from.
pub struct TenantsSource {
    /// `--config.file`.
    pub path: PathBuf,
    /// `--state.path`, of which each tenant's files are siblings.
    pub state: Option<StateOptions>,
    pub sharding: Sharding,
}

impl TenantsSource {
    /// Reads the tenants file and plans the tenants this shard owns.
    pub fn plans(&self) -> Result<Vec<TenantPlan>, TenantsFileError> {
        let file = TenantsFile::load(&self.path)?;
        Ok(self.plan(file))
    }

    /// Deletes the state of tenants no longer read that is older than `retention` (see
    /// [`drop_removed_state`]); nothing without `--state.path`.
    pub fn drop_removed_state(&self, plans: &[TenantPlan], retention: Duration) {
        if let Some(state) = &self.state {
            drop_removed_state(state, plans, retention, SystemTime::now());
        }
    }

    fn plan(&self, file: TenantsFile) -> Vec<TenantPlan> {
        file.tenants
            .into_iter()
            .filter(|entry| self.sharding.owns(&entry.id))
            .map(|entry| TenantPlan {
                state: self.state.as_ref().map(|state| state.for_tenant(&entry.id)),
                credential: entry
                    .credential
                    .map_or(CredentialPlan::Shared, CredentialPlan::Own),
                id: entry.id,
                name: entry.name,
            })
            .collect()
    }
}

/// Deletes the state files of tenants not in `kept` (removed from the tenants file, or
/// owned by another shard now) that nothing has written for `retention`: until then a
/// tenant added back resumes where it stopped. Returns the files deleted.
pub fn drop_removed_state(
    state: &StateOptions,
    kept: &[TenantPlan],
    retention: Duration,
    now: SystemTime,
) -> Vec<PathBuf> {
    let kept: HashSet<String> = kept.iter().map(|p| tenant_file_key(&p.id)).collect();
    let files = match state.tenant_files() {
        Ok(files) => files,
        Err(error) => {
            tracing::warn!(%error, path = %state.path.display(), "cannot list the tenants' state files; removed tenants' files are kept");
            return Vec::new();
        }
    };
    let mut dropped = Vec::new();
    for (key, path) in files {
        if kept.contains(&key) {
            continue;
        }
        let age = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok());
        if age.is_some_and(|age| age >= retention) {
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "deleted the state of a tenant no longer read (--state.removed-tenant-retention)");
                    dropped.push(path);
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot delete the state of a tenant no longer read")
                }
            }
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str) -> TenantPlan {
        TenantPlan {
            id: id.to_owned(),
            name: id.to_owned(),
            credential: CredentialPlan::Shared,
            state: None,
        }
    }

    #[test]
    fn removed_tenants_state_goes_only_after_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateOptions {
            path: dir.path().join("state.redb"),
            reset: false,
        };
        let kept = state.for_tenant("Contoso.onmicrosoft.com").path;
        let removed = state.for_tenant("fabrikam.onmicrosoft.com").path;
        let removed_pstn = dir
            .path()
            .join("state.tenant-fabrikam.onmicrosoft.com.pstn.redb");
        // The call-quality collector's files go with their tenant's.
        let kept_quality = dir
            .path()
            .join("state.tenant-contoso.onmicrosoft.com.call-quality.redb");
        let removed_quality = dir
            .path()
            .join("state.tenant-fabrikam.onmicrosoft.com.call-quality.redb");
        for path in [
            &kept,
            &removed,
            &removed_pstn,
            &kept_quality,
            &removed_quality,
        ] {
            std::fs::write(path, b"x").unwrap();
        }
        std::fs::write(dir.path().join("state.redb"), b"single tenant").unwrap();
        let plans = [plan("contoso.onmicrosoft.com")];
        let hour = Duration::from_secs(3600);
        let soon = SystemTime::now() + Duration::from_secs(60);
        assert!(drop_removed_state(&state, &plans, hour, soon).is_empty());
        let later = SystemTime::now() + 2 * hour;
        let mut dropped = drop_removed_state(&state, &plans, hour, later);
        dropped.sort();
        let mut expected = vec![removed, removed_pstn, removed_quality];
        expected.sort();
        assert_eq!(dropped, expected);
        assert!(kept.exists(), "a tenant still read keeps its state");
        assert!(kept_quality.exists());
        assert!(dir.path().join("state.redb").exists());
    }
}
