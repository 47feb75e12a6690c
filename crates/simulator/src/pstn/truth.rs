//! The ground truth of the PSTN log: what the exporter must have counted, as the values the
//! rows' JSON carries (charges as their exact decimal text), for exact comparison with its
//! metrics.

use serde::{Deserialize, Serialize};

use super::row::{Origin, PstnRow};
use super::tables::CURRENCY;
use crate::call_log::StoredLog;
use crate::ids::uuid;
use crate::store::StoredRow;
use crate::time::timestamp;
use crate::traffic::Mode;

/// What the exporter must have seen of `getPstnCalls`, as [`crate::GroundTruth`] is for
/// Direct Routing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PstnGroundTruth {
    /// Rows the exporter must have counted: as `GroundTruth::rows`, by the same rules.
    pub rows: Vec<PstnTruthRow>,
    /// Distinct malformed rows visible now, which the exporter must count as invalid.
    pub invalid_rows: u64,
    /// All rows visible now.
    pub visible_rows: u64,
}

/// The values of one well-formed `pstnCallLogRow` as its JSON carries them; `None` where
/// the JSON has null (or leaves the field out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PstnTruthRow {
    pub id: String,
    pub call_type: Option<String>,
    /// `Domestic` or `International`.
    pub destination_context: Option<String>,
    pub destination_name: Option<String>,
    pub operator: Option<String>,
    pub license_capability: Option<String>,
    pub usage_country_code: Option<String>,
    pub tenant_country_code: Option<String>,
    /// `Subscriber` or `Service`.
    pub inventory_type: Option<String>,
    /// `microsoft` or `operator`.
    pub call_duration_source: Option<String>,
    pub currency: Option<String>,
    pub duration_secs: Option<i64>,
    /// The decimal number exactly as written in the JSON (2 to 4 fractional digits), so
    /// that sums can be exact.
    pub charge: Option<String>,
    pub connection_charge: Option<String>,
    /// E.164, the far end's last digits masked (`*`) in offices of masking countries.
    pub caller_number: Option<String>,
    pub callee_number: Option<String>,
    /// The beta field, which only some rows carry.
    pub other_party_country_code: Option<String>,
    /// RFC 3339, exactly as in the row.
    pub start: String,
    pub end: Option<String>,
}

/// The ground truth of `log` at `now_ms`; live rows count when they became visible after
/// `since_ms`.
pub(crate) fn ground_truth(
    log: &StoredLog<PstnRow>,
    mode: Mode,
    since_ms: i64,
    now_ms: i64,
) -> PstnGroundTruth {
    truth_of(log, now_ms, |row| match mode {
        Mode::Scenario => row.origin == Origin::Late,
        Mode::Live => row.origin == Origin::Live && row.visible_ms > since_ms,
    })
}

/// Every well-formed row visible now that started at or after `from` (ticks).
pub(crate) fn ground_truth_started_from(
    log: &StoredLog<PstnRow>,
    from: i64,
    now_ms: i64,
) -> PstnGroundTruth {
    truth_of(log, now_ms, |row| !row.is_malformed() && row.start >= from)
}

fn truth_of(
    log: &StoredLog<PstnRow>,
    now_ms: i64,
    counted: impl Fn(&PstnRow) -> bool,
) -> PstnGroundTruth {
    let store = log.read();
    let mut visible_rows = 0;
    let mut rows = Vec::new();
    for row in store.visible(now_ms) {
        visible_rows += 1;
        if counted(row) {
            rows.push(truth_row(row));
        }
    }
    PstnGroundTruth {
        rows,
        invalid_rows: store.visible_malformed(now_ms),
        visible_rows,
    }
}

/// The ground-truth view of a well-formed row: the values its JSON carries.
pub(crate) fn truth_row(row: &PstnRow) -> PstnTruthRow {
    let (caller, callee) = row.numbers();
    PstnTruthRow {
        id: uuid(row.id),
        call_type: row.call_type().map(str::to_owned),
        destination_context: row.destination_context().map(str::to_owned),
        destination_name: row.destination_name().map(str::to_owned),
        operator: row.operator().map(str::to_owned),
        license_capability: row.license().map(str::to_owned),
        usage_country_code: row.usage_country_code().map(str::to_owned),
        tenant_country_code: row.tenant_country_code().map(str::to_owned),
        inventory_type: row.inventory_type().map(str::to_owned),
        call_duration_source: row.call_duration_source().map(str::to_owned),
        currency: row.has_charges().then(|| CURRENCY.to_owned()),
        duration_secs: row.duration(),
        charge: row.charge_text(),
        connection_charge: row.connection_charge_text(),
        caller_number: caller,
        callee_number: callee,
        other_party_country_code: row.other_party_country_code().map(str::to_owned),
        start: timestamp(row.start, row.style),
        end: row.end().map(|ticks| timestamp(ticks, row.style)),
    }
}
