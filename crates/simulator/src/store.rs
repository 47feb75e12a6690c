//! A call log's rows ordered by start time, with the queries Graph answers from it (a call
//! window's visible rows, page by page) and the bookkeeping of late arrivals and pruning.
//!
//! The store knows rows only through [`StoredRow`]: their start, an id to order ties, and
//! when they become visible. Any call-log function's rows can be kept here.
//!
//! Rows are kept sorted by start so a call window is found by binary search; visibility is
//! checked per row at each request, because rows become visible at their own times and a
//! page is always evaluated against the log as it is at that moment.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};

/// `visible_ms` of a row that waits for `SimHandle::release`.
pub(crate) const HIDDEN: i64 = i64::MAX;

/// What the store needs to know about a row.
pub(crate) trait StoredRow {
    /// Start time in ticks, as the row prints it: call windows filter on it.
    fn start(&self) -> i64;
    /// Orders rows that start in the same tick, so that pages never overlap.
    fn id(&self) -> u128;
    /// Clock time (ms) from which the row is in results; [`HIDDEN`] until released.
    fn visible_ms(&self) -> i64;
    fn set_visible_ms(&mut self, visible_ms: i64);
    /// For rows hidden until release: how long after the release they appear.
    fn arrival_ms(&self) -> u32;
    /// Whether the row's JSON is deliberately broken (counted as one invalid row).
    fn is_malformed(&self) -> bool;
    /// Notes that the row is on a page; `true` the first time.
    fn mark_served(&self) -> bool;
    /// The key by which the row is looked up on its own ([`Store::find`]), if it has one:
    /// a Direct Routing call's correlation id, which is its call record's id.
    fn lookup_key(&self) -> Option<u128> {
        None
    }

    fn is_visible(&self, now_ms: i64) -> bool {
        self.visible_ms() <= now_ms
    }
}

/// Whether a row has been on a page yet. Set while pages are rendered under the store's
/// read lock, hence atomic; a clone copies the state.
#[derive(Debug, Default)]
pub(crate) struct ServedFlag(AtomicBool);

impl ServedFlag {
    /// Marks the row served; `true` if it was not yet.
    pub fn mark(&self) -> bool {
        !self.0.swap(true, Ordering::Relaxed)
    }
}

impl Clone for ServedFlag {
    fn clone(&self) -> Self {
        ServedFlag(AtomicBool::new(self.0.load(Ordering::Relaxed)))
    }
}

pub(crate) struct Store<R> {
    rows: VecDeque<R>,
    released_ms: Option<i64>,
    /// The start (ticks) of each row with a lookup key, by the key's low 64 bits (keys are
    /// random ids, and [`Store::find`] compares the whole key): 16 bytes and a little a
    /// row, rather than a scan of the whole log for every call-record request.
    starts_by_key: HashMap<u64, i64>,
}

/// One page of a call window.
pub(crate) struct Page<'a, R> {
    pub rows: Vec<&'a R>,
    /// Whether visible rows remain after this page.
    pub more: bool,
}

impl<R: StoredRow> Store<R> {
    pub fn new(mut rows: Vec<R>) -> Self {
        rows.sort_by_key(|row| (row.start(), row.id()));
        let starts_by_key = rows
            .iter()
            .filter_map(|row| Some((short_key(row.lookup_key()?), row.start())))
            .collect();
        Store {
            rows: rows.into(),
            released_ms: None,
            starts_by_key,
        }
    }

    /// The row whose lookup key is `key`.
    pub fn find(&self, key: u128) -> Option<&R> {
        let start = *self.starts_by_key.get(&short_key(key))?;
        let first = self.rows.partition_point(|row| row.start() < start);
        self.rows
            .range(first..)
            .take_while(|row| row.start() == start)
            .find(|row| row.lookup_key() == Some(key))
    }

    /// Every row, in start order.
    pub fn rows(&self) -> impl Iterator<Item = &R> {
        self.rows.iter()
    }

    /// The start (ticks) of the oldest row kept.
    pub fn first_start(&self) -> Option<i64> {
        self.rows.front().map(StoredRow::start)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Adds a row, keeping start order. New live calls start after nearly all stored ones,
    /// so the common case is a push at the back.
    pub fn insert(&mut self, row: R) {
        if let Some(lookup_key) = row.lookup_key() {
            self.starts_by_key
                .insert(short_key(lookup_key), row.start());
        }
        let key = (row.start(), row.id());
        match self.rows.back() {
            Some(last) if (last.start(), last.id()) > key => {
                let at = self.rows.partition_point(|r| (r.start(), r.id()) <= key);
                self.rows.insert(at, row);
            }
            _ => self.rows.push_back(row),
        }
    }

    /// Forgets rows that started before `start` (ticks), returning how many.
    pub fn prune_started_before(&mut self, start: i64) -> usize {
        let count = self.rows.partition_point(|row| row.start() < start);
        for row in self.rows.drain(..count) {
            if let Some(key) = row.lookup_key() {
                let key = short_key(key);
                // A later row whose key shares these bits keeps its entry.
                if self
                    .starts_by_key
                    .get(&key)
                    .is_some_and(|&s| s <= row.start())
                {
                    self.starts_by_key.remove(&key);
                }
            }
        }
        count
    }

    /// Rows visible at `now_ms` that started in `[from, to)` (ticks), skipping `skip` of them.
    pub fn page(
        &self,
        from: i64,
        to: i64,
        now_ms: i64,
        skip: usize,
        page_size: usize,
    ) -> Page<'_, R> {
        let low = self.rows.partition_point(|row| row.start() < from);
        let high = self.rows.partition_point(|row| row.start() < to).max(low);
        let mut rows: Vec<&R> = self
            .rows
            .range(low..high)
            .filter(|row| row.is_visible(now_ms))
            .skip(skip)
            .take(page_size.saturating_add(1))
            .collect();
        let more = rows.len() > page_size;
        rows.truncate(page_size);
        Page { rows, more }
    }

    /// Starts the late arrivals: each hidden row appears its own delay after `now_ms`.
    /// Only the first release counts.
    pub fn release(&mut self, now_ms: i64) -> bool {
        if self.released_ms.is_some() {
            return false;
        }
        self.released_ms = Some(now_ms);
        for row in self
            .rows
            .iter_mut()
            .filter(|row| row.visible_ms() == HIDDEN)
        {
            row.set_visible_ms(now_ms.saturating_add(i64::from(row.arrival_ms())));
        }
        true
    }

    /// Rows visible at `now_ms`.
    pub fn visible(&self, now_ms: i64) -> impl Iterator<Item = &R> {
        self.rows.iter().filter(move |row| row.is_visible(now_ms))
    }

    /// Visible malformed rows; each has distinct content, so each is one invalid row.
    pub fn visible_malformed(&self, now_ms: i64) -> u64 {
        self.visible(now_ms)
            .filter(|row| row.is_malformed())
            .count() as u64
    }
}

/// The bits of a lookup key the index keeps.
fn short_key(key: u128) -> u64 {
    key as u64
}
