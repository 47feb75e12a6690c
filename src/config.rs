//! Command-line flags and environment, checked into a [`Config`] before anything starts.
//!
//! Flags follow the Prometheus exporters' style (`--web.listen-address`, `--log.level`);
//! credentials come from the Azure SDK's environment variables, and the client secret only
//! from the environment or a file, never from a flag, so it cannot show in `ps` or `--help`.
//! Every error names the flag or variable at fault and how to fix it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Url;
use secrecy::SecretString;

use crate::counting::schedule::Schedule;
use crate::counting::store::StateOptions;
use crate::source::auth::certificate::{CertificateError, ClientCertificate};
use crate::source::auth::jws::Algorithm;
use crate::source::auth::Credential;
use crate::source::graph::{RetryPolicy, DEFAULT_CONCURRENCY, MAX_CONCURRENCY, MAX_WINDOW};

/// The default port: in the exporters' range, and clear of node_exporter (9100),
/// blackbox_exporter (9115) and the other widely deployed exporters.
pub const DEFAULT_PORT: u16 = 9885;

/// Graph keeps call logs 150 days by default; reading further back finds nothing.
const RETENTION: Duration = Duration::from_secs(150 * 86_400);

#[derive(Debug, Parser)]
#[command(
    name = "teams-voice-exporter",
    version,
    about = "Prometheus exporter for Microsoft Teams Direct Routing calls, read from Microsoft Graph call logs.",
    after_help = "Credentials come from the environment: AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET \
(or --azure.client-secret-file), AZURE_CLIENT_CERTIFICATE_PATH, or AZURE_FEDERATED_TOKEN_FILE; or \
--azure.auth=managed-identity on Azure. The app registration needs the Microsoft Graph application permission \
CallRecords.Read.All with admin consent. Diagnose a setup: teams-voice-exporter check [flags]. \
Try it without an Azure tenant: teams-voice-exporter --demo",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub exporter: ExporterArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the simulated Graph tenant alone (for tests and for trying dashboards).
    #[cfg(feature = "demo")]
    Simulate(SimulateArgs),
    /// Check the credentials, the token's permission, Graph and the clock once, print a
    /// report and exit: 0 when all is well, 1 when a check failed, 2 for a configuration
    /// error. Takes the exporter's flags and environment.
    Check(Box<CheckArgs>),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub exporter: ExporterArgs,
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
    fn flag(self) -> &'static str {
        match self {
            AuthKind::Secret => "secret (AZURE_CLIENT_SECRET or --azure.client-secret-file)",
            AuthKind::Certificate => "certificate (AZURE_CLIENT_CERTIFICATE_PATH)",
            AuthKind::WorkloadIdentity => "workload-identity (AZURE_FEDERATED_TOKEN_FILE)",
            AuthKind::ManagedIdentity => "managed-identity",
        }
    }
}

/// The Microsoft cloud the tenant lives in (`--azure.cloud`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cloud {
    /// Global Azure, GCC included.
    Global,
    /// US Government L4 (GCC High).
    Usgov,
    /// US Government L5 (DoD).
    UsgovDod,
    /// China, operated by 21Vianet.
    China,
}

impl Cloud {
    /// Graph root and login host of the cloud.
    pub fn endpoints(self) -> (&'static str, &'static str) {
        match self {
            Cloud::Global => (
                "https://graph.microsoft.com",
                "https://login.microsoftonline.com",
            ),
            Cloud::Usgov => (
                "https://graph.microsoft.us",
                "https://login.microsoftonline.us",
            ),
            Cloud::UsgovDod => (
                "https://dod-graph.microsoft.us",
                "https://login.microsoftonline.us",
            ),
            Cloud::China => (
                "https://microsoftgraph.chinacloudapi.cn",
                "https://login.chinacloudapi.cn",
            ),
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

#[cfg(feature = "demo")]
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to serve the simulated Graph and token endpoints on.
    #[arg(long, default_value = "127.0.0.1:9886", value_name = "ADDR")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub simulation: tve_simulator::SimulationArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only log messages with the given severity or above.
    #[arg(
        long = "log.level",
        value_enum,
        default_value = "info",
        value_name = "LEVEL"
    )]
    pub level: LogLevel,
    /// Output format of log messages.
    #[arg(
        long = "log.format",
        value_enum,
        default_value = "logfmt",
        value_name = "FORMAT"
    )]
    pub format: LogFormat,
}

