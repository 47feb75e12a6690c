//! Memory per remembered row id and per series, counted by the allocator.
//!
//! A counting global allocator keeps the number of bytes live on the heap (requested
//! sizes, so the allocator's own rounding and fragmentation are not in it; the load script
//! measures resident memory, which has them). Each figure is the growth of live bytes
//! across building the thing measured, with everything temporary dropped:
//!
//! - remembered ids: rows ingested in chunks of 10,000 (first-start baseline mode, GUID ids
//!   as Graph sends them), then the same with durable state after a commit has taken the
//!   changed ids;
//! - series: the aggregates (a clone of them, as durable state keeps one for `/metrics`),
//!   and the kept rendering of the call metrics (text and deflated text).
//!
//! Run with `cargo bench --bench memory`; `TVE_BENCH_IDS` (default `300000`) and
//! `TVE_BENCH_SERIES` (default `10000`) change the sizes.

#![allow(
    unsafe_code,
    reason = "a counting global allocator is the measurement; it only forwards to System"
)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::Registry;
use teams_voice_exporter::counting::state::Ingest;
use teams_voice_exporter::source::direct_routing::DirectRouting;

type TenantState = teams_voice_exporter::counting::state::TenantState<DirectRouting>;
type Aggregates = teams_voice_exporter::counting::state::Aggregates<
    teams_voice_exporter::source::direct_routing::DirectRoutingTotals,
>;
use teams_voice_exporter::exposition::calls::StateCollector;
use teams_voice_exporter::exposition::render::Exposition;
use teams_voice_exporter::exposition::self_metrics::SelfMetrics;

use common::{env_or, rows_for_series};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Remembers `ids` GUID rows into `state`, 10,000 at a time.
fn remember(state: &mut TenantState, ids: usize) {
    let now = "2026-11-27T12:00:00Z".parse().unwrap();
    let from = "2026-11-24T12:00:00Z".parse().unwrap();
    for chunk in (0..ids).collect::<Vec<_>>().chunks(10_000) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|n| {
                format!(
                    r#"{{"id":"{:08x}-{:04x}-4{:03x}-8000-{:012x}","startDateTime":"2026-11-27T10:00:00Z"}}"#,
                    n.wrapping_mul(2_654_435_761) as u32,
                    n % 0xffff,
                    n % 0xfff,
                    n
                )
            })
            .collect();
        state.ingest(
            rows.iter().map(String::as_str),
            Ingest::RememberOnly,
            now,
            from,
        );
    }
}

fn main() {
    let ids: usize = env_or("TVE_BENCH_IDS", 300_000);
    let target_series: usize = env_or("TVE_BENCH_SERIES", 10_000);
    println!("memory benchmark: live heap bytes (requested sizes), counted by the allocator");

    let before = live();
    let mut state = TenantState::new();
    remember(&mut state, ids);
    assert_eq!(state.remembered_rows(), ids);
    let memory = live() - before;
    println!(
        "remembered ids:          {ids} ids in {:.1} MiB = {:.1} bytes per id (without --state.path)",
        memory as f64 / 1048576.0,
        memory as f64 / ids as f64
    );
    drop(state);

    let before = live();
    let mut state = TenantState::durable(HashMap::new(), Aggregates::default());
    remember(&mut state, ids);
    let pending = live() - before;
    let changes = state.take_changes();
    drop(changes);
    let committed = live() - before;
    println!(
        "remembered ids, durable: {:.1} bytes per id before the first commit, {:.1} after it",
        pending as f64 / ids as f64,
        committed as f64 / ids as f64
    );
    drop(state);

    let registry = Registry::new();
    SelfMetrics::register(&registry).expect("self-metrics");
    let state = Arc::new(Mutex::new(TenantState::new()));
    let rows = rows_for_series(target_series);
    let now = "2026-11-27T12:00:00Z".parse().unwrap();
    let from = "2026-11-27T00:00:00Z".parse().unwrap();
    state
        .lock()
        .ingest(rows.iter().map(String::as_str), Ingest::Count, now, from);
    drop(rows);
    let exposition = Exposition::new(registry, Box::new(StateCollector::new(state.clone())))
        .with_max_series(teams_voice_exporter::exposition::series_bound::DEFAULT_MAX_SERIES);
    let before = live();
    let body = exposition.render(false).expect("render");
    let series = String::from_utf8_lossy(&body.bytes)
        .lines()
        .filter(|l| l.starts_with("teams_direct_routing_"))
        .count();
    drop(body);
    let rendered = live() - before;
    let before = live();
    let copy = state.lock().aggregates.clone();
    let aggregates = live() - before;
    drop(copy);
    println!(
        "series:                  {series} call series; aggregates {:.1} bytes per series (twice that with --state.path: live and committed), kept rendering {:.1} bytes per series",
        aggregates as f64 / series as f64,
        rendered as f64 / series as f64
    );
    println!(
        "limit: 64 MiB resident with 300,000 ids and 10,000 series (scripts/load.sh measures resident memory)"
    );
}
