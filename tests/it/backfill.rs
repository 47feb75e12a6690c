//! `teams-voice-exporter backfill` against the simulated tenant: 30 days of history read
//! through throttling, with late and malformed rows, compared exactly with the simulator's
//! ground truth at the end of the range and day by day; an interrupted run resumed to the
//! same bytes; and bad input refused with exit 2 and no file that looks complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::common::truth::{assert_call_metrics, expected, simulator};
use crate::common::{ExporterCommand, Metrics};
use tve_simulator::{Faults, Scenario, SimHandle};

const DAY: i64 = 86_400;
const CALLS: &str = "teams_direct_routing_calls_total";

/// 29 days of calls, a quarter of them published late, a few malformed.
fn history() -> Scenario {
    Scenario {
        preexisting_rows: 2400,
        late_rows: 800,
        span: Duration::from_secs(29 * DAY as u64),
        arrival_spread: Duration::from_millis(500),
        malformed_rows: 5,
    }
}

fn throttled() -> Faults {
    Faults {
        throttle_every: 7,
        retry_after_secs: 1,
        ..Faults::default()
    }
}

/// The backfill of `sim` from `from` into `output`, with `extra` flags.
fn backfill(
    sim: &SimHandle,
    from: DateTime<Utc>,
    output: &Path,
    extra: &[&str],
) -> ExporterCommand {
    ExporterCommand::new(&[
        "backfill",
        &format!("--from={}", from.to_rfc3339()),
        &format!("--output={}", output.display()),
        "--step=1h",
        "--graph.retry-backoff=50ms",
        // Ten times Graph's pace: 30 days of both functions are 60 pages, which the
        // default budget spreads over most of a minute, and a loaded CI machine over more
        // than the process builder waits. The budget is what paces it either way.
        "--graph.rate-limit=450/60s",
        "--graph.tenant-rate-limit=1800/60s",
    ])
    .args(extra)
    .against(&sim.base_url())
    .client_secret()
}

/// Every sample of an OpenMetrics file: (name, labels without `tenant`) → (time, value).
fn samples(text: &str) -> BTreeMap<(String, String), Vec<(i64, f64)>> {
    let mut series: BTreeMap<(String, String), Vec<(i64, f64)>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.rsplitn(3, ' ');
        let at: i64 = parts.next().unwrap().parse().unwrap();
        let value: f64 = parts.next().unwrap().parse().unwrap();
        let (name, labels) = parts.next().unwrap().split_once('{').unwrap();
        let labels = labels.split_once(',').unwrap().1.trim_end_matches('}');
        series
            .entry((name.to_owned(), labels.to_owned()))
            .or_default()
            .push((at, value));
    }
    series
}

