//! Graph's rate limits over HTTP, on a manual clock: every request happens at a clock time
//! the test chose, so windows and Retry-After values are exact however slow the machine.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use serde_json::Value;

use tve_clock::Clock;

use super::{calls_url, config, get, scenario, start, token, CLIENT, TENANT};
use crate::{Faults, GraphLimits, RateLimit, SimHandle, SimulationArgs, Traffic};

const DIRECT_ROUTING: &str = "getDirectRoutingCalls";
const PSTN: &str = "getPstnCalls";

/// A clock that stands at a whole second until advanced.
fn manual_clock() -> Clock {
    let start: DateTime<Utc> = "2026-03-02T10:00:00Z".parse().expect("static time");
    Clock::manual(start)
}

fn per(requests: u32, window_secs: u64) -> Option<RateLimit> {
    Some(RateLimit {
        requests,
        window_secs,
    })
}

/// A scenario tenant on a manual clock with `limits` and no other fault.
async fn limited(limits: GraphLimits) -> SimHandle {
    let mut config = config(Traffic::Scenario(scenario(5, 0, 0)), manual_clock());
    config.faults = Faults {
        limits,
        ..Faults::default()
    };
    start(config).await
}

fn url(sim: &SimHandle, function: &str) -> String {
    match function {
        PSTN => format!(
            "{}/v1.0/communications/callRecords/getPstnCalls(fromDateTime=2026-03-01,toDateTime=2026-03-02)",
            sim.base_url()
        ),
        _ => calls_url(sim, "2026-03-01", "2026-03-02"),
    }
}

/// Sends one request; returns its status and Retry-After.
async fn send(sim: &SimHandle, function: &str, token: &str) -> (u16, Option<String>) {
    let response = get(&url(sim, function), token).await;
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().expect("ASCII").to_owned());
    (response.status().as_u16(), retry_after)
}

/// The 429 message of a limit, as Graph words it.
fn over(category: &str) -> String {
    format!(
        "Too many requests from Identifier:{TENANT}+{CLIENT} under category:{category}. Please try again later."
    )
}

fn advance_ms(sim: &SimHandle, ms: u64) {
    sim.clock().advance(Duration::from_millis(ms));
}

#[tokio::test]
async fn the_51st_request_to_a_function_in_a_minute_is_refused_but_not_the_other_function() {
    let sim = limited(GraphLimits::DOCUMENTED).await;
    let token = token(&sim).await;
    // 50 requests, one a second of clock time.
    for second in 0..50 {
        assert_eq!(send(&sim, DIRECT_ROUTING, &token).await.0, 200, "{second}");
        advance_ms(&sim, 1000);
    }
    // At 50 s: the 51st within a minute.
    let response = get(&url(&sim, DIRECT_ROUTING), &token).await;
    assert_eq!(response.status(), 429);
    // Room again once two have left: the one of 0 s and, because the refused request
    // counts too, the one of 1 s, at 61 s.
    assert_eq!(response.headers()["retry-after"], "11");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(body["error"]["message"], over(DIRECT_ROUTING).as_str());
    // The other function has a window of its own. (Sent during a Retry-After, it is a
    // violation all the same: a throttled client is to send nothing to the tenant.)
    assert_eq!(send(&sim, PSTN, &token).await, (200, None));
    assert_eq!(sim.stats().retry_after_violations, 1);

    // A client that waits exactly the Retry-After gets in.
    advance_ms(&sim, 11_000);
    assert_eq!(send(&sim, DIRECT_ROUTING, &token).await, (200, None));

    let stats = sim.stats();
    assert_eq!(stats.data_requests, 53);
    assert_eq!(stats.throttled_responses, 1);
    assert_eq!(stats.throttled_per_function, 1);
    assert_eq!(
        (stats.throttled_per_app, stats.throttled_per_tenant),
        (0, 0)
    );
    assert_eq!(stats.retry_after_violations, 1);
    let by_function: Vec<(&str, u64)> = stats
        .data_requests_by_function
        .iter()
        .map(|(name, count)| (name.as_str(), *count))
        .collect();
    assert_eq!(by_function, [(DIRECT_ROUTING, 52), (PSTN, 1)]);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_app_limit_counts_both_functions_together() {
    let sim = limited(GraphLimits {
        per_function: per(6, 2),
        per_app: per(10, 2),
        ..GraphLimits::OFF
    })
    .await;
    let token = token(&sim).await;
    for function in [DIRECT_ROUTING, PSTN].repeat(5) {
        assert_eq!(send(&sim, function, &token).await.0, 200);
    }
    // Five of each: within each function's limit, at the app's.
    let response = get(&url(&sim, PSTN), &token).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["message"], over("CallRecords").as_str());
    assert_eq!(send(&sim, DIRECT_ROUTING, &token).await.0, 429);
    // A request that names no call-log function counts against the app too.
    let me = get(&format!("{}/v1.0/me", sim.base_url()), &token).await;
    assert_eq!(me.status(), 429);

    advance_ms(&sim, 2000);
    assert_eq!(send(&sim, PSTN, &token).await.0, 200);
    let stats = sim.stats();
    assert_eq!(stats.throttled_per_app, 3);
    assert_eq!(stats.throttled_per_function, 0);
    assert_eq!(stats.data_requests, 14);
    assert_eq!(stats.data_requests_by_function.values().sum::<u64>(), 13);
    sim.shutdown().await;
}

