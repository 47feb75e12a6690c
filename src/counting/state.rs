//! Exactly-once counting: the rows a tenant has already shown us, and what they added up to.
//!
//! Graph returns the same row in every window and sweep that covers its call start, and
//! rows arrive late and out of order, so counting happens here and only here: a row is
//! counted the first time its `id` is seen and remembered until its call (its latest
//! timestamp) leaves the lookback. The aggregates are plain data (no prometheus types) so
//! that they can be saved, restored and rendered by [`crate::exposition::calls::StateCollector`].
//! With durable state ([`super::store`]), the state also tracks which remembered ids changed since
//! the last commit, so a commit writes only those, and shows `/metrics` the aggregates as of
//! the last commit, so a crash never makes a counter go back.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::source::family::Histogram;
use crate::source::row::{check_object, peek_id, RowError};
use crate::source::{CallLog, EstablishedCall};

/// Upper bounds of `teams_voice_exporter_row_arrival_delay_seconds`: Graph publishes rows
/// minutes to two days after the call.
pub const ARRIVAL_DELAY_BUCKETS: &[f64] = &[
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0, 172800.0,
    259200.0,
];

/// Everything counted for one source: the function's own totals, and what every function
/// shares (rows counted, malformed rows, how late rows arrived).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregates<T> {
    /// The function's totals (for Direct Routing: calls, failures, durations, setups).
    pub function: T,
    pub arrival_delay: Histogram,
    pub rows_ingested: u64,
    pub rows_invalid: u64,
}

impl<T: Default> Default for Aggregates<T> {
    fn default() -> Self {
        Aggregates {
            function: T::default(),
            arrival_delay: Histogram::new(ARRIVAL_DELAY_BUCKETS),
            rows_ingested: 0,
            rows_invalid: 0,
        }
    }
}

impl<T> Aggregates<T> {
    /// Counts one new row of `L`, first seen at `first_seen`.
    fn count<L: CallLog<Totals = T>>(&mut self, row: &L::Row, first_seen: DateTime<Utc>) {
        L::count(&mut self.function, row);
        let delay = (first_seen - L::call_end(row)).num_milliseconds().max(0) as f64 / 1e3;
        self.arrival_delay.observe(ARRIVAL_DELAY_BUCKETS, delay);
        self.rows_ingested += 1;
    }
}

/// How a remembered row is identified. Graph's ids are GUIDs, kept as 16 bytes; anything
/// else is kept as text, and a row without a usable id by a hash of its bytes, so that even
/// a malformed row is counted (as invalid) only once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowKey {
    Guid([u8; 16]),
    Text(Box<str>),
    ContentHash(u64),
}

impl RowKey {
    pub fn from_id(id: &str) -> Self {
        parse_guid(id).map_or_else(|| RowKey::Text(id.into()), RowKey::Guid)
    }

    pub(crate) fn from_content(raw: &str) -> Self {
        // XXH3 is specified and frozen, unlike std's hashers: the key is saved in the state
        // file and must come out the same in every later build.
        RowKey::ContentHash(xxhash_rust::xxh3::xxh3_64(raw.as_bytes()))
    }
}

fn parse_guid(id: &str) -> Option<[u8; 16]> {
    let bytes = id.as_bytes();
    if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = bytes.iter().filter(|b| **b != b'-');
    for byte in &mut out {
        let high = (*digits.next()? as char).to_digit(16)?;
        let low = (*digits.next()? as char).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    // Keep text form for ids whose case would be lost in the bytes, so keys stay one-to-one.
    if id.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(out)
}

/// Whether rows seen for the first time are counted or only remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    /// Normal operation: new rows are counted.
    Count,
    /// Rows are remembered, not counted: a state that knows rows it never counted (the
    /// benchmarks fill large states this way; the poller always counts).
    RememberOnly,
}

/// What one page added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageOutcome {
    pub received: u64,
    pub ingested: u64,
    pub remembered_only: u64,
    pub invalid: u64,
}

