//! PSTN calls (`getPstnCalls`) read beside Direct Routing: every `teams_pstn_*` series and
//! every series by country equals the simulated tenant's ground truth, computed here with
//! the test's own code (its own table of calling codes, exact decimal sums), through late
//! rows, throttling and server errors; the Direct Routing figures are unchanged by it; and a
//! collector turned off reads no page of its function.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::common::truth::{
    assert_call_metrics, counting_since_of, expected, simulator, tail, Expected,
};
use crate::common::{labels, wait_for, Exporter, Metrics};
use tve_simulator::{Faults, GroundTruth, PstnGroundTruth, Scenario};

/// The simulated world's calling codes (`crates/simulator`'s numbering plan), written out
/// here rather than taken from the simulator or the exporter: the country a number must
/// give.
const CALLING_CODES: &[(&str, &str)] = &[
    ("+49", "DE"),
    ("+44", "GB"),
    ("+33", "FR"),
    ("+31", "NL"),
    ("+41", "CH"),
    ("+34", "ES"),
    ("+39", "IT"),
    ("+46", "SE"),
    ("+1", "US"),
    ("+65", "SG"),
    ("+81", "JP"),
    ("+91", "IN"),
    ("+61", "AU"),
    ("+55", "BR"),
    ("+48", "PL"),
    ("+232", "SL"),
];

