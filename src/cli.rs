//! The command line: the subcommands, the exporter's flags assembled from its components,
//! and the [`Config`] they are checked into before anything starts.
//!
//! Flags follow the Prometheus exporters' style (`--web.listen-address`, `--log.level`),
//! and, as in node_exporter, each component declares and checks its own flags beside the
//! code that reads them: `--web.*` in [`web_args`], `--graph.*` in [`graph_args`],
//! `--azure.*` in [`auth::args`], `--poll.*` in [`schedule_args`] and `--state.*` in
//! [`store_args`]. Only `--log.*` and `--demo` belong to the process as a whole and live
//! here. The order of the flattened groups below is the order of `--help`.
//!
//! [`web_args`]: crate::exposition::web_args
//! [`graph_args`]: crate::source::graph_args
//! [`auth::args`]: crate::source::auth::args
//! [`schedule_args`]: crate::counting::schedule_args
//! [`store_args`]: crate::counting::store_args

#[cfg(feature = "demo")]
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Url;

use crate::counting::schedule::Schedule;
use crate::counting::schedule_args::{PollArgs, ScheduleError};
use crate::counting::store::StateOptions;
use crate::counting::store_args::StateArgs;
use crate::exposition::web_args::{WebArgs, WebArgsError};
use crate::source::auth::args::AzureArgs;
use crate::source::auth::credential_source::CredentialError;
use crate::source::cloud::{warn_on_mixed_clouds, UrlError};
use crate::source::collector_args::{CollectorArgs, NoCollector};
use crate::source::graph::{BudgetLimits, RetryPolicy};
use crate::source::graph_args::{GraphArgs, GraphArgsError};
use crate::source::Function;

/// Read by `main` and handed to the credential; declared beside the credential flags.
pub use crate::source::auth::args::EnvSecrets;

#[derive(Debug, Parser)]
#[command(
    name = "teams-voice-exporter",
    version,
    about = "Prometheus exporter for Microsoft Teams telephony: Direct Routing and PSTN (Calling Plan, Operator Connect) calls, read from Microsoft Graph call logs.",
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
    Simulate(Box<SimulateArgs>),
    /// Check the credentials, the token's permission, Graph and the clock once, print a
    /// report and exit: 0 when all is well, 1 when a check failed, 2 for a configuration
    /// error. Takes the exporter's flags and environment.
    Check(Box<CheckArgs>),
    /// Write the calls Graph still holds for a range as OpenMetrics history for promtool.
    /// Takes the exporter's flags and environment; exits 2 for bad input.
    Backfill(Box<BackfillArgs>),
}

/// `backfill`'s own flags; its range, step and output are checked by
/// [`crate::backfill`] before any request is sent.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Start of the history: RFC 3339 (2026-09-01T00:00:00Z) or a date (midnight UTC).
    #[arg(long = "from", value_name = "TIME")]
    pub from: String,
    /// End of the history (exclusive). Default: where live counting began, read from
    /// --state.path, so that history and live counts meet; without it, now.
    #[arg(long = "to", value_name = "TIME")]
    pub to: Option<String>,
    /// The OpenMetrics file to write; FILE.partial until it is complete.
    #[arg(long = "output", value_name = "FILE")]
    pub output: std::path::PathBuf,
    /// Time between samples of every series; divides a day.
    #[arg(long = "step", default_value = "5m", value_parser = crate::flag::parse_duration, value_name = "DURATION")]
    pub step: Duration,
    /// Continue an interrupted backfill of the same flags from its last complete day.
    #[arg(long = "resume")]
    pub resume: bool,
    /// How long Graph keeps the tenant's rows, when longer than its default (150 days
    /// for Direct Routing, 365 for PSTN calls; up to 730 in some countries).
    #[arg(long = "retention", value_parser = crate::flag::parse_duration, value_name = "DURATION")]
    pub retention: Option<Duration>,
    #[command(flatten)]
    pub exporter: ExporterArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub exporter: ExporterArgs,
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

/// The exporter's flags, shared by the exporter itself and `check`.
#[derive(Debug, Args)]
pub struct ExporterArgs {
    /// Run on a simulated tenant inside this process: no Azure account needed.
    #[arg(long)]
    pub demo: bool,
    #[cfg(feature = "demo")]
    #[command(flatten)]
    pub simulation: tve_simulator::SimulationArgs,

