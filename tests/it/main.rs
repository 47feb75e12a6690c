//! The integration tests, in one binary so that the shared code in `common` is compiled
//! and linked once. They share one process, and run in parallel: a test must not change
//! anything process-wide (environment, umask, limits, signal dispositions), only its own
//! children, through `common::ExporterCommand`.

mod auth;
mod backfill;
mod budget;
mod check;
mod cli;
mod common;
mod credentials;
mod first_samples;
mod golden;
mod ground_truth;
mod hostile;
mod lookback;
mod pstn;
mod quality;
mod state;
mod stop;
mod tenants;
mod web_config;