/// The values at `at` of every series, as a `/metrics` text for the tests' own parser.
fn at_time(series: &BTreeMap<(String, String), Vec<(i64, f64)>>, at: i64) -> Metrics {
    let mut text = String::new();
    for ((name, labels), points) in series {
        if let Some((_, value)) = points.iter().rev().find(|(t, _)| *t <= at) {
            text.push_str(&format!("{name}{{{labels}}} {value}\n"));
        }
    }
    Metrics::parse(&text)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

#[test]
fn thirty_days_equal_the_ground_truth_at_the_end_and_day_by_day() {
    let (_runtime, sim) = simulator(history(), throttled());
    sim.release();
    std::thread::sleep(Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("history.om");
    let from = DateTime::from_timestamp(Utc::now().timestamp() - 30 * DAY, 0).unwrap();
    let ran = backfill(&sim, from, &output, &[]).run();
    assert_eq!(ran.code, 0, "{}", ran.text());
    assert!(!sibling(&output, ".partial").exists() && !sibling(&output, ".progress").exists());
    let text = read(&output);
    assert!(text.ends_with("# EOF\n"));
    let series = samples(&text);
    let end = series.values().flatten().map(|(t, _)| *t).max().unwrap();

    let truth = sim.ground_truth_started_from(from);
    assert_eq!(
        truth.rows.len(),
        3200,
        "every call of the history, the late ones included"
    );
    let metrics = at_time(&series, end);
    let e = expected(&truth);
    assert_call_metrics(&metrics, &e, "at the end of the range");
    fn endpoint(e: &str) -> [(&str, &str); 1] {
        [("endpoint", e)]
    }
    let rows = |e| metrics.sum("teams_voice_exporter_rows_ingested_total", &endpoint(e));
    assert_eq!(rows("getDirectRoutingCalls"), 3200.0);
    let pstn = sim.pstn_ground_truth_started_from(from);
    assert_eq!(rows("getPstnCalls"), pstn.rows.len() as f64);
    assert_eq!(
        metrics.sum("teams_pstn_calls_total", &[]),
        pstn.rows.len() as f64
    );
    assert_eq!(
        metrics.sum(
            "teams_voice_exporter_rows_invalid_total",
            &endpoint("getDirectRoutingCalls")
        ),
        truth.invalid_rows as f64
    );

    // Each day's increase of the call counter is that day's calls.
    let start = from.timestamp();
    for day in 0..30 {
        let (a, b) = (start + day * DAY, start + (day + 1) * DAY);
        let increase = at_time(&series, b).sum(CALLS, &[]) - at_time(&series, a).sum(CALLS, &[]);
        let calls = truth
            .rows
            .iter()
            .filter(|row| (a..b).contains(&row.start.parse::<DateTime<Utc>>().unwrap().timestamp()))
            .count();
        assert_eq!(increase, calls as f64, "day {day}");
    }
    // A sample of every series every step, from its first on.
    let steps = series[&(
        CALLS.to_owned(),
        series.keys().find(|(n, _)| n == CALLS).unwrap().1.clone(),
    )]
        .len();
    assert!(steps > 1, "{steps} samples");
    for ((name, labels), points) in &series {
        assert!(
            points
                .windows(2)
                .all(|w| w[1].0 - w[0].0 == 3600 || w[1].0 == end),
            "{name}{{{labels}}} misses a step"
        );
        assert!(
            points
                .windows(2)
                .all(|w| w[1].1 >= w[0].1 || name.ends_with("_sum")),
            "{name} goes down"
        );
    }
}

#[test]
fn an_interrupted_backfill_resumes_to_the_same_bytes() {
    let faults = Faults {
        slow_page_ms: 150,
        ..throttled()
    };
    let (_runtime, sim) = simulator(history(), faults);
    sim.release();
    std::thread::sleep(Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("resumed.om");
    let from = DateTime::from_timestamp(Utc::now().timestamp() - 12 * DAY, 0).unwrap();
    let logging = ["--log.level=debug", "--log.format=json"];
    let (process, _) = backfill(&sim, from, &output, &logging).spawn_until("backfill day written");
    process.kill();
    assert!(
        !output.exists(),
        "an interrupted run leaves no complete-looking file"
    );
    assert!(sibling(&output, ".partial").exists() && sibling(&output, ".progress").exists());

    let resumed = backfill(&sim, from, &output, &["--resume"]).run();
    assert_eq!(resumed.code, 0, "{}", resumed.text());
    // The range's end as the interrupted run chose it (now), from the summary.
    let summary = resumed
        .stderr
        .lines()
        .find(|l| l.starts_with("backfill: wrote"))
        .unwrap();
    let to = summary
        .split(" to ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    let whole = dir.path().join("whole.om");
    let ran = backfill(&sim, from, &whole, &[&format!("--to={to}")]).run();
    assert_eq!(ran.code, 0, "{}", ran.text());
    assert!(
        read(&whole) == read(&output),
        "the resumed file differs from an uninterrupted run's"
    );
}

#[test]
fn bad_input_exits_2_before_reading_and_leaves_no_file() {
    let (_runtime, sim) = simulator(history(), Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("bad.om");
    let now = Utc::now();
    let day = chrono::Duration::days(1);
    let cases: [(DateTime<Utc>, PathBuf, Vec<String>, &str); 4] = [
        (
            now - day,
            output.clone(),
            vec![format!("--to={}", (now - day * 2).to_rfc3339())],
            "give a --from before --to",
        ),
        (
            now - day * 200,
            output.clone(),
            vec![],
            "older than Graph keeps",
        ),
        (
            now - day,
            dir.path().join("missing/dir/out.om"),
            vec![],
            "writable directory",
        ),
        (
            now - day,
            output.clone(),
            vec!["--step=7m".to_owned()],
            "divide a day",
        ),
    ];
    for (from, path, extra, fix) in cases {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let ran = backfill(&sim, from, &path, &extra).run();
        assert_eq!(ran.code, 2, "{}", ran.text());
        assert!(ran.stderr.contains(fix), "{fix}: {}", ran.stderr);
        assert!(
            !path.exists() && !sibling(&path, ".partial").exists(),
            "{}",
            path.display()
        );
    }
    assert_eq!(sim.stats().data_requests, 0, "nothing was read");
}

#[test]
fn history_ends_where_live_counting_began_so_the_two_add_up_to_every_call() {
    let scenario = Scenario {
        preexisting_rows: 2000,
        span: Duration::from_secs(2 * DAY as u64),
        ..Scenario::default()
    };
    let (_runtime, sim) = simulator(scenario, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let state = format!("--state.path={}", dir.path().join("state.redb").display());
    // Live counting from 24 hours before its first start; the day before is history.
    let exporter = ExporterCommand::polling(&sim.base_url())
        .args(&[&state, "--poll.recent-window=24h"])
        .client_secret()
        .spawn();
    exporter.wait_ready(Duration::from_secs(30));
    let boundary = crate::common::truth::counting_since(&exporter.metrics());
    let live_truth = sim.ground_truth_started_from(boundary).rows.len() as f64;
    let counted = || {
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[])
    };
    crate::common::wait_for(Duration::from_secs(30), "the live count", || {
        counted() == live_truth
    })
    .unwrap();
    let live = counted();
    exporter.terminate(Duration::from_secs(20));

    let from = boundary - chrono::Duration::days(1);
    let output = dir.path().join("history.om");
    let ran = backfill(&sim, from, &output, &[&state, "--no-collector.pstn"]).run();
    assert_eq!(ran.code, 0, "{}", ran.text());
    assert!(
        ran.stderr
            .contains(&format!("to {}", boundary.to_rfc3339())),
        "--to defaults to the first start's boundary {boundary}: {}",
        ran.stderr
    );
    let series = samples(&read(&output));
    let end = series.values().flatten().map(|(t, _)| *t).max().unwrap();
    assert_eq!(
        end,
        boundary.timestamp(),
        "the last sample is at the boundary"
    );
    let history = at_time(&series, end).sum("teams_voice_exporter_rows_ingested_total", &[]);
    let all = sim.ground_truth_started_from(from).rows.len() as f64;
    assert!(history > 0.0 && live > 0.0);
    assert_eq!(
        history + live,
        all,
        "history and live counting meet without a gap or an overlap"
    );
}
