//! Golden files of the exporter's outward contract: what `/metrics` shows for a seeded
//! simulated tenant, and what `--help` says. They pin metric names, HELP and TYPE text,
//! label names and values, the call counts and the command line, so that a redesign can
//! show byte for byte that none of it changed.
//!
//! `UPDATE_GOLDEN=1 cargo test --locked --test it golden::` rewrites the files instead of comparing
//! (node_exporter's `e2e-output.txt` habit); review the diff before committing it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::truth::{counted_truth, counting_since_of, simulator, tail};
use crate::common::{wait_for, Exporter, ExporterCommand};
use tve_simulator::{Faults, Scenario};

/// Stands in for a sample value (or a label value) that differs from run to run.
const VARIES: &str = "<varies>";

/// What [`normalise`] does with the value of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Value {
    /// Kept as printed: the seeded tenant decides it.
    Exact,
    /// Rounded to microseconds, then printed as Rust prints an `f64`. For sums of
    /// fractional seconds: the rows' values are whole milliseconds, so the true sum is
    /// fixed, but floating-point addition depends on the order rows arrive in, which
    /// depends on which poll saw them first.
    Microseconds,
    /// Replaced by [`VARIES`]: timing, the process or the machine decides it.
    Varies,
}

/// How each sample's value is compared, by sample name (a trailing `*` matches any rest).
/// The first match wins; a sample no entry matches keeps its exact value, so a new family
/// shows up in the diff with its value rather than hidden behind a placeholder.
///
/// Every `# HELP` and `# TYPE` line, every sample name and every label name and value is
/// kept regardless (apart from the label values in [`LABEL_VALUES`]).
const VALUES: &[(&str, Value, &str)] = &[
    (
        "teams_direct_routing_calls_total",
        Value::Exact,
        "the seeded rows, each counted once",
    ),
    (
        "teams_direct_routing_call_failures_total",
        Value::Exact,
        "the seeded rows, each counted once",
    ),
    (
        "teams_direct_routing_call_duration_seconds_sum",
        Value::Microseconds,
        "whole seconds, exact in any order; rounding is a no-op kept for symmetry",
    ),
    (
        "teams_direct_routing_call_setup_seconds_sum",
        Value::Microseconds,
        "fractional seconds added in arrival order (see Value::Microseconds)",
    ),
    (
        "teams_direct_routing_call_*",
        Value::Exact,
        "buckets and counts of the seeded rows' durations and setup times",
    ),
    (
        "teams_voice_exporter_rows_ingested_total",
        Value::Exact,
        "exactly the preexisting and late rows (all started after the first start's boundary)",
    ),
    (
        "teams_voice_exporter_rows_invalid_total",
        Value::Exact,
        "exactly the distinct malformed rows",
    ),
    (
        "teams_voice_exporter_row_arrival_delay_seconds_count",
        Value::Exact,
        "one observation per counted row",
    ),
    (
        "teams_voice_exporter_row_arrival_delay_seconds_*",
        Value::Varies,
        "first seen minus call end: when a poll first sees a row is timing",
    ),
    (
        "teams_voice_exporter_remembered_rows",
        Value::Exact,
        "preexisting plus late plus malformed rows, none old enough to be forgotten",
    ),
    (
        "teams_voice_exporter_ready",
        Value::Exact,
        "1 once a poll read its window",
    ),
    (
        "teams_voice_exporter_poll_interval_seconds",
        Value::Exact,
        "the --poll.interval the test passes",
    ),
    (
        "teams_voice_exporter_state_write_errors_total",
        Value::Exact,
        "0: no --state.path",
    ),
    (
        "teams_voice_exporter_poll_errors_total",
        Value::Exact,
        "initialised at 0 and no faults injected",
    ),
    (
        "teams_voice_exporter_graph_retries_total",
        Value::Exact,
        "initialised at 0 and no faults injected",
    ),
    (
        "teams_voice_exporter_graph_throttled_total",
        Value::Exact,
        "initialised at 0 and no faults injected",
    ),
    ("teams_voice_exporter_build_info", Value::Exact, "always 1"),
    (
        "teams_voice_exporter_call_series*",
        Value::Exact,
        "the series of the seeded rows, rendered in the same scrape; the default bound; none left out",
    ),
    (
        "teams_voice_exporter_graph_requests_total",
        Value::Varies,
        "polls (and so requests) happen on a timer for as long as the test runs",
    ),
    (
        "teams_voice_exporter_graph_request_duration_seconds_*",
        Value::Varies,
        "request latency and request count",
    ),
    (
        "teams_voice_exporter_poll_duration_seconds_*",
        Value::Varies,
        "poll latency and poll count",
    ),
    (
        "teams_voice_exporter_rows_received_total",
        Value::Varies,
        "overlapping windows and sweeps reread rows as often as they run",
    ),
    (
        "teams_voice_exporter_last_success_timestamp_seconds",
        Value::Varies,
        "wall-clock time",
    ),
    (
        "teams_voice_exporter_start_time_seconds",
        Value::Varies,
        "wall-clock time",
    ),
    (
        "teams_voice_exporter_config_last_reload_success_timestamp_seconds",
        Value::Varies,
        "wall-clock time",
    ),
    (
        "teams_voice_exporter_counting_since_timestamp_seconds",
        Value::Varies,
        "wall-clock time",
    ),
    (
        "teams_voice_exporter_schedule_*",
        Value::Varies,
        "estimated from the rows each window held when it was read: timing",
    ),
    (
        "teams_voice_exporter_graph_budget_*",
        Value::Varies,
        "0 unless the machine is slow enough for polls to bunch up",
    ),
    (
        "teams_voice_exporter_polls_delayed_total",
        Value::Varies,
        "0 unless a poll outlasts the 300 ms interval on a loaded machine",
    ),
    (
        "teams_voice_exporter_token_refreshes_total",
        Value::Varies,
        "one per token lifetime and per concurrent first use: timing",
    ),
    (
        "process_*",
        Value::Varies,
        "CPU time, memory, threads, file descriptors and their limit, start time",
    ),
];

