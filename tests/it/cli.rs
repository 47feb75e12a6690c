//! The command line and HTTP surface of the real binary: start-up errors, the demo, the
//! landing and health endpoints, and a clean stop on SIGTERM.

use std::time::Duration;

use crate::common::{markers, wait_for, ExporterCommand, Metrics, SECRET};

/// Runs the binary to its end; returns the exit code and everything it printed.
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let ran = ExporterCommand::new(args).envs(env).run();
    (ran.code, ran.text())
}

#[test]
fn a_bad_duration_names_the_flag_and_exits_non_zero() {
    let (code, text) = run(&["--poll.interval=banana"], &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("--poll.interval") && text.contains("banana") && text.contains("90s"),
        "{text}"
    );
}

#[test]
fn missing_credentials_say_what_to_set_and_never_print_the_secret() {
    let (code, text) = run(
        &["--web.listen-address=127.0.0.1:0"],
        &[("AZURE_CLIENT_SECRET", SECRET)],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("AZURE_TENANT_ID") && text.contains("AZURE_CLIENT_ID"),
        "{text}"
    );
    assert!(
        text.contains("missing AZURE_TENANT_ID, AZURE_CLIENT_ID."),
        "only what is missing is listed: {text}"
    );
    assert!(text.contains("--demo"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn a_bad_tenants_file_names_its_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.yml");
    std::fs::write(
        &file,
        "tenants:\n  - id: contoso.onmicrosoft.com\n  - id: Contoso.onmicrosoft.com\n    name: other\n",
    )
    .unwrap();
    let flag = format!("--config.file={}", file.display());
    let (code, text) = run(
        &[&flag, "--web.listen-address=127.0.0.1:0"],
        &[("AZURE_CLIENT_ID", "x"), ("AZURE_CLIENT_SECRET", SECRET)],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("tenants.yml:3") && text.contains("line 2"),
        "the duplicate and its first line are named: {text}"
    );
    assert!(!text.contains(SECRET), "{text}");

    // Sharding splits a tenants file: without one it is a mistake, not a silent no-op.
    let (code, text) = run(
        &[
            "--shard=1",
            "--total-shards=2",
            "--web.listen-address=127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--config.file"), "{text}");
}

#[test]
fn an_unreadable_secret_file_is_named() {
    let (code, text) = run(
        &["--azure.client-secret-file=/nonexistent/secret"],
        &[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("/nonexistent/secret") && text.contains("--azure.client-secret-file"),
        "{text}"
    );
}

#[test]
fn schedule_mistakes_are_refused_at_start() {
    let (code, text) = run(&["--poll.lookback=10m"], &[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("--poll.lookback") && text.contains("--poll.recent-window"),
        "{text}"
    );
}

#[test]
fn help_lists_the_exporter_flags() {
    let (code, text) = run(&["--help"], &[("AZURE_CLIENT_SECRET", SECRET)]);
    assert_eq!(code, 0);
    for flag in [
        "--web.listen-address",
        "--web.telemetry-path",
        "--log.level",
        "--log.format",
        "--graph.endpoint",
        "--azure.authority-host",
        "--poll.lookback",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
    assert!(
        !text.contains(SECRET),
        "--help shows the environment's secret"
    );
}

#[test]
fn demo_serves_calls_on_several_trunks_and_stops_on_sigterm() {
    let exporter = ExporterCommand::new(&[
        "--demo",
        "--simulate.calls-per-day=40000",
        "--poll.interval=1s",
        // New series read 0 for this long before their counts (30 s by default with --demo).
        "--web.new-series-hold=1s",
    ])
    .spawn();
    assert_eq!(exporter.get("/-/healthy"), (200, "Healthy\n".to_owned()));
    let (status, page) = exporter.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains("Teams Voice Exporter")
            && page.contains(env!("CARGO_PKG_VERSION"))
            && page.contains("/metrics")
    );
    assert_eq!(exporter.get("/nope").0, 404);
    let post = reqwest::blocking::Client::new()
        .post(exporter.url("/metrics"))
        .send()
        .unwrap();
    assert_eq!(post.status().as_u16(), 405);

    exporter.wait_ready(Duration::from_secs(60));
    let trunks = || {
        let metrics = exporter.metrics();
        metrics
            .of("teams_direct_routing_calls_total")
            .keys()
            .map(|labels| labels["trunk_fqdn"].clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    wait_for(Duration::from_secs(60), "calls on three trunks", || {
        trunks().len() >= 3
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", exporter.log()));
    let metrics = exporter.metrics();
    assert_eq!(metrics.types["teams_direct_routing_calls_total"], "counter");
    assert_eq!(
        metrics.types["teams_direct_routing_call_duration_seconds"],
        "histogram"
    );
    assert_eq!(metrics.sum("teams_voice_exporter_ready", &[]), 1.0);
    assert_eq!(metrics.sum("teams_voice_exporter_build_info", &[]), 1.0);
    for (name, labels) in metrics.samples.keys() {
        for (key, value) in labels {
            let phone =
                value.starts_with('+') && value[1..].starts_with(|c: char| c.is_ascii_digit());
            assert!(
                !value.contains('@') && !phone,
                "personal data in {name}{{{key}={value}}}"
            );
        }
    }
    // Prometheus asks for gzip.
    let gzipped_calls = || {
        let compressed = reqwest::blocking::Client::new()
            .get(exporter.url("/metrics"))
            .header("Accept-Encoding", "gzip")
            .send()
            .unwrap();
        assert_eq!(compressed.headers()["content-encoding"], "gzip");
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&compressed.bytes().unwrap()[..]),
            &mut text,
        )
        .unwrap();
        Metrics::parse(&text).sum("teams_direct_routing_calls_total", &[])
    };
    wait_for(Duration::from_secs(30), "calls counted, gzipped", || {
        gzipped_calls() > 0.0
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", exporter.log()));

    let status = exporter
        .terminate(Duration::from_secs(10))
        .expect("stops within 10 s of SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_exporter_reads_a_separately_running_simulator() {
    use tve_simulator::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID};

    let (simulator, serving) = ExporterCommand::new(&[
        "simulate",
        "--listen=127.0.0.1:0",
        "--log.format=json",
        "--simulate.calls-per-day=20000",
    ])
    .spawn_until(markers::SIMULATOR_SERVING);
    let url = serving["url"].as_str().expect("the simulator logs its URL");

    let exporter = ExporterCommand::new(&[])
        .against(url)
        .envs(&[
            ("AZURE_TENANT_ID", DEMO_TENANT_ID),
            ("AZURE_CLIENT_ID", DEMO_CLIENT_ID),
            ("AZURE_CLIENT_SECRET", DEMO_CLIENT_SECRET),
        ])
        .spawn();
    exporter.wait_ready(Duration::from_secs(60));
    // Ready after its first poll: one recent window read (at 20,000 calls a day it may
    // hold no published row yet; the history before it is not read).
    let answered = exporter.metrics().sum(
        "teams_voice_exporter_graph_requests_total",
        &[("endpoint", "getDirectRoutingCalls"), ("code", "200")],
    );
    assert!(
        answered >= 1.0,
        "the simulator answered the exporter: {answered}"
    );
    simulator.kill();
}
