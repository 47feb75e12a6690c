//! The `--azure.*` flags and the secrets of the environment: who the exporter is to Entra
//! ID, and where it asks for tokens.
//!
//! The flags take the Azure SDK's environment variables as well, so that a deployment made
//! for other Azure tools works unchanged. The client secret and the certificate password
//! come only from the environment or a file, never from a flag, so they cannot show in `ps`
//! or `--help`. Choosing and loading the credential is [`credential_source`]'s.
//!
//! [`credential_source`]: super::credential_source

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use reqwest::Url;

use crate::source::cloud::{root_url, Cloud, UrlError};

/// Entra ID's flags: the cloud and login host, then the credential.
#[derive(Debug, Args)]
pub struct AzureArgs {
    /// Microsoft Entra ID login host; http:// is accepted for local testing [default: the
    /// --azure.cloud's, https://login.microsoftonline.com].
    // The doc comment is the --help text, where a link would show as <...>.
    #[allow(rustdoc::bare_urls)]
    #[arg(
        long = "azure.authority-host",
        env = "AZURE_AUTHORITY_HOST",
        value_name = "URL"
    )]
    pub authority_host: Option<String>,
    /// The cloud of the tenant: sets the Graph endpoint, the login host and the token
    /// scope together (--graph.endpoint and --azure.authority-host override them).
    #[arg(
        long = "azure.cloud",
        value_enum,
        default_value = "global",
        value_name = "CLOUD"
    )]
    pub cloud: Cloud,
    #[command(flatten)]
    pub credential: CredentialArgs,
}

impl AzureArgs {
    /// The login host: `--azure.authority-host`, or else the cloud's.
    pub fn authority_host(&self) -> Result<Url, UrlError> {
        let (_, cloud_login) = self.cloud.endpoints();
        root_url(
            "--azure.authority-host",
            self.authority_host.as_deref().unwrap_or(cloud_login),
        )
    }
}

/// The credential's flags; the secrets themselves are in [`EnvSecrets`].
#[derive(Debug, Clone, Args)]
pub struct CredentialArgs {
    /// The credential to use. Without it, the one the environment configures is used
    /// (client secret, certificate or workload identity; two at once are refused).
    #[arg(long = "azure.auth", value_enum, value_name = "KIND")]
    pub auth: Option<AuthKind>,
    /// Directory (tenant) ID.
    #[arg(long = "azure.tenant-id", env = "AZURE_TENANT_ID", value_name = "ID")]
    pub tenant_id: Option<String>,
    /// Application (client) ID of the app registration.
    #[arg(long = "azure.client-id", env = "AZURE_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// File holding the client secret (e.g. a mounted Kubernetes Secret); otherwise the
    /// secret is read from the AZURE_CLIENT_SECRET environment variable.
    #[arg(long = "azure.client-secret-file", value_name = "PATH")]
    pub client_secret_file: Option<PathBuf>,
    /// Certificate of the app registration with its private key: a PEM file, or a PKCS#12
    /// (.pfx) file whose password is read from AZURE_CLIENT_CERTIFICATE_PASSWORD.
    #[arg(
        long = "azure.client-certificate-path",
        env = "AZURE_CLIENT_CERTIFICATE_PATH",
        value_name = "PATH"
    )]
    pub client_certificate_path: Option<PathBuf>,
    /// Signature of certificate client assertions.
    #[arg(
        long = "azure.client-assertion-algorithm",
        value_enum,
        default_value = "PS256",
        value_name = "ALG"
    )]
    pub assertion_algorithm: AssertionAlgorithm,
    /// Kubernetes service-account token for Azure Workload Identity (set by its webhook);
    /// read again for every token request, as it rotates.
    #[arg(
        long = "azure.federated-token-file",
        env = "AZURE_FEDERATED_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub federated_token_file: Option<PathBuf>,
    /// Instance metadata service for --azure.auth=managed-identity (changed for tests).
    #[arg(
        long = "azure.managed-identity-endpoint",
        env = "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        default_value = "http://169.254.169.254",
        value_name = "URL"
    )]
    pub managed_identity_endpoint: String,
}

/// Which credential to use (`--azure.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthKind {
    /// Client secret: AZURE_CLIENT_SECRET or --azure.client-secret-file.
    Secret,
    /// Certificate: AZURE_CLIENT_CERTIFICATE_PATH (+ AZURE_CLIENT_CERTIFICATE_PASSWORD).
    Certificate,
    /// Azure Workload Identity on Kubernetes: AZURE_FEDERATED_TOKEN_FILE.
    WorkloadIdentity,
    /// The managed identity of the Azure VM or AKS node (AZURE_CLIENT_ID for a user-assigned one).
    ManagedIdentity,
}

impl AuthKind {
    /// The kind with the setting that configures it, for messages.
    pub(super) fn flag(self) -> &'static str {
        match self {
            AuthKind::Secret => "secret (AZURE_CLIENT_SECRET or --azure.client-secret-file)",
            AuthKind::Certificate => "certificate (AZURE_CLIENT_CERTIFICATE_PATH)",
            AuthKind::WorkloadIdentity => "workload-identity (AZURE_FEDERATED_TOKEN_FILE)",
            AuthKind::ManagedIdentity => "managed-identity",
        }
    }
}

/// Signature of certificate assertions (`--azure.client-assertion-algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS, with the SHA-256 thumbprint (`x5t#S256`).
    #[value(name = "PS256", alias = "ps256")]
    Ps256,
    /// RSASSA-PKCS1-v1_5, with the SHA-1 thumbprint (`x5t`), for older setups.
    #[value(name = "RS256", alias = "rs256")]
    Rs256,
}

/// Secrets that `main` reads from the environment: never flags, so that they cannot show
/// in `ps` or `--help`.
#[derive(Default)]
pub struct EnvSecrets {
    /// `AZURE_CLIENT_SECRET`.
    pub client_secret: Option<String>,
    /// `AZURE_CLIENT_CERTIFICATE_PASSWORD`.
    pub certificate_password: Option<String>,
}

impl std::fmt::Debug for EnvSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("EnvSecrets")
            .field("client_secret", &shown(&self.client_secret))
            .field("certificate_password", &shown(&self.certificate_password))
            .finish()
    }
}