/// Label values replaced in every sample, with why.
const LABEL_VALUES: &[(&str, &str)] = &[
    // The toolchain differs from machine to machine.
    ("rustc_version", VARIES),
    // Must be the crate's version; spelled so that a version bump alone changes nothing.
    ("version", "<CARGO_PKG_VERSION>"),
];

fn rule(sample: &str) -> Value {
    VALUES
        .iter()
        .find(|(pattern, _, _)| match pattern.strip_suffix('*') {
            Some(prefix) => sample.starts_with(prefix),
            None => sample == *pattern,
        })
        .map_or(Value::Exact, |(_, value, _)| *value)
}

/// `/metrics` text with whatever varies between runs and machines replaced (see
/// [`VALUES`] and [`LABEL_VALUES`]); comments, blank lines, sample names, label names and
/// every other label value are kept verbatim and in order.
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("a sample without a value: {line:?}"));
        let name = series.split('{').next().unwrap_or(series);
        let mut series = series.to_owned();
        for (label, replacement) in LABEL_VALUES {
            series = replace_label_value(&series, label, replacement);
        }
        let value = match rule(name) {
            Value::Exact => value.to_owned(),
            Value::Varies => VARIES.to_owned(),
            Value::Microseconds => {
                let parsed: f64 = value
                    .parse()
                    .unwrap_or_else(|_| panic!("not a number in {line:?}"));
                ((parsed * 1e6).round() / 1e6).to_string()
            }
        };
        out.push_str(&series);
        out.push(' ');
        out.push_str(&value);
        out.push('\n');
    }
    out
}

/// `series` with the value of `label` (if present) replaced; the version label's value
/// is replaced only when it is the crate's version, so another one stays visible.
fn replace_label_value(series: &str, label: &str, replacement: &str) -> String {
    let Some(open) = series.find('{') else {
        return series.to_owned();
    };
    let key = format!("{label}=\"");
    let mut at = open + 1;
    while let Some(found) = series[at..].find(&key) {
        let start = at + found;
        // A whole label name, not the tail of a longer one (`version` in `rustc_version`).
        let boundary = matches!(series.as_bytes()[start - 1], b'{' | b',');
        let value_start = start + key.len();
        let value_end = value_start
            + series[value_start..]
                .find('"')
                .expect("a label value ends with a quote");
        if boundary {
            let value = &series[value_start..value_end];
            if label != "version" || value == env!("CARGO_PKG_VERSION") {
                return format!(
                    "{}{replacement}{}",
                    &series[..value_start],
                    &series[value_end..]
                );
            }
        }
        at = value_end;
    }
    series.to_owned()
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `actual` with the golden file `name`, or writes it when `UPDATE_GOLDEN=1`.
fn check_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; create it with `UPDATE_GOLDEN=1 cargo test --locked --test it golden::`",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the output (- golden, + now):\n{}\n\
             If the change is intended, update the file with \
             `UPDATE_GOLDEN=1 cargo test --locked --test it golden::` and review its diff.",
            path.display(),
            diff(&expected, actual, 40)
        );
    }
}

/// The first `limit` lines of a line diff of `old` and `new` (longest common
/// subsequence), each with its line number in the file that has it.
fn diff(old: &str, new: &str, limit: usize) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while (i < a.len() || j < b.len()) && out.len() < limit {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("-{:>5}: {}", i + 1, a[i]));
            i += 1;
        } else {
            out.push(format!("+{:>5}: {}", j + 1, b[j]));
            j += 1;
        }
    }
    if i < a.len() || j < b.len() {
        out.push("… (more differences follow)".to_owned());
    }
    out.join("\n")
}

/// Late rows of the scenario, all of which the exporter must count.
const LATE_ROWS: usize = 3000;

