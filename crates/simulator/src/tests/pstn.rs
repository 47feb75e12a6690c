//! Tests of the PSTN call log: paging, late and malformed rows, the ground truth against
//! what was served, charges and numbers, and the toll-fraud fault.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use tve_clock::Clock;

use super::{all_pages, config, scenario, start, token};
use crate::numbers::{COUNTRIES, NORMAL_COUNTRIES};
use crate::pstn::{self, PstnGenerator};
use crate::{Faults, SimHandle, Traffic, TOLL_FRAUD_CALLING_CODE, TOLL_FRAUD_COUNTRY};

fn pstn_url(sim: &SimHandle) -> String {
    let now = sim.clock().now();
    let from = (now - chrono::Duration::days(3)).format("%Y-%m-%dT%H:%M:%SZ");
    let to = (now + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        "{}/v1.0/communications/callRecords/getPstnCalls(fromDateTime={from},toDateTime={to})",
        sim.base_url()
    )
}

fn rows(pages: &[Value]) -> Vec<Value> {
    pages
        .iter()
        .flat_map(|page| page["value"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// A decimal as Graph writes charges: digits, a point, 2 to 4 fractional digits.
fn is_charge(text: &str) -> bool {
    match text.split_once('.') {
        Some((whole, fraction)) => {
            !whole.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && (2..=4).contains(&fraction.len())
                && fraction.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[tokio::test]
async fn pstn_pages_late_and_malformed_rows_match_the_ground_truth() {
    let mut config = config(Traffic::Scenario(scenario(1500, 700, 5)), Clock::system());
    config.page_size = 400;
    let sim = start(config).await;
    let token = token(&sim).await;

    let pages = all_pages(&pstn_url(&sim), &token).await;
    assert_eq!(pages.len(), 4, "1,500 rows in pages of 400");
    for page in &pages {
        let count = page["@odata.count"].as_u64().unwrap_or(0) as usize;
        assert_eq!(count, page["value"].as_array().map_or(0, Vec::len));
        if let Some(link) = page["@odata.nextLink"].as_str() {
            assert!(
                link.contains("getPstnCalls") && link.contains("$skip="),
                "{link}"
            );
            assert!(page["@odata.context"]
                .as_str()
                .unwrap_or("")
                .contains("pstnCallLogRow"));
        }
    }
    let served = rows(&pages);
    let truth = sim.pstn_ground_truth_started_from(Utc::now() - chrono::Duration::days(4));
    assert_eq!(truth.rows.len(), 1500);
    assert_eq!(truth.visible_rows, 1500);
    assert_eq!(truth.invalid_rows, 0);
    assert!(
        sim.pstn_ground_truth().rows.is_empty(),
        "no late rows before release"
    );
    for (row, expected) in served.iter().zip(&truth.rows) {
        assert_eq!(row["id"].as_str(), Some(expected.id.as_str()));
        assert_eq!(row["startDateTime"].as_str(), Some(expected.start.as_str()));
        assert_eq!(row["callType"].as_str(), expected.call_type.as_deref());
        assert_eq!(
            row["licenseCapability"].as_str(),
            expected.license_capability.as_deref()
        );
        assert_eq!(
            row["callerNumber"].as_str(),
            expected.caller_number.as_deref()
        );
        assert_eq!(
            row["calleeNumber"].as_str(),
            expected.callee_number.as_deref()
        );
        assert_eq!(row["operator"].as_str(), expected.operator.as_deref());
        assert_eq!(row["duration"].as_i64(), expected.duration_secs);
        assert_eq!(
            row["inventoryType"].as_str(),
            expected.inventory_type.as_deref()
        );
        assert_eq!(
            row["callDurationSource"].as_str(),
            expected.call_duration_source.as_deref()
        );
        assert_eq!(
            row["tenantCountryCode"].as_str(),
            expected.tenant_country_code.as_deref()
        );
        assert_eq!(row["currency"].as_str(), expected.currency.as_deref());
        assert_eq!(
            row["destinationName"].as_str(),
            expected.destination_name.as_deref()
        );
        assert_eq!(row["endDateTime"].as_str(), expected.end.as_deref());
        assert_eq!(
            row.get("otherPartyCountryCode").and_then(Value::as_str),
            expected.other_party_country_code.as_deref()
        );
        assert_eq!(
            row["destinationContext"].as_str(),
            expected.destination_context.as_deref()
        );
    }
    // Direct Routing is read separately: its requests and the PSTN ones are counted apart.
    let stats = sim.stats();
    assert_eq!(
        stats.data_requests_by_function.get("getPstnCalls"),
        Some(&4)
    );
    assert_eq!(
        stats.data_requests_by_function.get("getDirectRoutingCalls"),
        None
    );

    sim.release();
    tokio::time::sleep(Duration::from_secs(21)).await;
    let pages = all_pages(&pstn_url(&sim), &token).await;
    let served = rows(&pages);
    assert_eq!(served.len(), 2205);
    let truth = sim.pstn_ground_truth();
    assert_eq!(truth.rows.len(), 700);
    assert_eq!(truth.invalid_rows, 5);
    assert_eq!(truth.visible_rows, 2205);
    let served_ids: HashSet<&str> = served.iter().filter_map(|r| r["id"].as_str()).collect();
    assert!(truth
        .rows
        .iter()
        .all(|row| served_ids.contains(row.id.as_str())));
    sim.shutdown().await;
}

#[test]
fn pstn_rows_carry_realistic_values() {
    let mut generator = PstnGenerator::new(5, 60_000.0, 1_800_000_000_000);
    let rows = generator.generate_until(1_800_000_000_000 + 24 * 3600 * 1000);
    assert!(rows.len() > 30_000, "{}", rows.len());
    let mut call_types = HashSet::new();
    let mut licenses = HashSet::new();
    let mut operators = HashSet::new();
    let mut countries = HashSet::new();
    let (mut masked3, mut masked4, mut nulls, mut charged, mut connection) = (0, 0, 0, 0, 0);
    for row in &rows {
        let mut json = String::new();
        pstn::write_row(&mut json, row);
        let value: Value = serde_json::from_str(&json).expect("row JSON");
        let truth = pstn::truth_row(row);
        for field in ["charge", "connectionCharge"] {
            // The JSON number's text is the truth's, exactly.
            let text = json
                .split(&format!("\"{field}\":"))
                .nth(1)
                .and_then(|rest| rest.split(',').next())
                .unwrap_or("");
            let expected = if field == "charge" {
                truth.charge.as_deref()
            } else {
                truth.connection_charge.as_deref()
            };
            match expected {
                Some(expected) => {
                    assert!(is_charge(expected), "{expected}");
                    assert_eq!(text, expected);
                }
                None => assert_eq!(text, "null"),
            }
        }
        if truth
            .charge
            .as_deref()
            .is_some_and(|c| c != "0.00" && c.trim_end_matches('0') != "0.")
        {
            charged += 1;
            assert_eq!(
                truth
                    .destination_context
                    .as_deref()
                    .unwrap_or("International"),
                "International"
            );
        }
        connection += usize::from(
            truth
                .connection_charge
                .as_deref()
                .is_some_and(|c| c.trim_end_matches('0') != "0."),
        );
        nulls += usize::from(value["licenseCapability"].is_null());
        call_types.extend(truth.call_type.clone());
        licenses.extend(truth.license_capability.clone());
        operators.extend(truth.operator.clone());
        countries.extend(truth.other_party_country_code.clone());
        for number in [&truth.caller_number, &truth.callee_number]
            .into_iter()
            .flatten()
        {
            assert!(number.starts_with('+'), "{number}");
            assert!(!number.starts_with(TOLL_FRAUD_CALLING_CODE), "{number}");
            let stars = number.bytes().filter(|&b| b == b'*').count();
            masked3 += usize::from(stars == 3);
            masked4 += usize::from(stars == 4);
            let digits = number.trim_start_matches('+').trim_end_matches('*');
            assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{number}");
            assert!((8..=15).contains(&(digits.len() + stars)), "{number}");
        }
    }
    for call_type in [
        "user_in",
        "user_out",
        "user_out_conf",
        "user_out_transfer",
        "user_out_forwarding",
        "unassigned_in",
        "conf_in",
        "conf_out",
        "ucap_in",
        "ucap_out",
        "oc_user_in",
        "oc_user_out",
    ] {
        assert!(call_types.contains(call_type), "{call_type}");
    }
    assert!(licenses.len() >= 8, "{licenses:?}");
    assert!(operators.len() >= 5, "{operators:?}");
    assert!(countries.len() == NORMAL_COUNTRIES, "{countries:?}");
    assert!(!countries.contains(TOLL_FRAUD_COUNTRY));
    assert!(masked3 > 1000 && masked4 > 1000, "{masked3} {masked4}");
    assert!(nulls > 10, "{nulls}");
    assert!(charged > 1000, "{charged}");
    assert!(connection > 100, "{connection}");
}

#[tokio::test]
async fn toll_fraud_starts_after_its_delay_and_calls_only_the_fraud_country() {
    let clock = Clock::scaled(Utc::now(), 60.0);
    let mut config = config(
        Traffic::Live {
            calls_per_day: 20_000.0,
            history: Duration::from_secs(3600),
            trunks: crate::DEMO_TRUNKS,
        },
        clock,
    );
    config.faults = Faults {
        toll_fraud: true,
        toll_fraud_after_secs: Some(300),
        ..Faults::default()
    };
    let sim = start(config).await;
    let bind = sim.clock().now();
    let fraud_name = COUNTRIES
        .iter()
        .find(|c| c.iso == TOLL_FRAUD_COUNTRY)
        .map(|c| c.name);
    let is_fraud = |number: &Option<String>| {
        number
            .as_deref()
            .is_some_and(|n| n.starts_with(TOLL_FRAUD_CALLING_CODE))
    };
    // Every normal country in the history, the fraud's in none.
    let history = sim.pstn_ground_truth_started_from(bind - chrono::Duration::hours(2));
    let names: HashSet<_> = history
        .rows
        .iter()
        .filter_map(|r| r.destination_name.clone())
        .collect();
    assert!(names.len() >= NORMAL_COUNTRIES, "{names:?}");
    assert!(!history.rows.iter().any(|r| is_fraud(&r.callee_number)));

    // Four clock minutes: still no fraud.
    sim.clock().sleep(Duration::from_secs(240)).await;
    let before = sim.pstn_ground_truth_started_from(bind - chrono::Duration::hours(2));
    assert!(!before.rows.iter().any(|r| is_fraud(&r.callee_number)));
    assert!(!sim
        .ground_truth_started_from(bind - chrono::Duration::hours(2))
        .rows
        .iter()
        .any(|r| is_fraud(&r.callee_number)));

    // Fifteen minutes after start: many short expensive calls to the fraud country.
    sim.clock().sleep(Duration::from_secs(660)).await;
    let from = bind + chrono::Duration::seconds(300);
    let pstn_fraud: Vec<_> = sim
        .pstn_ground_truth_started_from(bind - chrono::Duration::hours(2))
        .rows
        .into_iter()
        .filter(|r| is_fraud(&r.callee_number))
        .collect();
    let dr_fraud: Vec<_> = sim
        .ground_truth_started_from(bind - chrono::Duration::hours(2))
        .rows
        .into_iter()
        .filter(|r| is_fraud(&r.callee_number))
        .collect();
    assert!(pstn_fraud.len() >= 5, "{}", pstn_fraud.len());
    assert!(dr_fraud.len() >= 5, "{}", dr_fraud.len());
    for row in &pstn_fraud {
        assert!(
            row.start.as_str() >= from.to_rfc3339().get(..19).unwrap_or(""),
            "{}",
            row.start
        );
        assert_eq!(row.call_type.as_deref(), Some("user_out"));
        assert_eq!(row.destination_context.as_deref(), Some("International"));
        assert_eq!(row.destination_name.as_deref(), fraud_name);
        assert!((20..=60).contains(&row.duration_secs.unwrap_or(0)));
        let charge = row.charge.as_deref().unwrap_or("0.00");
        assert!(is_charge(charge) && charge >= "1.", "{charge}");
    }
    for row in &dr_fraud {
        assert_eq!(row.call_type.as_deref(), Some("ByotOut"));
        assert!((20..=60).contains(&row.duration_secs.unwrap_or(0)));
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn every_normal_country_appears_in_the_first_minute_of_live_traffic() {
    // Too few calls for chance to reach every country within a minute: the roster must.
    let clock = Clock::scaled(Utc::now(), 30.0);
    let traffic = Traffic::Live {
        calls_per_day: 2_000.0,
        history: Duration::from_secs(3600),
        trunks: crate::DEMO_TRUNKS,
    };
    let sim = start(config(traffic, clock)).await;
    let bind = sim.clock().now();
    sim.clock().sleep(Duration::from_secs(62)).await;
    let normal_names: HashSet<&str> = COUNTRIES[..NORMAL_COUNTRIES]
        .iter()
        .map(|c| c.name)
        .collect();
    for truth in [
        sim.pstn_ground_truth(),
        sim.pstn_ground_truth_started_from(bind - chrono::Duration::hours(1)),
    ] {
        let names: HashSet<&str> = truth
            .rows
            .iter()
            .filter(|r| r.call_type.as_deref() == Some("user_out"))
            .filter_map(|r| r.destination_name.as_deref())
            .collect();
        assert!(normal_names.is_subset(&names), "{names:?}");
    }
    // Direct Routing's countries too, in the calls that became visible since start.
    let callees: Vec<String> = sim
        .ground_truth()
        .rows
        .iter()
        .filter(|r| r.call_type.as_deref() == Some("ByotOut"))
        .filter_map(|r| r.callee_number.clone())
        .collect();
    for code in ["+49", "+33", "+44", "+1", "+65", "+81", "+31"] {
        assert!(
            callees.iter().any(|n| n.starts_with(code)),
            "{code} in {callees:?}"
        );
    }
    assert!(!callees
        .iter()
        .any(|n| n.starts_with(TOLL_FRAUD_CALLING_CODE)));
    sim.shutdown().await;
}

#[tokio::test]
async fn toll_fraud_switched_on_through_the_control_api_starts_at_once() {
    let clock = Clock::scaled(Utc::now(), 60.0);
    let traffic = Traffic::Live {
        calls_per_day: 5_000.0,
        history: Duration::from_secs(1800),
        trunks: crate::DEMO_TRUNKS,
    };
    let sim = start(config(traffic, clock)).await;
    let client = reqwest::Client::new();
    let faults: Value = client
        .get(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .expect("GET faults")
        .json()
        .await
        .expect("faults JSON");
    assert_eq!(faults["toll_fraud"], false);
    let response = client
        .put(format!("{}/_sim/faults", sim.base_url()))
        .body(r#"{"toll_fraud": true, "toll_fraud_after_secs": 0}"#)
        .send()
        .await
        .expect("PUT faults");
    assert_eq!(response.status(), 200);
    assert!(sim.faults().toll_fraud);
    sim.clock().sleep(Duration::from_secs(600)).await;
    let since = (sim.clock().now() - chrono::Duration::hours(1)).to_rfc3339();
    let url = format!(
        "{}/_sim/pstn-ground-truth?started_from={}",
        sim.base_url(),
        url::form_urlencoded::byte_serialize(since.as_bytes()).collect::<String>()
    );
    let truth: crate::PstnGroundTruth = client
        .get(url)
        .send()
        .await
        .expect("GET truth")
        .json()
        .await
        .expect("truth JSON");
    let fraud = truth
        .rows
        .iter()
        .filter(|r| {
            r.other_party_country_code.as_deref() == Some(TOLL_FRAUD_COUNTRY)
                || r.callee_number
                    .as_deref()
                    .is_some_and(|n| n.starts_with(TOLL_FRAUD_CALLING_CODE))
        })
        .count();
    assert!(fraud >= 5, "{fraud}");
    sim.shutdown().await;
}
