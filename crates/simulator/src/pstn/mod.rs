//! PSTN calls: `getPstnCalls` and its `pstnCallLogRow`s, the calls of the tenant's Calling
//! Plan and Operator Connect users, its auto attendants, call queues and audio
//! conferencing bridge.
//!
//! It mirrors `direct_routing`: the function ([`FUNCTION`]), the tenant's offices and call
//! types (`tables`), a stored call (`row`), the random model of a call (`draw`), live
//! traffic (`live`), scenarios (`scenario`), a row's JSON (`render`) and the ground truth
//! (`truth`). The generic paging, faults and store serve it as a [`Log`].
//!
//! # Volume
//!
//! Live traffic carries `Faults::pstn_calls_per_day` calls a day
//! (`--simulate.pstn-calls-per-day`), by default [`PSTN_SHARE`] of the Direct Routing
//! volume (`--simulate.calls-per-day`), on top of it: Direct Routing keeps every call it
//! had. A scenario holds as many PSTN rows of each kind (preexisting, late, malformed) as
//! it gives Direct Routing, drawn from a seed of their own.

mod draw;
mod live;
mod render;
mod row;
mod scenario;
mod tables;
mod truth;

pub(crate) use draw::quick_call;
pub(crate) use live::PstnLiveTraffic;
pub(crate) use row::PstnRow;
pub(crate) use tables::FRAUD_SITE;
pub(crate) use truth::{ground_truth, ground_truth_started_from};
pub use truth::{PstnGroundTruth, PstnTruthRow};

#[cfg(test)]
pub(crate) use {live::PstnGenerator, render::write_row, truth::truth_row};

use crate::call_log::{Function, StoredLog};
use crate::traffic::Traffic;

pub(crate) static FUNCTION: Function = Function {
    name: "getPstnCalls",
    row_type: "pstnCallLogRow",
    from_parameter: "fromDateTime",
    to_parameter: "toDateTime",
};

/// The PSTN volume of live traffic when `Faults::pstn_calls_per_day` leaves it open: this
/// share of the Direct Routing calls a day, in addition to them.
pub const PSTN_SHARE: f64 = 0.2;

/// The tenant's PSTN call log.
pub(crate) type Log = StoredLog<PstnRow>;

/// Live PSTN calls a day: `configured`, or [`PSTN_SHARE`] of Direct Routing's.
pub(crate) fn calls_per_day(direct_routing_calls_per_day: f64, configured: Option<u64>) -> f64 {
    configured.map_or(direct_routing_calls_per_day * PSTN_SHARE, |calls| {
        calls as f64
    })
}

/// The log a tenant holds at bind time, and for live traffic what continues it.
pub(crate) fn start(
    traffic: &Traffic,
    seed: u64,
    bind_ms: i64,
    configured: Option<u64>,
) -> (Log, Option<PstnLiveTraffic>) {
    // Its own stream, so that Direct Routing's calls are the same as without PSTN.
    let seed = seed ^ 0x0095_7ca1_1000_0000;
    let (rows, live) = match traffic {
        Traffic::Scenario(scenario) => (scenario::scenario_rows(seed, scenario, bind_ms), None),
        Traffic::Live {
            calls_per_day: direct_routing_calls,
            history,
            ..
        } => {
            let (rows, live) = PstnLiveTraffic::start(
                seed,
                calls_per_day(*direct_routing_calls, configured),
                *history,
                bind_ms,
            );
            (rows, Some(live))
        }
    };
    (Log::new(&FUNCTION, rows), live)
}
