//! Tests of the simulated tenant: the model and rendering directly, the services over HTTP
//! on a loopback listener the way the exporter uses them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::Value;

use tve_clock::Clock;

use super::call_log::CallLog;
use super::direct_routing::{
    self, CallRow, Degradation, LiveGenerator, Origin, TrunkNames, DEGRADING_TRUNK, TRUNKS,
};
use super::time::{self, TimeStyle};
use super::*;

mod call_records;
mod hostile;
mod limits;
mod pstn;
mod tenants;
mod truth;

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const CLIENT: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const SECRET: &str = "s3cret~value";

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("static address")
}

fn config(traffic: Traffic, clock: Clock) -> SimConfig {
    SimConfig {
        tenant_id: TENANT.to_owned(),
        client_id: CLIENT.to_owned(),
        client_secret: SECRET.to_owned(),
        seed: 7,
        traffic,
        faults: Faults::default(),
        page_size: 1000,
        clock,
        identity: Default::default(),
        tenants: Vec::new(),
    }
}

fn scenario(preexisting_rows: usize, late_rows: usize, malformed_rows: usize) -> Scenario {
    Scenario {
        preexisting_rows,
        late_rows,
        span: Duration::from_secs(48 * 3600),
        arrival_spread: Duration::from_secs(20),
        malformed_rows,
    }
}

/// A clock on which a clock second passes in 10 ms.
fn fast_clock() -> Clock {
    Clock::scaled(Utc::now(), 100.0)
}

async fn start(config: SimConfig) -> SimHandle {
    SimHandle::bind(config, loopback()).await.expect("bind")
}

async fn token(sim: &SimHandle) -> String {
    let reply: Value = reqwest::Client::new()
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", sim.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", &format!("{}/.default", sim.base_url())),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    reply["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn calls_url(sim: &SimHandle, from: &str, to: &str) -> String {
    format!(
        "{}/v1.0/communications/callRecords/getDirectRoutingCalls(fromDateTime={from},toDateTime={to})",
        sim.base_url()
    )
}