    #[command(flatten)]
    pub web: WebArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub collectors: CollectorArgs,
    /// `--collector.call-quality`, `--call-quality.*` (issue #17).
    #[command(flatten)]
    pub call_quality: crate::quality::args::CallQualityArgs,
    #[command(flatten)]
    pub graph: GraphArgs,
    #[command(flatten)]
    pub azure: AzureArgs,
    #[command(flatten)]
    pub poll: PollArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// `--graph.max-response-size`, `--graph.max-page-rows`, `--labels.max-*` (issue #18).
    #[command(flatten)]
    pub limits: crate::source::limits_args::LimitArgs,
    #[command(flatten)]
    pub tenants: crate::tenants::args::TenantArgs,
    #[command(flatten)]
    pub shard: crate::tenants::shard_args::ShardArgs,
}

/// A configuration problem, with what to do about it: the component's own error, which
/// names the flag or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(transparent)]
    Web(#[from] WebArgsError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Graph(#[from] GraphArgsError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Collector(#[from] NoCollector),
    #[error(transparent)]
    CallQuality(#[from] crate::quality::args::CallQualityArgsError),
}

impl ConfigError {
    /// The flag at fault; `None` for a credential, which may be set by several flags and
    /// variables.
    pub fn flag(&self) -> Option<&'static str> {
        match self {
            ConfigError::Url(error) => Some(error.flag),
            ConfigError::Web(error) => Some(error.flag()),
            ConfigError::Schedule(error) => Some(error.flag()),
            ConfigError::Graph(error) => Some(error.flag()),
            ConfigError::Credential(CredentialError::Url(error)) => Some(error.flag),
            ConfigError::Credential(_) => None,
            ConfigError::Collector(_) => Some("--collector.direct-routing"),
            ConfigError::CallQuality(error) => Some(error.flag()),
        }
    }
}

/// Validated exporter configuration.
#[derive(Debug)]
pub struct Config {
    pub listen_address: String,
    pub telemetry_path: String,
    /// `--web.new-series-hold`.
    pub new_series_hold: Duration,
    pub graph_endpoint: Url,
    pub authority_host: Url,
    pub graph_timeout: Duration,
    pub retry: RetryPolicy,
    /// `--graph.concurrency`.
    pub graph_concurrency: usize,
    /// `--graph.rate-limit` and `--graph.tenant-rate-limit`.
    pub budget: BudgetLimits,
    pub schedule: Schedule,
    pub state: Option<StateOptions>,
    /// The call-log functions read (`--collector.*`), at least one.
    pub functions: Vec<Function>,
    /// `--collector.call-quality`: `None` when off.
    pub call_quality: Option<crate::quality::args::QualityOptions>,
}

