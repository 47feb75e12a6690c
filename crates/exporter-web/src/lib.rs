//! # exporter-web
//!
//! The Prometheus [exporter-toolkit]'s web configuration for Rust exporters: the
//! `--web.config.file` format (TLS, mutual TLS, basic authentication, security headers and a
//! request rate limit), checked completely at start and reloaded when its files change, and
//! the HTTP/1.1 and HTTP/2 accept loop that applies it to every connection.
//!
//! One file works for this exporter and for node_exporter alike, which is why the format
//! and its error messages follow the toolkit's rather than inventing a new one.
//!
//! - [`web_config`]: the file, its validation and its hot reload;
//! - [`basic_auth`]: HTTP basic authentication against bcrypt hashes, with a verified-credential cache;
//! - [`serve`]: the accept loop, plain or TLS, with graceful shutdown.
//!
//! [exporter-toolkit]: https://github.com/prometheus/exporter-toolkit

#![forbid(unsafe_code)]

pub mod basic_auth;
pub mod serve;
pub mod web_config;
