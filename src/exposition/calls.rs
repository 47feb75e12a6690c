//! The call metrics of each source: its function's families, then the rows counted,
//! skipped and how late they arrived, rendered from the aggregates by a prometheus
//! [`Collector`]; and [`AllCalls`], the sources of a process as one exposition.
//!
//! The aggregates stay plain data that can be saved and restored, and become families only
//! when `/metrics` is rendered. Names, labels and HELP texts are a contract with
//! dashboards, alerts and users' queries: change them only with care (the golden
//! `/metrics` test shows every change).

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};

use crate::counting::state::{Aggregates, TenantState, ARRIVAL_DELAY_BUCKETS};
use crate::source::family::{counter, family, histogram, Family};
use crate::source::CallLog;

/// Renders a source's call aggregates on every scrape.
pub struct StateCollector<L: CallLog> {
    state: Arc<Mutex<TenantState<L>>>,
    descs: Vec<Desc>,
}

const INGESTED: Family = Family {
    name: "teams_voice_exporter_rows_ingested_total",
    help: "Rows counted into the call metrics: each row once, the first time it was seen.",
    labels: &["endpoint"],
};
const INVALID: Family = Family {
    name: "teams_voice_exporter_rows_invalid_total",
    help: "Malformed rows skipped (each distinct row once); the log names each one.",
    labels: &["endpoint"],
};
const ARRIVAL: Family = Family {
    name: "teams_voice_exporter_row_arrival_delay_seconds",
    help: "How late Graph publishes rows: first seen minus call end, for counted rows.",
    labels: &["endpoint"],
};

/// The families every function shares, after its own.
const SHARED: [&Family; 3] = [&INGESTED, &INVALID, &ARRIVAL];

impl<L: CallLog> StateCollector<L> {
    pub fn new(state: Arc<Mutex<TenantState<L>>>) -> Self {
        let descs = L::FAMILIES
            .iter()
            .chain(SHARED.iter())
            .map(|f| f.desc())
            .collect();
        StateCollector { state, descs }
    }

    /// The aggregates `/metrics` shows and their generation, taken under the state's lock
    /// and rendered after it is released, so that a scrape never holds up ingestion.
    pub fn snapshot(&self) -> (u64, Arc<Aggregates<L::Totals>>) {
        self.state.lock().exposed_snapshot()
    }

    /// The generation of the aggregates `/metrics` shows.
    pub fn generation(&self) -> u64 {
        self.state.lock().generation()
    }

    /// The call metric families of `a`.
    pub fn families(&self, a: &Aggregates<L::Totals>) -> Vec<MetricFamily> {
        let endpoint = [L::FUNCTION.name()];
        let mut families = L::families(&a.function);
        families.extend([
            family(
                &INGESTED,
                MetricType::COUNTER,
                vec![counter(&INGESTED, &endpoint, a.rows_ingested)],
            ),
            family(
                &INVALID,
                MetricType::COUNTER,
                vec![counter(&INVALID, &endpoint, a.rows_invalid)],
            ),
            family(
                &ARRIVAL,
                MetricType::HISTOGRAM,
                vec![histogram(
                    &ARRIVAL,
                    &endpoint,
                    ARRIVAL_DELAY_BUCKETS,
                    &a.arrival_delay,
                )],
            ),
        ]);
        families
    }
}

/// The call metrics of a source, whatever its function, as `/metrics` renders them.
pub trait CallMetrics: Send + Sync {
    /// Changes whenever the aggregates `/metrics` shows change.
    fn generation(&self) -> u64;
    /// The families as of one generation, and that generation.
    fn gather(&self) -> (u64, Vec<MetricFamily>);
}

impl<L: CallLog> CallMetrics for StateCollector<L> {
    fn generation(&self) -> u64 {
        StateCollector::generation(self)
    }

    fn gather(&self) -> (u64, Vec<MetricFamily>) {
        let (generation, aggregates) = self.snapshot();
        (generation, self.families(&aggregates))
    }
}

impl<L: CallLog> Collector for StateCollector<L> {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (_, aggregates) = self.snapshot();
        self.families(&aggregates)
    }
}

/// The call-quality collector's `teams_direct_routing_audio_*` families, rendered with
/// the tenant's other call metrics.
pub struct QualityCalls(pub crate::quality::collector::CallQuality);

impl CallMetrics for QualityCalls {
    fn generation(&self) -> u64 {
        self.0.generation()
    }

    fn gather(&self) -> (u64, Vec<MetricFamily>) {
        let (generation, totals) = self.0.snapshot();
        (generation, totals.families())
    }
}

/// The call metrics of every source of the process, as `/metrics` shows them: each
/// source's families in the order the sources were given, families that several sources
/// share (the rows counted, skipped and their delay, told apart by `endpoint`) rendered
/// once with every source's series.
pub struct AllCalls(pub Vec<Box<dyn CallMetrics>>);

impl CallMetrics for AllCalls {
    fn generation(&self) -> u64 {
        // Each source's generation only grows, so their sum changes whenever one does.
        self.0
            .iter()
            .fold(0u64, |sum, source| sum.wrapping_add(source.generation()))
    }

    fn gather(&self) -> (u64, Vec<MetricFamily>) {
        let mut generation = 0u64;
        let mut families: Vec<MetricFamily> = Vec::new();
        for source in &self.0 {
            let (source_generation, source_families) = source.gather();
            generation = generation.wrapping_add(source_generation);
            for mut family in source_families {
                match families.iter_mut().find(|f| f.name() == family.name()) {
                    Some(shared) => shared.mut_metric().extend(family.take_metric()),
                    None => families.push(family),
                }
            }
        }
        (generation, families)
    }
}
