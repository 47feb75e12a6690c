//! `/metrics` rendering with 1,000, 10,000 and 50,000 call series.
//!
//! The aggregates are real ones (synthetic rows counted by `TenantState::ingest`), rendered
//! by the exporter's `Exposition` (the call metrics through `StateCollector` and the text
//! encoder, the self-metrics and process metrics of a real registry), plain and gzipped,
//! as `/metrics` answers. Two cases each:
//!
//! - `new generation`: the aggregates changed since the last scrape (a poll counted rows),
//!   so the call metrics are rendered and compressed anew: what every scrape cost before
//!   the rendering was kept, and what the first scrape after a poll costs now;
//! - `same generation`: nothing was counted since the last scrape, the common case (polls
//!   run every minute, scrapes come every 15 s from each of several Prometheus servers).
//!
//! Each rendering of a new generation also checks every series against those already
//! shown (`exposition::first_samples`, which shows new series at 0 first); the last column,
//! `series check`, is that step alone.
//!
//! Run with `cargo bench --bench metrics_render`; `TVE_BENCH_SERIES` (default
//! `1000,10000,50000`) and `TVE_BENCH_ROUNDS` (default 31) change it.

mod common;

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::Registry;
use teams_voice_exporter::counting::state::Ingest;
use teams_voice_exporter::source::direct_routing::DirectRouting;

type TenantState = teams_voice_exporter::counting::state::TenantState<DirectRouting>;
use teams_voice_exporter::exposition::calls::{CallMetrics, StateCollector};
use teams_voice_exporter::exposition::first_samples::FirstSamples;
use teams_voice_exporter::exposition::render::Exposition;
use teams_voice_exporter::exposition::self_metrics::SelfMetrics;

use common::{env_or, median, rows_for_series, time_rounds};

/// The target for a whole scrape under load (issue #7): p99 under 25 ms with 10,000
/// series and 32 scrapers, which `scripts/load.sh` measures end to end.
const SCRAPE_P99_TARGET_MS: f64 = 25.0;

fn main() {
    let sizes: Vec<usize> = std::env::var("TVE_BENCH_SERIES")
        .unwrap_or_else(|_| "1000,10000,50000".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let rounds: usize = env_or("TVE_BENCH_ROUNDS", 31);
    println!("/metrics rendering benchmark: {rounds} rounds each, median (best); one core");
    println!(
        "{:>8} {:>8} {:>10} {:>10} | {:>22} {:>22} | {:>22} {:>22} | {:>22}",
        "target",
        "series",
        "plain",
        "gzip",
        "new generation, plain",
        "new generation, gzip",
        "same generation, plain",
        "same generation, gzip",
        "series check"
    );
    for target in sizes {
        let registry = Registry::new();
        SelfMetrics::register(&registry).expect("self-metrics");
        let state = Arc::new(Mutex::new(TenantState::new()));
        let rows = rows_for_series(target);
        let now = "2026-11-27T12:00:00Z".parse().unwrap();
        let from = "2026-11-27T00:00:00Z".parse().unwrap();
        state
            .lock()
            .ingest(rows.iter().map(String::as_str), Ingest::Count, now, from);
        // The series exist before the exposition, as restored ones would: with no hold they
        // are shown with their values at once, and every rendering checks each series
        // against the ones already shown, as in steady state.
        let exposition = Exposition::new(registry, Box::new(StateCollector::new(state.clone())))
            .with_new_series_hold(std::time::Duration::ZERO)
            // As the exporter runs: its default bound on the series (issue #18).
            .with_max_series(teams_voice_exporter::exposition::series_bound::DEFAULT_MAX_SERIES);
        let plain = exposition.render(false).expect("render");
        let series = String::from_utf8_lossy(&plain.bytes)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        let gzip = exposition.render(true).expect("render");
        assert!(gzip.gzip);

        let cell =
            |times: &[std::time::Duration]| format!("{:>9.2?} ({:>9.2?})", median(times), times[0]);
        let new_plain = time_rounds(rounds, || {
            state.lock().publish();
            exposition.render(false).expect("render");
        });
        let new_gzip = time_rounds(rounds, || {
            state.lock().publish();
            exposition.render(true).expect("render");
        });
        let same_plain = time_rounds(rounds, || {
            exposition.render(false).expect("render");
        });
        let same_gzip = time_rounds(rounds, || {
            exposition.render(true).expect("render");
        });
        // The check alone, on the families a new generation renders, all of them shown.
        let collector = StateCollector::new(state.clone());
        let (_, families) = collector.gather();
        let mut first_samples = FirstSamples::new(std::time::Duration::ZERO, &families);
        let mut check: Vec<_> = (0..rounds)
            .map(|_| {
                let mut families = families.clone();
                let started = std::time::Instant::now();
                first_samples.apply(&mut families, started);
                let took = started.elapsed();
                std::hint::black_box(&families);
                took
            })
            .collect();
        check.sort();
        println!(
            "{target:>8} {series:>8} {:>9}K {:>9}K | {:>22} {:>22} | {:>22} {:>22} | {:>22}",
            plain.bytes.len() / 1024,
            gzip.bytes.len() / 1024,
            cell(&new_plain),
            cell(&new_gzip),
            cell(&same_plain),
            cell(&same_gzip),
            cell(&check),
        );
    }
    println!(
        "limit: a whole scrape under 32 concurrent scrapers at p99 < {SCRAPE_P99_TARGET_MS} ms with 10,000 series (scripts/load.sh); \
         on 2 cores that leaves about {:.1} ms of CPU per scrape",
        SCRAPE_P99_TARGET_MS * 2.0 / 32.0
    );
}
