//! Durable state (`--state.path`) through the real binary: SIGKILL at random instants and
//! in the middle of commits, with the counters compared exactly with the simulated
//! tenant's ground truth at the end; state files that must stop the start; a directory
//! that refuses writes; and writes that start failing mid-run, as on a full disk.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::markers::{self, COMMITTED, COMMIT_STARTING, COMMIT_WRITING};
use crate::common::process::{message, BIN};
use crate::common::truth::{assert_call_metrics, counted_truth, expected, simulator, tail};
use crate::common::{wait_for, Exporter, ExporterCommand, Metrics, Series};
use rand::{Rng, SeedableRng};
use tve_simulator::{Faults, GroundTruth, Scenario};

/// The series that must never go back across a restart: every call metric and counted row.
fn counted(metrics: &Metrics) -> Vec<(Series, f64)> {
    metrics
        .samples
        .iter()
        .filter(|((name, _), _)| {
            name.starts_with("teams_direct_routing_")
                || name.starts_with("teams_voice_exporter_rows_ingested")
                || name.starts_with("teams_voice_exporter_rows_invalid")
                || name.starts_with("teams_voice_exporter_row_arrival_delay")
        })
        .map(|(series, value)| (series.clone(), *value))
        .collect()
}

fn assert_equals_ground_truth(metrics: &Metrics, truth: &GroundTruth, rows: f64) {
    let e = expected(truth);
    assert_call_metrics(metrics, &e, "after the kills");
    assert_eq!(
        metrics.sum("teams_voice_exporter_rows_ingested_total", &[]),
        rows
    );
    assert_eq!(
        metrics.sum("teams_voice_exporter_row_arrival_delay_seconds_count", &[]),
        rows
    );
    assert_eq!(
        metrics.sum("teams_voice_exporter_rows_invalid_total", &[]),
        truth.invalid_rows as f64
    );
}

/// Whether the log ends after `marker` without the commit having finished.
fn killed_after(log: &str, marker: &str) -> bool {
    let last = |wanted: &str| {
        log.lines()
            .enumerate()
            .filter(|(_, line)| message(line).as_deref() == Some(wanted))
            .last()
            .map(|(index, _)| index)
    };
    match (last(marker), last(COMMITTED)) {
        (Some(started), Some(finished)) => started > finished,
        (Some(_), None) => true,
        _ => false,
    }
}

#[test]
fn sigkill_at_random_instants_and_mid_commit_loses_no_call_and_counts_none_twice() {
    const ROWS: usize = 20_000;
    let scenario = Scenario {
        preexisting_rows: 5_000,
        late_rows: ROWS,
        span: Duration::from_secs(48 * 3600),
        arrival_spread: Duration::from_secs(25),
        malformed_rows: 12,
    };
    let (_runtime, sim) = simulator(scenario, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let state = format!("--state.path={}", dir.path().join("state.redb").display());
    let flags = [state.as_str()];
    let seed: u64 = rand::random();
    eprintln!("kill schedule seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let mut exporter = Exporter::start(&sim.base_url(), &flags);
    exporter.wait_ready(Duration::from_secs(60));
    assert_eq!(
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[]),
        5000.0,
        "the first poll counts the calls present (all started after the boundary)"
    );
    sim.release();
    let released = Instant::now();

    let mut last = exporter.metrics();
    let (mut kills, mut mid_commit, mut mid_write) = (0, 0, 0);
    while kills < 12 || released.elapsed() < Duration::from_secs(28) {
        // A random instant 2 to 4 seconds on, scraping meanwhile as Prometheus would.
        let at = Instant::now() + Duration::from_millis(rng.gen_range(2_000..=4_000));
        while Instant::now() < at {
            last = exporter.metrics();
            std::thread::sleep(Duration::from_millis(rng.gen_range(50..250)));
        }
        // Every other kill waits for the next commit's disk writes and lands inside them.
        if kills % 2 == 1 {
            exporter.kill_when_logged(COMMIT_WRITING);
            let _ = wait_for(Duration::from_secs(5), "a commit", || exporter.exited());
        }
        let log = exporter.kill();
        kills += 1;
        mid_commit += usize::from(killed_after(&log, COMMIT_STARTING));
        mid_write += usize::from(killed_after(&log, COMMIT_WRITING));

        exporter = Exporter::start(&sim.base_url(), &flags);
        let restored = exporter.metrics();
        for (series, before) in counted(&last) {
            let after = restored.samples.get(&series).copied().unwrap_or(-1.0);
            assert!(
                after >= before,
                "after kill {kills} {series:?} went back from {before} to {after}: Prometheus would see a counter reset"
            );
        }
        last = restored;
    }

    let all = (ROWS + 5000) as f64;
    wait_for(Duration::from_secs(90), "every late row counted", || {
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[])
            >= all
    })
    .unwrap_or_else(|e| panic!("{e}; log tail:\n{}", tail(&exporter.log())));
    // Let a sweep pass, so that anything counted twice would show.
    std::thread::sleep(Duration::from_secs(3));
    let truth = counted_truth(&sim, &exporter);
    assert_eq!(
        truth.rows.len(),
        ROWS + 5000,
        "the double released every row"
    );
    assert!(truth.invalid_rows >= 10, "the double served malformed rows");
    let metrics = exporter.metrics();
    assert_equals_ground_truth(&metrics, &truth, all);

    // One more SIGKILL: the restored numbers are the same, exactly.
    exporter.kill();
    let exporter = Exporter::start(&sim.base_url(), &flags);
    assert_equals_ground_truth(&exporter.metrics(), &truth, all);
    assert_eq!(
        exporter
            .metrics()
            .sum("teams_voice_exporter_state_write_errors_total", &[]),
        0.0
    );
    eprintln!(
        "kill loop: {kills} SIGKILLs ({mid_commit} inside a commit, {mid_write} of them while it wrote to disk) over {:.1} s while {ROWS} rows appeared over 25 s; every counter and histogram equals the ground truth",
        released.elapsed().as_secs_f64()
    );
    assert!(
        mid_write >= 2,
        "only {mid_write} of {kills} kills landed while a commit wrote to disk"
    );
}

