//! # teams-voice-exporter
//!
//! A Prometheus exporter for Microsoft Teams Direct Routing calls. It reads the call log
//! rows that Microsoft Graph publishes (`getDirectRoutingCalls`), counts each row exactly
//! once into counters and histograms labelled by SBC trunk, call type, SIP code, success and
//! media location, and serves them on `/metrics`.
//!
//! The modules follow the path a row takes:
//!
//! 1. [`auth`]: access tokens from Microsoft Entra ID, cached and refreshed;
//! 2. [`graph`]: reads a call window page by page, with retries and `Retry-After`;
//! 3. [`row`]: parses each row leniently;
//! 4. [`poller`]: decides which windows to read and when (baseline, recent, sweep);
//! 5. [`state`]: remembers row ids and counts each row once into the aggregates, and
//!    with `--state.path` saves both after every poll ([`state::store`]);
//! 6. [`metrics`]: renders the aggregates and the exporter's own metrics;
//! 7. [`server`]: serves `/metrics`, the landing page and health endpoints, guarded by
//!    [`web_config`] (TLS, mutual TLS) and [`basic_auth`] when `--web.config.file` is given.
//!
//! [`simulator`] is a simulated Graph tenant (token endpoint included) for the demo and the
//! tests; [`cli`] and [`app`] turn flags into a running exporter, and [`check`] tries
//! the whole path once for a diagnosis; [`clock`] lets tests
//! and the simulator run faster than real time.

#![forbid(unsafe_code)]

pub mod app;
pub mod check;
pub mod cli;
pub mod counting;
pub mod exposition;
pub mod source;