/// `/metrics` after a seeded tenant's late rows were all counted, normalised by
/// [`normalise`] (its tables say which values are compared and why), equals
/// `tests/golden/metrics.txt`.
///
/// The tenant is deterministic: rows, ids and outcomes come from the seed, and every
/// time in a row is relative to the tenant's start. One trunk fails all the time
/// (`failing_trunk`) because the default degradation fails a trunk by minute of the
/// hour, which would make outcomes depend on when the test runs. No Graph or Entra ID
/// faults are injected, so the error and retry series stay at 0.
#[test]
fn metrics_contract_matches_golden_file() {
    let scenario = Scenario {
        preexisting_rows: 1000,
        late_rows: LATE_ROWS,
        span: Duration::from_secs(48 * 3600),
        arrival_spread: Duration::from_secs(4),
        malformed_rows: 7,
    };
    let faults = Faults {
        failing_trunk: Some("sbc-legacy.fabrikam.com".to_owned()),
        ..Faults::default()
    };
    let (_runtime, sim) = simulator(scenario, faults);
    // Both call logs, so that the contract covers every family.
    let exporter = Exporter::start(&sim.base_url(), &["--collector.pstn"]);
    exporter.wait_ready(Duration::from_secs(60));
    sim.release();

    let counted = || {
        let metrics = exporter.metrics();
        let truth = counted_truth(&sim, &exporter);
        let pstn = sim.pstn_ground_truth_started_from(counting_since_of(&metrics, "getPstnCalls"));
        let of = |name: &str, endpoint: &str| metrics.sum(name, &[("endpoint", endpoint)]);
        let all = (LATE_ROWS + 1000) as f64;
        truth.rows.len() == LATE_ROWS + 1000
            && pstn.rows.len() == LATE_ROWS + 1000
            && of(
                "teams_voice_exporter_rows_ingested_total",
                "getDirectRoutingCalls",
            ) >= all
            && of("teams_voice_exporter_rows_ingested_total", "getPstnCalls") >= all
            && of(
                "teams_voice_exporter_rows_invalid_total",
                "getDirectRoutingCalls",
            ) >= truth.invalid_rows as f64
            && of("teams_voice_exporter_rows_invalid_total", "getPstnCalls")
                >= pstn.invalid_rows as f64
    };
    wait_for(Duration::from_secs(120), "all late rows counted", counted).unwrap_or_else(|e| {
        panic!(
            "{e}; stats {:?}; log tail:\n{}",
            sim.stats(),
            tail(&exporter.log())
        )
    });
    // Longer than a sweep (2 s): a row counted twice would show in the golden file.
    std::thread::sleep(Duration::from_secs(3));

    let (status, body) = exporter.get("/metrics");
    assert_eq!(status, 200);
    check_golden("metrics.txt", &normalise(&body));
}

/// The help of the exporter and its subcommands equals `tests/golden/help.txt`.
///
/// clap wraps help to the terminal's width: with no terminal on stdin, stdout or stderr
/// it falls back to `COLUMNS`, set here, so the text is the same on every machine. The
/// environment is cleared because clap shows the values of the `env` variables flags
/// read (`[env: AZURE_TENANT_ID=…]`) and `CLICOLOR_FORCE` would colour the text.
/// `--version` is left out: a release changes it without changing the contract.
#[test]
fn help_matches_golden_file() {
    let mut text = String::new();
    for args in [
        &["--help"][..],
        &["check", "--help"],
        &["simulate", "--help"],
    ] {
        let output = ExporterCommand::new(args)
            .configure(|command| {
                command.env_clear().env("COLUMNS", "100");
            })
            .run();
        let shown = args.join(" ");
        assert!(
            output.code == 0 && output.stderr.is_empty(),
            "`{shown}`: exit {}\n{}",
            output.code,
            output.stderr
        );
        text.push_str(&format!("===== teams-voice-exporter {shown} =====\n"));
        text.push_str(&output.stdout);
    }
    check_golden("help.txt", &text);
}

#[test]
fn normalise_keeps_the_contract_and_hides_what_varies() {
    let text = "\
# HELP teams_voice_exporter_build_info Always 1.
# TYPE teams_voice_exporter_build_info gauge
teams_voice_exporter_build_info{rustc_version=\"1.90.0\",version=\"VERSION\"} 1
teams_voice_exporter_build_info{rustc_version=\"1.90.0\",version=\"0.0.0-other\"} 1
teams_direct_routing_call_setup_seconds_sum{trunk_fqdn=\"a\",call_type=\"b\"} 12.345000000000002
teams_direct_routing_calls_total{trunk_fqdn=\"a\"} 7
process_open_fds 12
"
    .replace("VERSION", env!("CARGO_PKG_VERSION"));
    let want = "\
# HELP teams_voice_exporter_build_info Always 1.
# TYPE teams_voice_exporter_build_info gauge
teams_voice_exporter_build_info{rustc_version=\"<varies>\",version=\"<CARGO_PKG_VERSION>\"} 1
teams_voice_exporter_build_info{rustc_version=\"<varies>\",version=\"0.0.0-other\"} 1
teams_direct_routing_call_setup_seconds_sum{trunk_fqdn=\"a\",call_type=\"b\"} 12.345
teams_direct_routing_calls_total{trunk_fqdn=\"a\"} 7
process_open_fds <varies>
";
    assert_eq!(normalise(&text), want);
}