/// The remembered rows and the aggregates of one source: a tenant's calls of one
/// call-log function `L`.
#[derive(Debug)]
pub struct TenantState<L: CallLog> {
    /// Row key → call start (Unix seconds), for expiry.
    remembered: HashMap<RowKey, i64>,
    pub aggregates: Aggregates<L::Totals>,
    /// With durable state: ids added or forgotten since the last successful commit.
    changed: Option<HashSet<RowKey>>,
    /// With durable state: the aggregates as of the last commit, which `/metrics` shows;
    /// shared so that a scrape renders them without holding the state's lock.
    published: Option<Arc<Aggregates<L::Totals>>>,
    /// Changes whenever the aggregates `/metrics` shows change, so that their rendering can
    /// be kept until then.
    generation: u64,
    /// With the call-quality collector: the established calls counted since they were last
    /// taken ([`TenantState::take_established`]), whose call records it fetches.
    established: Option<Vec<EstablishedCall>>,
    function: PhantomData<L>,
}

impl<L: CallLog> Default for TenantState<L> {
    fn default() -> Self {
        TenantState {
            remembered: HashMap::new(),
            aggregates: Aggregates::default(),
            changed: None,
            published: None,
            generation: 0,
            established: None,
            function: PhantomData,
        }
    }
}

/// Remembered ids that changed since the last commit: `Some(until)` to save, `None` to
/// delete. Taken by [`TenantState::take_changes`], handed back if the commit failed.
#[derive(Debug, Default)]
pub struct Changes {
    pub keys: Vec<RowKey>,
}