#[derive(Debug, Args)]
pub struct ExporterArgs {
    /// Run on a simulated tenant inside this process: no Azure account needed.
    #[arg(long)]
    pub demo: bool,
    #[cfg(feature = "demo")]
    #[command(flatten)]
    pub simulation: tve_simulator::SimulationArgs,

    /// Address on which to expose metrics and the web interface (":PORT" for all interfaces).
    #[arg(long = "web.listen-address", default_value_t = format!(":{DEFAULT_PORT}"), value_name = "ADDR")]
    pub listen_address: String,
    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        default_value = "/metrics",
        value_name = "PATH"
    )]
    pub telemetry_path: String,
    /// Web configuration file (Prometheus exporter-toolkit format): TLS, mutual TLS and basic
    /// authentication for every path served.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    #[command(flatten)]
    pub log: LogArgs,

    /// Microsoft Graph root URL; http:// is accepted for local testing [default: the
    /// --azure.cloud's, https://graph.microsoft.com].
    #[arg(long = "graph.endpoint", value_name = "URL")]
    pub graph_endpoint: Option<String>,
    /// Time limit for one Graph request, response body included.
    #[arg(long = "graph.timeout", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub graph_timeout: Duration,
    /// Retries of one page after transient failures (429, 408, 500, 502, 503, 504, timeouts,
    /// connection errors, an unreadable page, Entra ID unavailable) before the poll fails.
    #[arg(long = "graph.max-retries", default_value_t = 6, value_name = "N")]
    pub graph_max_retries: u32,
    /// First retry delay; it doubles with each retry (with jitter), up to one minute.
    #[arg(long = "graph.retry-backoff", default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub graph_retry_backoff: Duration,
    /// Time sub-windows of a long read (a sweep of the lookback) fetched at the same time;
    /// a Retry-After from Graph holds all of them back.
    #[arg(long = "graph.concurrency", default_value_t = DEFAULT_CONCURRENCY, value_name = "N")]
    pub graph_concurrency: usize,

    /// Microsoft Entra ID login host; http:// is accepted for local testing [default: the
    /// --azure.cloud's, https://login.microsoftonline.com].
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

    /// How often to read the recent window [default: 1m; 2s with --demo].
    #[arg(long = "poll.interval", value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Option<Duration>,
    /// How far back each regular poll reads (by call start time).
    #[arg(long = "poll.recent-window", default_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub recent_window: Duration,
    /// How often to read the late window instead of the recent one, to count rows Graph
    /// published hours late; 0 switches this tier off [default: 15m; 20s with --demo].
    #[arg(long = "poll.late-interval", value_parser = parse_duration, value_name = "DURATION")]
    pub late_interval: Option<Duration>,
    /// How far back the late-window polls read (by call start time).
    #[arg(long = "poll.late-window", default_value = "6h", value_parser = parse_duration, value_name = "DURATION")]
    pub late_window: Duration,
    /// How often to read the whole lookback, to count rows Graph published days late [default: 6h; 2m with --demo].
    #[arg(long = "poll.sweep-interval", value_parser = parse_duration, value_name = "DURATION")]
    pub sweep_interval: Option<Duration>,
    /// How far back sweeps read, and how long row ids are remembered. A row Graph publishes
    /// later than the lookback minus the sweep interval after its call may not be counted.
    #[arg(long = "poll.lookback", default_value = "72h", value_parser = parse_duration, value_name = "DURATION")]
    pub lookback: Duration,

    /// File that keeps the counted calls and remembered row ids across restarts (put it on a
    /// persistent volume). Without it, a restart sets the counters back to zero.
    #[arg(long = "state.path", value_name = "PATH", conflicts_with = "demo")]
    pub state_path: Option<PathBuf>,
    /// Delete the state saved at --state.path and start afresh (counters from zero, a new
    /// baseline); for a state file that cannot be used.
    #[arg(long = "state.reset", requires = "state_path")]
    pub state_reset: bool,
}

/// Parses durations in human form: `90s`, `5m`, `1h`, `1h30m`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) => Ok(d),
        Err(_) => Err(format!(
            "'{text}' is not a duration; write a number with a unit, such as 90s, 5m, 1h or 1h30m"
        )),
    }
}

