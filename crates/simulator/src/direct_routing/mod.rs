//! Direct Routing: `getDirectRoutingCalls` and its `directRoutingLogRow`s, the one
//! call-log function the simulated tenant fills with calls.
//!
//! Everything specific to Direct Routing lives below this module: the function's name and
//! parameters ([`FUNCTION`]), the tenant's trunks and people (`tables`), a stored call
//! (`row`), the random model of a call (`draw`), live traffic (`live`), scenarios
//! (`scenario`), which trunk fails (`degradation`), a row's JSON (`render`) and the ground
//! truth (`truth`). The generic paging, faults and store serve it as a [`Log`].

mod degradation;
mod draw;
mod live;
mod render;
mod row;
mod scenario;
mod tables;
mod truth;

pub(crate) use degradation::Degradation;
// The call model's shapes, which the PSTN log shares.
pub(crate) use draw::{pick_weighted, publication_delay_ms, quick_call, talk_seconds, time_style};
pub(crate) use live::office_hours_shape;
pub(crate) use live::LiveTraffic;
pub(crate) use render::user_id;
pub(crate) use row::CallRow;
pub use tables::{trunk_fqdns, DEMO_TRUNKS, MAX_TRUNKS};
pub(crate) use tables::{TrunkNames, FRAUD_EXTERNAL_RANGE, PEOPLE};
pub(crate) use truth::{ground_truth, ground_truth_started_from};
pub use truth::{GroundTruth, TruthRow};

#[cfg(test)]
pub(crate) use {
    draw::draw_call,
    live::LiveGenerator,
    render::write_row,
    row::Origin,
    scenario::scenario_rows,
    tables::{DEGRADING_TRUNK, TRUNKS},
    truth::truth_row,
};

use crate::call_log::{Function, StoredLog};
use crate::traffic::Traffic;

pub(crate) static FUNCTION: Function = Function {
    name: "getDirectRoutingCalls",
    row_type: "directRoutingLogRow",
    from_parameter: "fromDateTime",
    to_parameter: "toDateTime",
};

/// The tenant's Direct Routing call log.
pub(crate) type Log = StoredLog<CallRow>;

/// The log a tenant holds at bind time, its trunks named in `names`, and for live traffic
/// what continues it.
pub(crate) fn start(
    traffic: &Traffic,
    seed: u64,
    bind_ms: i64,
    degradation: Degradation,
    names: TrunkNames,
) -> (Log, Option<LiveTraffic>) {
    let (rows, live) = match traffic {
        Traffic::Scenario(scenario) => (
            scenario::scenario_rows(seed, scenario, bind_ms, degradation),
            None,
        ),
        Traffic::Live {
            calls_per_day,
            history,
            trunks,
        } => {
            let (rows, live) = LiveTraffic::start(
                seed,
                *calls_per_day,
                *history,
                *trunks,
                bind_ms,
                degradation,
            );
            (rows, Some(live))
        }
    };
    (Log::new(&FUNCTION, rows).with_names(names), live)
}
