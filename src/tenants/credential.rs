//! A tenant's own app registration from the tenants file, as the credential flags it stands
//! for: loading and checking it is then the same code as for the process's own credential.

use super::config::TenantCredential;
use crate::source::auth::args::{AuthKind, CredentialArgs, EnvSecrets};

impl TenantCredential {
    /// The kind of credential, in words.
    pub fn kind(&self) -> &'static str {
        match self {
            TenantCredential::Secret { .. } => "client secret",
            TenantCredential::Certificate { .. } => "certificate",
            TenantCredential::FederatedToken { .. } => "federated token",
        }
    }

    /// The flags that configure this credential for `tenant_id`, on top of `base` (the
    /// process's, for the cloud and the assertion algorithm), and the secrets that do not
    /// come from a file (none).
    pub fn credential_args(
        &self,
        base: &CredentialArgs,
        tenant_id: &str,
    ) -> Result<(CredentialArgs, EnvSecrets), String> {
        let mut args = base.clone();
        let mut certificate_password = None;
        args.tenant_id = Some(tenant_id.to_owned());
        args.client_secret_file = None;
        args.client_certificate_path = None;
        args.federated_token_file = None;
        match self {
            TenantCredential::Secret {
                client_id,
                secret_file,
            } => {
                args.auth = Some(AuthKind::Secret);
                args.client_id = Some(client_id.clone());
                args.client_secret_file = Some(secret_file.clone());
            }
            TenantCredential::Certificate {
                client_id,
                certificate_file,
                password_file,
            } => {
                args.auth = Some(AuthKind::Certificate);
                args.client_id = Some(client_id.clone());
                args.client_certificate_path = Some(certificate_file.clone());
                if let Some(path) = password_file {
                    let password = std::fs::read_to_string(path).map_err(|e| {
                        format!(
                            "cannot read its certificate password file {}: {e}; mount the Secret that holds it",
                            path.display()
                        )
                    })?;
                    certificate_password = Some(password.trim_end_matches(['\r', '\n']).to_owned());
                }
            }
            TenantCredential::FederatedToken {
                client_id,
                token_file,
            } => {
                args.auth = Some(AuthKind::WorkloadIdentity);
                args.client_id = Some(client_id.clone());
                args.federated_token_file = Some(token_file.clone());
            }
        }
        let env = EnvSecrets {
            client_secret: None,
            certificate_password,
        };
        Ok((args, env))
    }
}
