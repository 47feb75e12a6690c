//! Counting each row exactly once: which windows to read and when ([`poller`]), the rows a
//! tenant has shown and what they add up to ([`state`]), and the durable copy of both
//! ([`store`]).

pub mod poller;
pub mod schedule_args;
pub mod state;
pub mod store;
pub mod store_args;