/// A configuration problem, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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
    #[error("both AZURE_CLIENT_SECRET and --azure.client-secret-file are set; keep only one so it is clear which secret is used")]
    TwoSecrets,
    #[error("{flag} '{value}' is not a usable URL: {reason}")]
    BadUrl {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("--web.listen-address '{0}' is not an address; use HOST:PORT or :PORT, e.g. :{DEFAULT_PORT}")]
    BadListenAddress(String),
    #[error("--web.telemetry-path '{0}' must start with '/' and must not be '/', '/-/healthy' or '/-/ready'")]
    BadTelemetryPath(String),
    #[error("{0}")]
    BadSchedule(String),
}

/// Validated exporter configuration.
#[derive(Debug)]
pub struct Config {
    pub listen_address: String,
    pub telemetry_path: String,
    pub graph_endpoint: Url,
    pub authority_host: Url,
    pub graph_timeout: Duration,
    pub retry: RetryPolicy,
    /// `--graph.concurrency`.
    pub graph_concurrency: usize,
    pub schedule: Schedule,
    pub state: Option<StateOptions>,
}

impl ExporterArgs {
    /// Checks everything but the credentials.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let (cloud_graph, cloud_login) = self.cloud.endpoints();
        let graph_endpoint = http_url(
            "--graph.endpoint",
            self.graph_endpoint.as_deref().unwrap_or(cloud_graph),
        )?;
        let authority_host = http_url(
            "--azure.authority-host",
            self.authority_host.as_deref().unwrap_or(cloud_login),
        )?;
        warn_on_mixed_clouds(&graph_endpoint, &authority_host);
        if self
            .listen_address
            .rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            return Err(ConfigError::BadListenAddress(self.listen_address.clone()));
        }
        let path = &self.telemetry_path;
        if !path.starts_with('/') || ["/", "/-/healthy", "/-/ready"].contains(&path.as_str()) {
            return Err(ConfigError::BadTelemetryPath(path.clone()));
        }
        // The demo polls faster so that a newcomer sees numbers move within seconds.
        let defaults = Schedule::default();
        let (poll_interval, late_interval, sweep_interval) = if self.demo {
            (
                Duration::from_secs(2),
                Duration::from_secs(20),
                Duration::from_secs(120),
            )
        } else {
            (
                defaults.poll_interval,
                defaults.late_interval,
                defaults.sweep_interval,
            )
        };
        let schedule = Schedule {
            poll_interval: self.poll_interval.unwrap_or(poll_interval),
            recent_window: self.recent_window,
            late_interval: self.late_interval.unwrap_or(late_interval),
            late_window: self.late_window,
            sweep_interval: self.sweep_interval.unwrap_or(sweep_interval),
            lookback: self.lookback,
        };
        check_schedule(&schedule)?;
        if self.graph_timeout.is_zero() {
            return Err(ConfigError::BadSchedule(
                "--graph.timeout must be longer than zero, e.g. 60s".into(),
            ));
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.graph_concurrency) {
            return Err(ConfigError::BadSchedule(format!(
                "--graph.concurrency must be between 1 and {MAX_CONCURRENCY} ({DEFAULT_CONCURRENCY} is the default): Graph allows an app 75 requests a second per tenant, and more readers only draw throttling"
            )));
        }
        if self.graph_retry_backoff < Duration::from_millis(10) {
            return Err(ConfigError::BadSchedule(
                "--graph.retry-backoff must be at least 10ms (1s is the default), so retries never hammer Graph".into(),
            ));
        }
        Ok(Config {
            listen_address: self.listen_address.clone(),
            telemetry_path: path.clone(),
            graph_endpoint,
            authority_host,
            graph_timeout: self.graph_timeout,
            retry: RetryPolicy {
                max_retries: self.graph_max_retries,
                initial_backoff: self.graph_retry_backoff,
                max_backoff: Duration::from_secs(60).max(self.graph_retry_backoff),
            },
            graph_concurrency: self.graph_concurrency,
            schedule,
            state: self.state_path.clone().map(|path| StateOptions {
                path,
                reset: self.state_reset,
            }),
        })
    }

    /// Chooses and loads the credential: the kind `--azure.auth` names, or else the one
    /// the environment configures. Files (secret, certificate, federated token) are read
    /// now, so that a mistake stops the start rather than the first poll.
    pub fn credential(&self, env: &EnvSecrets) -> Result<Credential, ConfigError> {
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
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
            return Err(ConfigError::PasswordWithoutCertificate);
        }
        let kind = match (self.auth, configured.as_slice()) {
            (Some(kind), others) => {
                for other in others.iter().filter(|k| **k != kind) {
                    tracing::warn!(
                        ignored = other.flag(),
                        "--azure.auth chooses another credential; this one is ignored"
                    );
                }
                kind
            }
            (None, []) => return Err(ConfigError::NoCredentials),
            (None, [one]) => *one,
            (None, several) => {
                let names: Vec<_> = several.iter().map(|k| k.flag()).collect();
                return Err(ConfigError::ConflictingCredentials(names.join(", ")));
            }
        };
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let client_id = nonempty(&self.client_id);
        // Tenant and client ids, with the kind's own setting when it is missing too.
        let ids = |kind: &'static str, own: Option<&'static str>, needs: &'static str| {
            let tenant_id = nonempty(&self.tenant_id);
            let missing: Vec<_> = [
                tenant_id.is_none().then_some("AZURE_TENANT_ID"),
                client_id.is_none().then_some("AZURE_CLIENT_ID"),
                own,
            ]
            .into_iter()
            .flatten()
            .collect();
            match (tenant_id, client_id.clone()) {
                (Some(tenant), Some(client)) if missing.is_empty() => Ok((tenant, client)),
                _ => Err(ConfigError::MissingCredentials {
                    kind,
                    missing: missing.join(", "),
                    needs,
                }),
            }
        };
        Ok(match kind {
            AuthKind::Secret => {
                let secret = self.client_secret(env.client_secret.clone())?;
                let (tenant_id, client_id) = ids(
                    "client secret",
                    secret.is_none().then_some("AZURE_CLIENT_SECRET"),
                    "AZURE_CLIENT_SECRET (or --azure.client-secret-file)",
                )?;
                Credential::ClientSecret {
                    tenant_id,
                    client_id,
                    secret: SecretString::from(secret.unwrap_or_default()),
                }
            }
            AuthKind::Certificate => {
                let path = self.client_certificate_path.as_deref();
                let (tenant_id, client_id) = ids(
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
                let certificate = ClientCertificate::load(
                    path.unwrap_or_else(|| std::path::Path::new("")),
                    password.as_ref(),
                    algorithm,
                )?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                if certificate.not_after() <= now {
                    tracing::warn!(subject = certificate.subject(), thumbprint = %certificate.thumbprint_hex(), "the certificate has expired; Entra ID will refuse it: upload a new one to the app registration");
                }
                Credential::Certificate {
                    tenant_id,
                    client_id,
                    certificate: Box::new(certificate),
                }
            }
            AuthKind::WorkloadIdentity => {
                let file = self.federated_token_file.clone();
                let (tenant_id, client_id) = ids(
                    "workload identity",
                    file.is_none().then_some("AZURE_FEDERATED_TOKEN_FILE"),
                    "AZURE_FEDERATED_TOKEN_FILE",
                )?;
                let token_file = file.unwrap_or_default();
                std::fs::metadata(&token_file).map_err(|e| ConfigError::FederatedTokenFile {
                    path: token_file.display().to_string(),
                    reason: e.to_string(),
                })?;
                Credential::WorkloadIdentity {
                    tenant_id,
                    client_id,
                    token_file,
                }
            }
            AuthKind::ManagedIdentity => Credential::ManagedIdentity {
                client_id,
                endpoint: http_url(
                    "--azure.managed-identity-endpoint",
                    &self.managed_identity_endpoint,
                )?,
            },
        })
    }

    /// The client secret from `AZURE_CLIENT_SECRET` or the secret file (never both).
    fn client_secret(&self, env_secret: Option<String>) -> Result<Option<String>, ConfigError> {
        let env_secret = env_secret.filter(|s| !s.is_empty());
        match (&self.client_secret_file, env_secret) {
            (Some(_), Some(_)) => Err(ConfigError::TwoSecrets),
            (Some(path), None) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::SecretFile {
                    path: shown.clone(),
                    reason: e.to_string(),
                })?;
                // Mounted secrets and `echo` leave a trailing newline that is not part of it.
                let text = text.trim_end_matches(['\r', '\n']).to_owned();
                if text.is_empty() {
                    return Err(ConfigError::EmptySecretFile { path: shown });
                }
                Ok(Some(text))
            }
            (None, secret) => Ok(secret),
        }
    }
}

