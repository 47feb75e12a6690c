//! Ingest: Graph page bytes to counted rows, against a bare parse of the same bytes.
//!
//! Pages come from the simulated tenant (its model of Graph's rows, quirks included). Each
//! path runs on one thread, so its rate is per core:
//!
//! - `bare parse`: `serde_json::from_slice` of each page straight into `DirectRoutingRow`
//!   (timestamps included), nothing else: the ceiling of this path;
//! - `new rows`: what the poller does with a page nobody has seen: parse the page into raw
//!   rows, then `TenantState::ingest` (parse, dedup, count), into an empty state;
//! - `seen rows`: the same pages again, every row already remembered, as most rows of a
//!   sweep are;
//! - the same two with durable state (`--state.path`), which also tracks changed ids.
//!
//! Run with `cargo bench --bench ingest`; `TVE_BENCH_CALLS_PER_DAY` (default 100000),
//! `TVE_BENCH_HOURS` (default 6) and `TVE_BENCH_ROUNDS` (default 9) change the workload.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use teams_voice_exporter::counting::state::Ingest;
use teams_voice_exporter::source::direct_routing::DirectRouting;

type TenantState = teams_voice_exporter::counting::state::TenantState<DirectRouting>;
type Aggregates = teams_voice_exporter::counting::state::Aggregates<
    teams_voice_exporter::source::direct_routing::DirectRoutingTotals,
>;
use teams_voice_exporter::source::direct_routing::DirectRoutingRow;
use teams_voice_exporter::source::row::Page;

use common::{env_or, median, simulated_pages, time_rounds, Pages};

/// A page parsed straight into rows, as a program that trusted every row would.
#[derive(Deserialize)]
struct BarePage {
    value: Vec<DirectRoutingRow>,
}

fn ingest_all(state: &mut TenantState, pages: &Pages) -> u64 {
    let mut ingested = 0;
    for body in &pages.bodies {
        let page: Page = serde_json::from_slice(body).expect("page");
        ingested += state
            .ingest(
                page.value.iter().map(|raw| raw.get()),
                Ingest::Count,
                pages.read_at,
                pages.from,
            )
            .ingested;
    }
    ingested
}

fn main() {
    let calls_per_day: f64 = env_or("TVE_BENCH_CALLS_PER_DAY", 100_000.0);
    let hours: u64 = env_or("TVE_BENCH_HOURS", 6);
    let rounds: usize = env_or("TVE_BENCH_ROUNDS", 9);
    let pages = simulated_pages(calls_per_day, hours);
    let rows = pages.rows as f64;
    println!(
        "ingest benchmark: {} pages, {} rows, {:.1} MiB of JSON ({calls_per_day} calls a day, last {hours} h); {rounds} rounds each, median (best)",
        pages.bodies.len(),
        pages.rows,
        pages.bytes() as f64 / (1024.0 * 1024.0)
    );

    let bare = time_rounds(rounds, || {
        let mut n = 0;
        for body in &pages.bodies {
            let page: BarePage = serde_json::from_slice(body).expect("bare page");
            n += page.value.len();
        }
        assert_eq!(n, pages.rows, "every simulated row is a valid row");
    });
    let ceiling = rows / median(&bare).as_secs_f64();

    let new_rows = time_rounds(rounds, || {
        let mut state = TenantState::new();
        let ingested = ingest_all(&mut state, &pages);
        assert_eq!(ingested as usize, pages.rows);
    });
    let mut seen_state = TenantState::new();
    ingest_all(&mut seen_state, &pages);
    let seen_rows = time_rounds(rounds, || {
        assert_eq!(ingest_all(&mut seen_state, &pages), 0);
    });

    let new_durable = time_rounds(rounds, || {
        let mut state = TenantState::durable(HashMap::new(), Aggregates::default());
        ingest_all(&mut state, &pages);
    });
    let mut durable = TenantState::durable(HashMap::new(), Aggregates::default());
    ingest_all(&mut durable, &pages);
    let seen_durable = time_rounds(rounds, || {
        assert_eq!(ingest_all(&mut durable, &pages), 0);
    });

    println!(
        "{:<32} {:>14} {:>14} {:>16} {:>10}",
        "path", "median", "best", "rows/s per core", "of bare"
    );
    let line = |name: &str, times: &[Duration]| {
        let rate = rows / median(times).as_secs_f64();
        println!(
            "{name:<32} {:>14.2?} {:>14.2?} {:>16.0} {:>9.2}x",
            median(times),
            times[0],
            rate,
            rate / ceiling
        );
    };
    line("bare parse (ceiling)", &bare);
    line("ingest, new rows", &new_rows);
    line("ingest, seen rows", &seen_rows);
    line("ingest, new rows, durable", &new_durable);
    line("ingest, seen rows, durable", &seen_durable);
    println!("target: ingest at least 0.50x the bare-parse rate");
}
