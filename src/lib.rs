//! teams-voice-exporter library.
pub mod clock;
pub mod metrics;
pub mod row;
pub mod serve;
pub mod simulator;
pub mod state;
