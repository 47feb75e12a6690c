//! Call records over HTTP on a manual clock: when they are published, 404s before, paged
//! sessions, their own rate limit, the never-published share and fetch counting; and the
//! quality model: a failing trunk's audio is poor, a healthy one's mostly good.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;

use tve_clock::Clock;

use super::{config, get, scenario, start, stored_rows, token};
use crate::call_records::{record_json, RecordContext};
use crate::direct_routing::{draw_call, Degradation, TrunkNames};
use crate::ids::uuid;
use crate::{Faults, GraphLimits, RateLimit, SimHandle, SimulationArgs, Traffic};

fn manual_clock() -> Clock {
    let start: DateTime<Utc> = "2026-03-02T10:00:00Z".parse().expect("static time");
    Clock::manual(start)
}

/// A scenario tenant on a manual clock with these faults.
async fn tenant(preexisting: usize, late: usize, malformed: usize, faults: Faults) -> SimHandle {
    let mut config = config(
        Traffic::Scenario(scenario(preexisting, late, malformed)),
        manual_clock(),
    );
    config.faults = faults;
    start(config).await
}

fn record_url(sim: &SimHandle, id: &str) -> String {
    format!(
        "{}/v1.0/communications/callRecords/{id}?$expand=sessions($expand=segments)",
        sim.base_url()
    )
}

async fn fetch(sim: &SimHandle, id: &str, token: &str) -> (u16, Value) {
    let response = get(&record_url(sim, id), token).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

#[tokio::test]
async fn records_follow_established_calls_and_are_published_between_one_and_four_delays_later() {
    let delay = Duration::from_secs(12 * 3600);
    let faults = Faults {
        call_record_delay: delay,
        ..Faults::default()
    };
    let sim = tenant(300, 20, 10, faults).await;
    let now = sim.clock().now();
    let rows = stored_rows(&sim);
    let records = sim.call_records();
    let by_id: std::collections::HashMap<&str, _> =
        records.iter().map(|r| (r.id.as_str(), r)).collect();
    // Every established, well-formed visible call has one record, keyed by its
    // correlationId; failed calls and rows waiting for release have none.
    let established: HashSet<String> = rows
        .iter()
        .filter(|row| row.successful() && !crate::store::StoredRow::is_malformed(*row))
        .map(|row| uuid(row.correlation_id))
        .collect();
    assert_eq!(by_id.len(), records.len(), "one record per id");
    assert_eq!(
        by_id
            .keys()
            .map(|id| id.to_string())
            .collect::<HashSet<_>>(),
        established
    );
    assert!(established.len() > 150, "{}", established.len());
    let delay = chrono::Duration::from_std(delay).expect("delay");
    let mut pending = 0;
    for row in rows.iter().filter(|row| row.successful()) {
        let record = by_id[uuid(row.correlation_id).as_str()];
        let published = record.published_at.expect("all published");
        let end = crate::time::datetime_of_ms(row.end_ms());
        let visible = crate::time::datetime_of_ms(row.visible_ms);
        assert!(published >= visible, "never before its row");
        assert!(published >= end + delay, "{published} {end}");
        assert!(published <= (end + delay * 4).max(visible) + chrono::Duration::milliseconds(1));
        assert_eq!(record.record["id"], record.id);
        assert_eq!(record.trunk_fqdn, record.trunk_fqdn.to_ascii_lowercase());
        pending += usize::from(published > now);
    }
    assert!(pending > 10, "some records still to come: {pending}");
    assert!(
        rows.iter().any(|row| !row.successful()),
        "the scenario has failed calls"
    );

    // Late rows: their records appear once they are released, never before their row.
    sim.release();
    sim.clock().advance(minutes(1));
    let after = sim.call_records();
    assert!(after.len() > records.len(), "late rows brought records");
    let late_rows = stored_rows(&sim);
    for record in &after {
        let row = late_rows
            .iter()
            .find(|row| uuid(row.correlation_id) == record.id)
            .expect("its row is visible");
        let visible = crate::time::datetime_of_ms(row.visible_ms);
        assert!(record.published_at.expect("published") >= visible);
    }
}

#[tokio::test]
async fn a_record_answers_404_until_published_then_200_and_fetches_are_counted() {
    let faults = Faults {
        call_record_delay: Duration::from_secs(6 * 3600),
        ..Faults::default()
    };
    let sim = tenant(300, 0, 0, faults).await;
    let token = token(&sim).await;
    let now = sim.clock().now();
    let waiting = sim
        .call_records()
        .into_iter()
        .filter(|record| record.published_at.is_some_and(|at| at > now))
        .min_by_key(|record| record.published_at)
        .expect("a record still to come");
    let published = waiting.published_at.expect("published");

    let (status, body) = fetch(&sim, &waiting.id, &token).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "NotFound");
    // One millisecond early is still too early.
    let wait = (published - now - chrono::Duration::milliseconds(1))
        .to_std()
        .expect("ahead");
    sim.clock().advance(wait);
    assert_eq!(fetch(&sim, &waiting.id, &token).await.0, 404);
    sim.clock().advance(Duration::from_millis(1));
    let (status, body) = fetch(&sim, &waiting.id, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], waiting.id.as_str());
    // Served as the ground truth has it (the sessions of a record fit one page by default).
    let mut whole = waiting.record.clone();
    whole
        .as_object_mut()
        .expect("object")
        .remove("@odata.context");
    let mut served = body.clone();
    served
        .as_object_mut()
        .expect("object")
        .remove("@odata.context");
    assert_eq!(served, whole);

    let fetches = sim.call_record_fetches();
    assert_eq!(fetches.len(), 1);
    let counted = fetches[&waiting.id];
    assert_eq!(
        (counted.before_publication, counted.after_publication),
        (2, 1)
    );
    let stats = sim.stats();
    assert_eq!(stats.call_record_requests, 3);
    assert_eq!(stats.call_record_not_found, 2);
    assert_eq!(stats.call_record_pages_served, 1);
    assert_eq!(stats.bad_requests, 0);
    assert!(stats.data_requests_by_function.is_empty());
}

