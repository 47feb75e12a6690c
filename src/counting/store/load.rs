//! Reading a state file and verifying it before anything is used: the meta table's mark,
//! version and tenant, the summary's checksum, and the count and digest of the remembered
//! ids against what the last commit wrote. A file fails as a whole or loads as a whole.
//!
//! [`write_meta`] lives here too, beside [`read_meta`], so that the meta table's keys are
//! read and written in one place.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableError};

use super::error::{Damage, DbResult, Foreign, IntoDbResult, LoadError};
use super::saved::{decode_key, row_digest, SavedAggregates, SavedProgress, Summary};
// `Progress` through the parent, which alone names where it lives.
use super::{Progress, FORMAT_MARK, FORMAT_VERSION, META, ROWS};
use crate::counting::state::{Aggregates, RowKey};
use crate::source::{CallLog, Function, Tenant};

/// What a file held at start.
pub struct Saved<L: CallLog> {
    pub remembered: HashMap<RowKey, i64>,
    pub aggregates: Aggregates<L::Totals>,
    pub progress: Progress,
    pub written_by: String,
    pub saved_at: DateTime<Utc>,
    pub(super) mark: Mark,
}

/// Identifies what a file holds: its commit count, and the count and digest of its ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Mark {
    pub(super) commits: u64,
    pub(super) rows: u64,
    pub(super) digest: u64,
}

/// Reads and checks everything a file holds. `None` for a database without tables (an
/// empty file just initialised).
pub(super) fn load<L: CallLog>(
    db: &Database,
    tenant_id: &str,
) -> Result<Option<Saved<L>>, LoadError> {
    let txn = db.begin_read().map_err(Damage::from)?;
    let Some((summary, written_by)) = read_meta::<L>(&txn, tenant_id)? else {
        return Ok(None);
    };
    let mut remembered = HashMap::with_capacity(summary.rows.min(10_000_000) as usize);
    let mut found = Mark {
        commits: summary.commits,
        ..Mark::default()
    };
    match txn.open_table(ROWS) {
        Ok(table) => {
            for entry in table.iter().map_err(Damage::from)? {
                let (key, until) = entry.map_err(Damage::from)?;
                let (key, until) = (key.value(), until.value());
                let row = decode_key(key).ok_or(Damage::MalformedId)?;
                found.rows += 1;
                found.digest = found.digest.wrapping_add(row_digest(key, until));
                remembered.insert(row, until);
            }
        }
        Err(TableError::TableDoesNotExist(_)) => {}
        Err(e) => return Err(Damage::from(e).into()),
    }
    if found.rows != summary.rows || found.digest != summary.rows_digest {
        return Err(Damage::Rows {
            found: found.rows,
            written: summary.rows,
        }
        .into());
    }
    let aggregates = summary.aggregates;
    let progress = summary.progress.into_progress()?;
    let saved_at =
        DateTime::from_timestamp_micros(summary.saved_at_micros).ok_or(Damage::SaveTime)?;
    Ok(Some(Saved {
        remembered,
        aggregates,
        progress,
        written_by,
        saved_at,
        mark: found,
    }))
}

/// What a file holds, checked as at start, without reading every id (for reopening after
/// a failed write).
pub(super) fn read_mark<L: CallLog>(
    db: &Database,
    tenant_id: &str,
) -> Result<Option<Mark>, LoadError> {
    let txn = db.begin_read().map_err(Damage::from)?;
    let Some((summary, _)) = read_meta::<L>(&txn, tenant_id)? else {
        return Ok(None);
    };
    let rows = match txn.open_table(ROWS) {
        Ok(table) => table.len().map_err(Damage::from)?,
        Err(_) => 0,
    };
    // Counting is cheap; the digest of every id is checked at the next start.
    Ok(Some(Mark {
        commits: summary.commits,
        rows,
        digest: summary.rows_digest,
    }))
}

/// The progress a file holds, checked as at start but without reading the ids.
pub(super) fn read_progress<L: CallLog>(
    db: &Database,
    tenant_id: &str,
) -> Result<Option<Progress>, LoadError> {
    let txn = db.begin_read().map_err(Damage::from)?;
    let Some((summary, _)) = read_meta::<L>(&txn, tenant_id)? else {
        return Ok(None);
    };
    Ok(Some(summary.progress.into_progress()?))
}