impl<L: CallLog> TenantState<L> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A state that tracks its changes for incremental commits, starting from `remembered`
    /// and `aggregates` as restored from a commit.
    pub fn durable(remembered: HashMap<RowKey, i64>, aggregates: Aggregates<L::Totals>) -> Self {
        TenantState {
            remembered,
            published: Some(Arc::new(aggregates.clone())),
            aggregates,
            changed: Some(HashSet::new()),
            generation: 0,
            established: None,
            function: PhantomData,
        }
    }

    /// The aggregates `/metrics` shows: the committed ones with durable state, so that a
    /// crash and restore never shows a counter going back; otherwise the live ones.
    pub fn exposed(&self) -> &Aggregates<L::Totals> {
        self.published.as_deref().unwrap_or(&self.aggregates)
    }

    /// What [`TenantState::exposed`] shows, as a copy to render without holding the lock,
    /// and its generation: the same generation always comes with the same aggregates. With
    /// durable state the copy is shared and costs nothing; without, it is a clone.
    pub fn exposed_snapshot(&self) -> (u64, Arc<Aggregates<L::Totals>>) {
        let snapshot = match &self.published {
            Some(published) => Arc::clone(published),
            None => Arc::new(self.aggregates.clone()),
        };
        (self.generation, snapshot)
    }

    /// The generation of the aggregates `/metrics` shows (see [`TenantState::exposed_snapshot`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Shows the current aggregates on `/metrics` (after a commit, or after a failed one:
    /// counting goes on in memory while the disk refuses writes).
    pub fn publish(&mut self) {
        if let Some(published) = &mut self.published {
            // Copies in place unless a scrape still renders the previous ones.
            Arc::make_mut(published).clone_from(&self.aggregates);
        }
        self.generation += 1;
    }

    /// Shows `committed`, the aggregates a commit just wrote, on `/metrics`.
    pub fn publish_committed(&mut self, committed: Aggregates<L::Totals>) {
        if let Some(published) = &mut self.published {
            match Arc::get_mut(published) {
                Some(published) => *published = committed,
                None => *published = Arc::new(committed),
            }
        }
        self.generation += 1;
    }

    /// The remembered ids and when each may be forgotten.
    pub fn remembered(&self) -> &HashMap<RowKey, i64> {
        &self.remembered
    }

    /// Where `key` stands now: `Some(until)` if remembered, `None` if not.
    pub fn remembered_until(&self, key: &RowKey) -> Option<i64> {
        self.remembered.get(key).copied()
    }

    /// Takes the ids changed since the last commit.
    pub fn take_changes(&mut self) -> Changes {
        Changes {
            // Taken rather than drained: after a baseline of 300,000 rows a drained set
            // would keep room for 300,000 keys for good.
            keys: self
                .changed
                .as_mut()
                .map(|changed| std::mem::take(changed).into_iter().collect())
                .unwrap_or_default(),
        }
    }

    /// Hands back changes whose commit failed, so the next commit includes them.
    pub fn return_changes(&mut self, changes: Changes) {
        if let Some(changed) = &mut self.changed {
            changed.extend(changes.keys);
        }
    }

    /// How many ids await a commit.
    pub fn pending_changes(&self) -> usize {
        self.changed.as_ref().map_or(0, HashSet::len)
    }

    fn remember(&mut self, key: RowKey, until: i64) {
        if let Some(changed) = &mut self.changed {
            changed.insert(key.clone());
        }
        self.remembered.insert(key, until);
    }

    /// Keeps the established calls counted from now on for
    /// [`TenantState::take_established`] (the call-quality collector takes them).
    pub fn collect_established(&mut self) {
        self.established.get_or_insert_with(Vec::new);
    }

    /// The established calls counted since the last call (none unless
    /// [`TenantState::collect_established`]). The store takes them under the same lock as
    /// the changed ids, so that a commit saves no row whose call it did not hand on.
    pub fn take_established(&mut self) -> Vec<EstablishedCall> {
        self.established
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// How many row ids are remembered.
    pub fn remembered_rows(&self) -> usize {
        self.remembered.len()
    }

    /// Takes one page of raw rows. `now` is when the page arrived (for arrival delay and
    /// for remembering malformed rows without a start time); `window_from` is the start of
    /// the window the page belongs to: a row is remembered at least until that window
    /// leaves the lookback, even if Graph returned it with an earlier start.
    pub fn ingest<'a>(
        &mut self,
        rows: impl IntoIterator<Item = &'a str>,
        mode: Ingest,
        now: DateTime<Utc>,
        window_from: DateTime<Utc>,
    ) -> PageOutcome {
        let floor = window_from.timestamp();
        let mut outcome = PageOutcome::default();
        for raw in rows {
            outcome.received += 1;
            // Most rows of a sweep were seen before: their id decides, read without
            // allocating or parsing timestamps; only a new row is parsed fully. The key is
            // the row's id, or for a row without a usable one the hash of its bytes (a
            // malformed row's id is read as `salvage_id` reads it), so that every row,
            // even a malformed one, is counted once.
            // A row that is not an object (issue #18) is malformed, keyed by its bytes.
            let (key, wire) = match check_object(raw).and_then(|()| L::read(raw)) {
                Ok(wire) => (L::id(&wire).map(RowKey::from_id), Ok(wire)),
                Err(RowError::NotAnObject) => (None, Err(RowError::NotAnObject)),
                Err(error) => (peek_id(raw).as_deref().map(RowKey::from_id), Err(error)),
            };
            let key = key.unwrap_or_else(|| RowKey::from_content(raw));
            if self.remembered.contains_key(&key) {
                continue;
            }
            match wire.and_then(L::into_row) {
                Ok(row) => {
                    self.remember(key, L::latest_time(&row).timestamp().max(floor));
                    match mode {
                        Ingest::Count => {
                            self.aggregates.count::<L>(&row, now);
                            outcome.ingested += 1;
                            if let Some(established) = &mut self.established {
                                established.extend(L::established_call(&row));
                            }
                        }
                        Ingest::RememberOnly => outcome.remembered_only += 1,
                    }
                }
                Err(error) => {
                    self.remember(key, now.timestamp().max(floor));
                    if mode == Ingest::Count {
                        self.aggregates.rows_invalid += 1;
                        outcome.invalid += 1;
                        // Not the row itself: it holds user names and phone numbers.
                        let id = peek_id(raw);
                        tracing::warn!(
                            %error,
                            id = id.as_deref().unwrap_or("none"),
                            bytes = raw.len(),
                            "skipping a malformed row"
                        );
                    } else {
                        tracing::debug!(%error, "malformed row present at first start; remembered");
                    }
                }
            }
        }
        if self.published.is_none() && (outcome.ingested > 0 || outcome.invalid > 0) {
            self.generation += 1;
        }
        outcome
    }

    /// Forgets rows whose call started before `horizon`: no window we read reaches them
    /// any more, so they cannot be seen again.
    pub fn forget_before(&mut self, horizon: DateTime<Utc>) -> usize {
        let horizon = horizon.timestamp();
        let before = self.remembered.len();
        let changed = &mut self.changed;
        self.remembered.retain(|key, start| {
            let keep = *start >= horizon;
            if !keep {
                if let Some(changed) = changed {
                    changed.insert(key.clone());
                }
            }
            keep
        });
        before - self.remembered.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::direct_routing::totals::DURATION_BUCKETS;
    use crate::source::direct_routing::{CallKey, DirectRouting, FailureKey, TrunkTypeKey};
    use crate::source::row::UNKNOWN;

    type TenantState = super::TenantState<DirectRouting>;

    fn now() -> DateTime<Utc> {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    /// A window start before every row in these tests.
    fn early() -> DateTime<Utc> {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    const OK: &str = r#"{"id":"9e8bba57-dc14-533a-a7dd-f0da6575eed1","startDateTime":"2026-11-27T10:00:25Z",
        "inviteDateTime":"2026-11-27T10:00:21Z","endDateTime":"2026-11-27T10:05:25Z","duration":300,
        "callType":"ByotIn","successfulCall":true,"mediaPathLocation":"USWE","finalSipCode":0,
        "callEndSubReason":540000,"trunkFullyQualifiedDomainName":"SBC1.Contoso.com"}"#;
    const FAILED: &str = r#"{"id":"x-1","startDateTime":"2026-11-27T11:00:00Z","callType":"ByotOut",
        "successfulCall":false,"finalSipCode":503,"callEndSubReason":560503,
        "trunkFullyQualifiedDomainName":"sbc2.contoso.com","failureDateTime":"2026-11-27T11:00:03Z"}"#;

    #[test]
    fn a_row_is_counted_once() {
        let mut state = TenantState::new();
        let first = state.ingest([OK, FAILED, OK], Ingest::Count, now(), early());
        assert_eq!(
            first,
            PageOutcome {
                received: 3,
                ingested: 2,
                remembered_only: 0,
                invalid: 0
            }
        );
        let again = state.ingest([FAILED, OK], Ingest::Count, now(), early());
        assert_eq!(again.ingested, 0);
        let a = &state.aggregates;
        assert_eq!(a.rows_ingested, 2);
        let key = CallKey {
            trunk_fqdn: "sbc1.contoso.com".into(),
            call_type: "ByotIn".into(),
            final_sip_code: "0".into(),
            successful: Some(true),
            media_path_location: "USWE".into(),
        };
        assert_eq!(a.function.calls[&key], 1);
        let failure = FailureKey {
            trunk_fqdn: "sbc2.contoso.com".into(),
            final_sip_code: "503".into(),
            call_end_sub_reason: "560503".into(),
        };
        assert_eq!(a.function.failures[&failure], 1);
        let trunk = TrunkTypeKey {
            trunk_fqdn: "sbc1.contoso.com".into(),
            call_type: "ByotIn".into(),
        };
        let duration = &a.function.duration[&trunk];
        assert_eq!((duration.count, duration.sum), (1, 300.0));
        assert_eq!(
            duration.buckets[DURATION_BUCKETS.iter().position(|b| *b == 300.0).unwrap()],
            1
        );
        assert_eq!(a.function.setup[&trunk].sum, 4.0);
        assert_eq!(
            a.function.duration.len(),
            1,
            "failed calls have no duration"
        );
        // Ended 10:05:25 and 11:00:03, first seen at 12:00.
        assert_eq!(a.arrival_delay.sum, 6875.0 + 3597.0);
    }

    #[test]
    fn baseline_remembers_without_counting() {
        let mut state = TenantState::new();
        let outcome = state.ingest([OK, "17"], Ingest::RememberOnly, now(), early());
        assert_eq!(
            (outcome.ingested, outcome.remembered_only, outcome.invalid),
            (0, 1, 0)
        );
        assert_eq!(
            state
                .ingest([OK, "17", FAILED], Ingest::Count, now(), early())
                .ingested,
            1
        );
        assert_eq!(state.aggregates.rows_invalid, 0);
        assert_eq!(state.aggregates.rows_ingested, 1);
    }

    #[test]
    fn malformed_rows_are_counted_once_even_without_id() {
        let mut state = TenantState::new();
        let bad = [
            r#"{"id":"b1","duration":"long","startDateTime":"2026-11-27T10:00:00Z"}"#,
            "17",
            r#"{"callType":"x"}"#,
        ];
        assert_eq!(state.ingest(bad, Ingest::Count, now(), early()).invalid, 3);
        assert_eq!(state.ingest(bad, Ingest::Count, now(), early()).invalid, 0);
        assert_eq!(state.aggregates.rows_invalid, 3);
    }

    #[test]
    fn rows_that_are_not_objects_are_invalid_however_deep() {
        let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let page =
            format!(r#"{{"value":[{nested},"text",12.5,null,true,[{{"id":"in-array"}}],{OK}]}}"#);
        let page: crate::source::row::Page = serde_json::from_str(&page).unwrap();
        let rows = || page.value.iter().map(|raw| raw.get());
        let mut state = TenantState::new();
        let outcome = state.ingest(rows(), Ingest::Count, now(), early());
        assert_eq!(
            (outcome.received, outcome.invalid, outcome.ingested),
            (7, 6, 1)
        );
        let again = state.ingest(rows(), Ingest::Count, now(), early());
        assert_eq!((again.invalid, again.ingested), (0, 0));
        assert_eq!(state.aggregates.rows_invalid, 6);
        // Deep nesting inside an object: in a field the exporter reads (invalid), in one
        // it ignores (counted), in the id (invalid); never a stack overflow.
        let deep = |field: &str, id: &str| {
            format!(r#"{{"id":{id},"startDateTime":"2026-11-27T10:00:00Z","{field}":{nested}}}"#)
        };
        let rows = [
            deep("callType", r#""deep-1""#),
            deep("someBetaField", r#""deep-2""#),
            deep("other", &nested),
        ];
        let outcome = state.ingest(
            rows.iter().map(String::as_str),
            Ingest::Count,
            now(),
            early(),
        );
        assert_eq!((outcome.invalid, outcome.ingested), (2, 1));
    }

    #[test]
    fn unknown_labels_for_nulls() {
        let mut state = TenantState::new();
        state.ingest(
            [r#"{"id":"n","startDateTime":"2026-11-27T10:00:00Z"}"#],
            Ingest::Count,
            now(),
            early(),
        );
        let key = state
            .aggregates
            .function
            .calls
            .keys()
            .next()
            .unwrap()
            .clone();
        assert_eq!(key.trunk_fqdn, UNKNOWN);
        // `None` is the `unknown` label value (see the families' rendering).
        assert_eq!(key.successful, None);
        assert_eq!(key.final_sip_code, UNKNOWN);
        assert!(state.aggregates.function.failures.is_empty());
    }

    #[test]
    fn expiry_forgets_old_rows_only() {
        let mut state = TenantState::new();
        state.ingest([OK, FAILED], Ingest::Count, now(), early());
        // OK started 10:00:25, FAILED 11:00.
        assert_eq!(
            state.forget_before("2026-11-27T10:30:00Z".parse().unwrap()),
            1
        );
        assert_eq!(state.remembered_rows(), 1);
        assert_eq!(
            state
                .ingest([FAILED], Ingest::Count, now(), early())
                .ingested,
            0,
            "still remembered"
        );
        // Forgotten means forgotten: a window that still reached OK would count it again,
        // which is why the poller never reads below the forgetting horizon.
        assert_eq!(
            state.ingest([OK], Ingest::Count, now(), early()).ingested,
            1
        );
    }

    #[test]
    fn a_row_is_remembered_at_least_as_long_as_its_window() {
        let mut state = TenantState::new();
        // Graph returned OK (started 10:00:25) in a window starting 11:00.
        let window_from = "2026-11-27T11:00:00Z".parse().unwrap();
        state.ingest([OK], Ingest::Count, now(), window_from);
        assert_eq!(
            state.forget_before("2026-11-27T10:30:00Z".parse().unwrap()),
            0
        );
        assert_eq!(state.forget_before(window_from), 0);
        assert_eq!(
            state.forget_before("2026-11-27T11:00:01Z".parse().unwrap()),
            1
        );
    }

    #[test]
    fn guid_keys_are_compact_and_exact() {
        assert!(matches!(
            RowKey::from_id("9e8bba57-dc14-533a-a7dd-f0da6575eed1"),
            RowKey::Guid(_)
        ));
        assert!(matches!(
            RowKey::from_id("9E8BBA57-dc14-533a-a7dd-f0da6575eed1"),
            RowKey::Text(_)
        ));
        assert!(matches!(
            RowKey::from_id("9e8bba57-dc14-533a-a7dd-f0da6575eedz"),
            RowKey::Text(_)
        ));
        assert_ne!(
            RowKey::from_id("9e8bba57-dc14-533a-a7dd-f0da6575eed1"),
            RowKey::from_id("9e8bba57-dc14-533a-a7dd-f0da6575eed2")
        );
    }

    #[test]
    fn histogram_bounds_are_inclusive() {
        let mut h = Histogram::new(&[1.0, 2.0]);
        for v in [0.5, 1.0, 1.5, 2.0, 9.0] {
            h.observe(&[1.0, 2.0], v);
        }
        assert_eq!(h.buckets, vec![2, 2, 1]);
    }
}