/// A window around everything a 48 h scenario holds.
fn whole_window(sim: &SimHandle) -> String {
    let now = sim.clock().now();
    let from = (now - chrono::Duration::days(3)).format("%Y-%m-%dT%H:%M:%SZ");
    let to = (now + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ");
    calls_url(sim, &from.to_string(), &to.to_string())
}

async fn get(url: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

/// Follows nextLinks from `url`; returns every page's JSON.
async fn all_pages(url: &str, token: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next = Some(url.to_owned());
    while let Some(url) = next {
        let response = get(&url, token).await;
        assert_eq!(response.status(), 200, "{url}");
        let page: Value = response.json().await.expect("page JSON");
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
        pages.push(page);
    }
    pages
}

fn ids(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|page| page["value"].as_array().cloned().unwrap_or_default())
        .filter_map(|row| row["id"].as_str().map(str::to_owned))
        .collect()
}

fn stored_rows(sim: &SimHandle) -> Vec<CallRow> {
    let now_ms = sim.home.tenant.now_ms();
    sim.tenant
        .direct_routing
        .read()
        .visible(now_ms)
        .cloned()
        .collect()
}

#[tokio::test]
async fn window_is_half_open_on_start_time() {
    let sim = start(config(
        Traffic::Scenario(scenario(300, 0, 0)),
        Clock::system(),
    ))
    .await;
    let token = token(&sim).await;
    let rows = stored_rows(&sim);
    let (first, last) = (&rows[100], &rows[200]);
    let from = time::timestamp(first.start, TimeStyle(7));
    let to = time::timestamp(last.start, TimeStyle(7));
    let pages = all_pages(&calls_url(&sim, &from, &to), &token).await;
    let got: HashSet<String> = ids(&pages).into_iter().collect();
    let expected: HashSet<String> = rows
        .iter()
        .filter(|row| row.start >= first.start && row.start < last.start)
        .map(|row| ids::uuid(row.id))
        .collect();
    assert_eq!(got, expected);
    assert!(got.contains(&ids::uuid(first.id)), "from is inclusive");
    assert!(!got.contains(&ids::uuid(last.id)), "to is exclusive");
    sim.shutdown().await;
}

#[tokio::test]
async fn pages_follow_next_links() {
    let mut config = config(Traffic::Scenario(scenario(30, 0, 0)), Clock::system());
    config.page_size = 7;
    let sim = start(config).await;
    let token = token(&sim).await;
    let url = whole_window(&sim);
    let pages = all_pages(&url, &token).await;
    assert_eq!(pages.len(), 5);
    let counts: Vec<u64> = pages
        .iter()
        .map(|p| p["@odata.count"].as_u64().unwrap_or(99))
        .collect();
    assert_eq!(counts, [7, 7, 7, 7, 2]);
    assert_eq!(
        pages[0]["@odata.nextLink"].as_str(),
        Some(format!("{url}?$skip=7").as_str())
    );
    assert_eq!(
        pages[0]["@odata.context"].as_str(),
        Some(
            format!(
                "{}/v1.0/$metadata#Collection(microsoft.graph.callRecords.directRoutingLogRow)",
                sim.base_url()
            )
            .as_str()
        )
    );
    assert!(pages[4].get("@odata.nextLink").is_none());
    let ids = ids(&pages);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 30);

    // Starts ascend across pages.
    let starts: Vec<DateTime<Utc>> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().cloned().unwrap_or_default())
        .map(|row| {
            DateTime::parse_from_rfc3339(row["startDateTime"].as_str().unwrap_or(""))
                .expect("start")
                .with_timezone(&Utc)
        })
        .collect();
    assert!(starts.windows(2).all(|pair| pair[0] <= pair[1]));

    // `$` may come percent-encoded.
    let tail: Value = get(&format!("{url}?%24skip=28"), &token)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(tail["@odata.count"], 2);
    let beyond: Value = get(&format!("{url}?$skip=100"), &token)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(beyond["@odata.count"], 0);

    let stats = sim.stats();
    assert_eq!(stats.pages_served, 7);
    assert_eq!(stats.rows_served, 32);
    sim.shutdown().await;
}