impl ExporterArgs {
    /// Checks everything but the credentials, which
    /// [`CredentialArgs::credential`](crate::source::auth::args::CredentialArgs::credential)
    /// loads.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let graph_endpoint = self.graph.endpoint(self.azure.cloud)?;
        let authority_host = self.azure.authority_host()?;
        warn_on_mixed_clouds(&graph_endpoint, &authority_host);
        self.web.check()?;
        let schedule = self.poll.schedule(self.demo)?;
        let graph = self.graph.options(self.demo)?;
        Ok(Config {
            listen_address: self.web.listen_address.clone(),
            telemetry_path: self.web.telemetry_path.clone(),
            new_series_hold: self.web.new_series_hold(self.demo),
            graph_endpoint,
            authority_host,
            graph_timeout: graph.timeout,
            retry: graph.retry,
            graph_concurrency: graph.concurrency,
            budget: graph.budget,
            schedule,
            state: self.state.options(),
            functions: self.collectors.functions()?,
            call_quality: self.call_quality.options(self.demo)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::exposition::web_args::listen_candidates;

    fn args(extra: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("teams-voice-exporter").chain(extra.iter().copied()))
    }

    /// The components declare their flags, but `--help` must list them as it always has.
    #[test]
    fn help_lists_the_flags_in_their_order() {
        let help = Cli::command().render_help().to_string();
        let listed: Vec<&str> = help
            .lines()
            .filter_map(|line| line.strip_prefix("      --"))
            .filter_map(|line| line.split(' ').next())
            .filter(|flag| !flag.starts_with("simulate."))
            .collect();
        let expected = [
            "demo",
            "web.listen-address",
            "web.telemetry-path",
            "web.config.file",
            "web.new-series-hold",
            "web.max-series",
            "web.enable-lifecycle",
            "log.level",
            "log.format",
            "collector.direct-routing",
            "collector.pstn",
            "collector.call-quality",
            "call-quality.wait",
            "call-quality.give-up",
            "call-quality.max-pending",
            "call-quality.rate-limit",
            "graph.endpoint",
            "graph.timeout",
            "graph.max-retries",
            "graph.retry-backoff",
            "graph.concurrency",
            "graph.rate-limit",
            "graph.tenant-rate-limit",
            "azure.authority-host",
            "azure.cloud",
            "azure.auth",
            "azure.tenant-id",
            "azure.client-id",
            "azure.client-secret-file",
            "azure.client-certificate-path",
            "azure.client-assertion-algorithm",
            "azure.federated-token-file",
            "azure.managed-identity-endpoint",
            "poll.interval",
            "poll.recent-window",
            "poll.late-interval",
            "poll.late-window",
            "poll.sweep-interval",
            "poll.lookback",
            "state.path",
            "state.reset",
            "graph.max-response-size",
            "graph.max-page-rows",
            "labels.max-trunks",
            "labels.max-call-types",
            "labels.max-sip-codes",
            "labels.max-sub-reasons",
            "labels.max-media-locations",
            "labels.max-values",
            "config.file",
            "tenant.name",
            "tenants.max-concurrent-reads",
            "state.removed-tenant-retention",
            "shard",
            "total-shards",
            "shard.auto",
        ];
        assert_eq!(listed, expected, "{help}");
        // The simulated tenant's flags come between --demo and --web.*.
        #[cfg(feature = "demo")]
        {
            let at = |flag: &str| help.find(&format!("      {flag}")).unwrap();
            assert!(at("--demo") < at("--simulate.") && at("--simulate.") < at("--web."));
        }
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
        for (bad, flag) in [
            ("--poll.lookback=10m", "--poll.lookback"),
            ("--poll.sweep-interval=10s", "--poll.sweep-interval"),
            ("--poll.interval=0s", "--poll.interval"),
            ("--poll.lookback=200d", "--poll.lookback"),
            ("--poll.sweep-interval=100h", "--poll.sweep-interval"),
            ("--graph.retry-backoff=0s", "--graph.retry-backoff"),
            ("--poll.late-interval=10s", "--poll.late-interval"),
            ("--graph.concurrency=0", "--graph.concurrency"),
            ("--graph.concurrency=33", "--graph.concurrency"),
            ("--graph.timeout=0s", "--graph.timeout"),
        ] {
            let error = args(&[bad]).unwrap().exporter.config().unwrap_err();
            // The component that owns the flag refused it.
            let owner = match error {
                ConfigError::Schedule(_) => "--poll.",
                ConfigError::Graph(_) => "--graph.",
                _ => "another component",
            };
            assert!(
                flag.starts_with(owner) && error.flag() == Some(flag),
                "{bad}: {error:?}"
            );
        }
        let cli = args(&["--poll.lookback=120d"]).unwrap();
        assert!(
            cli.exporter.config().is_ok(),
            "over 90 days is read in parts"
        );
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
        let refused = |extra: &[&str]| args(extra).unwrap().exporter.config().unwrap_err();
        for (bad, flag) in [
            (
                "--graph.endpoint=https://me:pw@graph.microsoft.com",
                "--graph.endpoint",
            ),
            ("--graph.endpoint=ftp://x", "--graph.endpoint"),
            (
                "--graph.endpoint=https://graph.microsoft.com/v1.0",
                "--graph.endpoint",
            ),
            (
                "--azure.authority-host=https://login.microsoftonline.com/t",
                "--azure.authority-host",
            ),
            ("--web.listen-address=9100", "--web.listen-address"),
            ("--web.telemetry-path=/", "--web.telemetry-path"),
        ] {
            let error = refused(&[bad]);
            assert_eq!(error.flag(), Some(flag), "{bad}: {error}");
        }
        assert!(args(&["--graph.endpoint=http://127.0.0.1:8080"])
            .unwrap()
            .exporter
            .config()
            .is_ok());
        assert_eq!(listen_candidates("127.0.0.1:0"), vec!["127.0.0.1:0"]);
        assert_eq!(listen_candidates(":9885").len(), 2);
    }

    #[test]
    fn new_series_are_held_two_minutes_or_30s_with_demo_unless_told() {
        let hold = |extra: &[&str]| {
            args(extra)
                .unwrap()
                .exporter
                .config()
                .unwrap()
                .new_series_hold
        };
        assert_eq!(hold(&[]), Duration::from_secs(120));
        assert_eq!(
            hold(&["--web.new-series-hold=45s"]),
            Duration::from_secs(45)
        );
        assert_eq!(hold(&["--web.new-series-hold=0s"]), Duration::ZERO);
        #[cfg(feature = "demo")]
        assert_eq!(hold(&["--demo"]), Duration::from_secs(30));
    }
}
