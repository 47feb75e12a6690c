//! Call quality records (`/communications/callRecords/{id}`): one for every established
//! Direct Routing call, whose id is its row's `correlationId`, as
//! `shared/reference/graph-call-logs.md` ("Call quality records") describes them.
//!
//! Nothing is stored per record: a record is derived from its call's stored row, the
//! tenant's seed and the correlation id whenever it is asked for (`model` draws its
//! sessions, segments and streams, `render` writes the JSON), so a demo of 300,000 calls
//! a day holds no more than its rows and their lookup index. When it is published follows
//! from the same inputs and the faults in force ([`publication`]): at the call's end plus
//! uniform(delay, 4 × delay) of `Faults::call_record_delay`, never before its row is
//! visible, and never for the share `Faults::unpublished_call_records`. Graph keeps
//! records 30 days; a call older than that, or whose row the live log has pruned, has none.
//!
//! What is kept is how often each record was asked for ([`Fetches`]), the ground truth of
//! "fetched once after it is published", pruned with the rows.

mod model;
mod render;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::direct_routing::{CallRow, TrunkNames};
use crate::faults::Faults;
use crate::ids::uuid;
use crate::numbers::mix;
use crate::store::HIDDEN;
use crate::time::{datetime_of_ms, MS_PER_DAY, MS_PER_MIN, TICKS_PER_MS};

pub(crate) use render::{record_json, RecordContext};

/// How long Graph keeps a call record after the call.
pub(crate) const RETENTION_MS: i64 = 30 * MS_PER_DAY;

/// A call record as the tenant serves it, for tests to compute what the exporter must
/// show ([`crate::SimTenantView::call_records`], `GET /_sim/call-records`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimCallRecord {
    /// The record's id: its call's `correlationId`.
    pub id: String,
    /// The trunk of its call, in lower case (as the exporter's `trunk_fqdn` label).
    pub trunk_fqdn: String,
    /// When Graph publishes it (clock time, possibly still to come); None: never.
    #[serde(serialize_with = "rfc3339")]
    pub published_at: Option<DateTime<Utc>>,
    /// The whole record as `?$expand=sessions($expand=segments)` gives it, every session
    /// inline (no paging).
    pub record: serde_json::Value,
}

/// `published_at` as RFC 3339 (milliseconds), or null.
fn rfc3339<S: serde::Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => {
            serializer.serialize_str(&time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        None => serializer.serialize_none(),
    }
}

/// How often a call record was asked for (the record itself, not its session pages),
/// counting only requests that got past the faults and limits to an answer about it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CallRecordFetches {
    /// Answered 404 because it was not published yet (or is never published).
    pub before_publication: u32,
    /// Answered with the record.
    pub after_publication: u32,
}

/// When a call's record is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Publication {
    /// At this clock time (ms).
    At(i64),
    /// Never (`Faults::unpublished_call_records`).
    Never,
    /// Not known yet: the row waits for `SimHandle::release`.
    AfterRelease,
}

impl Publication {
    pub fn is_published(self, now_ms: i64) -> bool {
        matches!(self, Publication::At(at) if at <= now_ms)
    }
}

/// When the record of `row` (an established call) is published under `faults`, for a
/// tenant of `seed`.
pub(crate) fn publication(row: &CallRow, faults: &Faults, seed: u64) -> Publication {
    if unit(seed, row.correlation_id, SALT_UNPUBLISHED) < faults.unpublished_call_records {
        return Publication::Never;
    }
    if row.visible_ms == HIDDEN {
        return Publication::AfterRelease;
    }
    let delay_ms = i64::try_from(faults.call_record_delay.as_millis()).unwrap_or(i64::MAX);
    let spread = unit(seed, row.correlation_id, SALT_DELAY) * 3.0 * delay_ms as f64;
    let at = row
        .end_ms()
        .saturating_add(delay_ms)
        .saturating_add(spread as i64);
    Publication::At(at.max(row.visible_ms))
}

/// Whether Graph still keeps the record of a call that started at `start_ticks`.
pub(crate) fn retained(start_ticks: i64, now_ms: i64) -> bool {
    now_ms.saturating_sub(start_ticks.div_euclid(TICKS_PER_MS)) <= RETENTION_MS
}

/// The public view of one record.
pub(crate) fn sim_record(
    row: &CallRow,
    faults: &Faults,
    seed: u64,
    names: &TrunkNames,
    base_url: &str,
) -> Option<SimCallRecord> {
    let publication = publication(row, faults, seed);
    let published_ms = match publication {
        Publication::At(at) => Some(at),
        Publication::Never => None,
        Publication::AfterRelease => return None,
    };
    let context = RecordContext {
        seed,
        names,
        base_url,
        last_modified_ms: published_ms.unwrap_or_else(|| row.end_ms()),
    };
    Some(SimCallRecord {
        id: uuid(row.correlation_id),
        trunk_fqdn: row.trunk_fqdn(names).to_ascii_lowercase(),
        published_at: published_ms.map(datetime_of_ms),
        record: record_json(row, &context),
    })
}

const SALT_UNPUBLISHED: u64 = 0x0c11_7ec0_4d00;
const SALT_DELAY: u64 = 0x0de1_a900;
const SALT_MODEL: u64 = 0x0a0d_1000;

/// A number in [0, 1) fixed by the seed, the call and what it decides (`salt`).
fn unit(seed: u64, id: u128, salt: u64) -> f64 {
    (id_hash(seed ^ salt, id) >> 11) as f64 / (1_u64 << 53) as f64
}

/// The seed of the random stream a call's record is drawn from.
pub(crate) fn model_seed(seed: u64, id: u128) -> u64 {
    id_hash(seed ^ SALT_MODEL, id)
}

fn id_hash(seed: u64, id: u128) -> u64 {
    mix(mix(seed ^ id as u64) ^ (id >> 64) as u64)
}

/// How often each record was asked for, pruned every clock minute of records no longer
/// kept.
#[derive(Default)]
pub(crate) struct Fetches {
    by_id: HashMap<u128, Counted>,
    next_prune_ms: i64,
}

struct Counted {
    start_ticks: i64,
    fetches: CallRecordFetches,
}

impl Fetches {
    /// Counts a request for the record of the call `id` that started at `start_ticks`,
    /// answered `published` or 404; forgets records of calls that started before
    /// `oldest_start_ticks` (the log's oldest row) or left the retention.
    pub fn count(
        &mut self,
        id: u128,
        start_ticks: i64,
        published: bool,
        now_ms: i64,
        oldest_start_ticks: i64,
    ) {
        let entry = self.by_id.entry(id).or_insert(Counted {
            start_ticks,
            fetches: CallRecordFetches::default(),
        });
        let count = if published {
            &mut entry.fetches.after_publication
        } else {
            &mut entry.fetches.before_publication
        };
        *count = count.saturating_add(1);
        if now_ms >= self.next_prune_ms {
            self.next_prune_ms = now_ms.saturating_add(MS_PER_MIN);
            let retained_from = now_ms
                .saturating_sub(RETENTION_MS)
                .saturating_mul(TICKS_PER_MS);
            let cutoff = retained_from.max(oldest_start_ticks);
            self.by_id
                .retain(|_, counted| counted.start_ticks >= cutoff);
        }
    }

    /// The counts by record id.
    pub fn snapshot(&self) -> HashMap<String, CallRecordFetches> {
        self.by_id
            .iter()
            .map(|(id, counted)| (uuid(*id), counted.fetches))
            .collect()
    }
}
