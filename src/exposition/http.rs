//! The exporter's HTTP interface: `/metrics`, a landing page, and health endpoints.
//!
//! Paths and behaviour follow the Prometheus exporters: `/-/healthy` answers while the
//! process runs, `/-/ready` once the first poll of every source has read its whole window
//! (so a rollout waits for real numbers), and `/` tells a human what the exporter is doing,
//! source by source.
//!
//! With `--web.config.file`, TLS and basic authentication guard every path, the landing
//! page and health endpoints included, as in the exporter-toolkit: a probe must present the
//! same credentials as Prometheus.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::counting::poller::{PollReport, PollerStatus};
use crate::counting::schedule::Schedule;
use crate::counting::store::StoreStatus;
use crate::exposition::render::{Exposition, CONTENT_TYPE};
use crate::source::graph::BudgetLimits;
use crate::source::Function;
use exporter_web::basic_auth::BasicAuth;
use exporter_web::serve::{response, serve_with, HttpResponse, Transport};
use exporter_web::web_config::{ClientAuth, WebConfig};

/// What the landing page says about the configuration.
#[derive(Debug, Clone)]
pub struct About {
    pub tenant_id: String,
    pub credential: &'static str,
    pub graph_endpoint: String,
    pub schedule: Schedule,
    /// `--graph.rate-limit` and `--graph.tenant-rate-limit`.
    pub budget: BudgetLimits,
    pub demo: bool,
}

/// One source (a call-log function of the tenant) as the landing page and `/-/ready` see
/// it.
pub struct SourceView {
    pub function: Function,
    pub status: Arc<PollerStatus>,
    /// `None` without `--state.path`.
    pub state: Option<Arc<StoreStatus>>,
}

/// Everything the handlers need.
pub struct Web {
    /// Renders `/metrics`.
    pub exposition: Exposition,
    pub telemetry_path: String,
    /// The sources read, in the order of [`Function::ALL`]; at least one.
    pub sources: Vec<SourceView>,
    pub about: About,
    /// `--web.config.file`: TLS, basic authentication, extra headers.
    pub web_config: Arc<WebConfig>,
    pub basic_auth: BasicAuth,
}

/// Serves the exporter's endpoints until `shutdown` is cancelled.
pub async fn run(listener: TcpListener, web: Arc<Web>, shutdown: CancellationToken) {
    let config = web.web_config.clone();
    let transport = Transport {
        http2: config.current().http2,
        tls: Arc::new(move || config.current().tls.clone()),
    };
    serve_with(listener, transport, shutdown, move |request, peer| {
        let web = web.clone();
        async move { web.respond(request, peer).await }
    })
    .await;
}

impl Web {
    /// Checks the credentials, answers, and adds the configured headers.
    async fn respond(&self, request: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
        let access = self.web_config.current();
        if !self.web_config.admits(&access) {
            return response(429, "text/plain; charset=utf-8", "Too Many Requests\n");
        }
        let authorization = request.headers().get(hyper::header::AUTHORIZATION);
        let mut answer = if self.basic_auth.allows(&access, authorization).await {
            self.handle(&request, peer)
        } else {
            tracing::debug!(%peer, path = %request.uri().path(), "refused: no valid basic-auth credentials");
            let mut r = response(401, "text/plain; charset=utf-8", "Unauthorized\n");
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Basic"),
            );
            r
        };
        for (name, value) in &access.headers {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
        answer
    }