#[tokio::test]
async fn token_endpoint_answers_like_entra() {
    let sim = start(config(
        Traffic::Scenario(scenario(1, 0, 0)),
        Clock::system(),
    ))
    .await;
    let scope = format!("{}/.default", sim.base_url());
    let client = reqwest::Client::new();
    let request = |tenant: &str, fields: Vec<(&'static str, String)>| {
        client
            .post(format!("{}/{tenant}/oauth2/v2.0/token", sim.base_url()))
            .form(&fields)
            .send()
    };
    let good = || {
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", CLIENT.to_owned()),
            ("client_secret", SECRET.to_owned()),
            ("scope", scope.clone()),
        ]
    };
    let with = |name: &'static str, value: &str| {
        let mut fields = good();
        fields.retain(|(key, _)| *key != name);
        if !value.is_empty() {
            fields.push((name, value.to_owned()));
        }
        fields
    };
    let cases = [
        ("other-tenant", good(), 400, "invalid_request", 90002),
        (
            TENANT,
            with("client_id", "someone-else"),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            TENANT,
            with("client_secret", "wrong"),
            401,
            "invalid_client",
            7000215,
        ),
        (
            TENANT,
            with("scope", "https://graph.microsoft.com/.default"),
            400,
            "invalid_scope",
            70011,
        ),
        (
            TENANT,
            with("grant_type", ""),
            400,
            "invalid_request",
            900144,
        ),
        (TENANT, with("scope", ""), 400, "invalid_request", 900144),
    ];
    for (tenant, fields, status, error, code) in cases {
        let response = request(tenant, fields).await.expect("token request");
        assert_eq!(response.status(), status, "{error} {code}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], error);
        assert_eq!(body["error_codes"][0], code);
        let description = body["error_description"].as_str().unwrap_or("");
        assert!(
            description.starts_with(&format!("AADSTS{code}:")),
            "{description}"
        );
        assert!(!description.contains(SECRET));
        assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    }

    let response = request(TENANT, good()).await.expect("token request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body["access_token"].as_str().is_some_and(|t| t.len() >= 32));

    let stats = sim.stats();
    assert_eq!(stats.token_requests, 7);
    assert_eq!(stats.token_errors, 6);
    assert_eq!(stats.tokens_issued, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn throttling_counts_retry_after_violations() {
    let mut config = config(Traffic::Scenario(scenario(10, 0, 0)), fast_clock());
    config.faults = Faults {
        throttle_every: 3,
        retry_after_secs: 2,
        ..Faults::default()
    };
    let sim = start(config).await;
    let token = token(&sim).await;
    let url = whole_window(&sim);
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(get(&url, &token).await.status().as_u16());
    }
    let throttled = get(&url, &token).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "2");
    let body: Value = throttled.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert!(body["error"]["innerError"]["request-id"].is_string());

    // Too early: a violation, answered 429 again.
    let early = get(&url, &token).await;
    assert_eq!(early.status(), 429);
    assert_eq!(sim.stats().retry_after_violations, 1);

    sim.clock().sleep(Duration::from_millis(2100)).await;
    statuses.push(get(&url, &token).await.status().as_u16());
    statuses.push(get(&url, &token).await.status().as_u16());
    assert_eq!(statuses, [200, 200, 200, 429]);
    let stats = sim.stats();
    assert_eq!(stats.retry_after_violations, 1);
    assert_eq!(stats.throttled_responses, 3);
    assert_eq!(stats.data_requests, 6);
    sim.shutdown().await;
}

#[tokio::test]
async fn retry_after_as_http_date_is_rounded_up() {
    let mut config = config(Traffic::Scenario(scenario(10, 0, 0)), fast_clock());
    config.faults = Faults {
        unavailable_every: 1,
        unavailable_retry_after: true,
        retry_after_secs: 3,
        retry_after_http_date: true,
        ..Faults::default()
    };
    let sim = start(config).await;
    let token = token(&sim).await;
    let url = whole_window(&sim);
    let before = sim.clock().now();
    let response = get(&url, &token).await;
    assert_eq!(response.status(), 503);
    let date = response.headers()["retry-after"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let until: DateTime<Utc> = httpdate::parse_http_date(&date).expect("HTTP date").into();
    assert!(
        until >= before + chrono::Duration::seconds(3),
        "{until} vs {before}"
    );
    assert!(
        until <= before + chrono::Duration::seconds(5),
        "{until} vs {before}"
    );
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "serviceNotAvailable");

    assert_eq!(get(&url, &token).await.status(), 429);
    assert_eq!(sim.stats().retry_after_violations, 1);
    while sim.clock().now() < until {
        sim.clock().sleep(Duration::from_millis(200)).await;
    }
    sim.set_faults(Faults::default());
    assert_eq!(get(&url, &token).await.status(), 200);
    let stats = sim.stats();
    assert_eq!(stats.unavailable_responses, 1);
    assert_eq!(stats.retry_after_violations, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn scenario_ground_truth_follows_release() {
    let sim = start(config(
        Traffic::Scenario(scenario(50, 40, 10)),
        fast_clock(),
    ))
    .await;
    let truth = sim.ground_truth();
    assert_eq!(
        (truth.rows.len(), truth.invalid_rows, truth.visible_rows),
        (0, 0, 50)
    );

    let released: Value = reqwest::Client::new()
        .post(format!("{}/_sim/release", sim.base_url()))
        .send()
        .await
        .expect("release")
        .json()
        .await
        .expect("JSON");
    assert_eq!(released["released"], true);
    sim.clock().sleep(Duration::from_secs(21)).await;

    let truth = sim.ground_truth();
    assert_eq!(
        (truth.rows.len(), truth.invalid_rows, truth.visible_rows),
        (40, 10, 100)
    );
    let over_http: GroundTruth = reqwest::get(format!("{}/_sim/ground-truth", sim.base_url()))
        .await
        .expect("ground truth")
        .json()
        .await
        .expect("JSON");
    assert_eq!(over_http, truth);

    // The truth describes exactly what the pages carry.
    let token = token(&sim).await;
    let pages = all_pages(&whole_window(&sim), &token).await;
    let served: Vec<Value> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(served.len(), 100);
    for truth_row in &truth.rows {
        let row = served
            .iter()
            .find(|row| row["id"] == truth_row.id.as_str())
            .expect("truth row served");
        assert_eq!(row["startDateTime"], truth_row.start.as_str());
        assert_eq!(
            row["trunkFullyQualifiedDomainName"].as_str(),
            truth_row.trunk_fqdn.as_deref()
        );
        assert_eq!(row["finalSipCode"].as_i64(), truth_row.final_sip_code);
        assert_eq!(
            row["callEndSubReason"].as_i64(),
            truth_row.call_end_sub_reason
        );
        assert_eq!(row["duration"].as_i64(), truth_row.duration_secs);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_rows_are_served_identically_on_every_page() {
    let sim = start(config(Traffic::Scenario(scenario(20, 5, 10)), fast_clock())).await;
    sim.release();
    sim.clock().sleep(Duration::from_secs(21)).await;
    let token = token(&sim).await;
    let url = whole_window(&sim);

    #[derive(serde::Deserialize)]
    struct RawPage<'a> {
        #[serde(borrow)]
        value: Vec<&'a RawValue>,
    }
    let first = get(&url, &token).await.text().await.expect("body");
    let second = get(&url, &token).await.text().await.expect("body");
    let first: RawPage = serde_json::from_str(&first).expect("page");
    let second: RawPage = serde_json::from_str(&second).expect("page");
    let first: Vec<&str> = first.value.iter().map(|raw| raw.get()).collect();
    let second: Vec<&str> = second.value.iter().map(|raw| raw.get()).collect();
    assert_eq!(first, second);
    assert_eq!(first.len(), 35);

    let rows: Vec<Value> = first
        .iter()
        .map(|raw| serde_json::from_str(raw).expect("row"))
        .collect();
    assert!(rows.contains(&Value::from(17)) && rows.contains(&Value::from(18)));
    assert!(rows.iter().any(|row| row["startDateTime"] == "yesterday"));
    assert!(rows.iter().any(|row| row["duration"] == "long"));
    assert!(rows.iter().any(|row| row["successfulCall"] == "yes"));
    let without_id = rows
        .iter()
        .filter(|row| row.is_object() && row.get("id").is_none())
        .count();
    assert_eq!(without_id, 2);
    assert_eq!(sim.ground_truth().invalid_rows, 10);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_graph_errors() {
    let sim = start(config(
        Traffic::Scenario(scenario(5, 0, 0)),
        Clock::system(),
    ))
    .await;
    let token = token(&sim).await;
    let base = sim.base_url();
    let cases = [
        (
            calls_url(&sim, "'2026-01-01'", "'2026-01-02'"),
            400,
            "BadRequest",
        ),
        (calls_url(&sim, "", ""), 400, "BadRequest"),
        (
            calls_url(&sim, "2026-01-02", "2026-01-01"),
            400,
            "BadRequest",
        ),
        (
            calls_url(&sim, "2026-01-01", "2026-01-01"),
            400,
            "BadRequest",
        ),
        (
            calls_url(&sim, "2026-01-01", "2026-04-02"),
            406,
            "NotAcceptable",
        ),
        (
            calls_url(&sim, "yesterday", "2026-01-01"),
            400,
            "BadRequest",
        ),
        (
            format!(
                "{}?$skip=minus",
                calls_url(&sim, "2026-01-01", "2026-01-02")
            ),
            400,
            "BadRequest",
        ),
        (
            format!("{base}/v1.0/communications/callRecords/getDirectRoutingCalls"),
            400,
            "BadRequest",
        ),
        (format!("{base}/v1.0/me"), 404, "ResourceNotFound"),
    ];
    for (url, status, code) in cases {
        let response = get(&url, &token).await;
        assert_eq!(response.status(), status, "{url}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(response.headers().contains_key("request-id"));
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], code, "{url}");
    }
    let empty = get(&calls_url(&sim, "", ""), &token)
        .await
        .json::<Value>()
        .await
        .expect("JSON");
    let message = empty["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("Expression expected at position 13"),
        "{message}"
    );

    // Accepted forms: bare dates, fractional seconds, offsets, the qualified function name.
    let ok = [
        calls_url(&sim, "2026-01-01", "2026-03-31"),
        calls_url(&sim, "2026-01-01T10:00:00.1234567Z", "2026-01-01T11:00:00+00:00"),
        format!(
            "{base}/v1.0/communications/callRecords/microsoft.graph.callRecords.getDirectRoutingCalls(fromDateTime=2026-01-01,toDateTime=2026-01-02)"
        ),
    ];
    for url in ok {
        assert_eq!(get(&url, &token).await.status(), 200, "{url}");
    }
    let pstn: Value = get(
        &format!("{base}/v1.0/communications/callRecords/getPstnCalls(fromDateTime=2026-01-01,toDateTime=2026-01-02)"),
        &token,
    )
    .await
    .json()
    .await
    .expect("JSON");
    assert_eq!(pstn["@odata.count"], 0);

    // Without a valid token.
    let anonymous = reqwest::get(calls_url(&sim, "2026-01-01", "2026-01-02"))
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let body: Value = anonymous.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(
        get(&calls_url(&sim, "2026-01-01", "2026-01-02"), "forged")
            .await
            .status(),
        401
    );

    let stats = sim.stats();
    assert_eq!(stats.bad_requests, 10);
    assert_eq!(stats.unauthorized_responses, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn runtime_faults_apply() {
    let sim = start(config(Traffic::Scenario(scenario(5, 0, 0)), fast_clock())).await;
    let token = token(&sim).await;
    let url = whole_window(&sim);
    let client = reqwest::Client::new();
    let put = |faults: Value| {
        client
            .put(format!("{}/_sim/faults", sim.base_url()))
            .json(&faults)
            .send()
    };

    assert_eq!(
        put(serde_json::json!({"forbidden": true}))
            .await
            .expect("PUT")
            .status(),
        200
    );
    let forbidden = get(&url, &token).await;
    assert_eq!(forbidden.status(), 403);
    let body: Value = forbidden.json().await.expect("JSON");
    assert_eq!(
        body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );

    put(serde_json::json!({"invalid_json_every": 1}))
        .await
        .expect("PUT");
    let broken = get(&url, &token).await;
    assert_eq!(broken.status(), 200);
    assert!(serde_json::from_str::<Value>(&broken.text().await.expect("body")).is_err());

    put(serde_json::json!({"revoke_token_every": 1}))
        .await
        .expect("PUT");
    assert_eq!(get(&url, &token).await.status(), 401);
    sim.set_faults(Faults::default());
    assert_eq!(
        get(&url, &token).await.status(),
        401,
        "a revoked token stays invalid"
    );

    let stats = sim.stats();
    assert_eq!(stats.forbidden_responses, 1);
    assert_eq!(stats.invalid_json_responses, 1);
    assert_eq!(stats.unauthorized_responses, 2);
    let faults: Faults = reqwest::get(format!("{}/_sim/faults", sim.base_url()))
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(faults, Faults::default());
    sim.shutdown().await;
}

#[tokio::test]
async fn foreign_next_links_and_token_expiry() {
    let mut config = config(Traffic::Scenario(scenario(5, 0, 0)), fast_clock());
    config.page_size = 2;
    config.faults = Faults {
        foreign_next_link: Some("http://127.0.0.1:4567".to_owned()),
        token_lifetime_secs: 60,
        ..Faults::default()
    };
    let sim = start(config).await;
    let token = token(&sim).await;
    let url = whole_window(&sim);
    let page: Value = get(&url, &token).await.json().await.expect("JSON");
    let link = page["@odata.nextLink"].as_str().unwrap_or("");
    assert!(
        link.starts_with(
            "http://127.0.0.1:4567/v1.0/communications/callRecords/getDirectRoutingCalls("
        ),
        "{link}"
    );
    assert!(link.ends_with("?$skip=2"), "{link}");
    assert_eq!(sim.stats().foreign_next_links_served, 1);

    sim.clock().sleep(Duration::from_secs(61)).await;
    let expired = get(&url, &token).await;
    assert_eq!(expired.status(), 401);
    let body: Value = expired.json().await.expect("JSON");
    assert_eq!(
        body["error"]["message"],
        "Access token has expired or is not yet valid."
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn live_traffic_arrives_over_time() {
    // Not faster: the seconds drawing the history take at bind (longer with both logs and
    // a busy machine) must stay well within the two hours beyond the history the log
    // keeps, or pruning evens out what the hour adds.
    let clock = Clock::scaled(Utc::now(), 900.0);
    let traffic = Traffic::Live {
        calls_per_day: 200_000.0,
        history: Duration::from_secs(6 * 3600),
        trunks: super::DEMO_TRUNKS,
    };
    let sim = start(config(traffic, clock)).await;
    let at_bind = sim.ground_truth();
    assert!(at_bind.visible_rows > 100, "{}", at_bind.visible_rows);
    let stored_at_bind = sim.home.tenant.direct_routing.read().len();

    sim.clock().sleep(Duration::from_secs(3600)).await;
    let later = sim.ground_truth();
    assert!(later.rows.len() > at_bind.rows.len());
    assert!(later.visible_rows > at_bind.visible_rows);
    assert!(sim.home.tenant.direct_routing.read().len() > stored_at_bind);
    assert_eq!(later.invalid_rows, 0);

    let since = (sim.clock().now() - chrono::Duration::minutes(10)).to_rfc3339();
    let url = format!(
        "{}/_sim/ground-truth?since={}",
        sim.base_url(),
        url::form_urlencoded::byte_serialize(since.as_bytes()).collect::<String>()
    );
    let recent: GroundTruth = reqwest::get(url)
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert!(!recent.rows.is_empty());
    assert!(recent.rows.len() < later.rows.len());
    sim.shutdown().await;
}

#[test]
fn scenarios_are_reproducible() {
    let scenario = scenario(100, 100, 10);
    let bind_ms = 1_800_000_000_000;
    let ids = |seed| -> Vec<u128> {
        direct_routing::scenario_rows(seed, &scenario, bind_ms, Degradation::Hourly)
            .iter()
            .map(|row| row.id)
            .collect()
    };
    assert_eq!(ids(1), ids(1));
    assert_ne!(ids(1), ids(2));
    let rows = direct_routing::scenario_rows(1, &scenario, bind_ms, Degradation::Hourly);
    let span_ticks = 48 * 3600 * time::TICKS_PER_SEC;
    let bind_ticks = bind_ms * time::TICKS_PER_MS;
    assert!(rows
        .iter()
        .all(|row| row.start < bind_ticks
            && row.start >= bind_ticks - span_ticks - time::TICKS_PER_SEC));
    assert!(!rows
        .iter()
        .any(|row| matches!(row.end(), Some(end) if end > bind_ticks + time::TICKS_PER_SEC)));
}

#[test]
fn rows_carry_all_properties_in_varied_formats() {
    let mut generator = LiveGenerator::new(3, 150_000.0, 1_800_000_000_000);
    let rows = generator.generate_until(1_800_000_000_000 + 24 * 3600 * 1000);
    assert!(rows.len() > 50_000, "{}", rows.len());
    let properties = [
        "id",
        "correlationId",
        "userId",
        "userPrincipalName",
        "userDisplayName",
        "startDateTime",
        "inviteDateTime",
        "failureDateTime",
        "endDateTime",
        "duration",
        "callType",
        "successfulCall",
        "callerNumber",
        "calleeNumber",
        "mediaPathLocation",
        "signalingLocation",
        "finalSipCode",
        "callEndSubReason",
        "finalSipCodePhrase",
        "trunkFullyQualifiedDomainName",
        "mediaBypassEnabled",
    ];
    let mut digit_counts = HashSet::new();
    let (mut extra, mut null_sub_reason, mut successful) = (0, 0, 0);
    for row in rows.iter().take(20_000) {
        let mut json = String::new();
        direct_routing::write_row(&mut json, row, &TrunkNames::default());
        let value: Value = serde_json::from_str(&json).expect("row JSON");
        for property in properties {
            assert!(value.get(property).is_some(), "{property} in {json}");
        }
        extra += usize::from(value.get("userCountryCode").is_some());
        null_sub_reason += usize::from(value["callEndSubReason"].is_null());
        successful += usize::from(value["successfulCall"] == true);
        let start = value["startDateTime"].as_str().unwrap_or("");
        assert!(DateTime::parse_from_rfc3339(start).is_ok(), "{start}");
        let truth = direct_routing::truth_row(row, &TrunkNames::default());
        assert_eq!(truth.start, start);
        assert_eq!(truth.id, value["id"].as_str().unwrap_or(""));
        digit_counts.insert(start.split('.').nth(1).map_or(0, |f| {
            f.trim_end_matches('Z')
                .split('+')
                .next()
                .unwrap_or("")
                .len()
        }));
        if value["successfulCall"] == true {
            assert_eq!(value["failureDateTime"], time::YEAR_ONE);
            assert!(value["finalSipCode"] == 0 || value["finalSipCode"].is_null());
        } else {
            assert_eq!(value["endDateTime"], time::YEAR_ONE);
            assert_eq!(value["duration"], 0);
        }
        if row.trunk().media_location.is_none() {
            assert!(value["mediaPathLocation"].is_null());
            assert_eq!(value["mediaBypassEnabled"], true);
        }
    }
    assert_eq!(digit_counts.len(), 8, "{digit_counts:?}");
    assert!((50..=400).contains(&extra), "{extra}");
    assert!(null_sub_reason > 20, "{null_sub_reason}");
    let share = successful as f64 / 20_000.0;
    assert!((0.70..0.85).contains(&share), "{share}");
    assert!(
        rows.windows(2)
            .all(|pair| pair[0].start / time::TICKS_PER_SEC
                <= pair[1].start / time::TICKS_PER_SEC + 1)
    );
}

#[test]
fn legacy_trunk_degrades_in_the_last_quarter_hour() {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(9);
    let hour_ms = 1_800_000_000_000 / 3_600_000 * 3_600_000;
    let failing = |minute: i64, rng: &mut rand::rngs::StdRng| {
        (0..1000)
            .filter(|_| {
                !direct_routing::draw_call(
                    rng,
                    DEGRADING_TRUNK,
                    hour_ms + minute * 60_000,
                    Degradation::Hourly,
                )
                .successful()
            })
            .count()
    };
    assert!(failing(45, &mut rng) > 800);
    assert!(failing(20, &mut rng) < 300);
    let row = direct_routing::draw_call(
        &mut rng,
        DEGRADING_TRUNK,
        hour_ms + 41 * 60_000,
        Degradation::Hourly,
    );
    assert_eq!(row.trunk().fqdn, TRUNKS[DEGRADING_TRUNK].fqdn);
}

#[test]
fn a_failing_trunk_fails_all_the_time_and_alone() {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
    let hour_ms = 1_800_000_000_000 / 3_600_000 * 3_600_000;
    let failing = Degradation::of_trunk("SBC02.contoso.com", &TrunkNames::default())
        .expect("a simulated trunk");
    let mut failed = |trunk: usize, minute: i64| {
        (0..1000)
            .filter(|_| {
                !direct_routing::draw_call(&mut rng, trunk, hour_ms + minute * 60_000, failing)
                    .successful()
            })
            .count()
    };
    assert!(failed(1, 10) > 800, "sbc02 fails at any minute");
    assert!(failed(1, 45) > 800);
    assert!(
        failed(DEGRADING_TRUNK, 45) < 300,
        "the hourly degradation is off"
    );
    assert_eq!(
        Degradation::of_trunk("sbc99.contoso.com", &TrunkNames::default()),
        None
    );
}

#[test]
fn request_parsing_rounds_window_edges_up_to_ticks() {
    let path = "/v1.0/communications/callRecords/getDirectRoutingCalls(fromDateTime=1970-01-01T00:00:01.00000001Z,toDateTime=1970-01-02)";
    let log = direct_routing::Log::new(&direct_routing::FUNCTION, Vec::new());
    let logs: [&dyn CallLog; 1] = [&log];
    let query = graph::parse_request(path, Some("%24skip=5"), &logs).expect("valid");
    let (from, to, skip) = graph::window_ticks(&query);
    assert_eq!(from, time::TICKS_PER_SEC + 1);
    assert_eq!(to, 86_400 * time::TICKS_PER_SEC);
    assert_eq!(skip, 5);

    let encoded = "/v1.0/communications/callRecords/getDirectRoutingCalls(fromDateTime=2026-01-01T00%3A00%3A00Z,toDateTime=2026-01-02)";
    assert!(graph::parse_request(encoded, None, &logs).is_ok());
    let broken = "/v1.0/communications/callRecords/getDirectRoutingCalls(fromDateTime=2026-01-01%2,toDateTime=2026-01-02)";
    let error = graph::parse_request(broken, None, &logs).expect_err("cut escape");
    assert_eq!(graph::error_status(&error).0, 400);
    let error = graph::parse_request(
        "/v1.0/communications/callRecords/getDirectRoutingCalls(fromDateTime=2026-01-01,toDateTime=2026-01-02,top=5)",
        None,
        &logs,
    )
    .expect_err("unknown parameter");
    assert_eq!(graph::error_status(&error).1, "BadRequest");
}

#[test]
fn late_rows_stay_hidden_until_release() {
    let rows = direct_routing::scenario_rows(
        5,
        &scenario(3, 4, 5),
        1_800_000_000_000,
        Degradation::Hourly,
    );
    let mut store = store::Store::new(rows);
    let now_ms = 1_800_000_000_000;
    assert_eq!(store.visible(now_ms).count(), 3);
    assert!(store.release(now_ms));
    assert!(!store.release(now_ms + 1));
    assert_eq!(store.visible(now_ms + 20_000).count(), 12);
    assert!(store
        .visible(now_ms + 20_000)
        .all(|row| row.origin == Origin::Preexisting || row.visible_ms >= now_ms));
}

#[test]
fn index_and_debug_do_not_leak_the_secret() {
    let config = config(Traffic::Scenario(Scenario::default()), Clock::system());
    assert!(!format!("{config:?}").contains(SECRET));
    let demo = SimConfig::demo(Clock::system());
    assert_eq!(demo.tenant_id, DEMO_TENANT_ID);
    assert!(matches!(demo.traffic, Traffic::Live { .. }));
    assert_eq!(demo.faults.limits, GraphLimits::DOCUMENTED);
}

#[test]
fn more_trunks_are_copies_of_the_tenant_s_six() {
    let from_ms = 1_800_000_000_000;
    let day_ms = 24 * 3600 * 1000;
    let fqdns = |trunks| -> std::collections::BTreeSet<String> {
        LiveGenerator::new(3, 100_000.0, from_ms)
            .with_trunks(trunks)
            .generate_until(from_ms + day_ms)
            .iter()
            .map(|row| row.trunk_fqdn(&TrunkNames::default()).to_ascii_lowercase())
            .collect()
    };
    let six = fqdns(super::DEMO_TRUNKS);
    assert_eq!(six, trunk_fqdns().map(str::to_owned).collect());
    let many = fqdns(60);
    assert_eq!(many.len(), 60, "{many:?}");
    assert!(six.is_subset(&many));
    assert!(many.contains("sbc01-9.contoso.com") && many.contains("sbc-legacy-9.fabrikam.com"));
    // Without copies, a seed gives the same calls as before copies existed.
    let ids = |generator: LiveGenerator| -> Vec<u128> {
        let mut generator = generator;
        generator
            .generate_until(from_ms + 3600 * 1000)
            .iter()
            .map(|row| row.id)
            .collect()
    };
    assert_eq!(
        ids(LiveGenerator::new(3, 100_000.0, from_ms)),
        ids(LiveGenerator::new(3, 100_000.0, from_ms).with_trunks(super::DEMO_TRUNKS))
    );
}
