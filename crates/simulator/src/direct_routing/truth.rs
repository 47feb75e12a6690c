//! The ground truth of a Direct Routing log: what the exporter must have counted, as the
//! values the rows' JSON carries, for exact comparison with its metrics.

use serde::{Deserialize, Serialize};

use super::row::{CallRow, Origin};
use super::tables::TrunkNames;
use crate::call_log::StoredLog;
use crate::ids::uuid;
use crate::store::StoredRow;
use crate::time::timestamp;
use crate::traffic::Mode;

/// What the exporter must have seen, for exact comparison with its metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Rows the exporter must have counted. Scenario: the late rows visible now. Live: rows
    /// that became visible after `since` (default: bind time) and are still retained. By
    /// call start (`SimHandle::ground_truth_started_from`): every well-formed row visible
    /// now that started at or after the time given. Live rows include the short calls to
    /// every normal country at start and, with `Faults::toll_fraud`, the fraud's calls.
    pub rows: Vec<TruthRow>,
    /// Distinct malformed rows visible now, which the exporter must count as invalid.
    pub invalid_rows: u64,
    /// All rows visible now.
    pub visible_rows: u64,
}

/// The values of one well-formed row as its JSON carries them; `None` where the JSON has
/// null (or, for `end` and `failure`, year 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthRow {
    pub id: String,
    /// Exactly as in the row (case included).
    pub trunk_fqdn: Option<String>,
    pub call_type: Option<String>,
    pub final_sip_code: Option<i64>,
    pub call_end_sub_reason: Option<i64>,
    pub successful_call: Option<bool>,
    pub media_path_location: Option<String>,
    pub duration_secs: Option<i64>,
    /// RFC 3339, exactly as in the row.
    pub start: String,
    pub invite: Option<String>,
    pub end: Option<String>,
    pub failure: Option<String>,
    /// As in the row: E.164, the other party's last digits masked (`*`) where the trunk's
    /// country masks them; emergency calls carry the short emergency number.
    pub caller_number: Option<String>,
    pub callee_number: Option<String>,
    /// The beta field, which only a few rows carry.
    pub other_party_country_code: Option<String>,
}

/// The ground truth of `log` at `now_ms`; live rows count when they became visible after
/// `since_ms`.
pub(crate) fn ground_truth(
    log: &StoredLog<CallRow>,
    mode: Mode,
    since_ms: i64,
    now_ms: i64,
) -> GroundTruth {
    truth_of(log, now_ms, |row| match mode {
        Mode::Scenario => row.origin == Origin::Late,
        Mode::Live => row.origin == Origin::Live && row.visible_ms > since_ms,
    })
}

/// The ground truth of `log` at `now_ms` by call start: every well-formed row visible now
/// that started at or after `from` (ticks), whatever its origin.
pub(crate) fn ground_truth_started_from(
    log: &StoredLog<CallRow>,
    from: i64,
    now_ms: i64,
) -> GroundTruth {
    truth_of(log, now_ms, |row| !row.is_malformed() && row.start >= from)
}

/// The rows visible at `now_ms` that `counted` selects, with the counts of all.
fn truth_of(
    log: &StoredLog<CallRow>,
    now_ms: i64,
    counted: impl Fn(&CallRow) -> bool,
) -> GroundTruth {
    let store = log.read();
    let mut visible_rows = 0;
    let mut rows = Vec::new();
    for row in store.visible(now_ms) {
        visible_rows += 1;
        if counted(row) {
            rows.push(truth_row(row, log.names()));
        }
    }
    GroundTruth {
        rows,
        invalid_rows: store.visible_malformed(now_ms),
        visible_rows,
    }
}

/// The ground-truth view of a well-formed row: the values its JSON carries in its
/// tenant's `names`.
pub(crate) fn truth_row(row: &CallRow, names: &TrunkNames) -> TruthRow {
    let (caller, callee) = row.numbers();
    TruthRow {
        id: uuid(row.id),
        trunk_fqdn: Some(row.trunk_fqdn(names).into_owned()),
        call_type: row.call_type_name().map(str::to_owned),
        final_sip_code: row.sip_code(),
        call_end_sub_reason: row.sub_reason(),
        successful_call: Some(row.successful()),
        media_path_location: row.media_path().map(str::to_owned),
        duration_secs: Some(i64::from(row.duration_s)),
        start: timestamp(row.start, row.style),
        invite: Some(timestamp(row.invite(), row.style)),
        end: row.end().map(|ticks| timestamp(ticks, row.style)),
        failure: row.failure().map(|ticks| timestamp(ticks, row.style)),
        caller_number: Some(caller),
        callee_number: Some(callee),
        other_party_country_code: row.other_party_country_code().map(str::to_owned),
    }
}