#[tokio::test]
async fn other_apps_fill_the_tenant_limit() {
    let limits = GraphLimits {
        per_tenant: per(10, 2),
        other_apps: per(8, 2),
        ..GraphLimits::DOCUMENTED
    };
    let sim = limited(limits).await;
    let token = token(&sim).await;
    // The other apps send 8 of the tenant's 10 every 2 s, so two are left.
    assert_eq!(send(&sim, DIRECT_ROUTING, &token).await.0, 200);
    advance_ms(&sim, 500);
    assert_eq!(send(&sim, PSTN, &token).await.0, 200);
    let response = get(&url(&sim, DIRECT_ROUTING), &token).await;
    assert_eq!(response.status(), 429);
    // Room for one once the requests of 0 s and 0.5 s have left.
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["message"], over("Tenant").as_str());

    advance_ms(&sim, 2000);
    assert_eq!(send(&sim, DIRECT_ROUTING, &token).await.0, 200);
    let stats = sim.stats();
    assert_eq!(stats.throttled_per_tenant, 1);
    assert_eq!(stats.throttled_responses, 1);

    sim.shutdown().await;

    // Without the other apps, the same tenant has room for ten.
    let alone = limited(GraphLimits {
        per_tenant: per(10, 2),
        ..GraphLimits::DOCUMENTED
    })
    .await;
    let alone_token = super::token(&alone).await;
    for _ in 0..10 {
        assert_eq!(send(&alone, DIRECT_ROUTING, &alone_token).await.0, 200);
    }
    assert_eq!(alone.stats().throttled_responses, 0);
    alone.shutdown().await;
}

