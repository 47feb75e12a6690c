//! Choosing and loading the credential the `--azure.*` flags and the environment describe.
//!
//! The kind is the one `--azure.auth` names, or else the only one the environment
//! configures: guessing between two would leave the operator unsure which identity reads
//! the call logs. Files (secret, certificate, federated token) are read now, so that a
//! mistake stops the start rather than the first poll; every error names the setting at
//! fault and how to fix it.

use std::path::Path;

use secrecy::SecretString;

use super::args::{AssertionAlgorithm, AuthKind, CredentialArgs, EnvSecrets};
use super::certificate::{CertificateError, ClientCertificate};
use super::jws::Algorithm;
use super::Credential;
use crate::source::cloud::{root_url, UrlError};

/// A credential that cannot be chosen or loaded, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no credentials for Microsoft Graph. Set AZURE_TENANT_ID and AZURE_CLIENT_ID of an app registration with the CallRecords.Read.All application permission, and one of AZURE_CLIENT_SECRET (or --azure.client-secret-file), AZURE_CLIENT_CERTIFICATE_PATH, or AZURE_FEDERATED_TOKEN_FILE (Kubernetes workload identity); on an Azure VM or AKS node use --azure.auth=managed-identity. Or run with --demo to try the exporter on a simulated tenant")]
    NoCredentials,
    #[error("incomplete {kind} credentials for Microsoft Graph: missing {missing}. Set AZURE_TENANT_ID, AZURE_CLIENT_ID and {needs} for an app registration with the CallRecords.Read.All application permission, or run with --demo to try the exporter on a simulated tenant")]
    MissingCredentials {
        kind: &'static str,
        missing: String,
        needs: &'static str,
    },
    #[error("several credentials are configured: {0}. Choose one with --azure.auth=secret|certificate|workload-identity|managed-identity, or remove the others")]
    ConflictingCredentials(String),
    #[error("AZURE_CLIENT_CERTIFICATE_PASSWORD is set but AZURE_CLIENT_CERTIFICATE_PATH is not: set the path of the PKCS#12 file it opens")]
    PasswordWithoutCertificate,
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error("cannot read the federated token file {path}: {reason}. AZURE_FEDERATED_TOKEN_FILE is set by the Azure Workload Identity webhook when the pod is labelled azure.workload.identity/use: \"true\"; check the projected token volume is mounted")]
    FederatedTokenFile { path: String, reason: String },
    #[error("cannot read the client secret file {path}: {reason}. Check --azure.client-secret-file and the file's permissions")]
    SecretFile { path: String, reason: String },
    #[error("the client secret file {path} is empty. Put the secret's Value from the app registration in it")]
    EmptySecretFile { path: String },
    #[error("a managed identity reads only its own tenant: give this tenant its own app registration in the tenants file (client_id with client_secret_file, client_certificate_file or federated_token_file), or read many tenants with a multi-tenant app registration's secret, certificate or workload identity")]
    ManagedIdentityOneTenant,
    #[error("both AZURE_CLIENT_SECRET and --azure.client-secret-file are set; keep only one so it is clear which secret is used")]
    TwoSecrets,
    /// `--azure.managed-identity-endpoint`.
    #[error(transparent)]
    Url(#[from] UrlError),
}

/// Set and not empty: an empty variable is how many deployments leave a setting unset.
fn present(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|s| !s.is_empty())
}

