//! # exporter-web
//!
//! The Prometheus [exporter-toolkit]'s web configuration for Rust exporters: the
//! `--web.config.file` format (TLS, mutual TLS, basic authentication, security headers and a
//! request rate limit), checked completely at start and reloaded when its files change, and
//! the HTTP/1.1 and HTTP/2 accept loop that applies it to every connection.
//!
//! One file works for a Rust exporter and for node_exporter alike, which is why the format
//! and its error messages follow the toolkit's rather than inventing a new one.
//!
//! - [`web_config`]: the file, its validation and its hot reload;
//! - [`basic_auth`]: HTTP basic authentication against bcrypt hashes, with a verified-credential cache;
//! - [`serve`]: the accept loop, plain or TLS, with graceful shutdown.
//!
//! The exporter decides, per request, what the configuration in force allows:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use exporter_web::basic_auth::BasicAuth;
//! use exporter_web::serve::{response, serve_with, Transport};
//! use exporter_web::web_config::WebConfig;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Arc::new(WebConfig::load(Some("web.yml".as_ref()))?);
//! let auth = Arc::new(BasicAuth::default());
//! let tls = config.clone();
//! let transport = Transport {
//!     // Asked at each connection, so renewed certificates apply without a restart.
//!     tls: Arc::new(move || tls.current().tls.clone()),
//!     http2: config.current().http2,
//! };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9100").await?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! serve_with(listener, transport, shutdown, move |request, _peer| {
//!     let (config, auth) = (config.clone(), auth.clone());
//!     async move {
//!         let access = config.current();
//!         if !config.admits(&access) {
//!             return response(429, "text/plain", "Too Many Requests\n");
//!         }
//!         let authorization = request.headers().get(hyper::header::AUTHORIZATION);
//!         if !auth.allows(&access, authorization).await {
//!             return response(401, "text/plain", "Unauthorized\n");
//!         }
//!         let mut answer = response(200, "text/plain", "metrics\n");
//!         answer.headers_mut().extend(access.headers.iter().cloned());
//!         answer
//!     }
//! })
//! .await;
//! # Ok(())
//! # }
//! ```
//!
//! [exporter-toolkit]: https://github.com/prometheus/exporter-toolkit

#![forbid(unsafe_code)]

pub mod basic_auth;
pub mod serve;
pub mod web_config;
