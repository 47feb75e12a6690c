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
use crate::counting::state::{
    Aggregates, CallKey, FailureKey, Histogram, RowKey, TrunkTypeKey, ARRIVAL_DELAY_BUCKETS,
    DURATION_BUCKETS, SETUP_BUCKETS, UNKNOWN,
};

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
pub(super) struct Summary {
    pub(super) commits: u64,
    pub(super) rows: u64,
    pub(super) rows_digest: u64,
    pub(super) saved_at_micros: i64,
    pub(super) progress: SavedProgress,
    pub(super) aggregates: SavedAggregates,
}

impl Summary {
    pub(super) fn empty() -> Self {
        Summary {
            commits: 0,
            rows: 0,
            rows_digest: 0,
            saved_at_micros: Utc::now().timestamp_micros(),
            progress: SavedProgress::from(&Progress::default()),
            aggregates: SavedAggregates::from(&Aggregates::default()),
        }
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        let payload = postcard::to_allocvec(self).expect("plain data always serialises");
        let checksum = xxhash_rust::xxh3::xxh3_64(&payload);
        [&checksum.to_le_bytes()[..], &payload].concat()
    }

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

/// The poller's resume point, times as Unix microseconds.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SavedProgress {
    baseline_done: bool,
    last_sweep: Option<i64>,
    covered_until: Option<i64>,
    forgotten_before: Option<i64>,
    sweep_failed: bool,
}

impl From<&Progress> for SavedProgress {
    fn from(p: &Progress) -> Self {
        let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
        SavedProgress {
            baseline_done: p.baseline_done,
            last_sweep: micros(p.last_sweep),
            covered_until: micros(p.covered_until),
            forgotten_before: micros(p.forgotten_before),
            sweep_failed: p.sweep_failed,
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
            baseline_done: self.baseline_done,
            last_sweep: time(self.last_sweep)?,
            covered_until: time(self.covered_until)?,
            forgotten_before: time(self.forgotten_before)?,
            sweep_failed: self.sweep_failed,
            ..Progress::default()
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedCall {
    trunk_fqdn: String,
    call_type: String,
    final_sip_code: String,
    successful: Option<bool>,
    media_path_location: String,
    count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedFailure {
    trunk_fqdn: String,
    final_sip_code: String,
    call_end_sub_reason: String,
    count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedHistogram {
    trunk_fqdn: String,
    call_type: String,
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Every aggregate, with the histogram bounds they were counted with, so that a later
/// version that changes a bound can tell (and this one refuses such a file).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SavedAggregates {
    calls: Vec<SavedCall>,
    failures: Vec<SavedFailure>,
    duration_bounds: Vec<f64>,
    duration: Vec<SavedHistogram>,
    setup_bounds: Vec<f64>,
    setup: Vec<SavedHistogram>,
    arrival_delay_bounds: Vec<f64>,
    arrival_delay: SavedHistogram,
    rows_ingested: u64,
    rows_invalid: u64,
}

fn save_histogram(key: Option<&TrunkTypeKey>, h: &Histogram) -> SavedHistogram {
    SavedHistogram {
        trunk_fqdn: key.map(|k| k.trunk_fqdn.clone()).unwrap_or_default(),
        call_type: key.map(|k| k.call_type.clone()).unwrap_or_default(),
        buckets: h.buckets.clone(),
        sum: h.sum,
        count: h.count,
    }
}

impl From<&Aggregates> for SavedAggregates {
    fn from(a: &Aggregates) -> Self {
        SavedAggregates {
            calls: a
                .calls
                .iter()
                .map(|(k, count)| SavedCall {
                    trunk_fqdn: k.trunk_fqdn.clone(),
                    call_type: k.call_type.clone(),
                    final_sip_code: k.final_sip_code.clone(),
                    successful: match k.successful {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    },
                    media_path_location: k.media_path_location.clone(),
                    count: *count,
                })
                .collect(),
            failures: a
                .failures
                .iter()
                .map(|(k, count)| SavedFailure {
                    trunk_fqdn: k.trunk_fqdn.clone(),
                    final_sip_code: k.final_sip_code.clone(),
                    call_end_sub_reason: k.call_end_sub_reason.clone(),
                    count: *count,
                })
                .collect(),
            duration_bounds: DURATION_BUCKETS.to_vec(),
            duration: a
                .duration
                .iter()
                .map(|(k, h)| save_histogram(Some(k), h))
                .collect(),
            setup_bounds: SETUP_BUCKETS.to_vec(),
            setup: a
                .setup
                .iter()
                .map(|(k, h)| save_histogram(Some(k), h))
                .collect(),
            arrival_delay_bounds: ARRIVAL_DELAY_BUCKETS.to_vec(),
            arrival_delay: save_histogram(None, &a.arrival_delay),
            rows_ingested: a.rows_ingested,
            rows_invalid: a.rows_invalid,
        }
    }
}

impl SavedAggregates {
    /// Checks everything a file could get wrong that the checksum cannot catch: a file
    /// written by a build with other buckets, or by a bug.
    pub(super) fn into_aggregates(self) -> Result<Aggregates, Damage> {
        for (histogram, saved, ours) in [
            ("duration", &self.duration_bounds, DURATION_BUCKETS),
            ("setup", &self.setup_bounds, SETUP_BUCKETS),
            (
                "arrival delay",
                &self.arrival_delay_bounds,
                ARRIVAL_DELAY_BUCKETS,
            ),
        ] {
            if saved.as_slice() != ours {
                return Err(Damage::Buckets { histogram });
            }
        }
        let histogram = |h: SavedHistogram, bounds: &[f64]| -> Result<Histogram, Damage> {
            if h.buckets.len() != bounds.len() + 1
                || h.buckets.iter().sum::<u64>() != h.count
                || !h.sum.is_finite()
            {
                return Err(Damage::Histogram);
            }
            Ok(Histogram {
                buckets: h.buckets,
                sum: h.sum,
                count: h.count,
            })
        };
        let mut a = Aggregates::default();
        for c in self.calls {
            let key = CallKey {
                trunk_fqdn: c.trunk_fqdn,
                call_type: c.call_type,
                final_sip_code: c.final_sip_code,
                successful: match c.successful {
                    Some(true) => "true",
                    Some(false) => "false",
                    None => UNKNOWN,
                },
                media_path_location: c.media_path_location,
            };
            if a.calls.insert(key, c.count).is_some() {
                return Err(Damage::Twice { series: "call" });
            }
        }
        for f in self.failures {
            let key = FailureKey {
                trunk_fqdn: f.trunk_fqdn,
                final_sip_code: f.final_sip_code,
                call_end_sub_reason: f.call_end_sub_reason,
            };
            if a.failures.insert(key, f.count).is_some() {
                return Err(Damage::Twice { series: "failure" });
            }
        }
        for (saved, bounds, target) in [
            (self.duration, DURATION_BUCKETS, &mut a.duration),
            (self.setup, SETUP_BUCKETS, &mut a.setup),
        ] {
            for h in saved {
                let key = TrunkTypeKey {
                    trunk_fqdn: h.trunk_fqdn.clone(),
                    call_type: h.call_type.clone(),
                };
                if target.insert(key, histogram(h, bounds)?).is_some() {
                    return Err(Damage::Twice {
                        series: "histogram",
                    });
                }
            }
        }
        a.arrival_delay = histogram(self.arrival_delay, ARRIVAL_DELAY_BUCKETS)?;
        a.rows_ingested = self.rows_ingested;
        a.rows_invalid = self.rows_invalid;
        Ok(a)
    }
}
