//! # teams-voice-exporter
//!
//! A Prometheus exporter for Microsoft Teams telephony. It reads the call-log rows that
//! Microsoft Graph publishes (`getDirectRoutingCalls`), counts each row exactly once into
//! counters and histograms labelled by SBC trunk, call type, SIP code, success and media
//! location, and serves them on `/metrics`.
//!
//! What is read is a *source*: one tenant and one call-log function. The modules follow
//! the path a row takes, and each depends only on those before it:
//!
//! 1. [`source`]: tokens from Microsoft Entra ID ([`source::auth`]), a call window read page
//!    by page with retries and `Retry-After` ([`source::graph`]), and everything specific to
//!    a call-log function behind the [`source::CallLog`] trait
//!    ([`source::direct_routing`]);
//! 2. [`counting`]: which window to read and when ([`counting::schedule`], pure planning),
//!    the poller that reads it ([`counting::poller`]), the exactly-once state
//!    ([`counting::state`]) and its durable copy with `--state.path`
//!    ([`counting::store`]);
//! 3. [`quality`]: with `--collector.call-quality`, the call record of every established
//!    Direct Routing call that counting counted, fetched once Graph publishes it and its
//!    audio streams counted once per trunk and direction;
//! 4. [`exposition`]: the call metrics and the exporter's own, and the HTTP interface that
//!    serves them (TLS and basic authentication from the `exporter-web` crate).
//!
//! On top, [`cli`] turns flags into a configuration (each component owns and checks its own
//! flags; [`flag`] holds the value parsers they share), [`app`] wires a running exporter
//! (with `--demo`, on the simulated tenant of the `tve-simulator` crate), and [`check`]
//! tries the whole path once for a diagnosis. [`backfill`] reads the history Graph still
//! holds into OpenMetrics with timestamps for Prometheus' `promtool`.

#![forbid(unsafe_code)]

pub mod app;
pub mod backfill;
pub mod check;
pub mod cli;
pub mod counting;
pub mod exposition;
pub mod flag;
pub mod quality;
pub mod source;
pub mod tenants;
