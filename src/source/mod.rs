//! Where rows come from: a *source* is one tenant and one call-log function.
//!
//! [`auth`] gets the tenant's access tokens from Microsoft Entra ID, [`graph`] reads a call
//! window of one function page by page under Graph's rules (paging, retries, Retry-After),
//! and [`direct_routing`] reads the rows of `getDirectRoutingCalls`.

pub mod auth;
pub mod cloud;
pub mod direct_routing;
pub mod graph;
pub mod graph_args;
