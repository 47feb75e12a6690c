//! Cost of durable state (`--state.path`): one commit per poll, and restoring at start.
//!
//! For 30,000 and 300,000 remembered ids (the latter is 100,000 calls a day over the
//! default 72-hour lookback), it saves a baseline, then runs polls that each count 10 new
//! rows and forget the 10 oldest, committing after each as the exporter does, and times the
//! commits and counts the bytes each one writes (`wchar` in `/proc/self/io`: what the
//! process handed to write calls, free of the disk's timing noise). Then it times a restore
//! after a clean stop, and after a SIGKILL (a copy of the file taken while it is open, which
//! redb must recover).
//!
//! Run with `cargo bench --bench state_commit`; `TVE_BENCH_DIR=/some/disk` puts the files on
//! the disk to measure (default: the system's temporary directory), `TVE_BENCH_POLLS`
//! changes the number of polls (default 500) and `TVE_BENCH_IDS` the sizes (default
//! `30000,300000,1000000`).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use prometheus::IntCounter;
use teams_voice_exporter::counting::schedule::Progress;
use teams_voice_exporter::counting::state::Ingest;
use teams_voice_exporter::source::direct_routing::DirectRouting;

type TenantState = teams_voice_exporter::counting::state::TenantState<DirectRouting>;
type Aggregates = teams_voice_exporter::counting::state::Aggregates<
    teams_voice_exporter::source::direct_routing::DirectRoutingTotals,
>;
use teams_voice_exporter::counting::store::{StateOptions, StateStore};

const TENANT: &str = "00000000-0000-0000-0000-00000000d3e0";
const LOOKBACK_SECS: f64 = 72.0 * 3600.0;
const NEW_ROWS_PER_POLL: usize = 10;

fn main() {
    let polls: usize = std::env::var("TVE_BENCH_POLLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let sizes: Vec<usize> = std::env::var("TVE_BENCH_IDS")
        .unwrap_or_else(|_| "30000,300000,1000000".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let parent = std::env::var_os("TVE_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    println!(
        "state commit benchmark: files in {}, {polls} polls of {NEW_ROWS_PER_POLL} new rows each",
        parent.display()
    );
    println!(
        "{:>10} {:>12} {:>11} {:>10} {:>10} {:>10} {:>10} {:>13} {:>12} {:>12} {:>10}",
        "ids",
        "baseline",
        "commit mean",
        "p50",
        "p90",
        "p99",
        "max",
        "written/poll",
        "restore",
        "after kill",
        "file"
    );
    for ids in sizes {
        let dir = tempfile::tempdir_in(&parent).expect("a temporary directory");
        run(ids, polls, dir.path());
    }
}

/// A row whose call started at `start` and lasted a minute.
fn row(n: usize, start: DateTime<Utc>) -> String {
    let end = start + chrono::Duration::seconds(60);
    format!(
        r#"{{"id":"{:08x}-{:04x}-4a3a-a7dd-f0da6575eed1","startDateTime":"{}","inviteDateTime":"{}","endDateTime":"{}","duration":60,"callType":"ByotIn","successfulCall":true,"mediaPathLocation":"USWE","finalSipCode":0,"callEndSubReason":540000,"trunkFullyQualifiedDomainName":"sbc{}.contoso.com"}}"#,
        n,
        n % 0xffff,
        start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        (start - chrono::Duration::seconds(3)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        end.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        n % 6,
    )
}

/// Bytes this process has passed to write calls so far, where Linux tells.
fn bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

fn run(ids: usize, polls: usize, dir: &Path) {
    let options = StateOptions {
        path: dir.join("state.redb"),
        reset: false,
    };
    let errors = IntCounter::new("errors", "errors").unwrap();
    let (mut store, _) =
        StateStore::<DirectRouting>::open(&options, TENANT, errors.clone()).expect("opens");
    let state = Mutex::new(TenantState::durable(HashMap::new(), Aggregates::default()));
    let origin: DateTime<Utc> = "2026-11-24T00:00:00Z".parse().unwrap();
    let spacing = chrono::Duration::microseconds((LOOKBACK_SECS / ids as f64 * 1e6) as i64);
    let start_of = |n: usize| origin + spacing * n as i32;
    let floor = DateTime::<Utc>::UNIX_EPOCH;
    let progress = Progress {
        first_start_done: true,
        ..Progress::default()
    };

    for chunk in (0..ids).collect::<Vec<_>>().chunks(10_000) {
        let rows: Vec<String> = chunk.iter().map(|&n| row(n, start_of(n))).collect();
        state.lock().ingest(
            rows.iter().map(String::as_str),
            Ingest::RememberOnly,
            start_of(ids),
            floor,
        );
    }
    let started = Instant::now();
    store.commit(&state, &progress).expect("baseline commit");
    let baseline = started.elapsed();

    let mut times = Vec::with_capacity(polls);
    let mut written_bytes = 0;
    for poll in 0..polls {
        let first = ids + poll * NEW_ROWS_PER_POLL;
        let new: Vec<String> = (first..first + NEW_ROWS_PER_POLL)
            .map(|n| row(n, start_of(n)))
            .collect();
        let mut guard = state.lock();
        let outcome = guard.ingest(
            new.iter().map(String::as_str),
            Ingest::Count,
            start_of(first),
            floor,
        );
        assert_eq!(outcome.ingested, NEW_ROWS_PER_POLL as u64);
        // The lookback moves on: the oldest ten leave it (their calls ended a minute later).
        let horizon = start_of((poll + 1) * NEW_ROWS_PER_POLL) + chrono::Duration::seconds(60);
        let forgotten = guard.forget_before(horizon);
        // Whole seconds decide expiry, so a poll may forget a few more or fewer.
        assert!(forgotten <= 2 * NEW_ROWS_PER_POLL, "{forgotten}");
        drop(guard);
        let bytes_before = bytes_written();
        let started = Instant::now();
        let written = store.commit(&state, &progress).expect("commit");
        times.push(started.elapsed());
        written_bytes += bytes_written()
            .zip(bytes_before)
            .map_or(0, |(after, before)| after - before);
        assert!(written <= 3 * NEW_ROWS_PER_POLL, "{written} ids written");
    }
    assert_eq!(errors.get(), 0);
    let remembered = state.lock().remembered_rows();

    // A SIGKILL leaves the file as it is on disk while open: copy it now.
    let killed = dir.join("killed.redb");
    std::fs::copy(&options.path, &killed).unwrap();
    drop(store);
    let size = std::fs::metadata(&options.path).unwrap().len();

    let restore = |path: &Path| {
        let options = StateOptions {
            path: path.to_owned(),
            reset: false,
        };
        let started = Instant::now();
        let (store, saved) =
            StateStore::<DirectRouting>::open(&options, TENANT, errors.clone()).expect("restores");
        let saved = saved.expect("saved state");
        let restored = TenantState::durable(saved.remembered, saved.aggregates);
        let took = started.elapsed();
        assert_eq!(restored.remembered_rows(), remembered);
        drop(store);
        took
    };
    let clean = (0..3).map(|_| restore(&options.path)).min().unwrap();
    let after_kill = restore(&killed);

    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    times.sort();
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    println!(
        "{:>10} {:>12} {:>11} {:>10} {:>10} {:>10} {:>10} {:>9} KiB {:>12} {:>12} {:>7} MiB",
        remembered,
        ms(baseline),
        ms(mean),
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(pick(0.99)),
        ms(*times.last().unwrap()),
        written_bytes / polls as u64 / 1024,
        ms(clean),
        ms(after_kill),
        size / (1024 * 1024),
    );
}
