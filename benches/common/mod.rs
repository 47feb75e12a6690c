//! What the benchmarks share: Graph pages from the simulated tenant, and rows that make a
//! given number of series.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tve_clock::Clock;
use tve_simulator::{
    SimConfig, SimHandle, Traffic, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, DEMO_TRUNKS,
};

/// Pages of `getDirectRoutingCalls` as the simulated tenant sends them (1,000 rows each,
/// the simulator's model of Graph's rows: quirks, nulls, extra fields and all), for a
/// tenant of `calls_per_day` over the last `hours`.
pub struct Pages {
    pub bodies: Vec<bytes::Bytes>,
    pub rows: usize,
    /// Start of the window the pages were read for.
    pub from: DateTime<Utc>,
    /// When the pages were read.
    pub read_at: DateTime<Utc>,
}

impl Pages {
    pub fn bytes(&self) -> usize {
        self.bodies.iter().map(|b| b.len()).sum()
    }
}

pub fn simulated_pages(calls_per_day: f64, hours: u64) -> Pages {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut config = SimConfig::demo(Clock::system());
        config.seed = 7;
        config.traffic = Traffic::Live {
            calls_per_day,
            history: Duration::from_secs(hours * 3600 + 3600),
            trunks: DEMO_TRUNKS,
        };
        let sim = SimHandle::bind(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("simulator");
        let base = sim.base_url();
        let client = reqwest::Client::new();
        let token: serde_json::Value = client
            .post(format!("{base}/{DEMO_TENANT_ID}/oauth2/v2.0/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", DEMO_CLIENT_ID),
                ("client_secret", DEMO_CLIENT_SECRET),
                ("scope", &format!("{base}/.default")),
            ])
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token");
        let token = token["access_token"].as_str().expect("token").to_owned();
        let read_at = sim.clock().now();
        let from = read_at - chrono::Duration::hours(hours as i64);
        let mut url = Some(format!(
            "{base}/v1.0/communications/callRecords/getDirectRoutingCalls(fromDateTime={},toDateTime={})",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            read_at.format("%Y-%m-%dT%H:%M:%SZ"),
        ));
        let mut bodies = Vec::new();
        let mut rows = 0;
        while let Some(next) = url.take() {
            let body = client
                .get(&next)
                .bearer_auth(&token)
                .send()
                .await
                .expect("page request")
                .error_for_status()
                .expect("page")
                .bytes()
                .await
                .expect("page body");
            let page: teams_voice_exporter::source::row::Page =
                serde_json::from_slice(&body).expect("a page");
            rows += page.value.len();
            url = page.next_link;
            bodies.push(body);
        }
        sim.shutdown().await;
        Pages {
            bodies,
            rows,
            from,
            read_at,
        }
    })
}

/// Call types and outcomes (final SIP code, sub-reason; 0 is success) every synthetic
/// trunk gets, so that each trunk makes [`SERIES_PER_TRUNK`] series.
const CALL_TYPES: [&str; 4] = [
    "ByotIn",
    "ByotOut",
    "ByotInUserForwarding",
    "ByotOutUserForwarding",
];
const OUTCOMES: [(i64, i64); 6] = [
    (0, 540000),
    (486, 540486),
    (487, 540487),
    (503, 560503),
    (408, 560408),
    (480, 540480),
];
/// Per trunk: 24 `calls_total` (4 types x 6 outcomes), 5 `call_failures_total`, 4
/// duration histograms of 16 series and 4 setup histograms of 15.
pub const SERIES_PER_TRUNK: usize = 4 * 6 + 5 + 4 * 16 + 4 * 15;

/// Rows that make about `series` call series: every combination above on enough trunks.
pub fn rows_for_series(series: usize) -> Vec<String> {
    let trunks = series.div_ceil(SERIES_PER_TRUNK);
    let mut rows = Vec::new();
    for trunk in 0..trunks {
        for (t, call_type) in CALL_TYPES.iter().enumerate() {
            for (o, (code, sub)) in OUTCOMES.iter().enumerate() {
                let successful = *code == 0;
                let n = rows.len();
                rows.push(format!(
                    r#"{{"id":"{n:08x}-0000-4000-8000-{trunk:06x}{t:02x}{o:02x}00","startDateTime":"2026-11-27T10:00:{:02}.1234567Z","inviteDateTime":"2026-11-27T09:59:58Z","endDateTime":"{}","failureDateTime":"{}","duration":{},"callType":"{call_type}","successfulCall":{successful},"mediaPathLocation":"EUWE","finalSipCode":{code},"callEndSubReason":{sub},"trunkFullyQualifiedDomainName":"sbc{trunk:05}.example.com"}}"#,
                    n % 60,
                    if successful { "2026-11-27T10:05:00Z" } else { "0001-01-01T00:00:00Z" },
                    if successful { "0001-01-01T00:00:00Z" } else { "2026-11-27T10:00:01Z" },
                    if successful { 300 } else { 0 },
                ));
            }
        }
    }
    rows
}

/// Runs `f` `rounds` times and returns the times, fastest first.
pub fn time_rounds(rounds: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

pub fn median(times: &[Duration]) -> Duration {
    times[times.len() / 2]
}

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
