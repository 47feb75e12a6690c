//! The ground truth benchmarks compare with: the rows served and when. On a manual clock,
//! so times are exact.

use std::time::Duration;

use chrono::{DateTime, Utc};

use tve_clock::Clock;

use super::{all_pages, config, scenario, start, stored_rows, token, whole_window};
use crate::direct_routing::{CallRow, Origin};
use crate::time::{datetime_of_ms, datetime_of_ticks};
use crate::{SimHandle, Traffic};

fn manual_clock() -> (Clock, DateTime<Utc>) {
    let start: DateTime<Utc> = "2026-03-02T10:00:00Z".parse().expect("static time");
    (Clock::manual(start), start)
}

fn advance_secs(sim: &SimHandle, secs: u64) {
    sim.clock().advance(Duration::from_secs(secs));
}

/// `(start, visible_at)` of rows, sorted.
fn sorted_times<'a>(
    rows: impl Iterator<Item = &'a CallRow>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut times: Vec<_> = rows
        .map(|row| (datetime_of_ticks(row.start), datetime_of_ms(row.visible_ms)))
        .collect();
    times.sort();
    times
}

#[tokio::test]
async fn served_rows_record_each_well_formed_row_once_when_first_served() {
    let (clock, bind) = manual_clock();
    let mut config = config(Traffic::Scenario(scenario(6, 4, 3)), clock);
    config.page_size = 4;
    let sim = start(config).await;
    let token = token(&sim).await;
    assert!(sim.served_rows().is_empty());

    advance_secs(&sim, 1);
    let first_read = bind + chrono::Duration::seconds(1);
    assert_eq!(all_pages(&whole_window(&sim), &token).await.len(), 2);
    let served = sim.served_rows();
    assert_eq!(served.len(), 6);
    assert!(served
        .iter()
        .all(|row| row.first_served_at == first_read && row.visible_at == bind));
    let preexisting = stored_rows(&sim);
    let mut times: Vec<_> = served
        .iter()
        .map(|row| (row.start, row.visible_at))
        .collect();
    times.sort();
    assert_eq!(times, sorted_times(preexisting.iter()));

    // Served again: not recorded again.
    advance_secs(&sim, 5);
    all_pages(&whole_window(&sim), &token).await;
    assert_eq!(sim.served_rows(), served);

    // Late rows once released and visible; malformed ones are not recorded.
    sim.release();
    advance_secs(&sim, 21);
    let late_read = sim.clock().now();
    let pages = all_pages(&whole_window(&sim), &token).await;
    let rows_served: usize = pages
        .iter()
        .map(|page| page["value"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(rows_served, 13);
    let now_served = sim.served_rows();
    assert_eq!(now_served.len(), 10);
    assert_eq!(now_served[..6], served[..]);
    let late: Vec<CallRow> = stored_rows(&sim)
        .into_iter()
        .filter(|row| row.origin == Origin::Late)
        .collect();
    let mut times: Vec<_> = now_served[6..]
        .iter()
        .map(|row| (row.start, row.visible_at))
        .collect();
    times.sort();
    assert_eq!(times, sorted_times(late.iter()));
    assert!(now_served[6..]
        .iter()
        .all(|row| row.first_served_at == late_read && row.visible_at > first_read));
    sim.shutdown().await;
}