fn http_url(flag: &'static str, value: &str) -> Result<Url, ConfigError> {
    let bad = |reason: &str| ConfigError::BadUrl {
        flag,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(value.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(bad(
            "use https://HOST (or http://HOST:PORT for local testing)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials do not belong in the URL; remove the user:password@ part",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        return Err(bad(
            "give the root URL only, without a path or query (e.g. https://graph.microsoft.com, not .../v1.0)",
        ));
    }
    // The instance metadata service answers plain http on a link-local address that never
    // leaves the host, by design.
    let metadata_service = flag == "--azure.managed-identity-endpoint"
        && matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_link_local());
    if url.scheme() == "http" && !is_loopback(&url) && !metadata_service {
        tracing::warn!(
            flag,
            url = %url,
            "plain http:// to a host that is not loopback: tokens and secrets cross the network unencrypted; use https:// outside local testing"
        );
    }
    Ok(url)
}

/// Tokens from one cloud's login host are refused by another cloud's Graph; overriding
/// one of the two hosts and not the other is an easy mistake.
fn warn_on_mixed_clouds(graph: &Url, login: &Url) {
    let clouds = [Cloud::Global, Cloud::Usgov, Cloud::UsgovDod, Cloud::China];
    let host = |url: &str| {
        Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    };
    let of = |url: &Url, pick: fn((&'static str, &'static str)) -> &'static str| -> Vec<Cloud> {
        clouds
            .into_iter()
            .filter(|c| host(pick(c.endpoints())).as_deref() == url.host_str())
            .collect()
    };
    let by_graph = of(graph, |(g, _)| g);
    let by_login = of(login, |(_, l)| l);
    if !by_graph.is_empty()
        && !by_login.is_empty()
        && !by_graph.iter().any(|c| by_login.contains(c))
    {
        tracing::warn!(graph = %graph, login = %login, "--graph.endpoint and --azure.authority-host belong to different clouds: Entra ID will refuse the scope or Graph the token; set --azure.cloud and drop the overrides");
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks the poll schedule makes sense; a lookback over Graph's 90-day limit is read in
/// 90-day parts, so only a lookback past Graph's retention is refused.
pub fn check_schedule(s: &Schedule) -> Result<(), ConfigError> {
    let show = |d: Duration| humantime::format_duration(d).to_string();
    let problem = if s.poll_interval < Duration::from_millis(100) {
        Some(format!(
            "--poll.interval {} is too short; use at least 100ms (1m is the default)",
            show(s.poll_interval)
        ))
    } else if s.recent_window.is_zero() {
        Some("--poll.recent-window must be longer than zero, e.g. 15m".to_owned())
    } else if s.lookback < s.recent_window {
        Some(format!(
            "--poll.lookback ({}) must be at least --poll.recent-window ({})",
            show(s.lookback),
            show(s.recent_window)
        ))
    } else if !s.late_interval.is_zero() && s.late_interval < s.poll_interval {
        Some(format!(
            "--poll.late-interval ({}) must be at least --poll.interval ({}), or 0 to switch the late tier off",
            show(s.late_interval),
            show(s.poll_interval)
        ))
    } else if s.sweep_interval < s.poll_interval {
        Some(format!(
            "--poll.sweep-interval ({}) must be at least --poll.interval ({})",
            show(s.sweep_interval),
            show(s.poll_interval)
        ))
    } else if s.sweep_interval > s.lookback {
        Some(format!(
            "--poll.sweep-interval ({}) must not be longer than --poll.lookback ({}): rows published late would fall out of the lookback before a sweep reads them",
            show(s.sweep_interval),
            show(s.lookback)
        ))
    } else if s.lookback > RETENTION {
        Some(format!(
            "--poll.lookback {} is longer than Graph keeps call logs (150 days); use at most 150d (72h is the default; {} per request is Graph's limit and longer lookbacks are read in parts)",
            show(s.lookback),
            show(MAX_WINDOW)
        ))
    } else {
        None
    };
    problem.map_or(Ok(()), |p| Err(ConfigError::BadSchedule(p)))
}

/// Resolves `--web.listen-address`: `:PORT` means every interface.
pub fn listen_candidates(address: &str) -> Vec<String> {
    match address.strip_prefix(':') {
        Some(port) => vec![format!("[::]:{port}"), format!("0.0.0.0:{port}")],
        None => vec![address.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn args(extra: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("teams-voice-exporter").chain(extra.iter().copied()))
    }

    #[test]
    fn defaults_are_valid() {
        let cli = args(&[]).unwrap();
        let config = cli.exporter.config().unwrap();
        assert_eq!(config.listen_address, ":9885");
        assert_eq!(config.schedule.poll_interval, Duration::from_secs(60));
        assert_eq!(config.schedule.lookback, Duration::from_secs(72 * 3600));
        assert_eq!(
            config.graph_endpoint.as_str(),
            "https://graph.microsoft.com/"
        );
    }

    #[test]
    fn bad_duration_names_the_flag_and_the_fix() {
        let error = args(&["--poll.interval=banana"]).unwrap_err().to_string();
        assert!(error.contains("--poll.interval"), "{error}");
        assert!(error.contains("90s"), "{error}");
    }

    #[test]
    fn schedule_problems_are_refused() {
        for bad in [
            &["--poll.lookback=10m"][..],
            &["--poll.sweep-interval=10s"],
            &["--poll.interval=0s"],
            &["--poll.lookback=200d"],
            &["--poll.sweep-interval=100h"],
            &["--graph.retry-backoff=0s"],
            &["--poll.late-interval=10s"],
            &["--graph.concurrency=0"],
            &["--graph.concurrency=33"],
        ] {
            let cli = args(bad).unwrap();
            assert!(
                matches!(cli.exporter.config(), Err(ConfigError::BadSchedule(_))),
                "{bad:?}"
            );
        }
        let cli = args(&["--poll.lookback=120d"]).unwrap();
        assert!(
            cli.exporter.config().is_ok(),
            "over 90 days is read in parts"
        );
    }

    fn env_secret(value: &str) -> EnvSecrets {
        EnvSecrets {
            client_secret: Some(value.to_owned()),
            certificate_password: None,
        }
    }

    #[test]
    fn missing_credentials_are_named() {
        let cli = args(&["--azure.tenant-id=t"]).unwrap();
        let error = cli
            .exporter
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
        let error = cli
            .exporter
            .credential(&env_secret("s"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing AZURE_CLIENT_ID."), "{error}");
        let cli = args(&["--azure.auth=workload-identity", "--azure.client-id=c"]).unwrap();
        let error = cli
            .exporter
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
        let cli = args(&[ids[0], ids[1], &token]).unwrap();
        let error = cli.exporter.credential(&env_secret("s")).unwrap_err();
        assert!(
            matches!(&error, ConfigError::ConflictingCredentials(list) if list.contains("secret") && list.contains("workload-identity")),
            "{error}"
        );
        assert!(error.to_string().contains("--azure.auth"), "{error}");
        let cli = args(&[ids[0], ids[1], &token, "--azure.auth=workload-identity"]).unwrap();
        let credential = cli.exporter.credential(&env_secret("s")).unwrap();
        assert_eq!(credential.kind(), "workload identity");
        let cli = args(&[ids[0], ids[1], "--azure.auth=managed-identity"]).unwrap();
        let credential = cli.exporter.credential(&env_secret("s")).unwrap();
        assert_eq!(credential.kind(), "managed identity (user-assigned)");
        let cli = args(&["--azure.auth=managed-identity"]).unwrap();
        let credential = cli.exporter.credential(&EnvSecrets::default()).unwrap();
        assert_eq!(credential.kind(), "managed identity (system-assigned)");
        let password_only = EnvSecrets {
            client_secret: Some("s".into()),
            certificate_password: Some("p".into()),
        };
        assert!(matches!(
            args(&ids).unwrap().exporter.credential(&password_only),
            Err(ConfigError::PasswordWithoutCertificate)
        ));
    }

    #[test]
    fn clouds_set_graph_and_login_hosts_and_flags_override_them() {
        let hosts = |extra: &[&str]| {
            let config = args(extra).unwrap().exporter.config().unwrap();
            (
                config.graph_endpoint.as_str().to_owned(),
                config.authority_host.as_str().to_owned(),
            )
        };
        let expect = |graph: &str, login: &str| (graph.to_owned(), login.to_owned());
        assert_eq!(
            hosts(&[]),
            expect(
                "https://graph.microsoft.com/",
                "https://login.microsoftonline.com/"
            )
        );
        assert_eq!(
            hosts(&["--azure.cloud=usgov"]),
            expect(
                "https://graph.microsoft.us/",
                "https://login.microsoftonline.us/"
            )
        );
        assert_eq!(
            hosts(&["--azure.cloud=usgov-dod"]),
            expect(
                "https://dod-graph.microsoft.us/",
                "https://login.microsoftonline.us/"
            )
        );
        assert_eq!(
            hosts(&["--azure.cloud=china"]),
            expect(
                "https://microsoftgraph.chinacloudapi.cn/",
                "https://login.chinacloudapi.cn/"
            )
        );
        assert_eq!(
            hosts(&[
                "--azure.cloud=china",
                "--graph.endpoint=http://127.0.0.1:1",
                "--azure.authority-host=http://127.0.0.1:2"
            ]),
            expect("http://127.0.0.1:1/", "http://127.0.0.1:2/")
        );
        assert!(args(&["--azure.cloud=mars"]).is_err());
    }

    #[test]
    fn secret_file_is_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "abc~def\n").unwrap();
        let file = path.to_str().unwrap();
        let cli = args(&[
            "--azure.tenant-id=t",
            "--azure.client-id=c",
            "--azure.client-secret-file",
            file,
        ])
        .unwrap();
        let credential = cli.exporter.credential(&EnvSecrets::default()).unwrap();
        let Credential::ClientSecret { secret, .. } = &credential else {
            panic!("{credential:?}");
        };
        assert_eq!(secret.expose_secret(), "abc~def");
        assert!(!format!("{credential:?}").contains("abc~def"));
        assert!(matches!(
            cli.exporter.credential(&env_secret("other")),
            Err(ConfigError::TwoSecrets)
        ));
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            cli.exporter.credential(&EnvSecrets::default()),
            Err(ConfigError::EmptySecretFile { .. })
        ));
    }

    #[cfg(feature = "demo")]
    #[test]
    fn failing_trunk_must_be_simulated() {
        let cli = args(&["--simulate.failing-trunk=SBC02.contoso.com"]).unwrap();
        assert_eq!(
            cli.exporter.simulation.failing_trunk.as_deref(),
            Some("sbc02.contoso.com")
        );
        let error = args(&["--simulate.failing-trunk=sbc.example.com"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("sbc-legacy.fabrikam.com"), "{error}");
    }

    #[test]
    fn state_flags_are_checked() {
        let config = args(&["--state.path=/var/lib/tve/state.redb", "--state.reset"])
            .unwrap()
            .exporter
            .config()
            .unwrap();
        assert_eq!(
            config.state,
            Some(StateOptions {
                path: "/var/lib/tve/state.redb".into(),
                reset: true
            })
        );
        assert!(args(&["--state.reset"]).is_err(), "reset needs a path");
        assert!(
            args(&["--demo", "--state.path=x"]).is_err(),
            "the demo tenant starts afresh every run"
        );
    }

    #[test]
    fn urls_and_addresses_are_checked() {
        assert!(
            args(&["--graph.endpoint=https://me:pw@graph.microsoft.com"])
                .unwrap()
                .exporter
                .config()
                .is_err()
        );
        assert!(args(&["--graph.endpoint=ftp://x"])
            .unwrap()
            .exporter
            .config()
            .is_err());
        assert!(args(&["--graph.endpoint=https://graph.microsoft.com/v1.0"])
            .unwrap()
            .exporter
            .config()
            .is_err());
        assert!(args(&["--graph.endpoint=http://127.0.0.1:8080"])
            .unwrap()
            .exporter
            .config()
            .is_ok());
        assert!(args(&["--web.listen-address=9100"])
            .unwrap()
            .exporter
            .config()
            .is_err());
        assert!(args(&["--web.telemetry-path=/"])
            .unwrap()
            .exporter
            .config()
            .is_err());
        assert_eq!(listen_candidates("127.0.0.1:0"), vec!["127.0.0.1:0"]);
        assert_eq!(listen_candidates(":9885").len(), 2);
    }
}
