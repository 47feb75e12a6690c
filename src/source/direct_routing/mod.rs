//! `getDirectRoutingCalls`: calls through the tenant's own SBC trunks.
//!
//! Everything specific to this function sits here, behind [`CallLog`]: its rows
//! ([`row`]), what they add up to ([`totals`]), the metric families and HELP texts they
//! render ([`families`]), and how the state file keeps those ([`saved`]). The layers above
//! are generic over [`CallLog`].

pub mod families;
pub mod row;
pub mod saved;
pub mod totals;

use chrono::{DateTime, Utc};
use prometheus::proto::MetricFamily;

pub use row::{DirectRoutingRow, WireRow};
pub use totals::{CallKey, CountryKey, DirectRoutingTotals, FailureKey, TrunkTypeKey};

use super::family::Family;
use super::row::RowError;
use super::{CallLog, DamagedTotals, EstablishedCall, Function};

/// The Direct Routing call log.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectRouting;

impl CallLog for DirectRouting {
    const FUNCTION: Function = Function::DirectRoutingCalls;
    const FAMILIES: &'static [&'static Family] = families::FAMILIES;
    type Wire<'a> = WireRow<'a>;
    type Row = DirectRoutingRow;
    type Totals = DirectRoutingTotals;
    type Saved = saved::SavedTotals;
    type SavedV1 = saved::SavedTotalsV1;

    fn read(raw: &str) -> Result<WireRow<'_>, RowError> {
        WireRow::read(raw)
    }

    fn id<'w>(wire: &'w WireRow<'_>) -> Option<&'w str> {
        wire.id()
    }

    fn into_row(wire: WireRow<'_>) -> Result<DirectRoutingRow, RowError> {
        wire.into_row()
    }

    fn call_start(row: &DirectRoutingRow) -> DateTime<Utc> {
        row.start
    }

    fn call_end(row: &DirectRoutingRow) -> DateTime<Utc> {
        row.call_end()
    }

    fn latest_time(row: &DirectRoutingRow) -> DateTime<Utc> {
        row.latest_time()
    }

    fn count(totals: &mut DirectRoutingTotals, row: &DirectRoutingRow) {
        totals.count(row);
    }

    fn families(totals: &DirectRoutingTotals) -> Vec<MetricFamily> {
        families::render(totals)
    }

    fn save(totals: &DirectRoutingTotals) -> saved::SavedTotals {
        totals.into()
    }

    fn restore(saved: saved::SavedTotals) -> Result<DirectRoutingTotals, DamagedTotals> {
        saved.restore()
    }

    // Version 1 files counted no calls by country: those start at 0.
    fn restore_v1(saved: saved::SavedTotalsV1) -> Result<DirectRoutingTotals, DamagedTotals> {
        saved.restore()
    }

    // Failed calls carried no media: only established calls have a call record worth reading.
    fn established_call(row: &DirectRoutingRow) -> Option<EstablishedCall> {
        if row.successful != Some(true) {
            return None;
        }
        Some(EstablishedCall {
            correlation_id: row.correlation_id.clone()?,
            trunk_fqdn: row
                .trunk_fqdn
                .as_deref()
                .map_or_else(|| super::row::UNKNOWN.to_owned(), str::to_ascii_lowercase),
            end: row.call_end(),
        })
    }
}
