//! `teams-voice-exporter backfill`: the history Graph still holds, as OpenMetrics with
//! timestamps that `promtool tsdb create-blocks-from openmetrics` turns into blocks.
//!
//! It reads every enabled call-log function of every tenant over `[--from, --to)` a day
//! piece at a time (within Graph's 90 days a request and the request budget of the live
//! exporter, `Retry-After` honoured by the same [`GraphClient`](crate::source::graph::GraphClient)), counts each row once
//! into the step in which its call started with the live exporter's own counting, and
//! writes each step's samples of every series as soon as the day piece is read (the same
//! names, labels and buckets as `/metrics`, counters cumulative from the range's start).
//! Memory follows one day's calls; the output goes to `FILE.partial`, renamed to `FILE`
//! only once it ends in `# EOF`, with a checkpoint after every day for `--resume`.
//! `--to` defaults to where live counting began, so history and live counts meet without
//! a gap or an overlap.

mod openmetrics;
mod output;
mod progress;
pub mod range;
mod resume;
mod source;
mod sources;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cli::{BackfillArgs, EnvSecrets};
use crate::counting::schedule::whole_seconds;
use crate::source::graph::GraphError;
use output::Output;
use progress::Progress;
use range::Range;
use resume::Checkpoint;
use source::{each, AnySource};

/// Why a backfill did not finish. Exit code 2 for what the user must change.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{flag}={value} is not a time; write RFC 3339 (2026-09-01T00:00:00Z) or a date (2026-09-01, midnight UTC)")]
    BadTime { flag: &'static str, value: String },
    #[error(
        "--step={0} does not divide a day into whole steps of whole seconds; use 1m, 5m, 15m or 1h"
    )]
    BadStep(String),
    #[error(
        "the range is empty: --from={from} is not before --to={to}; give a --from before --to"
    )]
    Empty { from: String, to: String },
    #[error("--to={0} is in the future; give a --to in the past, or leave it out for now")]
    Future(String),
    #[error("--from={from} is older than Graph keeps {function} ({days} days): nothing before {oldest} can be read; give --from={oldest} or later, or --retention if your tenant keeps rows longer")]
    BeyondRetention {
        from: String,
        function: &'static str,
        days: u64,
        oldest: String,
    },
    #[error("cannot write {path}: {reason}; give an --output in a writable directory")]
    Output { path: String, reason: String },
    #[error("{path} exists; remove it, or give another --output")]
    OutputExists { path: String },
    #[error("cannot resume from {path}: {reason}; run again without --resume to start over")]
    NoCheckpoint { path: String, reason: String },
    #[error("cannot resume: {0}; give the flags of the interrupted run, or run without --resume to start over")]
    OtherRun(String),
    #[error("cannot tell where live counting began from {path}: {reason}; give --to (the first value of teams_voice_exporter_counting_since_timestamp_seconds in Prometheus)")]
    FirstStart { path: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("reading {function} of tenant {tenant} failed: {error}")]
    Graph {
        tenant: String,
        function: &'static str,
        error: Box<GraphError>,
    },
    #[error("interrupted")]
    Interrupted,
}

impl BackfillError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BackfillError::Graph { .. } => 1,
            BackfillError::Interrupted => 130,
            _ => 2,
        }
    }
}

/// Runs the backfill and returns the exit code, having printed why it stopped.
pub async fn run(args: BackfillArgs, env: EnvSecrets) -> i32 {
    match backfill(&args, env).await {
        Ok(summary) => {
            eprintln!("{summary}");
            0
        }
        Err(error @ BackfillError::Interrupted) => {
            eprintln!(
                "teams-voice-exporter: backfill interrupted; the days read so far are kept in {}. Run the same command with --resume to continue from the last complete day.",
                resume::partial_path(&args.output).display()
            );
            error.exit_code()
        }
        Err(error @ BackfillError::Graph { .. }) => {
            eprintln!(
                "teams-voice-exporter: backfill: {error}. The days read before are kept in {}: run the same command with --resume to continue.",
                resume::partial_path(&args.output).display()
            );
            error.exit_code()
        }
        Err(error) => {
            eprintln!("teams-voice-exporter: backfill: {error}");
            error.exit_code()
        }
    }
}

