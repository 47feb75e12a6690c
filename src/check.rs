//! `teams-voice-exporter check`: the first hour of a deployment in one command.
//!
//! It goes once through everything the exporter needs, in the order the exporter needs it
//! (configuration, credential, token, permission, Graph, the call log, the clock), prints
//! a line per step with what was found or what to do, and exits 0 only when every step
//! passed: 1 when a check failed, 2 when the configuration itself is wrong. Steps that
//! depend on a failed one are reported as skipped. Secrets and the token are never
//! printed: only the credential's kind, ids, certificate subject and thumbprint.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

use crate::app::{self, DemoTenant, StartError};
use crate::cli::{Config, EnvSecrets, ExporterArgs};
use crate::source::auth::{AccessToken, Credential, TokenCache};
use crate::source::graph::{CallWindow, GraphClient, Priority, RetryPolicy};
use crate::source::metrics::SourceMetrics;
use crate::source::Function;
use crate::tenants::config::TenantsFile;
use tve_clock::Clock;

/// The application permission the exporter needs.
pub const REQUIRED_ROLE: &str = "CallRecords.Read.All";

/// Skew beyond which Entra ID refuses assertions and Graph refuses tokens as not yet
/// valid or expired (both allow about five minutes).
const SKEW_LIMIT: Duration = Duration::from_secs(300);
/// Skew worth a warning: well within the limit, but a clock that drifts this far has no
/// working time synchronisation.
const SKEW_WARNING: Duration = Duration::from_secs(60);

/// The steps that need a credential, skipped together when there is none.
const AFTER_CREDENTIAL: [&str; 5] = ["token", "permission", "graph", "call logs", "clock"];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Ok,
    Warn,
    Skip,
    Fail,
}

/// Prints the steps as they finish, so a slow step shows where it hangs.
struct Report<W: Write> {
    out: W,
    worst: Status,
    config_error: bool,
}

impl<W: Write> Report<W> {
    fn line(&mut self, status: Status, step: &str, text: &str) {
        let label = match status {
            Status::Ok => "OK  ",
            Status::Warn => "WARN",
            Status::Skip => "SKIP",
            Status::Fail => "FAIL",
        };
        if status != Status::Skip {
            self.worst = self.worst.max(status);
        }
        let mut lines = text.lines();
        let _ = writeln!(
            self.out,
            "{label}  {step:<11} {}",
            lines.next().unwrap_or_default()
        );
        for more in lines {
            let _ = writeln!(self.out, "{:19}{more}", "");
        }
        let _ = self.out.flush();
    }

    fn skip(&mut self, steps: &[&str], because: &str) {
        for step in steps {
            self.line(Status::Skip, step, because);
        }
    }
}

/// Runs the checks, writing the report to `out`; returns the exit code.
pub async fn run(args: ExporterArgs, env: EnvSecrets, out: impl Write) -> i32 {
    let mut report = Report {
        out,
        worst: Status::Ok,
        config_error: false,
    };
    let _ = writeln!(
        report.out,
        "teams-voice-exporter {} check\n",
        env!("CARGO_PKG_VERSION")
    );
    let _ = steps(&mut report, &args, &env).await;
    finish(report)
}

/// The steps in the exporter's order. Each returns `None` when the steps after it cannot
/// run, having reported why (and which steps it skips).
async fn steps<W: Write>(
    report: &mut Report<W>,
    args: &ExporterArgs,
    env: &EnvSecrets,
) -> Option<()> {
    if let Some(path) = &args.tenants.config_file {
        return tenants_steps(report, args, env, path).await;
    }
    // The simulated tenant of `--demo` must serve until the last step.
    let (config, credential, _simulator) = configuration(report, args, env).await?;
    let (tokens, http, metrics) = token_cache(report, &config, credential)?;
    let token = token(report, &tokens).await?;
    check_roles(report, &token, &tokens);

    let now = Utc::now();
    let window = CallWindow {
        from: now - chrono::Duration::hours(1),
        to: now,
    };
    let graph = diagnosis_client(http.clone(), &config, tokens, metrics, args);
    let url = graph.function_url(config.functions[0], window);
    let probe = reach_graph(report, &http, url, &token, &config).await?;
    for &function in &config.functions {
        read_call_logs(report, &graph, function, window).await;
    }
    check_clock(report, &probe);
    Some(())
}

