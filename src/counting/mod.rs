//! Counting each row exactly once: which windows to read and when ([`schedule`], pure
//! planning), carrying the plan out ([`poller`]), the rows a tenant has shown and what they
//! add up to ([`state`]), the durable copy of both ([`store`]), and how it went
//! ([`metrics`]).

pub mod metrics;
pub mod poller;
pub mod schedule;
pub mod schedule_args;
pub mod state;
pub mod store;
pub mod store_args;