/// A summary as read, whatever format version wrote it: its aggregates restored.
pub(super) struct ReadSummary<L: CallLog> {
    commits: u64,
    rows: u64,
    rows_digest: u64,
    saved_at_micros: i64,
    progress: SavedProgress,
    aggregates: Aggregates<L::Totals>,
}

impl<L: CallLog> ReadSummary<L> {
    fn new<S>(
        summary: Summary<S>,
        restore: impl FnOnce(SavedAggregates<S>) -> Result<Aggregates<L::Totals>, Damage>,
    ) -> Result<Self, Damage> {
        Ok(ReadSummary {
            commits: summary.commits,
            rows: summary.rows,
            rows_digest: summary.rows_digest,
            saved_at_micros: summary.saved_at_micros,
            progress: summary.progress,
            aggregates: restore(summary.aggregates)?,
        })
    }
}

/// The meta table's checks (mark, version, tenant, function), and the summary with the
/// version of the exporter that wrote it.
fn read_meta<L: CallLog>(
    txn: &redb::ReadTransaction,
    tenant_id: &str,
) -> Result<Option<(ReadSummary<L>, String)>, LoadError> {
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => {
            let empty = txn.list_tables().map_err(Damage::from)?.next().is_none();
            return if empty {
                Ok(None)
            } else {
                Err(Foreign::NoTables.into())
            };
        }
        Err(error @ TableError::TableTypeMismatch { .. }) => {
            return Err(Foreign::OtherTables(Box::new(error)).into())
        }
        Err(e) => return Err(Damage::from(e).into()),
    };
    let get = |key: &str| -> Result<Option<Vec<u8>>, Damage> {
        Ok(meta.get(key)?.map(|v| v.value().to_vec()))
    };
    if get("format")?.as_deref() != Some(FORMAT_MARK) {
        return Err(Foreign::NotOurs.into());
    }
    let written_by = get("written_by")?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_else(|| "an unknown version".to_owned());
    let version = get("format_version")?
        .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
        .map(u32::from_le_bytes)
        .ok_or(Damage::NoVersion)?;
    if version > FORMAT_VERSION {
        return Err(LoadError::Newer {
            found: version,
            written_by,
        });
    }
    if version == 0 {
        return Err(Damage::VersionZero.into());
    }
    let saved_tenant = get("tenant_id")?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    if !Tenant::parse(&saved_tenant).may_share_state(&Tenant::parse(tenant_id)) {
        return Err(LoadError::OtherTenant(saved_tenant));
    }
    // Version 1 files had no function: only Direct Routing was read then.
    let saved_function = get("function")?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_else(|| Function::DirectRoutingCalls.name().to_owned());
    if saved_function != L::FUNCTION.name() {
        return Err(LoadError::OtherFunction {
            saved: saved_function,
            expected: L::FUNCTION.name(),
        });
    }
    let record = get("summary")?.ok_or(Damage::NoSummary)?;
    let summary = if version == 1 {
        ReadSummary::new(Summary::<L::SavedV1>::decode(&record)?, |a| {
            a.into_aggregates_with::<L>(L::restore_v1)
        })?
    } else {
        ReadSummary::new(Summary::<L::Saved>::decode(&record)?, |a| {
            a.into_aggregates_with::<L>(L::restore)
        })?
    };
    Ok(Some((summary, written_by)))
}

/// Writes the meta table whole: mark, version, writer, tenant, function and summary.
pub(super) fn write_meta(
    txn: &redb::WriteTransaction,
    tenant_id: &str,
    function: Function,
    summary: &Summary<impl serde::Serialize + serde::de::DeserializeOwned>,
) -> DbResult<()> {
    let mut meta = txn.open_table(META).db()?;
    meta.insert("format", FORMAT_MARK).db()?;
    meta.insert("format_version", FORMAT_VERSION.to_le_bytes().as_slice())
        .db()?;
    let written_by = concat!("teams-voice-exporter ", env!("CARGO_PKG_VERSION"));
    meta.insert("written_by", written_by.as_bytes()).db()?;
    meta.insert("tenant_id", tenant_id.as_bytes()).db()?;
    meta.insert("function", function.name().as_bytes()).db()?;
    meta.insert("summary", summary.encode().as_slice()).db()?;
    Ok(())
}