/// With `--config.file`: the file, then for every tenant it lists (whatever the shard),
/// its credential, token, permission and call logs, so that one tenant's problem is named
/// with its fix while the others are checked too.
async fn tenants_steps<W: Write>(
    report: &mut Report<W>,
    args: &ExporterArgs,
    env: &EnvSecrets,
    path: &std::path::Path,
) -> Option<()> {
    let config = match args.config() {
        Ok(config) => config,
        Err(error) => {
            report.config_error = true;
            report.line(Status::Fail, "config", &error.to_string());
            return None;
        }
    };
    let file = match TenantsFile::load(path) {
        Ok(file) => file,
        Err(error) => {
            report.config_error = true;
            report.line(Status::Fail, "config", &error.to_string());
            return None;
        }
    };
    report.line(
        Status::Ok,
        "config",
        &format!("{} tenants in {}", file.tenants.len(), path.display()),
    );
    let now = Utc::now();
    let window = CallWindow {
        from: now - chrono::Duration::hours(1),
        to: now,
    };
    for entry in &file.tenants {
        let _ = writeln!(report.out, "\ntenant {} ({}):", entry.name, entry.id);
        let credential = match &entry.credential {
            None => args
                .azure
                .credential
                .credential_for(env, &entry.id)
                .map_err(|e| e.to_string()),
            Some(own) => own
                .credential_args(&args.azure.credential, &entry.id)
                .and_then(|(flags, secrets)| flags.credential(&secrets).map_err(|e| e.to_string())),
        };
        let credential = match credential {
            Ok(credential) => credential,
            Err(error) => {
                report.line(Status::Fail, "credential", &error);
                continue;
            }
        };
        let (status, text) = describe(&credential);
        report.line(status, "credential", &text);
        let Some((tokens, http, metrics)) = token_cache(report, &config, credential) else {
            continue;
        };
        let Some(token) = token(report, &tokens).await else {
            continue;
        };
        check_roles(report, &token, &tokens);
        let graph = diagnosis_client(http, &config, tokens, metrics, args);
        for &function in &config.functions {
            read_call_logs(report, &graph, function, window).await;
        }
    }
    Some(())
}

/// A Graph client for a diagnosis, not a poll: a short, bounded wait is enough to tell a
/// hiccup.
fn diagnosis_client(
    http: reqwest::Client,
    config: &Config,
    tokens: TokenCache,
    metrics: SourceMetrics,
    args: &ExporterArgs,
) -> GraphClient {
    GraphClient::new(
        http,
        config.graph_endpoint.clone(),
        Arc::new(tokens),
        RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
        },
        metrics,
    )
    .with_response_limits(args.limits.response())
}

/// The `config` and `credential` steps: the flags, then the credential they choose.
async fn configuration<W: Write>(
    report: &mut Report<W>,
    args: &ExporterArgs,
    env: &EnvSecrets,
) -> Option<(Config, Credential, Option<DemoTenant>)> {
    let mut config = match args.config() {
        Ok(config) => config,
        Err(error) => {
            report.config_error = true;
            report.line(Status::Fail, "config", &error.to_string());
            report.skip(&AFTER_CREDENTIAL, "the configuration is not valid");
            return None;
        }
    };
    let clock = Clock::system();
    let (credential, simulator) = match app::credential(args, env, &mut config, &clock).await {
        Ok(found) => found,
        Err(error) => {
            report.config_error = matches!(error, StartError::Config(_));
            report.line(Status::Fail, "credential", &error.to_string());
            report.skip(&AFTER_CREDENTIAL, "no usable credential");
            return None;
        }
    };
    report.line(
        Status::Ok,
        "config",
        &format!(
            "Graph {}, login host {}",
            config.graph_endpoint.as_str().trim_end_matches('/'),
            config.authority_host.as_str().trim_end_matches('/')
        ),
    );
    let (status, text) = describe(&credential);
    report.line(status, "credential", &text);
    Some((config, credential, simulator))
}