async fn backfill(args: &BackfillArgs, env: EnvSecrets) -> Result<String, BackfillError> {
    let now = whole_seconds(Utc::now());
    let from = range::parse_time("--from", &args.from)?;
    let to = args
        .to
        .as_deref()
        .map(|to| range::parse_time("--to", to))
        .transpose()?;
    let sources::Built {
        mut sources,
        config,
        _demo,
    } = sources::build(args, env).await?;
    let checkpoint = if args.resume {
        Some(Checkpoint::read(&args.output)?)
    } else {
        None
    };
    let end = resolve_ends(args, &config, &mut sources, to, checkpoint.as_ref(), now)?;
    warn_of_late_rows(end, now);
    let retention = sources::retention(args, &config.functions);
    let range = Range::check(from, end, args.step, now, &retention)?;
    let fingerprint = fingerprint(&range, &sources);
    let mut output = Output::create(&args.output, checkpoint.is_some())?;
    let mut first_day = 0;
    if let Some(checkpoint) = checkpoint {
        if checkpoint.fingerprint != fingerprint {
            return Err(BackfillError::OtherRun(format!(
                "the interrupted run was {}, this one is {fingerprint}",
                checkpoint.fingerprint
            )));
        }
        first_day = checkpoint.days_done;
        output.truncate(checkpoint.output_len)?;
        checkpoint
            .restore(&mut sources)
            .map_err(BackfillError::OtherRun)?;
        for source in &sources {
            output.mark_known(&each!(source, s => s.families()));
        }
    }
    let days = range.days();
    let mut progress = Progress::new(
        u64::from(days) * sources.len() as u64,
        u64::from(first_day) * sources.len() as u64,
    );
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    for day in first_day..days {
        tokio::select! {
            read = read_day(&range, day, &mut sources, &mut progress) => read?,
            _ = &mut interrupted => {
                progress.finish();
                return Err(BackfillError::Interrupted);
            }
        }
        write_day(&range, day, &mut sources, &mut output)?;
        let len = output.sync()?;
        Checkpoint::new(
            fingerprint.clone(),
            range.to.timestamp(),
            day + 1,
            len,
            &sources,
        )
        .write(&args.output)
        .map_err(|e| output.error(e))?;
        tracing::debug!(day = %range.day(day).0.date_naive(), bytes = len, "backfill day written");
    }
    progress.finish();
    output.finish()?;
    Ok(format!(
        "backfill: wrote {} ({} to {}, a sample every {}): {} rows in {} pages; import it with: promtool tsdb create-blocks-from openmetrics {} DIR",
        args.output.display(),
        range.from.to_rfc3339(),
        range.to.to_rfc3339(),
        humantime::format_duration(Duration::from_secs(range.step as u64)),
        progress.rows,
        progress.pages,
        args.output.display(),
    ))
}

/// Reads one day piece of every source, all at once: each tenant's functions share its
/// request budget (and Graph's per-tenant limit), which sets the pace, while each
/// function's own limit lets them read side by side.
async fn read_day(
    range: &Range,
    day: u32,
    sources: &mut [AnySource],
    progress: &mut Progress,
) -> Result<(), BackfillError> {
    let (start, end) = range.day(day);
    progress.day(start.date_naive().to_string());
    let progress = std::cell::RefCell::new(progress);
    let reads = sources.iter_mut().map(|source| {
        let progress = &progress;
        async move {
            let (tenant, function) = each!(&*source, s => (s.tenant.clone(), s.function_name()));
            each!(source, s => s.read_day(range, start, end, |rows| progress.borrow_mut().page(rows)).await)
                .map_err(|error| BackfillError::Graph {
                    tenant,
                    function,
                    error: Box::new(error),
                })?;
            progress.borrow_mut().piece_done();
            Ok::<(), BackfillError>(())
        }
    });
    futures_util::future::try_join_all(reads).await?;
    Ok(())
}

/// Writes the steps of one day piece: every source's samples of a step before the next.
fn write_day(
    range: &Range,
    day: u32,
    sources: &mut [AnySource],
    output: &mut Output,
) -> Result<(), BackfillError> {
    let (start, end) = range.day(day);
    let steps = ((end - start).num_seconds() + range.step - 1) / range.step;
    let mut text = String::new();
    for k in 0..steps as u32 {
        for source in sources.iter_mut() {
            if let Some((families, at, previous)) = each!(source, s => s.step(range, start, k)) {
                output.render(&mut text, &families, at, previous);
            }
        }
        output.write(text.as_bytes())?;
        text.clear();
    }
    Ok(())
}

/// What makes two runs the same backfill.
/// The range's end, and each source's: `--to`, else the first run's, else where live
/// counting began, else now. A resume takes each source's end from the checkpoint, so
/// that it ends where it did in the first run even once the state file's boundary has
/// moved on.
fn resolve_ends(
    args: &BackfillArgs,
    config: &crate::cli::Config,
    sources: &mut [AnySource],
    to: Option<DateTime<Utc>>,
    checkpoint: Option<&Checkpoint>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, BackfillError> {
    let first_starts = match (to, checkpoint) {
        (Some(_), _) => Vec::new(),
        (None, Some(checkpoint)) => checkpoint.source_ends(sources),
        (None, None) => sources::first_starts(config, sources, &args.exporter)?,
    };
    let end = to
        .or(checkpoint.and_then(|c| DateTime::from_timestamp(c.to, 0)))
        .or(first_starts.iter().flatten().max().copied())
        .unwrap_or(now);
    for (source, first) in sources
        .iter_mut()
        .zip(first_starts.iter().chain(std::iter::repeat(&None)))
    {
        each!(source, s => s.to = first.unwrap_or(end).min(end));
    }
    Ok(end)
}

/// Graph publishes rows up to two days after the call: calls of the two days before the
/// end may still lack rows, which neither this history nor live counting (from its
/// boundary on) would ever count.
fn warn_of_late_rows(end: DateTime<Utc>, now: DateTime<Utc>) {
    let settled = end + chrono::Duration::days(2);
    if settled > now {
        tracing::warn!(
            end = %end.to_rfc3339(),
            complete_after = %settled.to_rfc3339(),
            "the history ends less than two days ago: Graph may still publish rows of calls before its end, and neither this backfill nor live counting would count them; for complete history run it again after complete_after (with --state.path, before the first start leaves --poll.lookback)"
        );
    }
}

fn fingerprint(range: &Range, sources: &[AnySource]) -> String {
    let names: Vec<String> = sources
        .iter()
        .map(|s| {
            format!(
                "{}@{}",
                resume::source_name(s),
                each!(s, s => s.to.timestamp())
            )
        })
        .collect();
    format!(
        "from {} to {} every {}s, sources {}",
        range.from.to_rfc3339(),
        range.to.to_rfc3339(),
        range.step,
        names.join(",")
    )
}