    fn handle(&self, request: &Request<Incoming>, peer: SocketAddr) -> HttpResponse {
        let path = request.uri().path();
        tracing::trace!(%peer, %path, "request");
        let text = "text/plain; charset=utf-8";
        let page: fn(&Self, &Request<Incoming>) -> HttpResponse = match path {
            p if p == self.telemetry_path => |web, request| web.metrics(accepts_gzip(request)),
            "/" => |web, _| response(200, "text/html; charset=utf-8", web.landing_page()),
            "/-/healthy" => |_, _| response(200, "text/plain; charset=utf-8", "Healthy\n"),
            "/-/ready" => |web, _| web.readiness(),
            _ => return response(404, text, "Not Found\n"),
        };
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut r = response(405, text, "Method Not Allowed\n");
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            return r;
        }
        page(self, request)
    }

    fn readiness(&self) -> HttpResponse {
        let waiting: Vec<&str> = self
            .sources
            .iter()
            .filter(|source| !source.status.is_ready())
            .map(|source| source.function.name())
            .collect();
        if waiting.is_empty() {
            response(200, "text/plain; charset=utf-8", "Ready\n")
        } else {
            response(
                503,
                "text/plain; charset=utf-8",
                format!(
                    "Not ready: the first poll of Graph has not completed yet for {} (see the landing page or the log)\n",
                    waiting.join(" and ")
                ),
            )
        }
    }

    fn metrics(&self, gzip: bool) -> HttpResponse {
        match self.exposition.render(gzip) {
            Ok(body) => {
                let mut r = response(200, CONTENT_TYPE, body.bytes);
                if body.gzip {
                    // Prometheus asks for gzip; large tenants' scrapes shrink about tenfold.
                    r.headers_mut().insert(
                        hyper::header::CONTENT_ENCODING,
                        hyper::header::HeaderValue::from_static("gzip"),
                    );
                }
                r
            }
            Err(error) => {
                tracing::error!(%error, "rendering metrics failed");
                response(
                    500,
                    "text/plain; charset=utf-8",
                    format!("rendering metrics failed: {error}\n"),
                )
            }
        }
    }

    /// What `--web.config.file` turns on, in words.
    fn access_summary(&self) -> String {
        let access = self.web_config.current();
        let mut parts = vec![match (&access.tls, access.client_auth) {
            (None, _) => "plain HTTP".to_owned(),
            (Some(_), ClientAuth::NoClientCert) => "TLS".to_owned(),
            (Some(_), policy) => format!("TLS, client certificates: {policy:?}"),
        }];
        if !access.users.is_empty() {
            let n = access.users.len();
            let plural = if n == 1 { "" } else { "s" };
            parts.push(format!("basic authentication ({n} user{plural})"));
        }
        if let Some(limit) = access.rate_limit {
            parts.push(format!(
                "rate limit: bursts of {}, then one request per {}",
                limit.burst,
                humantime::format_duration(limit.interval)
            ));
        }
        parts.join("; ")
    }

    fn landing_page(&self) -> String {
        let a = &self.about;
        let s = &a.schedule;
        let show = |d: std::time::Duration| humantime::format_duration(d).to_string();
        let mut page = String::with_capacity(4096);
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Teams Voice Exporter</title>\
             <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}td{{padding:0 1em 0 0}}</style></head><body>\
             <h1>Teams Voice Exporter</h1><p>Version {version}. Prometheus metrics for Microsoft Teams telephony (Direct Routing and PSTN calls), read from Microsoft Graph call logs.</p>\
             <ul><li><a href=\"{metrics}\">Metrics</a></li><li><a href=\"/-/healthy\">Health</a></li><li><a href=\"/-/ready\">Readiness</a></li></ul>\
             <h2>Configuration</h2><table>\
             <tr><td>Tenant</td><td>{tenant}{demo}</td></tr><tr><td>Credential</td><td>{credential}</td></tr>\
             <tr><td>Graph</td><td>{graph}</td></tr>\
             <tr><td>Collected</td><td>{collected}</td></tr>\
             <tr><td>Schedule</td><td>recent window {recent} every {interval};{late} lookback {lookback} every {sweep}</td></tr>\
             <tr><td>Access</td><td>{access}</td></tr></table>",
            version = env!("CARGO_PKG_VERSION"),
            metrics = escape(&self.telemetry_path),
            tenant = escape(&a.tenant_id),
            demo = if a.demo { " (simulated tenant, --demo)" } else { "" },
            credential = a.credential,
            graph = escape(&a.graph_endpoint),
            collected = self.collected(),
            recent = show(s.recent_window),
            interval = show(s.poll_interval),
            late = if s.has_late_tier() {
                format!(" late window {} every {};", show(s.late_window), show(s.late_interval))
            } else {
                String::new()
            },
            lookback = show(s.lookback),
            sweep = show(s.sweep_interval),
            access = self.access_summary(),
        );
        for source in &self.sources {
            polling_section(&mut page, source, self.sources.len() > 1);
        }
        self.budget_section(&mut page);
        self.state_section(&mut page);
        page.push_str("</body></html>\n");
        page
    }

    /// The functions read, and how to turn on those that are not.
    fn collected(&self) -> String {
        Function::ALL
            .into_iter()
            .map(|function| {
                let flag = function.short_name();
                let state = if self.sources.iter().any(|s| s.function == function) {
                    format!("on (turn off with <code>--no-collector.{flag}</code>)")
                } else {
                    format!("<strong>off</strong> (<code>--no-collector.{flag}</code>)")
                };
                format!(
                    "{} <code>{}</code>: {state}",
                    function.description(),
                    function.name()
                )
            })
            .collect::<Vec<_>>()
            .join("<br>")
    }

    fn budget_section(&self, page: &mut String) {
        let budget = &self.about.budget;
        let _ = write!(
            page,
            "<h2>Request budget</h2><p>At most {} requests per call-log function and {} per tenant ({}). ",
            budget.per_function,
            budget.per_tenant,
            if self.about.demo {
                "the simulated tenant enforces Graph's limits 30 times faster, as the demo polls"
            } else {
                "Graph documents 50/1m and 200/1m"
            }
        );
        page.push_str("</p>");
        for source in &self.sources {
            page.push_str("<p>");
            if self.sources.len() > 1 {
                let _ = write!(page, "<code>{}</code>: ", source.function.name());
            }
            match source.status.feasibility() {
                None => page.push_str("The schedule's need is estimated after the first poll."),
                Some(f) if f.verdict.fits() => {
                    let _ = write!(page, "The schedule fits: {}.", escape(&f.to_string()));
                }
                Some(f) => {
                    let _ = write!(
                        page,
                        "<strong>The schedule does not fit</strong>: {}. So {}.",
                        escape(&f.to_string()),
                        escape(f.remedy())
                    );
                }
            }
            page.push_str("</p>");
        }
    }

    fn state_section(&self, page: &mut String) {
        page.push_str("<h2>State</h2>");
        for source in &self.sources {
            page.push_str("<p>");
            if self.sources.len() > 1 {
                let _ = write!(page, "<code>{}</code>: ", source.function.name());
            }
            state_paragraph(page, source.state.as_deref());
        }
    }
}