#[tokio::test]
async fn failed_unknown_and_expired_calls_have_no_record() {
    let mut config = config(
        Traffic::Scenario(crate::Scenario {
            span: Duration::from_secs(40 * 24 * 3600),
            ..scenario(300, 0, 0)
        }),
        manual_clock(),
    );
    config.faults = Faults::default();
    let sim = start(config).await;
    let token = token(&sim).await;
    let rows = stored_rows(&sim);
    let failed = rows
        .iter()
        .find(|row| !row.successful())
        .expect("a failed call");
    let thirty_days_ago = sim.clock().now() - chrono::Duration::days(30);
    let old = rows
        .iter()
        .find(|row| row.successful() && crate::time::datetime_of_ticks(row.start) < thirty_days_ago)
        .expect("an established call older than 30 days");
    let recent = rows
        .iter()
        .find(|row| row.successful() && crate::time::datetime_of_ticks(row.start) > thirty_days_ago)
        .expect("a recent established call");
    let ids: HashSet<String> = sim.call_records().into_iter().map(|r| r.id).collect();
    assert!(!ids.contains(&uuid(failed.correlation_id)));
    assert!(!ids.contains(&uuid(old.correlation_id)));
    assert!(ids.contains(&uuid(recent.correlation_id)));
    for id in [
        uuid(failed.correlation_id),
        uuid(old.correlation_id),
        "5bd3a4fb-0d36-4c35-8c4b-8a5e2b0e6a0e".to_owned(),
        "not-a-guid".to_owned(),
    ] {
        let (status, body) = fetch(&sim, &id, &token).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("NotFound")),
            "{id}"
        );
    }
    assert_eq!(
        fetch(&sim, &uuid(recent.correlation_id), &token).await.0,
        200
    );
    // The failed and the expired call's rows exist, so they count as asked for; an id no
    // call has does not.
    let fetches = sim.call_record_fetches();
    assert!(!fetches.contains_key(&uuid(failed.correlation_id)));
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    // Tokens and the 403 fault are checked as for the call logs.
    let url = record_url(&sim, &uuid(recent.correlation_id));
    assert_eq!(get(&url, "bogus").await.status(), 401);
    sim.set_faults(Faults {
        forbidden: true,
        ..Faults::default()
    });
    assert_eq!(get(&url, &token).await.status(), 403);
}

