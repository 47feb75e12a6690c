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

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::counting::schedule::Schedule;
use crate::exposition::fleet::Fleet;
use crate::exposition::render::{Exposition, CONTENT_TYPE};
use crate::source::graph::BudgetLimits;
use crate::source::Function;
use exporter_web::basic_auth::BasicAuth;
use exporter_web::serve::{response, serve_with, HttpResponse, Transport};
use exporter_web::web_config::WebConfig;

/// What the landing page says about the configuration.
#[derive(Debug, Clone)]
pub struct About {
    /// The tenant read, or how many and from which file.
    pub tenants: String,
    pub credential: &'static str,
    pub graph_endpoint: String,
    pub schedule: Schedule,
    /// `--graph.rate-limit` and `--graph.tenant-rate-limit`.
    pub budget: BudgetLimits,
    pub demo: bool,
}

/// Requests to read the configuration again, each with where to send how it went: what
/// changed, or why nothing did.
pub type ReloadRequests =
    tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<String, String>>>;

/// Everything the handlers need.
pub struct Web {
    /// Renders `/metrics`.
    pub exposition: Exposition,
    pub telemetry_path: String,
    /// The tenants read.
    pub fleet: Arc<Fleet>,
    /// The call-log functions read (`--collector.*`).
    pub functions: Vec<Function>,
    /// Where `POST /-/reload` asks for the configuration to be read again; `None` without
    /// `--web.enable-lifecycle`.
    pub reload: Option<ReloadRequests>,
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
            if request.uri().path() == "/-/reload" {
                self.reload(request.method()).await
            } else {
                self.handle(&request, peer)
            }
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

    /// `POST /-/reload` (or `PUT`), as Prometheus: reads the tenants file again and answers
    /// once it is applied, or with why it was not.
    async fn reload(&self, method: &Method) -> HttpResponse {
        let text = "text/plain; charset=utf-8";
        let Some(reload) = &self.reload else {
            return response(
                403,
                text,
                "Lifecycle API is not enabled: start the exporter with --web.enable-lifecycle, or send it SIGHUP\n",
            );
        };
        if method != Method::POST && method != Method::PUT {
            let mut r = response(405, text, "Method Not Allowed: POST or PUT /-/reload\n");
            r.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("POST, PUT"),
            );
            return r;
        }
        let (answer, outcome) = tokio::sync::oneshot::channel();
        if reload.send(answer).await.is_err() {
            return response(503, text, "Stopping: not reloading\n");
        }
        match outcome.await {
            Ok(Ok(summary)) => response(200, text, format!("{summary}\n")),
            Ok(Err(error)) => response(500, text, format!("failed to reload config: {error}\n")),
            Err(_) => response(503, text, "Stopping: not reloading\n"),
        }
    }

    fn readiness(&self) -> HttpResponse {
        let mut waiting = self.fleet.waiting();
        if waiting.len() > 10 {
            let more = waiting.len() - 10;
            waiting.truncate(10);
            waiting.push(format!("{more} more tenants"));
        }
        if waiting.is_empty() {
            response(200, "text/plain; charset=utf-8", "Ready\n")
        } else {
            response(
                503,
                "text/plain; charset=utf-8",
                format!(
                    "Not ready: the first read of Graph has not finished yet for {} (see the landing page or the log)\n",
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