/// What the state of one source is kept in, and whether saving it works; ends the paragraph.
fn state_paragraph(page: &mut String, state: Option<&StoreStatus>) {
    let Some(state) = state else {
        page.push_str("In memory only (no <code>--state.path</code>): a restart sets the counters back to zero, and calls that appear while the exporter is down are never counted.</p>");
        return;
    };
    let path = escape(&state.path.display().to_string());
    let health = state.health();
    match health.problem {
        None => {
            let last = health
                .last_commit
                .map_or_else(|| "not yet".to_owned(), |t| t.to_rfc3339());
            let _ = write!(
                page,
                "Saved to <code>{path}</code> after every poll; last saved {last}.</p>"
            );
        }
        Some(problem) => {
            let _ = write!(
                page,
                "<strong>Not saved</strong>: {attempts} attempts to write <code>{path}</code> failed since {since}; the last said: {error}.                      Polling and serving go on with the state in memory ({pending} remembered ids not yet written) and every poll tries again.                      Make the file and its directory writable or free disk space: until then a restart loses what was counted since the last save.</p>",
                attempts = problem.failed_attempts,
                since = problem.since.to_rfc3339(),
                error = escape(&problem.error),
                pending = problem.unsaved_changes,
            );
        }
    }
}

/// How one source's polling goes, under its function's name when there are several.
fn polling_section(page: &mut String, source: &SourceView, named: bool) {
    if named {
        let _ = write!(page, "<h2>Polling {}</h2><table>", source.function.name());
    } else {
        page.push_str("<h2>Polling</h2><table>");
    }
    let ready = if source.status.is_ready() {
        "yes"
    } else {
        "no: waiting for the first poll to read its window"
    };
    let _ = write!(page, "<tr><td>Ready</td><td>{ready}</td></tr>");
    let last_success = source
        .status
        .last_success()
        .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
    let _ = write!(
        page,
        "<tr><td>Last successful poll</td><td>{last_success}</td></tr>"
    );
    if let Some(poll) = source.status.last_poll() {
        poll_row(page, "Last poll", &poll);
    }
    if let Some(sweep) = source.status.last_sweep() {
        poll_row(page, "Last sweep", &sweep);
    }
    if let Some((kind, since)) = source.status.long_read() {
        let _ = write!(
            page,
            "<tr><td>Running</td><td>{} since {} (recent polls go on beside it)</td></tr>",
            kind.as_str(),
            since.to_rfc3339()
        );
    }
    if let Some(since) = source.status.counting_since() {
        let _ = write!(
            page,
            "<tr><td>Counting since</td><td>calls that started from {} (earlier calls are history, or have left the lookback, and are not counted)</td></tr>",
            since.to_rfc3339()
        );
    }
    page.push_str("</table>");
}

/// A table row on how `poll` went.
fn poll_row(page: &mut String, title: &str, poll: &PollReport) {
    let outcome = match &poll.result {
        Ok(read) => format!(
            "read {} rows in {} pages, {} new",
            read.rows, read.pages, poll.ingested
        ),
        Err(error) => format!("<strong>failed</strong>: {}", escape(error)),
    };
    let _ = write!(
        page,
        "<tr><td>{title}</td><td>{kind} of {from} to {to}, finished {at} after {took:.1?}: {outcome}</td></tr>",
        kind = poll.kind.as_str(),
        from = poll.window.from.to_rfc3339(),
        to = poll.window.to.to_rfc3339(),
        at = poll.finished_at.to_rfc3339(),
        took = poll.took,
    );
}

fn accepts_gzip(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