#[tokio::test]
async fn sessions_are_paged_through_next_links() {
    let faults = Faults {
        call_record_session_page: 2,
        ..Faults::default()
    };
    let sim = tenant(400, 0, 0, faults).await;
    let token = token(&sim).await;
    let record = sim
        .call_records()
        .into_iter()
        .find(|record| record.record["sessions"].as_array().map_or(0, Vec::len) >= 5)
        .expect("a record of five sessions or more");
    let expected = record.record["sessions"]
        .as_array()
        .expect("sessions")
        .clone();

    let (status, first) = fetch(&sim, &record.id, &token).await;
    assert_eq!(status, 200);
    let mut sessions = first["sessions"].as_array().expect("sessions").clone();
    assert_eq!(sessions.len(), 2);
    let mut next = first["sessions@odata.nextLink"].as_str().map(str::to_owned);
    let mut pages = 1;
    while let Some(url) = next {
        assert!(
            url.contains("/sessions?$expand=segments&$skiptoken="),
            "{url}"
        );
        let response = get(&url, &token).await;
        assert_eq!(response.status(), 200, "{url}");
        let page: Value = response.json().await.expect("page");
        sessions.extend(page["value"].as_array().expect("value").iter().cloned());
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(
        sessions, expected,
        "every session once, in order, with segments"
    );
    assert_eq!(pages, expected.len().div_ceil(2));
    // Session pages are not fetches of the record.
    let fetches = sim.call_record_fetches();
    assert_eq!(fetches[&record.id].after_publication, 1);
    assert_eq!(sim.stats().call_record_requests, pages as u64);

    // Without $expand the record comes alone; without segments, sessions come bare.
    let bare: Value = get(
        &format!(
            "{}/v1.0/communications/callRecords/{}",
            sim.base_url(),
            record.id
        ),
        &token,
    )
    .await
    .json()
    .await
    .expect("record");
    assert!(bare.get("sessions").is_none() && bare["id"] == record.id.as_str());
    let shallow: Value = get(
        &format!(
            "{}/v1.0/communications/callRecords/{}?$expand=sessions",
            sim.base_url(),
            record.id
        ),
        &token,
    )
    .await
    .json()
    .await
    .expect("record");
    assert!(shallow["sessions"][0].get("segments").is_none());
    let response = get(
        &format!(
            "{}/v1.0/communications/callRecords/{}/sessions?$skiptoken=lots",
            sim.base_url(),
            record.id
        ),
        &token,
    )
    .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn call_records_have_their_own_limit_apart_from_the_call_logs() {
    let per = |requests, window_secs| {
        Some(RateLimit {
            requests,
            window_secs,
        })
    };
    let faults = Faults {
        limits: GraphLimits {
            per_function: per(2, 10),
            call_records: per(3, 10),
            ..GraphLimits::DOCUMENTED
        },
        ..Faults::default()
    };
    let sim = tenant(100, 0, 0, faults).await;
    let token = token(&sim).await;
    let id = sim.call_records()[0].id.clone();
    let calls = super::calls_url(&sim, "2026-03-01", "2026-03-02");
    // The call logs' limit fills up; call records pass.
    for _ in 0..2 {
        assert_eq!(get(&calls, &token).await.status(), 200);
    }
    assert_eq!(get(&calls, &token).await.status(), 429);
    for _ in 0..3 {
        assert_eq!(fetch(&sim, &id, &token).await.0, 200);
    }
    // The fourth call-record request in 10 s is refused, naming its own category.
    let response = get(&record_url(&sim, &id), &token).await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("ASCII")),
        Some("10")
    );
    let body: Value = response.json().await.expect("error");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("category:callRecords"), "{message}");
    let stats = sim.stats();
    assert_eq!(stats.call_record_throttled, 1);
    assert_eq!(stats.throttled_per_function, 1);
    assert_eq!(stats.throttled_per_app + stats.throttled_per_tenant, 0);
    assert_eq!(
        stats.retry_after_violations, 0,
        "two limits, two Retry-Afters"
    );
    assert_eq!(stats.data_requests_by_function["getDirectRoutingCalls"], 3);
    // The refused request is not a fetch; a window later both pass again.
    assert_eq!(sim.call_record_fetches()[&id].after_publication, 3);
    sim.clock().advance(Duration::from_secs(10));
    assert_eq!(get(&calls, &token).await.status(), 200);
    assert_eq!(fetch(&sim, &id, &token).await.0, 200);

    // The throttling fault falls on call records too.
    sim.set_faults(Faults {
        throttle_every: 1,
        ..Faults::default()
    });
    assert_eq!(fetch(&sim, &id, &token).await.0, 429);
    assert_eq!(sim.stats().call_record_throttled, 2);
}

