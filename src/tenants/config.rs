//! PLACEHOLDER until the tenants-file parser lands.
use std::path::PathBuf;

/// A tenant's own app registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantCredential {
    Secret {
        client_id: String,
        secret_file: PathBuf,
    },
    Certificate {
        client_id: String,
        certificate_file: PathBuf,
    },
    FederatedToken {
        client_id: String,
        token_file: PathBuf,
    },
}

/// PLACEHOLDER.
#[derive(Debug, Clone)]
pub struct TenantEntry {
    pub id: String,
    pub name: String,
    pub credential: Option<TenantCredential>,
}

/// PLACEHOLDER.
#[derive(Debug, Clone)]
pub struct TenantsFile {
    pub tenants: Vec<TenantEntry>,
}

/// PLACEHOLDER.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TenantsFileError(String);

impl TenantsFile {
    pub fn load(path: &std::path::Path) -> Result<Self, TenantsFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| TenantsFileError(e.to_string()))?;
        let mut tenants = Vec::new();
        for line in text.lines() {
            if let Some(id) = line.trim().strip_prefix("- id: ") {
                tenants.push(TenantEntry {
                    id: id.to_owned(),
                    name: id.to_owned(),
                    credential: None,
                });
            } else if let Some(name) = line.trim().strip_prefix("name: ") {
                if let Some(t) = tenants.last_mut() {
                    t.name = name.to_owned();
                }
            }
        }
        Ok(TenantsFile { tenants })
    }
}
