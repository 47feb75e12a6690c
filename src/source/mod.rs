//! Where rows come from: a *source* is one tenant and one call-log function.
//!
//! [`auth`] gets the tenant's access tokens from Microsoft Entra ID, [`graph`] reads a call
//! window of one function page by page under Graph's rules (paging, retries, Retry-After),
//! [`direct_routing`] reads the rows of `getDirectRoutingCalls`, and [`metrics`] records
//! how talking to Graph and Entra ID went.

pub mod auth;
pub mod cloud;
pub mod direct_routing;
pub mod graph;
pub mod metrics;

/// A Graph call-log function: what a source reads besides its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `getDirectRoutingCalls`: calls through the tenant's own SBC trunks.
    DirectRoutingCalls,
}

impl Function {
    /// Every function the exporter can read.
    pub const ALL: [Function; 1] = [Function::DirectRoutingCalls];

    /// The function's name in the URL and in the `endpoint` label.
    pub fn name(self) -> &'static str {
        match self {
            Function::DirectRoutingCalls => "getDirectRoutingCalls",
        }
    }
}
pub mod graph_args;
