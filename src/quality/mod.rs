//! Call quality per trunk (`--collector.call-quality`): the audio streams of every
//! established Direct Routing call, read from its Graph call record.
//!
//! Counting ([`crate::counting`]) hands every established call it counts, exactly once, to
//! the collector before it saves the row; the collector keeps it pending, fetches its
//! record after `--call-quality.wait` and again with backoff while Graph answers 404, until
//! `--call-quality.give-up`, and counts the record's audio streams once. [`record`] reads a
//! record (which way each stream flows, how the Call Quality Dashboard classifies it),
//! [`totals`] is what the streams add up to, [`queue`] the pending records and those done,
//! [`store`] their durable copy beside the Direct Routing state file, [`collector`] the
//! loop that fetches, and [`args`] the flags.

pub mod args;
pub mod collector;
pub mod metrics;
pub mod queue;
pub mod record;
pub mod store;
pub mod totals;
