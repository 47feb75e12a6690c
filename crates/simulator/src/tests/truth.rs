//! The ground truth benchmarks and the exporter's first-start rule compare with: the rows
//! served and when, and the rows by call start. On a manual clock, so times are exact.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use tve_clock::Clock;

use super::{all_pages, config, scenario, start, stored_rows, token, whole_window};
use crate::direct_routing::{CallRow, Origin};
use crate::ids::uuid;
use crate::store::StoredRow;
use crate::time::{datetime_of_ms, datetime_of_ticks};
use crate::{GroundTruth, SimHandle, Traffic};

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

fn ids(truth: &GroundTruth) -> HashSet<String> {
    truth.rows.iter().map(|row| row.id.clone()).collect()
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

#[tokio::test]
async fn ground_truth_started_from_selects_visible_well_formed_rows_by_start() {
    let (clock, _) = manual_clock();
    let sim = start(config(Traffic::Scenario(scenario(20, 10, 4)), clock)).await;
    let visible = stored_rows(&sim);
    let from_row = &visible[7];
    let from = datetime_of_ticks(from_row.start);
    let expected = |rows: &[CallRow], from_ticks: i64| -> HashSet<String> {
        rows.iter()
            .filter(|row| !row.is_malformed() && row.start >= from_ticks)
            .map(|row| uuid(row.id))
            .collect()
    };

    // Before release: the preexisting rows that started from then on, `from` included.
    let truth = sim.ground_truth_started_from(from);
    assert!(ids(&truth).contains(&uuid(from_row.id)));
    assert_eq!(ids(&truth), expected(&visible, from_row.start));
    assert_eq!((truth.visible_rows, truth.invalid_rows), (20, 0));
    let just_after = sim.ground_truth_started_from(from + chrono::Duration::nanoseconds(100));
    assert!(!ids(&just_after).contains(&uuid(from_row.id)));
    assert_eq!(just_after.rows.len(), truth.rows.len() - 1);

    // After release, late rows join whatever their start; malformed ones never count.
    sim.release();
    advance_secs(&sim, 21);
    let all = stored_rows(&sim);
    assert_eq!(all.len(), 34);
    let truth = sim.ground_truth_started_from(from);
    assert_eq!(ids(&truth), expected(&all, from_row.start));
    // Unlike the scenario's own ground truth (the late rows), preexisting rows count.
    assert!(ids(&truth).contains(&uuid(from_row.id)));
    assert!(!ids(&sim.ground_truth()).contains(&uuid(from_row.id)));
    assert_eq!((truth.visible_rows, truth.invalid_rows), (34, 4));
    let everything = sim.ground_truth_started_from(DateTime::<Utc>::MIN_UTC);
    assert_eq!(everything.rows.len(), 30);

    // The same over HTTP.
    let url = format!(
        "{}/_sim/ground-truth?started_from={}",
        sim.base_url(),
        url::form_urlencoded::byte_serialize(from.to_rfc3339().as_bytes()).collect::<String>()
    );
    let over_http: GroundTruth = reqwest::get(url)
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(over_http, truth);
    sim.shutdown().await;
}

#[tokio::test]
async fn ground_truth_started_from_takes_live_history_too() {
    let (clock, bind) = manual_clock();
    let traffic = Traffic::Live {
        calls_per_day: 50_000.0,
        history: Duration::from_secs(6 * 3600),
        trunks: crate::DEMO_TRUNKS,
    };
    let sim = start(config(traffic, clock)).await;
    // Nothing became visible since bind, but the history holds calls of the last hours.
    assert!(sim.ground_truth().rows.is_empty());
    let from = bind - chrono::Duration::hours(3);
    let truth = sim.ground_truth_started_from(from);
    assert!(truth.rows.len() > 100, "{}", truth.rows.len());
    assert!(truth
        .rows
        .iter()
        .all(|row| { DateTime::parse_from_rfc3339(&row.start).expect("start") >= from }));
    let visible_recent = stored_rows(&sim)
        .iter()
        .filter(|row| datetime_of_ticks(row.start) >= from)
        .count();
    assert_eq!(truth.rows.len(), visible_recent);
    sim.shutdown().await;
}