#[tokio::test]
async fn a_share_of_records_is_never_published() {
    let faults = |share| Faults {
        unpublished_call_records: share,
        ..Faults::default()
    };
    let sim = tenant(2000, 0, 0, faults(0.1)).await;
    let records = sim.call_records();
    let never: Vec<_> = records
        .iter()
        .filter(|record| record.published_at.is_none())
        .collect();
    let share = never.len() as f64 / records.len() as f64;
    assert!((0.07..0.13).contains(&share), "{share}");
    // The same seed never publishes the same records.
    let again = tenant(2000, 0, 0, faults(0.1)).await;
    let never_again: HashSet<_> = again
        .call_records()
        .into_iter()
        .filter(|record| record.published_at.is_none())
        .map(|record| record.id)
        .collect();
    assert_eq!(
        never.iter().map(|r| r.id.clone()).collect::<HashSet<_>>(),
        never_again
    );
    // Scripts get the same list, `published_at` null for the never published.
    let listed: Vec<Value> = reqwest::get(format!("{}/_sim/call-records", sim.base_url()))
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed.len(), records.len());
    let nulls = listed
        .iter()
        .filter(|record| record["published_at"].is_null())
        .count();
    assert_eq!(nulls, never.len());
    let (index, first) = listed
        .iter()
        .enumerate()
        .find(|(_, record)| !record["published_at"].is_null())
        .expect("a published record");
    assert_eq!(first["id"], records[index].id.as_str());
    let at: DateTime<Utc> = first["published_at"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .expect("RFC 3339");
    assert_eq!(Some(at), records[index].published_at);
    // Never means never: still 404 ten days on.
    sim.clock().advance(Duration::from_secs(10 * 24 * 3600));
    let token = token(&sim).await;
    assert_eq!(fetch(&sim, &never[0].id, &token).await.0, 404);
    assert_eq!(
        sim.call_record_fetches()[&never[0].id].before_publication,
        1
    );
    for (share, expected) in [(0.0, 0), (1.0, records.len())] {
        sim.set_faults(faults(share));
        let count = sim
            .call_records()
            .iter()
            .filter(|record| record.published_at.is_none())
            .count();
        assert_eq!(count, expected, "{share}");
    }
}

/// Each audio stream of a trunk segment of `record`: poor, unclassified or good by Call
/// Quality Dashboard's thresholds, as the contract states them.
fn trunk_stream_quality(record: &Value) -> Vec<&'static str> {
    let seconds = |value: &Value| {
        value.as_str().map(|text| {
            text.trim_start_matches("PT")
                .trim_end_matches('S')
                .parse::<f64>()
                .expect("seconds")
        })
    };
    let mut qualities = Vec::new();
    for session in record["sessions"].as_array().expect("sessions") {
        for segment in session["segments"].as_array().expect("segments") {
            let kinds = [&segment["caller"], &segment["callee"]]
                .map(|endpoint| endpoint["@odata.type"].as_str().unwrap_or_default());
            if kinds[0] == kinds[1] {
                continue;
            }
            for media in segment["media"].as_array().expect("media") {
                if !media["label"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("audio")
                {
                    continue;
                }
                for stream in media["streams"].as_array().expect("streams") {
                    let measures = [
                        stream["averageAudioDegradation"].as_f64().map(|v| v > 1.0),
                        seconds(&stream["averageRoundTripTime"]).map(|v| v > 0.5),
                        stream["averagePacketLossRate"].as_f64().map(|v| v > 0.1),
                        seconds(&stream["averageJitter"]).map(|v| v > 0.03),
                        stream["averageRatioOfConcealedSamples"]
                            .as_f64()
                            .map(|v| v > 0.07),
                    ];
                    qualities.push(if measures.iter().all(Option::is_none) {
                        "unclassified"
                    } else if measures.contains(&Some(true)) {
                        "poor"
                    } else {
                        "good"
                    });
                }
            }
        }
    }
    qualities
}