#[tokio::test]
async fn throttled_requests_count_and_early_ones_are_violations() {
    let sim = limited(GraphLimits {
        per_function: per(10, 2),
        ..GraphLimits::OFF
    })
    .await;
    let token = token(&sim).await;
    for _ in 0..10 {
        assert_eq!(send(&sim, DIRECT_ROUTING, &token).await.0, 200);
    }
    // At 1 s: room again at 2 s, when the first ten have left.
    advance_ms(&sim, 1000);
    assert_eq!(
        send(&sim, DIRECT_ROUTING, &token).await,
        (429, Some("1".to_owned()))
    );
    // Waiting exactly that long is enough; the window holds the refused request and
    // this one.
    advance_ms(&sim, 1000);
    for _ in 0..9 {
        assert_eq!(send(&sim, DIRECT_ROUTING, &token).await.0, 200);
    }
    // Eleven in (0 s, 2 s] with the refused one: had it not counted, this would pass.
    // Room at 4 s, when the one of 1 s and those of 2 s have left.
    assert_eq!(
        send(&sim, DIRECT_ROUTING, &token).await,
        (429, Some("2".to_owned()))
    );
    assert_eq!(sim.stats().retry_after_violations, 0);
    // Back too early, at 3 s: a violation, refused and counted in turn.
    advance_ms(&sim, 1000);
    assert_eq!(
        send(&sim, DIRECT_ROUTING, &token).await,
        (429, Some("1".to_owned()))
    );
    assert_eq!(sim.stats().retry_after_violations, 1);
    advance_ms(&sim, 1000);
    assert_eq!(send(&sim, DIRECT_ROUTING, &token).await.0, 200);

    let stats = sim.stats();
    assert_eq!(stats.throttled_responses, 3);
    assert_eq!(stats.throttled_per_function, 3);
    assert_eq!(stats.retry_after_violations, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn limits_change_at_runtime_and_retry_after_may_be_a_date() {
    let sim = limited(GraphLimits::OFF).await;
    let token = token(&sim).await;
    let faults = serde_json::json!({
        "retry_after_http_date": true,
        "limits": { "per_function": { "requests": 1, "window_secs": 2 } },
    });
    let response = reqwest::Client::new()
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&faults)
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 200);
    assert_eq!(
        sim.faults().limits,
        GraphLimits {
            per_function: per(1, 2),
            ..GraphLimits::OFF
        }
    );
    advance_ms(&sim, 300);
    assert_eq!(send(&sim, DIRECT_ROUTING, &token).await.0, 200);
    advance_ms(&sim, 400);
    let (status, date) = send(&sim, DIRECT_ROUTING, &token).await;
    assert_eq!(status, 429);
    // Room from 2.3 s after the start: the date names the next whole second.
    let until: DateTime<Utc> = httpdate::parse_http_date(&date.expect("Retry-After"))
        .expect("HTTP date")
        .into();
    let start: DateTime<Utc> = "2026-03-02T10:00:00Z".parse().expect("static time");
    assert_eq!(until, start + chrono::Duration::seconds(3));
    sim.shutdown().await;
}

#[derive(Debug, Parser)]
struct Flags {
    #[command(flatten)]
    simulation: SimulationArgs,
}

#[test]
fn limit_flags_default_to_graph_s_documented_limits() {
    let parse = |args: &[&str]| {
        Flags::try_parse_from(std::iter::once("exporter").chain(args.iter().copied()))
            .map(|flags| flags.simulation.limits())
            .map_err(|error| error.to_string())
    };
    assert_eq!(parse(&[]), Ok(GraphLimits::DOCUMENTED));
    let limits = parse(&[
        "--simulate.rate-limit=10/2s",
        "--simulate.app-rate-limit=off",
        "--simulate.tenant-rate-limit",
        "3000/1m",
        "--simulate.other-apps=900/60s",
        "--simulate.call-record-rate-limit=off",
    ])
    .expect("valid flags");
    assert_eq!(
        limits,
        GraphLimits {
            per_function: per(10, 2),
            per_app: None,
            per_tenant: per(3000, 60),
            other_apps: per(900, 60),
            call_records: None,
        }
    );
    let error = parse(&["--simulate.rate-limit=10/1500ms"]).expect_err("not whole seconds");
    assert!(error.contains("whole number of seconds"), "{error}");
    let error = parse(&["--simulate.other-apps=lots"]).expect_err("not a rate");
    assert!(error.contains("50/60s") && error.contains("off"), "{error}");
    let config = Flags::try_parse_from(["exporter", "--simulate.tenant-rate-limit=OFF"])
        .expect("valid flags")
        .simulation
        .config(Duration::from_secs(3600), Clock::system());
    assert_eq!(config.faults.limits.per_tenant, None);
    assert_eq!(config.faults.limits.per_function, per(50, 60));
}

#[test]
fn rate_limits_convert_from_and_to_rates() {
    use tve_clock::Rate;
    assert_eq!(
        Rate::from(RateLimit::PER_APP),
        "200/60s".parse().expect("rate")
    );
    assert_eq!(
        RateLimit::try_from("1000/1m".parse::<Rate>().expect("rate")),
        Ok(RateLimit::PER_TENANT)
    );
    assert!(RateLimit::try_from(Rate::new(5, Duration::from_millis(2500))).is_err());
    assert_eq!(RateLimit::PER_FUNCTION.to_string(), "50/60s");
    assert_eq!(Faults::default().limits, GraphLimits::OFF);
}
