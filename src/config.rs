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

use crate::graph::{RetryPolicy, MAX_WINDOW};
use crate::poller::Schedule;
use crate::state::store::StateOptions;

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
    after_help = "Credentials come from the environment: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET \
(or --azure.client-secret-file). The app registration needs the Microsoft Graph application permission \
CallRecords.Read.All with admin consent. Try it without an Azure tenant: teams-voice-exporter --demo"
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
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to serve the simulated Graph and token endpoints on.
    #[arg(long, default_value = "127.0.0.1:9886", value_name = "ADDR")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub simulation: SimulationArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// The simulated tenant's traffic, for `--demo` and `simulate`.
#[derive(Debug, Args)]
pub struct SimulationArgs {
    /// Average calls a day in the simulated tenant.
    #[arg(long = "simulate.calls-per-day", default_value_t = crate::simulator::DEMO_CALLS_PER_DAY, value_name = "N")]
    pub calls_per_day: f64,
    /// Seed for the simulated traffic (the same seed gives the same calls).
    #[arg(long = "simulate.seed", default_value_t = 1, value_name = "N")]
    pub seed: u64,
    /// Call history the simulated tenant holds at start [default: 74h; 12h with --demo].
    #[arg(long = "simulate.history", value_parser = parse_duration, value_name = "DURATION")]
    pub history: Option<Duration>,
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
    #[command(flatten)]
    pub simulation: SimulationArgs,

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

    #[command(flatten)]
    pub log: LogArgs,

    /// Microsoft Graph root URL; http:// is accepted for local testing.
    #[arg(
        long = "graph.endpoint",
        default_value = "https://graph.microsoft.com",
        value_name = "URL"
    )]
    pub graph_endpoint: String,
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

    /// Microsoft Entra ID login host; http:// is accepted for local testing.
    #[arg(
        long = "azure.authority-host",
        env = "AZURE_AUTHORITY_HOST",
        default_value = "https://login.microsoftonline.com",
        value_name = "URL"
    )]
    pub authority_host: String,
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

    /// How often to read the recent window [default: 1m; 2s with --demo].
    #[arg(long = "poll.interval", value_parser = parse_duration, value_name = "DURATION")]
    pub poll_interval: Option<Duration>,
    /// How far back each regular poll reads (by call start time).
    #[arg(long = "poll.recent-window", default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    pub recent_window: Duration,
    /// How often to read the whole lookback, to count rows Graph published late [default: 1h; 2m with --demo].
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
    #[error("no credentials for Microsoft Graph: missing {missing}. Set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or --azure.client-secret-file) for an app registration with the CallRecords.Read.All application permission, or run with --demo to try the exporter on a simulated tenant")]
    MissingCredentials { missing: String },
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
    pub schedule: Schedule,
    pub state: Option<StateOptions>,
}

/// Credentials for one tenant, checked but not yet used.
#[derive(Debug)]
pub struct Credentials {
    pub tenant_id: String,
    pub client_id: String,
    pub secret: SecretString,
}

impl ExporterArgs {
    /// Checks everything but the credentials.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let graph_endpoint = http_url("--graph.endpoint", &self.graph_endpoint)?;
        let authority_host = http_url("--azure.authority-host", &self.authority_host)?;
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
        let (poll_interval, sweep_interval) = if self.demo {
            (Duration::from_secs(2), Duration::from_secs(120))
        } else {
            (Duration::from_secs(60), Duration::from_secs(3600))
        };
        let schedule = Schedule {
            poll_interval: self.poll_interval.unwrap_or(poll_interval),
            recent_window: self.recent_window,
            sweep_interval: self.sweep_interval.unwrap_or(sweep_interval),
            lookback: self.lookback,
        };
        check_schedule(&schedule)?;
        if self.graph_timeout.is_zero() {
            return Err(ConfigError::BadSchedule(
                "--graph.timeout must be longer than zero, e.g. 60s".into(),
            ));
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
            schedule,
            state: self.state_path.clone().map(|path| StateOptions {
                path,
                reset: self.state_reset,
            }),
        })
    }

    /// Reads the credentials from the flags, `AZURE_CLIENT_SECRET` (passed in, so tests
    /// need not touch the process environment) and the secret file.
    pub fn credentials(&self, env_secret: Option<String>) -> Result<Credentials, ConfigError> {
        let env_secret = env_secret.filter(|s| !s.is_empty());
        let secret = match (&self.client_secret_file, env_secret) {
            (Some(_), Some(_)) => return Err(ConfigError::TwoSecrets),
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
                Some(text)
            }
            (None, secret) => secret,
        };
        let tenant_id = self.tenant_id.clone().filter(|s| !s.trim().is_empty());
        let client_id = self.client_id.clone().filter(|s| !s.trim().is_empty());
        let mut missing = Vec::new();
        if tenant_id.is_none() {
            missing.push("AZURE_TENANT_ID");
        }
        if client_id.is_none() {
            missing.push("AZURE_CLIENT_ID");
        }
        if secret.is_none() {
            missing.push("AZURE_CLIENT_SECRET");
        }
        match (tenant_id, client_id, secret) {
            (Some(tenant_id), Some(client_id), Some(secret)) => Ok(Credentials {
                tenant_id: tenant_id.trim().to_owned(),
                client_id: client_id.trim().to_owned(),
                secret: SecretString::from(secret),
            }),
            _ => Err(ConfigError::MissingCredentials {
                missing: missing.join(", "),
            }),
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
    if url.scheme() == "http" && !is_loopback(&url) {
        tracing::warn!(
            flag,
            url = %url,
            "plain http:// to a host that is not loopback: tokens and secrets cross the network unencrypted; use https:// outside local testing"
        );
    }
    Ok(url)
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
        Some("--poll.recent-window must be longer than zero, e.g. 1h".to_owned())
    } else if s.lookback < s.recent_window {
        Some(format!(
            "--poll.lookback ({}) must be at least --poll.recent-window ({})",
            show(s.lookback),
            show(s.recent_window)
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
            &["--poll.lookback=30m"][..],
            &["--poll.sweep-interval=10s"],
            &["--poll.interval=0s"],
            &["--poll.lookback=200d"],
            &["--poll.sweep-interval=100h"],
            &["--graph.retry-backoff=0s"],
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

    #[test]
    fn missing_credentials_are_named() {
        let cli = args(&["--azure.tenant-id=t"]).unwrap();
        let error = cli.exporter.credentials(None).unwrap_err().to_string();
        assert!(
            error.contains("AZURE_CLIENT_ID, AZURE_CLIENT_SECRET"),
            "{error}"
        );
        assert!(error.contains("--demo"));
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
        let credentials = cli.exporter.credentials(None).unwrap();
        assert_eq!(credentials.secret.expose_secret(), "abc~def");
        assert!(!format!("{credentials:?}").contains("abc~def"));
        assert!(matches!(
            cli.exporter.credentials(Some("other".into())),
            Err(ConfigError::TwoSecrets)
        ));
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            cli.exporter.credentials(None),
            Err(ConfigError::EmptySecretFile { .. })
        ));
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