#[test]
fn a_failing_trunk_s_audio_is_poor_and_a_healthy_one_s_mostly_good() {
    let names = TrunkNames::default();
    let context = RecordContext {
        seed: 3,
        names: &names,
        base_url: "http://127.0.0.1:1",
        last_modified_ms: 0,
    };
    let mut rng = StdRng::seed_from_u64(11);
    let start_ms = 1_772_000_000_000;
    let share = |qualities: &[&str], of: &str| {
        qualities.iter().filter(|q| **q == of).count() as f64 / qualities.len() as f64
    };
    let mut healthy = Vec::new();
    let mut failing = Vec::new();
    let (mut video, mut service_to_service, mut several_sessions) = (0, 0, 0);
    for n in 0..4000 {
        let degradation = if n % 2 == 0 {
            Degradation::Constant(0)
        } else {
            Degradation::Healthy
        };
        let row = draw_call(&mut rng, 0, start_ms + n, degradation);
        if !row.successful() {
            continue;
        }
        let record = record_json(&row, &context);
        let text = record.to_string();
        video += usize::from(text.contains("main-video"));
        service_to_service += usize::from(text.contains("conferencingAnnouncementService"));
        several_sessions += usize::from(record["sessions"].as_array().expect("s").len() > 1);
        // Personal data is there, for the exporter to leave out.
        assert!(text.contains("ipAddress") && text.contains("macAddress"));
        assert!(text.contains("captureDeviceName") && text.contains("displayName"));
        let qualities = trunk_stream_quality(&record);
        assert!(!qualities.is_empty(), "every record has a trunk segment");
        if row.degraded {
            failing.extend(qualities);
        } else {
            healthy.extend(qualities);
        }
    }
    assert!(share(&failing, "poor") > 0.6, "{}", share(&failing, "poor"));
    assert!(
        share(&healthy, "poor") < 0.05,
        "{}",
        share(&healthy, "poor")
    );
    assert!(share(&healthy, "good") > 0.9, "{}", share(&healthy, "good"));
    assert!((0.01..0.1).contains(&share(&healthy, "unclassified")));
    assert!(video > 0 && service_to_service > 0 && several_sessions > 0);
    // Deterministic: the same row gives the same record.
    let row = draw_call(&mut rng, 2, start_ms, Degradation::Healthy);
    assert_eq!(record_json(&row, &context), record_json(&row, &context));
}

#[test]
fn call_record_flags_set_the_faults() {
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        simulation: SimulationArgs,
    }
    let parse = |args: &[&str]| {
        Flags::try_parse_from(std::iter::once("exporter").chain(args.iter().copied()))
            .map(|flags| {
                flags
                    .simulation
                    .config(Duration::from_secs(3600), Clock::system())
            })
            .map_err(|error| error.to_string())
    };
    let defaults = parse(&[]).expect("defaults");
    assert_eq!(defaults.faults.call_record_delay, minutes(15));
    assert_eq!(defaults.faults.unpublished_call_records, 0.02);
    assert_eq!(
        defaults.faults.limits.call_records,
        Some(RateLimit::CALL_RECORDS)
    );
    let set = parse(&[
        "--simulate.call-record-delay=30s",
        "--simulate.unpublished-call-records=0.5",
        "--simulate.call-record-rate-limit=off",
    ])
    .expect("valid flags");
    assert_eq!(set.faults.call_record_delay, Duration::from_secs(30));
    assert_eq!(set.faults.unpublished_call_records, 0.5);
    assert_eq!(set.faults.limits.call_records, None);
    let error = parse(&["--simulate.unpublished-call-records=2"]).expect_err("over 1");
    assert!(error.contains("from 0 to 1"), "{error}");
}

#[tokio::test]
async fn live_traffic_s_calls_have_records_from_history_and_as_they_come() {
    let mut config = config(
        Traffic::Live {
            calls_per_day: 50_000.0,
            history: Duration::from_secs(3600),
            trunks: crate::DEMO_TRUNKS,
        },
        manual_clock(),
    );
    config.faults.call_record_delay = Duration::from_secs(60);
    let sim = start(config).await;
    let token = token(&sim).await;
    let now = sim.clock().now();
    let history = sim.call_records();
    let published = history
        .iter()
        .find(|record| record.published_at.is_some_and(|at| at <= now))
        .expect("a published record of the history");
    assert_eq!(fetch(&sim, &published.id, &token).await.0, 200);
    // Live calls drawn as the clock runs get theirs too.
    for _ in 0..120 {
        sim.clock().advance(Duration::from_secs(1));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let known: HashSet<String> = history.iter().map(|record| record.id.clone()).collect();
    let later = sim.call_records();
    let live = later
        .iter()
        .find(|record| !known.contains(&record.id))
        .expect("a live call's record");
    let token = super::token(&sim).await;
    let expected = if live.published_at.is_some_and(|at| at <= sim.clock().now()) {
        200
    } else {
        404
    };
    assert_eq!(fetch(&sim, &live.id, &token).await.0, expected);
}
