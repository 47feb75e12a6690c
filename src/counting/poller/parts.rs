//! Reading a poll's sub-windows: up to `--graph.concurrency` at a time, rows counted as
//! pages arrive, and the parts left unfinished by a failure (all the rest when Graph
//! refuses the tenant as a whole) kept for the next poll.

use futures_util::StreamExt;

use super::Polling;
use crate::counting::state::Ingest;
use crate::source::graph::Priority;
use crate::source::graph::{CallWindow, GraphError, WindowRead};
use crate::source::CallLog;

impl<L: CallLog> Polling<L> {
    /// Reads `parts` with up to `--graph.concurrency` at a time, counting their rows as
    /// pages arrive.
    pub(super) async fn read_parts(&self, priority: Priority, parts: Vec<CallWindow>) -> PartsRead {
        let graph = &self.graph;
        let state = &self.state;
        let clock = &self.clock;
        // Each row is counted once whichever sub-window (or lane) returns it: the state
        // keeps the ids under its lock, and sub-windows are half-open so they share no start.
        let all = parts.clone();
        let reads = parts.into_iter().map(|part| async move {
            let mut ingested = 0;
            let read = graph
                .read_window(L::FUNCTION, part, priority, |page| {
                    let now = clock.now();
                    let outcome = state.lock().ingest(
                        page.value.iter().map(|raw| raw.get()),
                        Ingest::Count,
                        now,
                        part.from,
                    );
                    ingested += outcome.ingested;
                })
                .await;
            (part, read, ingested)
        });
        // `buffered` keeps the parts' order: a sweep's newest parts are read first.
        let mut reads = futures_util::stream::iter(reads).buffered(graph.concurrency());
        let mut out = PartsRead {
            total: WindowRead::default(),
            ingested: 0,
            result: Ok(()),
            unfinished: Vec::new(),
        };
        let mut returned = Vec::with_capacity(all.len());
        while let Some((part, read, part_ingested)) = reads.next().await {
            returned.push(part);
            out.ingested += part_ingested;
            match read {
                Ok(read) => {
                    out.total.pages += read.pages;
                    out.total.rows += read.rows;
                }
                Err(error) => {
                    out.unfinished.push(part);
                    let refused = error.refuses_tenant();
                    out.result = std::mem::replace(&mut out.result, Ok(())).and(Err(error));
                    // The other parts would be refused too: left unfinished, not requested.
                    if refused {
                        out.unfinished
                            .extend(all.iter().filter(|p| !returned.contains(p)));
                        break;
                    }
                }
            }
        }
        out
    }
}

/// What reading a poll's sub-windows came to.
pub(super) struct PartsRead {
    pub(super) total: WindowRead,
    pub(super) ingested: u64,
    /// The first failure, if any part failed.
    pub(super) result: Result<(), GraphError>,
    /// The parts that failed, in the order they finished.
    pub(super) unfinished: Vec<CallWindow>,
}
