//! Where a simulated tenant's calls come from: realistic live traffic, or a fixed scenario
//! of rows around the bind time for exact comparisons.
//!
//! These settings say nothing about the kind of call log: each call-log function's module
//! draws its own rows from them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the tenant's calls come from.
#[derive(Clone, Debug)]
pub enum Traffic {
    /// Realistic traffic generated as the clock runs; `history` of past calls exists at bind.
    Live {
        /// Direct Routing calls a day. PSTN calls come on top: `Faults::pstn_calls_per_day`,
        /// by default `PSTN_SHARE` of this.
        calls_per_day: f64,
        history: Duration,
        /// Trunks in all: the tenant's six, and copies of them beyond (`--simulate.trunks`).
        trunks: usize,
    },
    /// A fixed set of rows for exact comparisons.
    Scenario(Scenario),
}

/// A deterministic set of rows around the bind time, in each call log: the counts apply
/// to Direct Routing and PSTN alike, each drawn from a seed of its own.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Scenario {
    /// Calls started over the last `span`, already visible at bind time.
    pub preexisting_rows: usize,
    /// Calls started over the last `span` before bind, hidden until `SimHandle::release`;
    /// each then becomes visible at release + uniform(0, `arrival_spread`).
    pub late_rows: usize,
    pub span: Duration,
    pub arrival_spread: Duration,
    /// Extra malformed rows, hidden until release and appearing like late rows.
    pub malformed_rows: usize,
}

/// Which kind of [`Traffic`] a tenant runs, which decides what its ground truth counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Live,
    Scenario,
}

impl Traffic {
    pub(crate) fn mode(&self) -> Mode {
        match self {
            Traffic::Live { .. } => Mode::Live,
            Traffic::Scenario(_) => Mode::Scenario,
        }
    }
}
