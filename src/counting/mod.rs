//! Counting each row exactly once: which windows to read and when ([`schedule`], pure
//! planning), whether that fits the request budget ([`feasibility`]), carrying the plan
//! out ([`poller`]), the rows a tenant has shown and what they
//! add up to ([`state`]), the durable copy of both ([`store`]), and how it went
//! ([`metrics`]).

pub mod feasibility;
pub mod metrics;
pub mod poller;
pub mod schedule;
pub mod schedule_args;
pub mod state;
pub mod store;
pub mod store_args;
