//! `getPstnCalls`: calls of Calling Plan and Operator Connect users, where Microsoft or a
//! carrier is the phone company.
//!
//! Everything specific to this function sits here, behind [`CallLog`], as for Direct
//! Routing: its rows ([`row`]) and their charges ([`charge`]), what they add up to
//! ([`totals`]), the metric families they render ([`families`]) and how the state file
//! keeps those ([`saved`]).

pub mod charge;
pub mod families;
pub mod row;
pub mod saved;
pub mod totals;

use chrono::{DateTime, Utc};
use prometheus::proto::MetricFamily;

pub use charge::{Charge, IgnoredCharge};
pub use row::{PstnRow, WireRow};
pub use totals::{CallKey, ChargeKey, CountryKey, PstnTotals, TypeContextKey};

use super::family::Family;
use super::row::RowError;
use super::{CallLog, DamagedTotals, Function};

/// The PSTN call log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pstn;

impl CallLog for Pstn {
    const FUNCTION: Function = Function::PstnCalls;
    const FAMILIES: &'static [&'static Family] = families::FAMILIES;
    type Wire<'a> = WireRow<'a>;
    type Row = PstnRow;
    type Totals = PstnTotals;
    type Saved = saved::Saved;
    // State files of format version 1 held Direct Routing totals only; no such file has
    // PSTN totals, so version 1 is read as the current form (never called in practice).
    type SavedV1 = saved::Saved;

    fn read(raw: &str) -> Result<WireRow<'_>, RowError> {
        WireRow::read(raw)
    }

    fn id<'w>(wire: &'w WireRow<'_>) -> Option<&'w str> {
        wire.id()
    }

    fn into_row(wire: WireRow<'_>) -> Result<PstnRow, RowError> {
        wire.into_row()
    }

    fn call_start(row: &PstnRow) -> DateTime<Utc> {
        row.start
    }

    fn call_end(row: &PstnRow) -> DateTime<Utc> {
        row.call_end()
    }

    fn latest_time(row: &PstnRow) -> DateTime<Utc> {
        row.latest_time()
    }

    fn count(totals: &mut PstnTotals, row: &PstnRow) {
        totals.count(row);
    }

    fn families(totals: &PstnTotals) -> Vec<MetricFamily> {
        families::render(totals)
    }

    fn save(totals: &PstnTotals) -> saved::Saved {
        totals.into()
    }

    fn restore(saved: saved::Saved) -> Result<PstnTotals, DamagedTotals> {
        saved.restore()
    }

    fn restore_v1(saved: saved::Saved) -> Result<PstnTotals, DamagedTotals> {
        saved.restore()
    }
}