fn or_unknown(value: &Option<String>) -> String {
    value
        .clone()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The far end's country as the issue defines it: `otherPartyCountryCode` when the row
/// has one, else the number of the callee (outbound) or caller (inbound).
fn country(
    direction: &str,
    caller: &Option<String>,
    callee: &Option<String>,
    other_party: &Option<String>,
) -> String {
    if let Some(code) = other_party.as_deref().filter(|c| c.len() == 2) {
        return code.to_ascii_uppercase();
    }
    let number = match direction {
        "inbound" => caller,
        "outbound" => callee,
        _ => &None,
    };
    number
        .as_deref()
        .and_then(|n| {
            CALLING_CODES
                .iter()
                .find(|(code, _)| n.starts_with(code))
                .map(|(_, iso)| (*iso).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn pstn_direction(call_type: &Option<String>) -> &'static str {
    match call_type.as_deref() {
        Some(t) if t.ends_with("_in") => "inbound",
        Some(t) if t.contains("_out") => "outbound",
        _ => "unknown",
    }
}

fn direct_routing_direction(call_type: &Option<String>) -> &'static str {
    match call_type.as_deref() {
        Some(t) if t.starts_with("ByotIn") => "inbound",
        Some(t) if t.starts_with("ByotOut") => "outbound",
        _ => "unknown",
    }
}

/// What `/metrics` must say of the PSTN log.
#[derive(Default)]
struct ExpectedPstn {
    calls: BTreeMap<BTreeMap<String, String>, f64>,
    /// (call type, destination context) → durations.
    duration: BTreeMap<(String, String), Vec<f64>>,
    charges: BTreeMap<BTreeMap<String, String>, Decimal>,
    by_country: BTreeMap<BTreeMap<String, String>, f64>,
}

fn expected_pstn(truth: &PstnGroundTruth) -> ExpectedPstn {
    let mut e = ExpectedPstn::default();
    for row in &truth.rows {
        let call_type = or_unknown(&row.call_type);
        let context = or_unknown(&row.destination_context);
        let key = labels(&[
            ("call_type", &call_type),
            ("destination_context", &context),
            ("operator", &or_unknown(&row.operator)),
            ("license_capability", &or_unknown(&row.license_capability)),
            ("usage_country_code", &or_unknown(&row.usage_country_code)),
        ]);
        *e.calls.entry(key).or_default() += 1.0;
        if let Some(duration) = row.duration_secs.filter(|d| *d >= 0) {
            e.duration
                .entry((call_type.clone(), context.clone()))
                .or_default()
                .push(duration as f64);
        }
        if let Some(currency) = &row.currency {
            let amount = |text: &Option<String>| {
                text.as_deref()
                    .map_or(Decimal::ZERO, |t| Decimal::from_str(t).unwrap())
            };
            let key = labels(&[
                ("currency", currency),
                ("call_type", &call_type),
                ("destination_context", &context),
            ]);
            *e.charges.entry(key).or_default() +=
                amount(&row.charge) + amount(&row.connection_charge);
        }
        let direction = pstn_direction(&row.call_type);
        let key = labels(&[
            ("direction", direction),
            (
                "country",
                &country(
                    direction,
                    &row.caller_number,
                    &row.callee_number,
                    &row.other_party_country_code,
                ),
            ),
        ]);
        *e.by_country.entry(key).or_default() += 1.0;
    }
    e
}

fn expected_direct_routing_by_country(
    truth: &GroundTruth,
) -> BTreeMap<BTreeMap<String, String>, f64> {
    let mut by_country = BTreeMap::new();
    for row in &truth.rows {
        let trunk = or_unknown(&row.trunk_fqdn.as_ref().map(|t| t.to_lowercase()));
        let direction = direct_routing_direction(&row.call_type);
        let key = labels(&[
            ("trunk_fqdn", &trunk),
            ("direction", direction),
            (
                "country",
                &country(
                    direction,
                    &row.caller_number,
                    &row.callee_number,
                    &row.other_party_country_code,
                ),
            ),
        ]);
        *by_country.entry(key).or_default() += 1.0;
    }
    by_country
}

fn assert_direct_routing_unchanged(metrics: &Metrics, e: &Expected) {
    assert_call_metrics(metrics, e, "Direct Routing");
}

fn check_pstn(metrics: &Metrics, e: &ExpectedPstn) {
    assert_eq!(
        metrics.of("teams_pstn_calls_total"),
        e.calls,
        "teams_pstn_calls_total differs from ground truth"
    );
    assert_eq!(
        metrics.of("teams_pstn_calls_by_country_total"),
        e.by_country,
        "teams_pstn_calls_by_country_total differs"
    );
    let charges = metrics.of("teams_pstn_charges_total");
    assert_eq!(
        charges.keys().collect::<Vec<_>>(),
        e.charges.keys().collect::<Vec<_>>(),
        "teams_pstn_charges_total series"
    );
    for (series, want) in &e.charges {
        let got = charges[series];
        let want = want.to_f64().unwrap();
        // Exact sums render as the float nearest to them; float sums would drift.
        assert!(
            (got - want).abs() <= want.abs() * 1e-12,
            "charges {series:?}: {got} vs exactly {want}"
        );
    }
    check_type_context_histogram(metrics, "teams_pstn_call_duration_seconds", &e.duration);
}

/// As `check_histogram`, for the PSTN histograms' labels.
fn check_type_context_histogram(
    metrics: &Metrics,
    name: &str,
    expected: &BTreeMap<(String, String), Vec<f64>>,
) {
    let counts = metrics.of(&format!("{name}_count"));
    assert_eq!(counts.len(), expected.len(), "{name}: {:?}", counts.keys());
    for ((call_type, context), values) in expected {
        let series = labels(&[("call_type", call_type), ("destination_context", context)]);
        assert_eq!(
            counts.get(&series),
            Some(&(values.len() as f64)),
            "{name}_count {series:?}"
        );
        let sum: f64 = values.iter().sum();
        assert_eq!(
            metrics.samples[&(format!("{name}_sum"), series.clone())],
            sum,
            "{name}_sum {series:?}"
        );
        for (bucket, got) in metrics.of(&format!("{name}_bucket")) {
            if bucket["call_type"] != *call_type || bucket["destination_context"] != *context {
                continue;
            }
            let le: f64 = match bucket["le"].as_str() {
                "+Inf" => f64::INFINITY,
                le => le.parse().unwrap(),
            };
            let want = values.iter().filter(|v| **v <= le).count() as f64;
            assert_eq!(got, want, "{name}_bucket {bucket:?}");
        }
    }
}

#[test]
fn both_logs_equal_ground_truth_through_late_rows_throttling_and_server_errors() {
    let scenario = Scenario {
        preexisting_rows: 800,
        late_rows: 3000,
        span: Duration::from_secs(48 * 3600),
        arrival_spread: Duration::from_secs(10),
        malformed_rows: 6,
    };
    let faults = Faults {
        throttle_every: 7,
        retry_after_secs: 1,
        unavailable_every: 11,
        invalid_json_every: 17,
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    let exporter = Exporter::start(&sim.base_url(), &["--collector.pstn"]);
    exporter.wait_ready(Duration::from_secs(60));
    sim.release();

    let ingested = |endpoint: &str| {
        exporter.metrics().sum(
            "teams_voice_exporter_rows_ingested_total",
            &[("endpoint", endpoint)],
        )
    };
    wait_for(
        Duration::from_secs(150),
        "every late row of both logs counted",
        || ingested("getDirectRoutingCalls") >= 3800.0 && ingested("getPstnCalls") >= 3800.0,
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}; stats {:?}; log tail:\n{}",
            sim.stats(),
            tail(&exporter.log())
        )
    });
    // Let a sweep pass, so that anything counted twice would show.
    std::thread::sleep(Duration::from_secs(3));

    let metrics = exporter.metrics();
    let truth = sim.ground_truth_started_from(counting_since_of(&metrics, "getDirectRoutingCalls"));
    let pstn = sim.pstn_ground_truth_started_from(counting_since_of(&metrics, "getPstnCalls"));
    assert_eq!(truth.rows.len(), 3800, "the double released every late row");
    assert_eq!(
        pstn.rows.len(),
        3800,
        "the double released every late PSTN row"
    );
    assert!(
        pstn.invalid_rows >= 5,
        "the double served malformed PSTN rows"
    );

    assert_direct_routing_unchanged(&metrics, &expected(&truth));
    assert_eq!(
        metrics.of("teams_direct_routing_calls_by_country_total"),
        expected_direct_routing_by_country(&truth),
        "teams_direct_routing_calls_by_country_total differs"
    );
    let e = expected_pstn(&pstn);
    check_pstn(&metrics, &e);
    for (endpoint, rows, invalid) in [
        (
            "getDirectRoutingCalls",
            truth.rows.len(),
            truth.invalid_rows,
        ),
        ("getPstnCalls", pstn.rows.len(), pstn.invalid_rows),
    ] {
        let of = |name: &str| metrics.sum(name, &[("endpoint", endpoint)]);
        assert_eq!(of("teams_voice_exporter_rows_ingested_total"), rows as f64);
        assert_eq!(
            of("teams_voice_exporter_rows_invalid_total"),
            invalid as f64
        );
    }
    // The simulated tenant's charges are real money: some series must be far from 0.
    assert!(
        e.charges.values().any(|c| *c > Decimal::ONE),
        "{:?}",
        e.charges
    );
    let countries: Vec<_> = e.by_country.keys().map(|k| k["country"].clone()).collect();
    assert!(
        countries.iter().filter(|c| *c != "unknown").count() >= 5,
        "{countries:?}"
    );

    let stats = sim.stats();
    assert_eq!(stats.retry_after_violations, 0, "{stats:?}");
    assert!(stats.throttled_responses > 0, "{stats:?}");
    let (_, page) = exporter.get("/");
    assert!(page.contains("getPstnCalls") && page.contains("Polling getPstnCalls"));
}

#[test]
fn a_collector_turned_off_reads_no_page_of_its_function() {
    let scenario = Scenario {
        preexisting_rows: 300,
        late_rows: 0,
        span: Duration::from_secs(6 * 3600),
        arrival_spread: Duration::from_secs(1),
        malformed_rows: 0,
    };
    for (flags, off, on) in [
        (
            &["--no-collector.pstn"][..],
            "getPstnCalls",
            "getDirectRoutingCalls",
        ),
        (
            &["--collector.pstn", "--no-collector.direct-routing"][..],
            "getDirectRoutingCalls",
            "getPstnCalls",
        ),
    ] {
        let (_runtime, sim) = simulator(scenario.clone(), Faults::default());
        let exporter = Exporter::start(&sim.base_url(), flags);
        exporter.wait_ready(Duration::from_secs(60));
        // Let a sweep pass too.
        std::thread::sleep(Duration::from_secs(3));
        let requests = sim.stats().data_requests_by_function;
        assert_eq!(requests.get(off).copied().unwrap_or(0), 0, "{requests:?}");
        assert!(requests.get(on).copied().unwrap_or(0) > 0, "{requests:?}");
        let metrics = exporter.metrics();
        assert_eq!(
            metrics.sum(
                "teams_voice_exporter_rows_ingested_total",
                &[("endpoint", on)]
            ),
            300.0
        );
        let off_series: Vec<_> = metrics
            .samples
            .keys()
            .filter(|(name, labels)| {
                labels.get("endpoint").map(String::as_str) == Some(off)
                    || (off == "getPstnCalls" && name.starts_with("teams_pstn_"))
                    || (off == "getDirectRoutingCalls" && name.starts_with("teams_direct_routing_"))
            })
            .collect();
        assert!(off_series.is_empty(), "{off} is off: {off_series:?}");
        let (_, page) = exporter.get("/");
        let flag = if off == "getPstnCalls" {
            "--no-collector.pstn"
        } else {
            "--no-collector.direct-routing"
        };
        assert!(
            page.contains(&format!("<strong>off</strong> (<code>{flag}</code>)")),
            "{page}"
        );
    }
}

/// What `/metrics` shows of the PSTN log: every `teams_pstn_*` sample.
fn pstn_samples(metrics: &Metrics) -> Vec<(String, BTreeMap<String, String>, f64)> {
    metrics
        .samples
        .iter()
        .filter(|((name, _), _)| name.starts_with("teams_pstn_"))
        .map(|((name, labels), value)| (name.clone(), labels.clone(), *value))
        .collect()
}

#[test]
fn pstn_counts_survive_sigkills_in_their_own_state_file_exactly() {
    let scenario = Scenario {
        preexisting_rows: 1000,
        late_rows: 3000,
        span: Duration::from_secs(48 * 3600),
        arrival_spread: Duration::from_secs(10),
        malformed_rows: 4,
    };
    let (_runtime, sim) = simulator(scenario, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let state = format!("--state.path={}", path.display());
    let flags = ["--collector.pstn", state.as_str()];
    let mut exporter = Exporter::start(&sim.base_url(), &flags);
    exporter.wait_ready(Duration::from_secs(60));
    assert!(path.exists(), "Direct Routing keeps --state.path itself");
    assert!(
        dir.path().join("state.pstn.redb").exists(),
        "PSTN calls are kept beside it"
    );
    sim.release();

    // SIGKILL twice while late rows arrive: no PSTN counter ever goes back.
    let mut last = exporter.metrics();
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(2500));
        let seen = exporter.metrics();
        exporter.kill();
        exporter = Exporter::start(&sim.base_url(), &flags);
        let restored = exporter.metrics();
        for (name, labels, before) in pstn_samples(&seen) {
            let after = restored
                .samples
                .get(&(name.clone(), labels.clone()))
                .copied()
                .unwrap_or(-1.0);
            assert!(
                after >= before,
                "{name}{labels:?} went back from {before} to {after}"
            );
        }
        last = seen;
    }
    assert!(
        last.sum("teams_pstn_calls_total", &[]) > 0.0,
        "calls were counted before the kills"
    );

    let ingested = |exporter: &Exporter| {
        exporter.metrics().sum(
            "teams_voice_exporter_rows_ingested_total",
            &[("endpoint", "getPstnCalls")],
        )
    };
    wait_for(
        Duration::from_secs(120),
        "every late PSTN row counted",
        || ingested(&exporter) >= 4000.0,
    )
    .unwrap_or_else(|e| panic!("{e}; log tail:\n{}", tail(&exporter.log())));
    std::thread::sleep(Duration::from_secs(3));
    let metrics = exporter.metrics();
    let pstn = sim.pstn_ground_truth_started_from(counting_since_of(&metrics, "getPstnCalls"));
    assert_eq!(pstn.rows.len(), 4000);
    check_pstn(&metrics, &expected_pstn(&pstn));
    assert_eq!(ingested(&exporter), 4000.0, "no PSTN row counted twice");

    // A clean stop and start restores exactly what was shown.
    let shown = pstn_samples(&metrics);
    assert!(exporter.terminate(Duration::from_secs(20)).is_some());
    let exporter = Exporter::start(&sim.base_url(), &flags);
    assert_eq!(pstn_samples(&exporter.metrics()), shown);
}