/// What the `token` step needs: the token cache, the HTTP client and metrics to record in.
fn token_cache<W: Write>(
    report: &mut Report<W>,
    config: &Config,
    credential: Credential,
) -> Option<(TokenCache, reqwest::Client, SourceMetrics)> {
    let metrics = match SourceMetrics::register(&prometheus::Registry::new()) {
        Ok(metrics) => metrics,
        Err(error) => {
            report.line(Status::Fail, "token", &format!("internal error: {error}"));
            return None;
        }
    };
    let built = app::http_client(config).and_then(|http| {
        Ok((
            app::token_cache(&http, credential, config, metrics.clone())?,
            http,
        ))
    });
    match built {
        Ok((tokens, http)) => Some((tokens, http, metrics)),
        Err(error) => {
            report.line(Status::Fail, "token", &error.to_string());
            None
        }
    }
}

/// The `token` step.
async fn token<W: Write>(report: &mut Report<W>, tokens: &TokenCache) -> Option<AccessToken> {
    match tokens.token().await {
        Ok(token) => {
            report.line(
                Status::Ok,
                "token",
                &format!("acquired from {}", tokens.token_url().path_with_origin()),
            );
            Some(token)
        }
        Err(error) => {
            report.line(Status::Fail, "token", &error.to_string());
            report.skip(&AFTER_CREDENTIAL[1..], "no token");
            None
        }
    }
}

/// One request to Graph, timed for the `clock` step.
struct Probe {
    sent_at: SystemTime,
    elapsed: Duration,
    /// Graph's `Date` header.
    date: Option<SystemTime>,
}

/// The `graph` step: one plain request, so that an unreachable Graph is told apart from a
/// refused read.
async fn reach_graph<W: Write>(
    report: &mut Report<W>,
    http: &reqwest::Client,
    url: reqwest::Url,
    token: &AccessToken,
    config: &Config,
) -> Option<Probe> {
    let sent_at = SystemTime::now();
    let started = Instant::now();
    let Ok(mut authorization) = reqwest::header::HeaderValue::from_str(&token.bearer()) else {
        report.line(
            Status::Fail,
            "graph",
            "the token is not a valid header value",
        );
        return None;
    };
    authorization.set_sensitive(true);
    let response = http
        .get(url)
        .header(reqwest::header::AUTHORIZATION, authorization)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await;
    let elapsed = started.elapsed();
    let graph_root = config.graph_endpoint.as_str().trim_end_matches('/');
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            report.line(
                Status::Fail,
                "graph",
                &format!(
                    "{graph_root} cannot be reached: {}.\nCheck network access (firewall, proxy settings HTTPS_PROXY/NO_PROXY) to the Graph host, and --azure.cloud or --graph.endpoint",
                    crate::source::auth::error_chain(&error.without_url())
                ),
            );
            report.skip(&["call logs", "clock"], "Graph is unreachable");
            return None;
        }
    };
    report.line(
        Status::Ok,
        "graph",
        &format!(
            "{graph_root} reachable (HTTP {} in {} ms)",
            response.status().as_u16(),
            elapsed.as_millis()
        ),
    );
    let date = response
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    Some(Probe {
        sent_at,
        elapsed,
        date,
    })
}

/// The `call logs` step of one enabled function (`--collector.*`): the last hour, read as
/// a poll reads it.
async fn read_call_logs<W: Write>(
    report: &mut Report<W>,
    graph: &GraphClient,
    function: Function,
    window: CallWindow,
) {
    let name = function.name();
    match graph
        .read_window(function, window, Priority::Recent, |_| {})
        .await
    {
        Ok(read) => report.line(
            Status::Ok,
            "call logs",
            &format!(
                "{name}: {} rows in the last hour ({} page{})",
                read.rows,
                read.pages,
                if read.pages == 1 { "" } else { "s" }
            ),
        ),
        Err(error) => report.line(Status::Fail, "call logs", &format!("{name}: {error}")),
    }
}

/// The `clock` step. Graph's Date has whole seconds; it is compared with the middle of
/// the request.
fn check_clock<W: Write>(report: &mut Report<W>, probe: &Probe) {
    let Some(date) = probe.date else {
        report.line(
            Status::Warn,
            "clock",
            "Graph's answer had no Date header; the skew is unknown",
        );
        return;
    };
    let local = probe.sent_at + probe.elapsed / 2;
    let (ahead, skew) = match local.duration_since(date) {
        Ok(ahead) => (true, ahead),
        Err(behind) => (false, behind.duration()),
    };
    let mut text = String::new();
    let _ = write!(
        text,
        "this machine's clock is {:.1} s {} Graph's (Date header, 1 s resolution)",
        skew.as_secs_f64(),
        if ahead { "ahead of" } else { "behind" }
    );
    let status = if skew > SKEW_LIMIT {
        text.push_str(".\nEntra ID and Graph refuse tokens and assertions beyond about five minutes: synchronise the clock (NTP, chrony, systemd-timesyncd)");
        Status::Fail
    } else if skew > SKEW_WARNING {
        text.push_str(
            ".\nWithin the five minutes Entra ID allows, but check the time synchronisation",
        );
        Status::Warn
    } else {
        Status::Ok
    };
    report.line(status, "clock", &text);
}

