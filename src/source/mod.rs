//! Where rows come from: a *source* is one tenant and one call-log function.
//!
//! [`auth`] gets the tenant's access tokens from Microsoft Entra ID, [`graph`] reads a call
//! window of one function page by page under Graph's rules (paging, retries, Retry-After),
//! [`direct_routing`] is everything specific to `getDirectRoutingCalls` behind [`CallLog`],
//! [`pstn`] the same for `getPstnCalls`, [`row`], [`family`] and [`destination`] (the far
//! end's country) hold what every function shares, and [`metrics`] records how talking to
//! Graph and Entra ID went.

pub mod auth;
pub mod cloud;
pub mod destination;
pub mod direct_routing;
pub mod family;
pub mod graph;
pub mod labels;
pub mod metrics;
pub mod pstn;
pub mod row;

use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::proto::MetricFamily;

use family::Family;
use row::RowError;

/// What the layers above need of one call-log function: how its rows are read and
/// identified, what they add up to, and the metric families that shows as. Adding a
/// function is adding one module that implements this, and naming it in [`Function`].
pub trait CallLog: Send + Sync + 'static {
    /// The Graph function, its URL name and `endpoint` label.
    const FUNCTION: Function;
    /// The families [`CallLog::families`] renders, announced before the first scrape.
    const FAMILIES: &'static [&'static Family];
    /// A row read just far enough to know its id, borrowed from the page: most rows of a
    /// sweep were seen before, and only new ones are worth a full parse.
    type Wire<'a>;
    /// A row as counted.
    type Row;
    /// What the function's rows add up to: plain data, saved and restored with the state.
    type Totals: Default + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static;
    /// The totals as the state file keeps them.
    type Saved: serde::Serialize + serde::de::DeserializeOwned;
    /// The totals as state files of format version 1 kept them (only Direct Routing had
    /// files then; a function added later names its own [`CallLog::Saved`]).
    type SavedV1: serde::de::DeserializeOwned;

    /// Reads a raw row; an error makes it malformed (skipped and counted).
    fn read(raw: &str) -> Result<Self::Wire<'_>, RowError>;
    /// The row's `id`, when it has a usable one.
    fn id<'w>(wire: &'w Self::Wire<'_>) -> Option<&'w str>;
    /// The whole row, for a row seen for the first time.
    fn into_row(wire: Self::Wire<'_>) -> Result<Self::Row, RowError>;
    /// When the call started: the step a backfilled row counts in.
    fn call_start(row: &Self::Row) -> DateTime<Utc>;
    /// When the call ended, for how late Graph published its row.
    fn call_end(row: &Self::Row) -> DateTime<Utc>;
    /// The row's latest timestamp: it is remembered until that leaves the lookback.
    fn latest_time(row: &Self::Row) -> DateTime<Utc>;
    /// Counts a new row into `totals`.
    fn count(totals: &mut Self::Totals, row: &Self::Row);
    /// The function's metric families of `totals`.
    fn families(totals: &Self::Totals) -> Vec<MetricFamily>;
    /// `totals` as the state file keeps them.
    fn save(totals: &Self::Totals) -> Self::Saved;
    /// Totals read back from the state file.
    fn restore(saved: Self::Saved) -> Result<Self::Totals, DamagedTotals>;
    /// Totals read back from a state file of format version 1.
    fn restore_v1(saved: Self::SavedV1) -> Result<Self::Totals, DamagedTotals>;
    /// The call whose call record the call-quality collector fetches, if the row is of an
    /// established call that has one; `None` for functions without call records.
    fn established_call(_row: &Self::Row) -> Option<EstablishedCall> {
        None
    }
}

/// An established call with a call record: what the call-quality collector needs of its
/// row, and nothing personal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstablishedCall {
    /// The row's `correlationId`, which is the call record's id.
    pub correlation_id: String,
    /// The trunk as the row names it, lowercased (`unknown` when it names none).
    pub trunk_fqdn: String,
    /// When the call ended: the call record is published 15–60 minutes after.
    pub end: DateTime<Utc>,
}

/// The tenant a source reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenant {
    /// A directory (tenant) id.
    Id(String),
    /// The managed identity's own tenant: Entra ID names it only in the tokens it issues.
    ManagedIdentityOwn,
}

impl Tenant {
    /// How the landing page and the state file show the managed identity's tenant.
    const MANAGED_IDENTITY_OWN: &'static str = "(the managed identity's own)";

    /// The tenant as shown and saved: its id, or a parenthesised description.
    pub fn as_str(&self) -> &str {
        match self {
            Tenant::Id(id) => id,
            Tenant::ManagedIdentityOwn => Self::MANAGED_IDENTITY_OWN,
        }
    }

    /// The tenant [`Tenant::as_str`] wrote: anything in parentheses is a managed
    /// identity's (older versions wrote the same sentence).
    pub fn parse(text: &str) -> Tenant {
        if text.starts_with('(') {
            Tenant::ManagedIdentityOwn
        } else {
            Tenant::Id(text.to_owned())
        }
    }

    /// Whether state saved for this tenant may be restored for `other`. A managed
    /// identity's tenant is unknown before its first token, so it matches any: switching a
    /// deployment between a managed identity and a secret or certificate must not cost the
    /// saved counters.
    pub fn may_share_state(&self, other: &Tenant) -> bool {
        match (self, other) {
            (Tenant::Id(a), Tenant::Id(b)) => a == b,
            _ => true,
        }
    }
}

/// Saved totals that do not add up: the state file is damaged.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DamagedTotals(pub String);

/// A Graph call-log function: what a source reads besides its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `getDirectRoutingCalls`: calls through the tenant's own SBC trunks.
    DirectRoutingCalls,
    /// `getPstnCalls`: Calling Plan and Operator Connect calls (Microsoft or a carrier is
    /// the phone company).
    PstnCalls,
}

impl Function {
    /// Every function the exporter can read.
    pub const ALL: [Function; 2] = [Function::DirectRoutingCalls, Function::PstnCalls];

    /// How long Graph keeps the function's rows by default (the reference: 150 days for
    /// Direct Routing, 365 for PSTN calls; longer in some countries).
    pub fn default_retention(self) -> Duration {
        match self {
            Function::DirectRoutingCalls => Duration::from_secs(150 * 86_400),
            Function::PstnCalls => Duration::from_secs(365 * 86_400),
        }
    }

    /// The function's name in the URL and in the `endpoint` label.
    pub fn name(self) -> &'static str {
        match self {
            Function::DirectRoutingCalls => "getDirectRoutingCalls",
            Function::PstnCalls => "getPstnCalls",
        }
    }

    /// The function in flags (`--collector.pstn`) and file names: lowercase words.
    pub fn short_name(self) -> &'static str {
        match self {
            Function::DirectRoutingCalls => "direct-routing",
            Function::PstnCalls => "pstn",
        }
    }

    /// What the function's calls are, for people.
    pub fn description(self) -> &'static str {
        match self {
            Function::DirectRoutingCalls => "Direct Routing calls (the tenant's own SBC trunks)",
            Function::PstnCalls => "PSTN calls (Calling Plans and Operator Connect)",
        }
    }
}

/// Who is asking for a request to Graph: the request budget (`graph::RequestBudget`) serves
/// the recent poll first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// The recent poll: new calls are counted within a poll interval only if it never waits.
    Recent,
    /// Late polls and sweeps: long reads that take what the recent poll leaves.
    Background,
}

impl Priority {
    /// The `priority` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Recent => "recent",
            Priority::Background => "background",
        }
    }
}

pub mod collector_args;
pub mod graph_args;
pub mod limits_args;
