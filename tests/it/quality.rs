//! The call-quality collector (`--collector.call-quality`) through the real binary against
//! the simulated tenant's call records: every `teams_direct_routing_audio_*` series equals
//! what the test's own reading of the records says, through late records (404 before they
//! are published), paged sessions, throttling and a restart with `--state.path`; and with
//! the collector off, not one call-record request.
//!
//! Written against the simulator's call records (tracker issue 17's contract:
//! `SimTenantView::call_records`, `call_record_fetches`, `Faults::call_record_delay`,
//! `unpublished_call_records`, `call_record_session_page`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::common::truth::{simulator, tail};
use crate::common::{labels, wait_for, Exporter, Metrics};
use tve_simulator::{Faults, Scenario};

const JITTER: &[f64] = &[0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5];
const LOSS: &[f64] = &[0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5];
const ROUND_TRIP: &[f64] = &[0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0];
const DEGRADATION: &[f64] = &[0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0];

/// What the audio metrics must say, from the records as the simulator holds them.
#[derive(Default, Debug)]
struct Truth {
    streams: BTreeMap<BTreeMap<String, String>, f64>,
    poor: BTreeMap<BTreeMap<String, String>, f64>,
    /// (family, trunk, direction) → observed values.
    observed: BTreeMap<(&'static str, String, String), Vec<f64>>,
    not_placed: u64,
}

/// Seconds of `PT…S` durations, the only form the tests expect from the simulator.
fn seconds(value: &Value) -> Option<f64> {
    let text = value.as_str()?;
    let inner = text.strip_prefix("PT")?.strip_suffix('S')?;
    Some(inner.parse().expect("a PTnS duration"))
}

/// A segment's end: the Teams client, the trunk side (a service endpoint whose role is the
/// mediation server or the gateway), or anything else.
fn kind(end: &Value) -> &str {
    let role = end["userAgent"]["role"].as_str().unwrap_or("");
    match end["@odata.type"].as_str().unwrap_or("") {
        t if t.ends_with("participantEndpoint") => "client",
        t if t.ends_with("serviceEndpoint")
            && matches!(
                role,
                "mediationServer" | "mediationServerCloudConnectorEdition" | "gateway"
            ) =>
        {
            "trunk"
        }
        _ => "other",
    }
}

fn add_record(truth: &mut Truth, trunk: &str, record: &Value) {
    let empty = Vec::new();
    let sessions = record["sessions"].as_array().unwrap_or(&empty);
    for segment in sessions
        .iter()
        .flat_map(|s| s["segments"].as_array().unwrap_or(&empty))
    {
        let placed = match (kind(&segment["caller"]), kind(&segment["callee"])) {
            ("client", "trunk") => Some(("to_trunk", "from_trunk")),
            ("trunk", "client") => Some(("from_trunk", "to_trunk")),
            _ => None,
        };
        for media in segment["media"].as_array().unwrap_or(&empty) {
            let label = media["label"].as_str().unwrap_or("");
            if !label.to_lowercase().contains("audio") {
                continue;
            }
            for stream in media["streams"].as_array().unwrap_or(&empty) {
                let direction = match (placed, stream["streamDirection"].as_str()) {
                    (Some((forward, _)), Some("callerToCallee")) => forward,
                    (Some((_, backward)), Some("calleeToCaller")) => backward,
                    _ => {
                        truth.not_placed += 1;
                        continue;
                    }
                };
                add_stream(truth, trunk, direction, stream);
            }
        }
    }
}

fn add_stream(truth: &mut Truth, trunk: &str, direction: &str, stream: &Value) {
    let values = [
        (
            "degradation",
            stream["averageAudioDegradation"].as_f64(),
            1.0,
            "teams_direct_routing_audio_degradation",
        ),
        (
            "round_trip",
            seconds(&stream["averageRoundTripTime"]),
            0.5,
            "teams_direct_routing_audio_round_trip_seconds",
        ),
        (
            "packet_loss",
            stream["averagePacketLossRate"].as_f64(),
            0.1,
            "teams_direct_routing_audio_packet_loss_ratio",
        ),
        (
            "jitter",
            seconds(&stream["averageJitter"]),
            0.03,
            "teams_direct_routing_audio_jitter_seconds",
        ),
        (
            "concealed_samples",
            stream["averageRatioOfConcealedSamples"].as_f64(),
            0.07,
            "",
        ),
    ];
    let mut poor = false;
    for (reason, value, threshold, histogram) in values {
        let Some(value) = value else { continue };
        if value > threshold {
            poor = true;
            let key = labels(&[
                ("trunk_fqdn", trunk),
                ("direction", direction),
                ("reason", reason),
            ]);
            *truth.poor.entry(key).or_default() += 1.0;
        }
        if !histogram.is_empty() {
            truth
                .observed
                .entry((histogram, trunk.to_owned(), direction.to_owned()))
                .or_default()
                .push(value);
        }
    }
    let quality = if values.iter().all(|v| v.1.is_none()) {
        "unclassified"
    } else if poor {
        "poor"
    } else {
        "good"
    };
    let key = labels(&[
        ("trunk_fqdn", trunk),
        ("direction", direction),
        ("quality", quality),
    ]);
    *truth.streams.entry(key).or_default() += 1.0;
}

fn truth_of(sim: &tve_simulator::SimHandle) -> (Truth, usize) {
    let mut truth = Truth::default();
    let mut published = 0;
    for record in sim.call_records() {
        if record.published_at.is_some() {
            published += 1;
            add_record(
                &mut truth,
                &record.trunk_fqdn.to_lowercase(),
                &record.record,
            );
        }
    }
    (truth, published)
}

fn check_histograms(metrics: &Metrics, truth: &Truth) {
    let families = [
        ("teams_direct_routing_audio_jitter_seconds", JITTER),
        ("teams_direct_routing_audio_packet_loss_ratio", LOSS),
        ("teams_direct_routing_audio_round_trip_seconds", ROUND_TRIP),
        ("teams_direct_routing_audio_degradation", DEGRADATION),
    ];
    for (family, bounds) in families {
        let expected: BTreeMap<_, _> = truth
            .observed
            .iter()
            .filter(|((f, _, _), _)| *f == family)
            .map(|((_, t, d), v)| ((t.clone(), d.clone()), v))
            .collect();
        let counts = metrics.of(&format!("{family}_count"));
        assert_eq!(counts.len(), expected.len(), "{family}: series {counts:?}");
        for ((trunk, direction), values) in expected {
            let series = labels(&[("trunk_fqdn", &trunk), ("direction", &direction)]);
            assert_eq!(
                counts[&series],
                values.len() as f64,
                "{family} count {series:?}"
            );
            let sum = metrics.of(&format!("{family}_sum"))[&series];
            let want: f64 = values.iter().sum();
            assert!(
                (sum - want).abs() <= 1e-9 * want.max(1.0),
                "{family} sum {series:?}: {sum} != {want}"
            );
            for bound in bounds {
                let le = labels(&[
                    ("trunk_fqdn", &trunk),
                    ("direction", &direction),
                    ("le", &bound.to_string()),
                ]);
                let got = metrics.of(&format!("{family}_bucket")).get(&le).copied();
                let want = values.iter().filter(|v| **v <= *bound).count() as f64;
                assert_eq!(got, Some(want), "{family} bucket {le:?}");
            }
        }
    }
}

/// The addresses, device and user names in the double's records.
fn personal_values(sim: &tve_simulator::SimHandle) -> std::collections::BTreeSet<String> {
    fn walk(value: &Value, out: &mut std::collections::BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    let personal = [
                        "ipAddress",
                        "reflexiveIPAddress",
                        "macAddress",
                        "subnet",
                        "displayName",
                    ]
                    .contains(&key.as_str())
                        || key.ends_with("DeviceName");
                    match value.as_str() {
                        Some(text) if personal && text.len() > 3 => {
                            out.insert(text.to_owned());
                        }
                        _ => walk(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for record in sim.call_records() {
        walk(&record.record, &mut out);
    }
    out
}

#[test]
fn audio_metrics_equal_the_records_through_late_records_paging_throttling_and_a_restart() {
    audio_metrics_equal_the_records(Restart::Stop);
}

#[test]
fn audio_metrics_equal_the_records_through_a_sigkill() {
    audio_metrics_equal_the_records(Restart::Kill);
}

/// How the exporter is restarted part-way.
#[derive(Clone, Copy, PartialEq)]
enum Restart {
    /// SIGTERM: it finishes the fetches under way and saves them.
    Stop,
    /// SIGKILL: a record fetched but not yet saved is fetched again, never counted twice.
    Kill,
}

fn audio_metrics_equal_the_records(restart: Restart) {
    let scenario = Scenario {
        preexisting_rows: 150,
        late_rows: 250,
        span: Duration::from_secs(24 * 3600),
        arrival_spread: Duration::from_secs(8),
        malformed_rows: 0,
    };
    let faults = Faults {
        // Each throttled request holds every request to the tenant back for a second.
        throttle_every: 29,
        retry_after_secs: 1,
        call_record_delay: Duration::from_secs(2),
        unpublished_call_records: 0.05,
        call_record_session_page: 2,
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let dir = tempfile::tempdir().unwrap();
    let state = format!("--state.path={}", dir.path().join("state.redb").display());
    let flags = [
        "--collector.call-quality",
        "--call-quality.wait=1s",
        // The scenario's calls ended up to a day ago: give-up counts from the call's end.
        "--call-quality.give-up=100h",
        state.as_str(),
    ];
    let exporter = Exporter::start(&sim.base_url(), &flags);
    exporter.wait_ready(Duration::from_secs(60));
    sim.release();
    // Part-way through the late records, a restart.
    std::thread::sleep(Duration::from_secs(6));
    let before = exporter.metrics();
    match restart {
        Restart::Stop => {
            exporter
                .terminate(Duration::from_secs(30))
                .expect("the exporter stops on SIGTERM");
        }
        Restart::Kill => {
            exporter.kill();
        }
    }
    // A killed process takes the Retry-After it was waiting for with it: its successor's
    // first requests may fall inside it (Graph answers them 429 again), which no process
    // can avoid without the old one's word. Only those are excused.
    let violations_before_restart = sim.stats().retry_after_violations;
    let exporter = Exporter::start(&sim.base_url(), &flags);
    let restored = exporter.metrics();
    for (series, value) in before.of("teams_direct_routing_audio_streams_total") {
        let after = restored
            .of("teams_direct_routing_audio_streams_total")
            .get(&series)
            .copied();
        assert!(
            after >= Some(value),
            "{series:?} went back from {value} to {after:?} over the restart"
        );
    }

    // Every late row is visible within the spread, and its record published within four
    // delays of that: then the records are what they will stay.
    std::thread::sleep(Duration::from_secs(10));
    let (truth, published) = truth_of(&sim);
    assert!(
        published > 200 && truth.not_placed > 0,
        "the double's records are varied: {published} published, {} not placed",
        truth.not_placed
    );
    wait_for(
        Duration::from_secs(120),
        "every published record counted",
        || {
            exporter
                .metrics()
                .of("teams_direct_routing_audio_streams_total")
                == truth.streams
        },
    )
    .unwrap_or_else(|e| {
        let got = exporter
            .metrics()
            .of("teams_direct_routing_audio_streams_total");
        panic!(
            "{e}: got {got:?}\nwant {:?}\nstats {:?}\nlog tail:\n{}",
            truth.streams,
            sim.stats(),
            tail(&exporter.log())
        )
    });
    std::thread::sleep(Duration::from_secs(2));

    let metrics = exporter.metrics();
    assert_eq!(
        metrics.of("teams_direct_routing_audio_streams_total"),
        truth.streams
    );
    assert_eq!(
        metrics.of("teams_direct_routing_audio_poor_streams_total"),
        truth.poor
    );
    assert!(!truth.poor.is_empty(), "the failing trunk's audio is poor");
    assert_eq!(
        metrics.sum(
            "teams_voice_exporter_call_quality_streams_not_placed_total",
            &[]
        ),
        truth.not_placed as f64,
        "streams not placed, saved with the totals over the restart"
    );
    check_histograms(&metrics, &truth);

    // Each published record fetched once after its publication, a stop and restart included
    // (the double counts only the requests it answered, not those it throttled); after a
    // SIGKILL, a record fetched but not yet saved is fetched again.
    let fetches = sim.call_record_fetches();
    let stats = sim.stats();
    for record in sim.call_records() {
        let seen = fetches.get(&record.id).map_or(0, |f| f.after_publication);
        let want = u32::from(record.published_at.is_some());
        // At most the records fetched but not yet saved at the kill are fetched again.
        let fits = match restart {
            Restart::Stop => seen == want,
            Restart::Kill => want <= seen && seen <= 2 * want,
        };
        assert!(
            fits,
            "record {} fetched {seen} times after publication",
            record.id
        );
    }
    assert!(
        stats.call_record_throttled > 0,
        "call-record requests were throttled: {stats:?}"
    );
    assert!(
        fetches.values().any(|f| f.before_publication > 0),
        "some records were asked for before publication (404)"
    );
    assert!(
        stats.call_record_requests > published as u64,
        "sessions are paged, and 404s were retried: {stats:?}"
    );
    match restart {
        Restart::Stop => assert_eq!(stats.retry_after_violations, 0, "{stats:?}"),
        Restart::Kill => {
            assert_eq!(violations_before_restart, 0, "{stats:?}");
            // At most the first request of each lane that sends them: the call-log polls'
            // two lanes and the collector, each stopped by the 429 it gets.
            assert!(stats.retry_after_violations <= 3, "{stats:?}");
        }
    }
    assert!(
        metrics.sum("teams_voice_exporter_call_records_pending", &[]) >= 1.0,
        "the unpublished records wait"
    );
    let (_, page) = exporter.get("/");
    assert!(page.contains("<h2>Call quality</h2>"), "{page}");
    let log = exporter.log();
    let personal = personal_values(&sim);
    assert!(
        personal.len() > 10,
        "the double's records hold personal data"
    );
    let (_, exposition) = exporter.get("/metrics");
    for value in personal {
        assert!(!log.contains(&value), "{value} reached the log");
        assert!(!exposition.contains(&value), "{value} reached /metrics");
        assert!(!page.contains(&value), "{value} reached the landing page");
    }
}

#[test]
fn with_the_collector_off_no_call_record_is_requested() {
    let scenario = Scenario {
        preexisting_rows: 200,
        late_rows: 100,
        span: Duration::from_secs(3600),
        arrival_spread: Duration::from_secs(2),
        malformed_rows: 0,
    };
    let faults = Faults {
        call_record_delay: Duration::from_secs(1),
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let exporter = Exporter::start(&sim.base_url(), &[]);
    exporter.wait_ready(Duration::from_secs(60));
    sim.release();
    std::thread::sleep(Duration::from_secs(6));
    let metrics = exporter.metrics();
    assert!(metrics.sum("teams_direct_routing_calls_total", &[]) >= 300.0);
    assert_eq!(sim.stats().call_record_requests, 0);
    assert!(metrics
        .of("teams_direct_routing_audio_streams_total")
        .is_empty());
    assert!(metrics
        .of("teams_voice_exporter_call_records_pending")
        .is_empty());
    assert!(!exporter.get("/").1.contains("Call quality"));
}