/// Runs the exporter once against a simulated tenant until ready, and stops it cleanly,
/// leaving a valid state file at `path`.
fn valid_state_file(base_url: &str, path: &Path) {
    let flag = format!("--state.path={}", path.display());
    let exporter = Exporter::start(base_url, &[&flag]);
    exporter.wait_ready(Duration::from_secs(60));
    let status = exporter.terminate(Duration::from_secs(20)).expect("stops");
    assert!(status.success());
}

/// Starts the binary on `path` expecting a refusal; checks the message names the path and
/// the choices, and that the file was left exactly as it was.
fn refused(base_url: &str, path: &Path) -> String {
    let before = std::fs::read(path).unwrap();
    let ran = ExporterCommand::new(&["--web.listen-address=127.0.0.1:0"])
        .against(base_url)
        .arg(format!("--state.path={}", path.display()))
        .client_secret()
        .run();
    let (code, text) = (ran.code, ran.text());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("move the file aside") && text.contains("--state.reset"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(
        std::fs::read(path).unwrap(),
        before,
        "the file is untouched"
    );
    text
}

#[test]
fn damaged_newer_and_foreign_state_files_stop_the_start_with_the_choices() {
    let scenario = Scenario {
        preexisting_rows: 3000,
        span: Duration::from_secs(6 * 3600),
        ..Scenario::default()
    };
    let (_runtime, sim) = simulator(scenario, Faults::default());
    let base = sim.base_url();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.redb");
    valid_state_file(&base, &good);
    let bytes = std::fs::read(&good).unwrap();
    assert!(bytes.len() > 64 * 1024, "{} bytes", bytes.len());

    // Damage in every page but the file header.
    let damaged = dir.path().join("damaged.redb");
    let mut scribbled = bytes.clone();
    for page in (4096..scribbled.len()).step_by(4096) {
        for (i, byte) in scribbled[page + 64..page + 96].iter_mut().enumerate() {
            *byte ^= 0xA5 ^ i as u8;
        }
    }
    std::fs::write(&damaged, &scribbled).unwrap();
    let text = refused(&base, &damaged);
    assert!(text.contains("is damaged"), "{text}");

    let truncated = dir.path().join("truncated.redb");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    assert!(refused(&base, &truncated).contains("is damaged"));

    // A newer version's file: the same layout with a higher format version.
    let newer = dir.path().join("newer.redb");
    std::fs::write(&newer, &bytes).unwrap();
    {
        let db = redb::Database::open(&newer).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn
                .open_table(redb::TableDefinition::<&str, &[u8]>::new("meta"))
                .unwrap();
            meta.insert("format_version", 7u32.to_le_bytes().as_slice())
                .unwrap();
            meta.insert("written_by", b"teams-voice-exporter 3.1.0".as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let text = refused(&base, &newer);
    assert!(
        text.contains("newer teams-voice-exporter") && text.contains("3.1.0"),
        "{text}"
    );

    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "scrape_configs:\n  - job_name: teams\n").unwrap();
    assert!(refused(&base, &text_file).contains("not a teams-voice-exporter state file"));

    // --state.reset replaces a damaged file and starts afresh.
    let flag = format!("--state.path={}", damaged.display());
    let exporter = Exporter::start(&base, &[&flag, "--state.reset"]);
    exporter.wait_ready(Duration::from_secs(60));
    assert!(exporter.logged(markers::STATE_RESET), "{}", exporter.log());
    exporter.terminate(Duration::from_secs(20)).expect("stops");
    valid_state_file(&base, &damaged);
}

/// The exporter at `program` on the state file of `flag`, as an unprivileged user when the
/// tests run as root, for whom a directory's mode does not stop writes.
fn unprivileged(base_url: &str, flag: &str, program: &Path, as_root: bool) -> Exporter {
    // `nobody`. Setting its user id drops root's supplementary groups too.
    const NOBODY: u32 = 65534;
    let command = ExporterCommand::polling(base_url)
        .client_secret()
        .arg(flag)
        .program(program);
    if as_root {
        command
            .configure(|command| {
                use std::os::unix::process::CommandExt;
                command.uid(NOBODY).gid(NOBODY);
            })
            .spawn()
    } else {
        command.spawn()
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_read_only_state_directory_keeps_polling_and_serving_and_is_counted() {
    let scenario = Scenario {
        preexisting_rows: 1000,
        late_rows: 1500,
        span: Duration::from_secs(6 * 3600),
        arrival_spread: Duration::from_secs(2),
        malformed_rows: 0,
    };
    let (_runtime, sim) = simulator(scenario, Faults::default());
    let as_root = rustix::process::geteuid().is_root();
    // The unprivileged user must reach the directory and the binary: under /tmp, with a
    // copy of the binary (the build directory may be private to root).
    let dir = if as_root {
        tempfile::tempdir_in("/tmp").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let program = dir.path().join("teams-voice-exporter");
    std::fs::copy(BIN, &program).unwrap();
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    let state_file = state_dir.join("state.redb");
    if as_root {
        // Owned by root and not writable by others: read-only for the exporter's user.
        chmod(dir.path(), 0o755);
        chmod(&program, 0o755);
        chmod(&state_dir, 0o755);
    } else {
        chmod(&state_dir, 0o555);
        assert!(
            std::fs::write(state_dir.join("probe"), b"x").is_err(),
            "the directory must refuse writes for this test to mean anything"
        );
    }
    let flag = format!("--state.path={}", state_file.display());
    let exporter = unprivileged(&sim.base_url(), &flag, &program, as_root);
    exporter.wait_ready(Duration::from_secs(60));
    sim.release();
    wait_for(Duration::from_secs(60), "late rows counted", || {
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[])
            >= 2500.0
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", tail(&exporter.log())));
    let errors = |e: &Exporter| {
        e.metrics()
            .sum("teams_voice_exporter_state_write_errors_total", &[])
    };
    let first = errors(&exporter);
    assert!(first >= 2.0, "failed writes are counted: {first}");
    wait_for(Duration::from_secs(10), "writes retried", || {
        errors(&exporter) > first
    })
    .unwrap();
    assert!(!state_file.exists(), "nothing could be written");
    assert_eq!(exporter.get("/-/ready").0, 200, "stays ready");
    assert_eq!(exporter.get("/-/healthy").0, 200);
    let (_, page) = exporter.get("/");
    assert!(
        page.contains("Not saved") && page.contains(&state_file.display().to_string()),
        "the landing page shows the problem: {page}"
    );
    assert!(
        exporter.logged(markers::STATE_NOT_SAVED),
        "{}",
        exporter.log()
    );

    // Writable again: the next commit writes everything counted so far.
    chmod(&state_dir, 0o777);
    wait_for(Duration::from_secs(10), "the state saved", || {
        exporter.get("/").1.contains("Saved to")
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", tail(&exporter.log())));
    let before = exporter.metrics();
    exporter.kill();
    let restarted = unprivileged(&sim.base_url(), &flag, &program, as_root);
    let after = restarted.metrics();
    assert_eq!(
        after.sum("teams_voice_exporter_rows_ingested_total", &[]),
        2500.0
    );
    assert_eq!(
        after.of("teams_direct_routing_calls_total"),
        before.of("teams_direct_routing_calls_total"),
        "restored from what was written once the disk allowed"
    );
    assert_eq!(errors(&restarted), 0.0);

    // A file that can be read but not written: restored from, and the writes counted.
    let before = restarted.metrics();
    restarted.kill();
    if as_root {
        std::os::unix::fs::chown(&state_file, Some(0), Some(0)).unwrap();
        chmod(&state_file, 0o644);
    } else {
        chmod(&state_file, 0o444);
    }
    let read_only = unprivileged(&sim.base_url(), &flag, &program, as_root);
    assert_eq!(
        read_only.metrics().of("teams_direct_routing_calls_total"),
        before.of("teams_direct_routing_calls_total"),
        "restored from the read-only file"
    );
    wait_for(Duration::from_secs(10), "failed writes counted", || {
        errors(&read_only) >= 2.0
    })
    .unwrap();
    assert!(read_only.get("/").1.contains("Not saved"));
    assert_eq!(read_only.get("/-/ready").0, 200);
}

#[cfg(target_os = "linux")]
#[test]
fn writes_failing_mid_run_are_counted_and_caught_up_when_the_disk_is_back() {
    let scenario = Scenario {
        preexisting_rows: 2000,
        late_rows: 2500,
        span: Duration::from_secs(6 * 3600),
        arrival_spread: Duration::from_secs(3),
        malformed_rows: 0,
    };
    let (_runtime, sim) = simulator(scenario, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let flag = format!("--state.path={}", dir.path().join("state.redb").display());
    let exporter = ExporterCommand::polling(&sim.base_url())
        .client_secret()
        .arg(&flag)
        .ignore_sigxfsz()
        .spawn();
    exporter.wait_ready(Duration::from_secs(60));
    let errors = |e: &Exporter| {
        e.metrics()
            .sum("teams_voice_exporter_state_write_errors_total", &[])
    };
    assert_eq!(errors(&exporter), 0.0);

    // The disk fills up while the exporter runs and rows keep arriving.
    exporter.set_file_size_limit(Some(0));
    sim.release();
    wait_for(Duration::from_secs(60), "late rows counted", || {
        exporter
            .metrics()
            .sum("teams_voice_exporter_rows_ingested_total", &[])
            >= 4500.0
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", tail(&exporter.log())));
    wait_for(Duration::from_secs(10), "failed writes counted", || {
        errors(&exporter) >= 3.0
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", tail(&exporter.log())));
    assert_eq!(exporter.get("/-/ready").0, 200);
    assert!(exporter.get("/").1.contains("Not saved"));

    // Space again: the next commit writes everything counted meanwhile.
    exporter.set_file_size_limit(None);
    wait_for(Duration::from_secs(10), "the state saved", || {
        exporter.get("/").1.contains("Saved to")
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", tail(&exporter.log())));
    let log = exporter.log();
    assert!(log.contains("File too large"), "writes really failed");
    assert!(exporter.logged(markers::STATE_SAVED_AGAIN), "{log}");
    let before = exporter.metrics();
    exporter.kill();
    let restarted = Exporter::start(&sim.base_url(), &[&flag]);
    let after = restarted.metrics();
    assert_eq!(
        after.sum("teams_voice_exporter_rows_ingested_total", &[]),
        4500.0
    );
    assert_eq!(
        after.of("teams_direct_routing_calls_total"),
        before.of("teams_direct_routing_calls_total")
    );
    let e = expected(&counted_truth(&sim, &restarted));
    assert_eq!(after.of("teams_direct_routing_calls_total"), e.calls);

    // Killed again, and restarted on a disk that is still full: redb writes while it opens
    // a file after an unclean stop, which must not stop the start. The exporter restores
    // from the file, runs on, and counts its failed writes.
    restarted.kill();
    let on_full_disk = ExporterCommand::polling(&sim.base_url())
        .client_secret()
        .arg(&flag)
        .disk_full()
        .spawn();
    on_full_disk.wait_ready(Duration::from_secs(60));
    wait_for(Duration::from_secs(10), "failed writes counted", || {
        errors(&on_full_disk) >= 1.0
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", tail(&on_full_disk.log())));
    assert_eq!(
        on_full_disk
            .metrics()
            .of("teams_direct_routing_calls_total"),
        e.calls,
        "restored from the file on a full disk"
    );
    assert!(on_full_disk.get("/").1.contains("Not saved"));
}
