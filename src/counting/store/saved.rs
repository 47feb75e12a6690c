//! The serialized forms: how a remembered id is stored as a key of the rows table, and the
//! summary record of the meta table (aggregates, resume point, and the count and digest of
//! the ids), stored as postcard behind an XXH3 checksum.
//!
//! Every byte here is the file format: a change that would mislead an older reader raises
//! [`FORMAT_VERSION`](super::FORMAT_VERSION). The `Saved*` types mirror the state's types
//! field by field rather than deriving serde on them, so that a change to the state cannot
//! change the file by accident.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::Damage;
// `Progress` through the parent, which alone names where it lives.
use super::Progress;
use crate::counting::state::{Aggregates, RowKey, ARRIVAL_DELAY_BUCKETS};
use crate::source::family::SavedHistogram;
use crate::source::CallLog;

/// A remembered id as stored: a tag byte, then the GUID's 16 bytes, the text, or the
/// content hash.
pub fn encode_key(key: &RowKey) -> Vec<u8> {
    match key {
        RowKey::Guid(bytes) => [&[1u8][..], bytes].concat(),
        RowKey::Text(text) => [&[2u8][..], text.as_bytes()].concat(),
        RowKey::ContentHash(hash) => [&[3u8][..], &hash.to_be_bytes()].concat(),
    }
}

/// The id [`encode_key`] stored, or `None` for bytes it cannot have written.
pub fn decode_key(bytes: &[u8]) -> Option<RowKey> {
    let (tag, rest) = bytes.split_first()?;
    match tag {
        1 => Some(RowKey::Guid(rest.try_into().ok()?)),
        2 => Some(RowKey::Text(std::str::from_utf8(rest).ok()?.into())),
        3 => Some(RowKey::ContentHash(u64::from_be_bytes(
            rest.try_into().ok()?,
        ))),
        _ => None,
    }
}

/// One id's share of the digest; the digest is the wrapping sum over all ids, so it can
/// be kept up to date insert by insert and recomputed in any order.
pub(super) fn row_digest(key: &[u8], until: i64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, until as u64)
}

/// The aggregates and resume point, with the count and digest of the ids they go with.
/// Stored as postcard, behind its own XXH3 checksum.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Summary<S> {
    pub(super) commits: u64,
    pub(super) rows: u64,
    pub(super) rows_digest: u64,
    pub(super) saved_at_micros: i64,
    pub(super) progress: SavedProgress,
    pub(super) aggregates: SavedAggregates<S>,
}

impl<S: Serialize + serde::de::DeserializeOwned> Summary<S> {
    pub(super) fn empty<L: CallLog<Saved = S>>() -> Self {
        Summary {
            commits: 0,
            rows: 0,
            rows_digest: 0,
            saved_at_micros: Utc::now().timestamp_micros(),
            progress: SavedProgress::from(&Progress::default()),
            aggregates: SavedAggregates::save::<L>(&Aggregates::default()),
        }
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let payload = postcard::to_allocvec(self).expect("plain data always serialises");
        let checksum = xxhash_rust::xxh3::xxh3_64(&payload);
        [&checksum.to_le_bytes()[..], &payload].concat()
    }
}

impl<S: serde::de::DeserializeOwned> Summary<S> {
    pub(super) fn decode(record: &[u8]) -> Result<Self, Damage> {
        if record.len() < 8 {
            return Err(Damage::SummaryTruncated);
        }
        let (checksum, payload) = record.split_at(8);
        let checksum = u64::from_le_bytes(checksum.try_into().expect("eight bytes"));
        if checksum != xxhash_rust::xxh3::xxh3_64(payload) {
            return Err(Damage::SummaryChecksum);
        }
        postcard::from_bytes(payload).map_err(Damage::SummaryUndecodable)
    }
}

/// The poller's resume point, times as Unix microseconds. Postcard writes fields by
/// position, so the file keeps every field of version 1: `first_start_done` was
/// `baseline_done` (the first start read the whole lookback then), and the last one, whether
/// the last sweep failed, is written false and ignored (long reads no longer hold recent
/// polls back).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SavedProgress {
    pub(super) first_start_done: bool,
    last_sweep: Option<i64>,
    covered_until: Option<i64>,
    forgotten_before: Option<i64>,
    unused_sweep_failed: bool,
}

impl From<&Progress> for SavedProgress {
    fn from(p: &Progress) -> Self {
        let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
        SavedProgress {
            first_start_done: p.first_start_done,
            last_sweep: micros(p.last_sweep),
            covered_until: micros(p.covered_until),
            forgotten_before: micros(p.forgotten_before),
            unused_sweep_failed: false,
        }
    }
}

impl SavedProgress {
    pub(super) fn into_progress(self) -> Result<Progress, Damage> {
        let time = |t: Option<i64>| -> Result<Option<DateTime<Utc>>, Damage> {
            t.map(|m| DateTime::from_timestamp_micros(m).ok_or(Damage::Time))
                .transpose()
        };
        Ok(Progress {
            first_start_done: self.first_start_done,
            last_sweep: time(self.last_sweep)?,
            covered_until: time(self.covered_until)?,
            forgotten_before: time(self.forgotten_before)?,
            ..Progress::default()
        })
    }
}

/// The aggregates of one source: the function's totals in its own saved form first
/// (postcard writes a nested struct inline, so for Direct Routing these are the bytes of
/// every earlier version), then what every function shares, with the bounds the arrival
/// delay was counted with.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SavedAggregates<S> {
    function: S,
    arrival_delay_bounds: Vec<f64>,
    arrival_delay: SavedHistogram,
    rows_ingested: u64,
    rows_invalid: u64,
}

impl<S> SavedAggregates<S> {
    pub(super) fn save<L: CallLog<Saved = S>>(a: &Aggregates<L::Totals>) -> Self {
        SavedAggregates {
            function: L::save(&a.function),
            arrival_delay_bounds: ARRIVAL_DELAY_BUCKETS.to_vec(),
            arrival_delay: SavedHistogram::save("", "", &a.arrival_delay),
            rows_ingested: a.rows_ingested,
            rows_invalid: a.rows_invalid,
        }
    }

    /// Checks everything a file could get wrong that the checksum cannot catch: a file
    /// written by a build with other buckets, or by a bug. `restore` reads the function's
    /// totals as the file's format version wrote them.
    pub(super) fn into_aggregates_with<L: CallLog>(
        self,
        restore: impl FnOnce(S) -> Result<L::Totals, crate::source::DamagedTotals>,
    ) -> Result<Aggregates<L::Totals>, Damage> {
        let function = restore(self.function)?;
        if self.arrival_delay_bounds.as_slice() != ARRIVAL_DELAY_BUCKETS {
            return Err(Damage::Buckets {
                histogram: "arrival delay",
            });
        }
        let arrival_delay = self
            .arrival_delay
            .restore(ARRIVAL_DELAY_BUCKETS)
            .map_err(|_| Damage::Histogram)?;
        Ok(Aggregates {
            function,
            arrival_delay,
            rows_ingested: self.rows_ingested,
            rows_invalid: self.rows_invalid,
        })
    }
}
