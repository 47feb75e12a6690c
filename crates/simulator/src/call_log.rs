//! What the simulated Graph needs from a call-log function (`getDirectRoutingCalls`,
//! `getPstnCalls`, ...): its name and parameters, and pages of its rows as JSON.
//!
//! `graph` parses requests, applies faults and builds links without knowing any row type;
//! a function's module supplies a [`Function`] and a [`CallLog`], usually a
//! [`StoredLog`] of its own rows, which need only render themselves ([`LogRow`]).
//!
//! Pages are written by hand into a `String` rather than through `serde_json::Value`: a
//! page of 1,000 rows is rendered for every request.

use std::fmt::Write;

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::stats::{ServedRecord, ServedRow};
use crate::store::{Store, StoredRow};

/// A call-log function as its requests name it.
#[derive(Debug)]
pub(crate) struct Function {
    /// The name in the path, e.g. `getDirectRoutingCalls`.
    pub name: &'static str,
    /// The OData type of its rows, named in every page's `@odata.context`.
    pub row_type: &'static str,
    /// The window's parameters: calls that started from `from_parameter` (inclusive) to
    /// `to_parameter` (exclusive).
    pub from_parameter: &'static str,
    pub to_parameter: &'static str,
}

/// One page asked of a call log.
pub(crate) struct PageRequest<'a> {
    /// The page's `@odata.context`.
    pub context: &'a str,
    /// Window of call starts `[from, to)` in ticks.
    pub from: i64,
    pub to: i64,
    /// Visible rows of the window to pass over, from `$skip`.
    pub skip: usize,
    pub page_size: usize,
    /// The tenant's clock, which decides which rows are visible.
    pub now_ms: i64,
    /// The nextLink of the page that starts after this many visible rows of the window.
    pub next_link: &'a dyn Fn(usize) -> String,
}

/// What a page carried.
pub(crate) struct Served {
    pub rows: usize,
    pub next_link: bool,
}

/// A call-log function's rows, as the simulated Graph serves them.
pub(crate) trait CallLog: Send + Sync {
    fn function(&self) -> &'static Function;

    /// Appends the page `request` asks for: its visible rows, `@odata.count` and nextLink.
    fn write_page(&self, out: &mut String, request: &PageRequest<'_>) -> Served;

    /// Starts the late arrivals of a scenario; `false` if they had started already (or the
    /// log has none).
    fn release(&self, now_ms: i64) -> bool;

    /// Appends the well-formed rows served so far, each once, in the order first served.
    fn served_rows(&self, out: &mut Vec<ServedRow>);
}

/// A row that can be served: stored by time, and rendered as the JSON Graph sends.
pub(crate) trait LogRow: StoredRow + Send + Sync {
    /// About how many bytes a row's JSON takes, to size a page's buffer once.
    const JSON_BYTES: usize;

    /// What the row's JSON takes from its tenant rather than from the row (Direct
    /// Routing: the tenant's trunk FQDNs), kept once per log.
    type Names: Default + Send + Sync;

    /// Appends the row's JSON. Every byte depends only on the row and its log's `names`,
    /// so a row (including one without an id) looks identical on every page.
    fn write_json(&self, out: &mut String, names: &Self::Names);
}

/// A call log kept in a [`Store`], with the first serve of each well-formed row.
pub(crate) struct StoredLog<R: LogRow> {
    function: &'static Function,
    store: RwLock<Store<R>>,
    served: Mutex<Vec<ServedRecord>>,
    names: R::Names,
}

impl<R: LogRow> StoredLog<R> {
    pub fn new(function: &'static Function, rows: Vec<R>) -> Self {
        StoredLog {
            function,
            store: RwLock::new(Store::new(rows)),
            served: Mutex::new(Vec::new()),
            names: R::Names::default(),
        }
    }

    /// The log with its tenant's `names` for its rows' JSON.
    pub fn with_names(mut self, names: R::Names) -> Self {
        self.names = names;
        self
    }

    pub fn names(&self) -> &R::Names {
        &self.names
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Store<R>> {
        self.store.read()
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Store<R>> {
        self.store.write()
    }
}

impl<R: LogRow> CallLog for StoredLog<R> {
    fn function(&self) -> &'static Function {
        self.function
    }

    fn write_page(&self, out: &mut String, request: &PageRequest<'_>) -> Served {
        let store = self.read();
        let page = store.page(
            request.from,
            request.to,
            request.now_ms,
            request.skip,
            request.page_size,
        );
        let link = page
            .more
            .then(|| (request.next_link)(request.skip.saturating_add(page.rows.len())));
        let first_served: Vec<ServedRecord> = page
            .rows
            .iter()
            .filter(|row| !row.is_malformed() && row.mark_served())
            .map(|row| ServedRecord {
                start_ticks: row.start(),
                visible_ms: row.visible_ms(),
                served_ms: request.now_ms,
            })
            .collect();
        if !first_served.is_empty() {
            self.served.lock().extend(first_served);
        }
        out.reserve(page.rows.len() * R::JSON_BYTES + 512);
        write_page(
            out,
            request.context,
            &page.rows,
            link.as_deref(),
            |out, row| row.write_json(out, &self.names),
        );
        Served {
            rows: page.rows.len(),
            next_link: link.is_some(),
        }
    }

    fn release(&self, now_ms: i64) -> bool {
        self.write().release(now_ms)
    }

    fn served_rows(&self, out: &mut Vec<ServedRow>) {
        out.extend(
            self.served
                .lock()
                .iter()
                .map(|&record| ServedRow::from(record)),
        );
    }
}

/// Appends a page: the rows, `@odata.count` (rows on this page) and the next link if any.
pub(crate) fn write_page<R>(
    out: &mut String,
    context: &str,
    rows: &[R],
    next_link: Option<&str>,
    write_row: impl Fn(&mut String, &R),
) {
    out.push_str("{\"@odata.context\":");
    push_json_string(out, context);
    let _ = write!(out, ",\"@odata.count\":{},\"value\":[", rows.len());
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_row(out, row);
    }
    out.push(']');
    if let Some(link) = next_link {
        out.push_str(",\"@odata.nextLink\":");
        push_json_string(out, link);
    }
    out.push('}');
}

/// Appends `value` as a JSON string; used for text that may come from outside (base URLs,
/// request parameters).
fn push_json_string(out: &mut String, value: &str) {
    match serde_json::to_string(value) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}
