//! One source's history: a tenant's rows of one call-log function, read a day at a time,
//! each row counted once into the step in which its call started.
//!
//! Rows are keyed exactly as the live state keys them (`RowKey`: the id, or the bytes of
//! a row without a usable one), so a row that a shifting page returns twice is counted
//! once. Graph filters windows on call start, so each call belongs to exactly one day
//! piece: a row returned with a start outside the piece being read (PSTN's inclusive
//! `toDateTime` returns a call started at midnight with both days) is left to the piece
//! that holds its start. A day's parsed rows are held until its steps are written, then
//! forgotten: memory follows one day's calls, not the range.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use prometheus::proto::MetricFamily;

use super::range::Range;
use crate::counting::state::{Aggregates, RowKey, TenantState};
use crate::exposition::calls::StateCollector;
use crate::exposition::fleet::add_tenant_label;
use crate::source::direct_routing::DirectRouting;
use crate::source::graph::{CallWindow, GraphClient, GraphError, Priority};
use crate::source::pstn::Pstn;
use crate::source::row::{check_object, peek_id, RowError};
use crate::source::CallLog;

/// The arrival-delay histogram measures how late Graph published a row relative to when
/// the exporter first saw it; for history that is the backfill's own date, so it is left
/// out rather than filled with meaningless delays.
const LEFT_OUT: &str = "teams_voice_exporter_row_arrival_delay_seconds";

/// One tenant's history of one function.
pub struct SourceRun<L: CallLog> {
    /// The tenant's id, which names its state files.
    pub tenant_id: String,
    /// The `tenant` label.
    pub tenant: String,
    /// Where this source's history ends: where its live counting began.
    pub to: DateTime<Utc>,
    graph: Arc<GraphClient>,
    /// Counted from the start of the range, up to the last step written.
    pub aggregates: Aggregates<L::Totals>,
    collector: StateCollector<L>,
    /// The day piece being written: (step, row), sorted by step before writing.
    day: Vec<(u32, L::Row)>,
    /// Malformed rows of the day piece, counted at its last step.
    day_invalid: u64,
    next: usize,
}

impl<L: CallLog> SourceRun<L> {
    pub fn new(
        tenant_id: String,
        tenant: String,
        to: DateTime<Utc>,
        graph: Arc<GraphClient>,
    ) -> Self {
        SourceRun {
            tenant_id,
            tenant,
            to,
            graph,
            aggregates: Aggregates::default(),
            collector: StateCollector::new(Arc::new(parking_lot::Mutex::new(TenantState::new()))),
            day: Vec::new(),
            day_invalid: 0,
            next: 0,
        }
    }

    /// The function's name, as the `endpoint` label shows it.
    pub fn function_name(&self) -> &'static str {
        L::FUNCTION.name()
    }

    /// Reads the calls of `[start, end)` that lie before this source's end, and holds
    /// them by step.
    pub async fn read_day(
        &mut self,
        range: &Range,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        mut on_page: impl FnMut(u64),
    ) -> Result<(), GraphError> {
        self.day.clear();
        self.day_invalid = 0;
        self.next = 0;
        let end = end.min(self.to);
        if start >= end {
            return Ok(());
        }
        let window = CallWindow {
            from: start,
            to: end,
        };
        let mut seen: HashSet<RowKey> = HashSet::new();
        let (day, invalid) = (&mut self.day, &mut self.day_invalid);
        self.graph
            .read_window(L::FUNCTION, window, Priority::Background, |page| {
                for raw in page.value.iter().map(|raw| raw.get()) {
                    take_row::<L>(raw, &mut seen, range, window, day, invalid);
                }
                on_page(page.value.len() as u64);
            })
            .await?;
        self.day.sort_by_key(|(step, _)| *step);
        Ok(())
    }

    /// Counts step `k` of the day piece at `day_start` and returns the families as of its
    /// sample, with the tenant label, or `None` once this source's history has ended.
    pub fn step(
        &mut self,
        range: &Range,
        day_start: DateTime<Utc>,
        k: u32,
    ) -> Option<(Vec<MetricFamily>, i64, i64)> {
        let step_start = day_start + chrono::Duration::seconds(i64::from(k) * range.step);
        if step_start >= self.to {
            return None;
        }
        while let Some((step, row)) = self.day.get(self.next) {
            if *step != k {
                break;
            }
            count::<L>(&mut self.aggregates, row);
            self.next += 1;
        }
        let at = range.sample_time(day_start, k).min(self.to);
        let last_of_day = k + 1 == range.steps_per_day() || at >= self.to || at >= range.to;
        if last_of_day {
            self.aggregates.rows_invalid += std::mem::take(&mut self.day_invalid);
            self.day.clear();
        }
        Some((self.families(), at.timestamp(), step_start.timestamp()))
    }

    /// The families of the aggregates counted so far, with the tenant label.
    pub fn families(&self) -> Vec<MetricFamily> {
        let mut families = self.collector.families(&self.aggregates);
        families.retain(|f| f.name() != LEFT_OUT);
        add_tenant_label(&mut families, &self.tenant);
        families
    }
}

/// Counts a row into the aggregates the live exporter renders (its arrival delay aside).
fn count<L: CallLog>(aggregates: &mut Aggregates<L::Totals>, row: &L::Row) {
    L::count(&mut aggregates.function, row);
    aggregates.rows_ingested += 1;
}

/// One raw row of a page: new rows whose call started in `window` are held by step.
fn take_row<L: CallLog>(
    raw: &str,
    seen: &mut HashSet<RowKey>,
    range: &Range,
    window: CallWindow,
    day: &mut Vec<(u32, L::Row)>,
    invalid: &mut u64,
) {
    // Keyed as `TenantState::ingest` keys rows, so that exactly-once means the same thing.
    let (key, wire) = match check_object(raw).and_then(|()| L::read(raw)) {
        Ok(wire) => (L::id(&wire).map(RowKey::from_id), Ok(wire)),
        Err(RowError::NotAnObject) => (None, Err(RowError::NotAnObject)),
        Err(error) => (peek_id(raw).as_deref().map(RowKey::from_id), Err(error)),
    };
    let key = key.unwrap_or_else(|| RowKey::from_content(raw));
    if !seen.insert(key) {
        return;
    }
    match wire.and_then(L::into_row) {
        Ok(row) => {
            let start = L::call_start(&row);
            if start >= window.from && start < window.to {
                // Windows are day pieces: each starts at its day's start.
                day.push((range.step_of(window.from, start), row));
            }
        }
        Err(error) => {
            *invalid += 1;
            // Not the row itself: it holds user names and phone numbers.
            let id = peek_id(raw);
            tracing::warn!(%error, id = id.as_deref().unwrap_or("none"), bytes = raw.len(), "skipping a malformed row");
        }
    }
}

/// Any source, whatever its function.
pub enum AnySource {
    DirectRouting(SourceRun<DirectRouting>),
    Pstn(SourceRun<Pstn>),
}

/// Calls `$body` with the source inside, whatever its function.
macro_rules! each {
    ($source:expr, $inner:ident => $body:expr) => {
        match $source {
            AnySource::DirectRouting($inner) => $body,
            AnySource::Pstn($inner) => $body,
        }
    };
}
pub(crate) use each;