fn describe(credential: &Credential) -> (Status, String) {
    let ids = match (credential.tenant_id(), credential.client_id()) {
        (Some(tenant), Some(client)) => format!(" for app {client} in tenant {tenant}"),
        (None, Some(client)) => format!(" with client ID {client}"),
        _ => String::new(),
    };
    let mut status = Status::Ok;
    let detail = match credential {
        Credential::ClientSecret { .. } => String::new(),
        Credential::Certificate { certificate, .. } => {
            let expires = DateTime::<Utc>::from_timestamp(certificate.not_after(), 0)
                .map_or_else(|| "?".to_owned(), |t| t.format("%Y-%m-%d").to_string());
            let mut text = format!(
                "; {} (thumbprint {}), expires {expires}",
                certificate.subject(),
                certificate.thumbprint_hex()
            );
            if certificate.not_after() <= Utc::now().timestamp() {
                status = Status::Fail;
                text.push_str(".\nThe certificate has expired: create a new one and upload it to the app registration");
            }
            text
        }
        Credential::WorkloadIdentity { token_file, .. } => {
            format!("; federated token {}", token_file.display())
        }
        Credential::ManagedIdentity { endpoint, .. } => {
            format!(
                "; metadata service {}",
                endpoint.as_str().trim_end_matches('/')
            )
        }
    };
    (status, format!("{}{ids}{detail}", credential.kind()))
}

fn check_roles<W: Write>(report: &mut Report<W>, token: &AccessToken, tokens: &TokenCache) {
    match token.roles() {
        Some(roles) if roles.iter().any(|r| r == REQUIRED_ROLE) => report.line(
            Status::Ok,
            "permission",
            &format!("the token carries the application permission {REQUIRED_ROLE}"),
        ),
        Some(roles) => {
            let had = if roles.is_empty() {
                "no application permissions".to_owned()
            } else {
                roles.join(", ")
            };
            let grant = if matches!(tokens.credential(), Credential::ManagedIdentity { .. }) {
                format!("A managed identity gets it as an app role assignment (no portal page): e.g. New-MgServicePrincipalAppRoleAssignment for the identity's service principal with Microsoft Graph's {REQUIRED_ROLE} role; new tokens carry it after a few minutes")
            } else {
                format!("Grant it: app registration → API permissions → Add a permission → Microsoft Graph → Application permissions → {REQUIRED_ROLE}, then 'Grant admin consent' (an administrator must); new tokens carry it after a few minutes")
            };
            report.line(
                Status::Fail,
                "permission",
                &format!("the token lacks {REQUIRED_ROLE} (it has: {had}).\n{grant}"),
            );
        }
        None => report.line(
            Status::Warn,
            "permission",
            "the token is not a readable JWT, so its roles cannot be checked here; the Graph steps below show whether it works",
        ),
    }
}

fn finish<W: Write>(mut report: Report<W>) -> i32 {
    let (summary, code) = if report.config_error {
        ("the configuration must be fixed first (exit code 2)", 2)
    } else if report.worst == Status::Fail {
        ("some checks failed (exit code 1)", 1)
    } else if report.worst == Status::Warn {
        ("all checks passed, with warnings", 0)
    } else {
        ("all checks passed", 0)
    };
    let _ = writeln!(report.out, "\nResult: {summary}.");
    let _ = report.out.flush();
    code
}

trait PathWithOrigin {
    fn path_with_origin(&self) -> String;
}

impl PathWithOrigin for reqwest::Url {
    /// The URL without its query, which holds nothing the reader needs.
    fn path_with_origin(&self) -> String {
        format!("{}{}", self.origin().ascii_serialization(), self.path())
    }
}