fn nonempty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl CredentialArgs {
    /// Chooses and loads the credential: the kind `--azure.auth` names, or else the one
    /// the environment configures.
    pub fn credential(&self, env: &EnvSecrets) -> Result<Credential, CredentialError> {
        Ok(match self.kind(env)? {
            AuthKind::Secret => self.client_secret_credential(env)?,
            AuthKind::Certificate => self.certificate_credential(env)?,
            AuthKind::WorkloadIdentity => self.workload_identity_credential()?,
            AuthKind::ManagedIdentity => Credential::ManagedIdentity {
                client_id: nonempty(&self.client_id),
                endpoint: root_url(
                    "--azure.managed-identity-endpoint",
                    &self.managed_identity_endpoint,
                )?,
            },
        })
    }

    /// The credential for `tenant_id` of a tenants file (`--config.file`): the configured
    /// one (a multi-tenant app registration's), asking `tenant_id` for its tokens.
    /// `AZURE_TENANT_ID` is not needed: the tenants file names them.
    pub fn credential_for(
        &self,
        env: &EnvSecrets,
        tenant_id: &str,
    ) -> Result<Credential, CredentialError> {
        if self.kind(env)? == AuthKind::ManagedIdentity {
            return Err(CredentialError::ManagedIdentityOneTenant);
        }
        let mut args = self.clone();
        args.tenant_id = Some(tenant_id.to_owned());
        args.credential(env)
    }

    /// The kind `--azure.auth` names (others configured are ignored, with a warning), or
    /// the only one configured.
    fn kind(&self, env: &EnvSecrets) -> Result<AuthKind, CredentialError> {
        let configured: Vec<AuthKind> = [
            (
                AuthKind::Secret,
                self.client_secret_file.is_some() || present(&env.client_secret),
            ),
            (
                AuthKind::Certificate,
                self.client_certificate_path.is_some(),
            ),
            (
                AuthKind::WorkloadIdentity,
                self.federated_token_file.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(kind, set)| set.then_some(kind))
        .collect();
        if present(&env.certificate_password) && self.client_certificate_path.is_none() {
            return Err(CredentialError::PasswordWithoutCertificate);
        }
        match (self.auth, configured.as_slice()) {
            (Some(kind), others) => {
                for other in others.iter().filter(|k| **k != kind) {
                    tracing::warn!(
                        ignored = other.flag(),
                        "--azure.auth chooses another credential; this one is ignored"
                    );
                }
                Ok(kind)
            }
            (None, []) => Err(CredentialError::NoCredentials),
            (None, [one]) => Ok(*one),
            (None, several) => {
                let names: Vec<_> = several.iter().map(|k| k.flag()).collect();
                Err(CredentialError::ConflictingCredentials(names.join(", ")))
            }
        }
    }

    /// Tenant and client ids; when they are missing, the error lists them with the kind's
    /// own setting (`own`) if that is missing too, so one message says all there is to set.
    fn ids(
        &self,
        kind: &'static str,
        own: Option<&'static str>,
        needs: &'static str,
    ) -> Result<(String, String), CredentialError> {
        let tenant_id = nonempty(&self.tenant_id);
        let client_id = nonempty(&self.client_id);
        let missing: Vec<_> = [
            tenant_id.is_none().then_some("AZURE_TENANT_ID"),
            client_id.is_none().then_some("AZURE_CLIENT_ID"),
            own,
        ]
        .into_iter()
        .flatten()
        .collect();
        match (tenant_id, client_id) {
            (Some(tenant), Some(client)) if missing.is_empty() => Ok((tenant, client)),
            _ => Err(CredentialError::MissingCredentials {
                kind,
                missing: missing.join(", "),
                needs,
            }),
        }
    }

    fn client_secret_credential(&self, env: &EnvSecrets) -> Result<Credential, CredentialError> {
        let secret = self.client_secret(env.client_secret.clone())?;
        let (tenant_id, client_id) = self.ids(
            "client secret",
            secret.is_none().then_some("AZURE_CLIENT_SECRET"),
            "AZURE_CLIENT_SECRET (or --azure.client-secret-file)",
        )?;
        Ok(Credential::ClientSecret {
            tenant_id,
            client_id,
            secret: SecretString::from(secret.unwrap_or_default()),
        })
    }

    /// The client secret from `AZURE_CLIENT_SECRET` or the secret file (never both).
    fn client_secret(&self, env_secret: Option<String>) -> Result<Option<String>, CredentialError> {
        let env_secret = env_secret.filter(|s| !s.is_empty());
        match (&self.client_secret_file, env_secret) {
            (Some(_), Some(_)) => Err(CredentialError::TwoSecrets),
            (Some(path), None) => read_secret_file(path).map(Some),
            (None, secret) => Ok(secret),
        }
    }

    fn certificate_credential(&self, env: &EnvSecrets) -> Result<Credential, CredentialError> {
        let path = self.client_certificate_path.as_deref();
        let (tenant_id, client_id) = self.ids(
            "certificate",
            path.is_none().then_some("AZURE_CLIENT_CERTIFICATE_PATH"),
            "AZURE_CLIENT_CERTIFICATE_PATH",
        )?;
        let password = env
            .certificate_password
            .clone()
            .filter(|p| !p.is_empty())
            .map(SecretString::from);
        let algorithm = match self.assertion_algorithm {
            AssertionAlgorithm::Ps256 => Algorithm::Ps256,
            AssertionAlgorithm::Rs256 => Algorithm::Rs256,
        };
        let certificate = load_certificate(
            path.unwrap_or_else(|| Path::new("")),
            password.as_ref(),
            algorithm,
        )?;
        Ok(Credential::Certificate {
            tenant_id,
            client_id,
            certificate: std::sync::Arc::new(certificate),
        })
    }

    fn workload_identity_credential(&self) -> Result<Credential, CredentialError> {
        let file = self.federated_token_file.clone();
        let (tenant_id, client_id) = self.ids(
            "workload identity",
            file.is_none().then_some("AZURE_FEDERATED_TOKEN_FILE"),
            "AZURE_FEDERATED_TOKEN_FILE",
        )?;
        let token_file = file.unwrap_or_default();
        // Only that it is there: the token itself is read for every request, as it rotates.
        std::fs::metadata(&token_file).map_err(|e| CredentialError::FederatedTokenFile {
            path: token_file.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Credential::WorkloadIdentity {
            tenant_id,
            client_id,
            token_file,
        })
    }
}

fn read_secret_file(path: &Path) -> Result<String, CredentialError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CredentialError::SecretFile {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    // Mounted secrets and `echo` leave a trailing newline that is not part of it.
    let text = text.trim_end_matches(['\r', '\n']).to_owned();
    if text.is_empty() {
        return Err(CredentialError::EmptySecretFile { path: shown });
    }
    Ok(text)
}

/// Loads the certificate; an expired one is still loaded (Entra ID has the last word, and
/// `check` reports it), but warned about now, as every token request will fail.
fn load_certificate(
    path: &Path,
    password: Option<&SecretString>,
    algorithm: Algorithm,
) -> Result<ClientCertificate, CredentialError> {
    let certificate = ClientCertificate::load(path, password, algorithm)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if certificate.not_after() <= now {
        tracing::warn!(subject = certificate.subject(), thumbprint = %certificate.thumbprint_hex(), "the certificate has expired; Entra ID will refuse it: upload a new one to the app registration");
    }
    Ok(certificate)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use secrecy::ExposeSecret;

    use super::*;
    use crate::source::auth::args::AzureArgs;

    /// The `--azure.*` flags alone, as the exporter's command line parses them.
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        azure: AzureArgs,
    }

    fn args(extra: &[&str]) -> CredentialArgs {
        Flags::try_parse_from(std::iter::once("teams-voice-exporter").chain(extra.iter().copied()))
            .unwrap()
            .azure
            .credential
    }

    fn env_secret(value: &str) -> EnvSecrets {
        EnvSecrets {
            client_secret: Some(value.to_owned()),
            certificate_password: None,
        }
    }

    #[test]
    fn missing_credentials_are_named() {
        let flags = args(&["--azure.tenant-id=t"]);
        let error = flags
            .credential(&EnvSecrets::default())
            .unwrap_err()
            .to_string();
        for option in [
            "AZURE_CLIENT_SECRET",
            "AZURE_CLIENT_CERTIFICATE_PATH",
            "AZURE_FEDERATED_TOKEN_FILE",
            "--azure.auth=managed-identity",
            "--demo",
        ] {
            assert!(error.contains(option), "{option}: {error}");
        }
        let error = flags.credential(&env_secret("s")).unwrap_err().to_string();
        assert!(error.contains("missing AZURE_CLIENT_ID."), "{error}");
        let flags = args(&["--azure.auth=workload-identity", "--azure.client-id=c"]);
        let error = flags
            .credential(&EnvSecrets::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("missing AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE."),
            "{error}"
        );
    }

    #[test]
    fn two_configured_credentials_are_refused_unless_one_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "eyJ.x.y").unwrap();
        let token = format!("--azure.federated-token-file={}", token.display());
        let ids = ["--azure.tenant-id=t", "--azure.client-id=c"];
        let flags = args(&[ids[0], ids[1], &token]);
        let error = flags.credential(&env_secret("s")).unwrap_err();
        assert!(
            matches!(&error, CredentialError::ConflictingCredentials(list) if list.contains("secret") && list.contains("workload-identity")),
            "{error}"
        );
        assert!(error.to_string().contains("--azure.auth"), "{error}");
        let flags = args(&[ids[0], ids[1], &token, "--azure.auth=workload-identity"]);
        let credential = flags.credential(&env_secret("s")).unwrap();
        assert_eq!(credential.kind(), "workload identity");
        let flags = args(&[ids[0], ids[1], "--azure.auth=managed-identity"]);
        let credential = flags.credential(&env_secret("s")).unwrap();
        assert_eq!(credential.kind(), "managed identity (user-assigned)");
        let flags = args(&["--azure.auth=managed-identity"]);
        let credential = flags.credential(&EnvSecrets::default()).unwrap();
        assert_eq!(credential.kind(), "managed identity (system-assigned)");
        let password_only = EnvSecrets {
            client_secret: Some("s".into()),
            certificate_password: Some("p".into()),
        };
        assert!(matches!(
            args(&ids).credential(&password_only),
            Err(CredentialError::PasswordWithoutCertificate)
        ));
    }

    #[test]
    fn secret_file_is_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "abc~def\n").unwrap();
        let file = path.to_str().unwrap();
        let flags = args(&[
            "--azure.tenant-id=t",
            "--azure.client-id=c",
            "--azure.client-secret-file",
            file,
        ]);
        let credential = flags.credential(&EnvSecrets::default()).unwrap();
        let Credential::ClientSecret { secret, .. } = &credential else {
            panic!("{credential:?}");
        };
        assert_eq!(secret.expose_secret(), "abc~def");
        assert!(!format!("{credential:?}").contains("abc~def"));
        assert!(matches!(
            flags.credential(&env_secret("other")),
            Err(CredentialError::TwoSecrets)
        ));
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            flags.credential(&EnvSecrets::default()),
            Err(CredentialError::EmptySecretFile { .. })
        ));
    }
}
