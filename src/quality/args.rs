//! The `--collector.call-quality` and `--call-quality.*` flags.

use std::time::Duration;

use clap::Args;
use tve_clock::Rate;

use crate::flag::parse_duration;
use crate::source::graph::{DEFAULT_CALL_RECORD_BUDGET, GRAPH_CALL_RECORD_LIMIT};
use crate::source::graph_args::warn_above_graph;
use crate::source::graph_args::DEMO_SPEED;

/// How long the demo waits at least before fetching a record; the demo raises it to the
/// simulated tenant's `--simulate.call-record-delay`, when its records start to appear.
const DEMO_WAIT: Duration = Duration::from_secs(30);

/// The collector's flags.
#[derive(Debug, Args)]
pub struct CallQualityArgs {
    /// Read each established Direct Routing call's call record for its audio quality per
    /// trunk (one Graph request per call; off by default, on with --demo; turn it off
    /// with --no-collector.call-quality).
    #[arg(
        long = "collector.call-quality",
        overrides_with = "no_collector_call_quality"
    )]
    collector_call_quality: bool,
    #[arg(
        long = "no-collector.call-quality",
        overrides_with = "collector_call_quality",
        hide = true
    )]
    no_collector_call_quality: bool,
    /// How long after a call ends its record is first fetched: Graph publishes it 15–60
    /// minutes after the call [default: 20m; with --demo, the simulated tenant's
    /// --simulate.call-record-delay].
    #[arg(long = "call-quality.wait", value_parser = parse_duration, value_name = "DURATION")]
    call_quality_wait: Option<Duration>,
    /// How long after a call its record is fetched again while Graph answers 404; then it is
    /// given up as not published.
    #[arg(long = "call-quality.give-up", default_value = "6h", value_parser = parse_duration, value_name = "DURATION")]
    call_quality_give_up: Duration,
    /// Records waiting for Graph at most per tenant; the records of calls counted beyond are
    /// given up (queue_full).
    #[arg(
        long = "call-quality.max-pending",
        default_value_t = 50_000,
        value_name = "N"
    )]
    call_quality_max_pending: usize,
    /// Call-record requests the exporter sends to a tenant, at most, within any DURATION:
    /// Graph allows an app 1,500 per 20s per tenant, apart from the call logs' limits
    /// [default: 1350/20s; 1350/666ms with --demo].
    #[arg(long = "call-quality.rate-limit", value_name = "N/DURATION")]
    call_quality_rate_limit: Option<Rate>,
}

/// The collector's configuration, from valid flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualityOptions {
    pub wait: Duration,
    pub give_up: Duration,
    pub max_pending: usize,
    /// The call-record request budget.
    pub rate: Rate,
}

/// A `--call-quality.*` flag that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallQualityArgsError {
    #[error("--call-quality.give-up ({give_up:?}) must be longer than --call-quality.wait ({wait:?}): a record is first fetched after the wait and given up after give-up")]
    GiveUpBeforeWait { wait: Duration, give_up: Duration },
    #[error("--call-quality.max-pending must be at least 1")]
    NoRoom,
}

impl CallQualityArgsError {
    pub fn flag(&self) -> &'static str {
        match self {
            CallQualityArgsError::GiveUpBeforeWait { .. } => "--call-quality.give-up",
            CallQualityArgsError::NoRoom => "--call-quality.max-pending",
        }
    }
}

impl CallQualityArgs {
    /// Whether `--call-quality.wait` was given (the demo otherwise follows its simulator).
    pub fn wait_given(&self) -> bool {
        self.call_quality_wait.is_some()
    }

    /// The collector's options, or `None` when it is off.
    pub fn options(&self, demo: bool) -> Result<Option<QualityOptions>, CallQualityArgsError> {
        let on = if demo {
            !self.no_collector_call_quality
        } else {
            self.collector_call_quality
        };
        if !on {
            return Ok(None);
        }
        let wait = self.call_quality_wait.unwrap_or(if demo {
            DEMO_WAIT
        } else {
            Duration::from_secs(20 * 60)
        });
        if self.call_quality_give_up <= wait {
            return Err(CallQualityArgsError::GiveUpBeforeWait {
                wait,
                give_up: self.call_quality_give_up,
            });
        }
        if self.call_quality_max_pending == 0 {
            return Err(CallQualityArgsError::NoRoom);
        }
        let speed = if demo { DEMO_SPEED } else { 1 };
        let rate = self.call_quality_rate_limit.unwrap_or(Rate::new(
            DEFAULT_CALL_RECORD_BUDGET.requests,
            DEFAULT_CALL_RECORD_BUDGET.per / speed,
        ));
        if !demo {
            warn_above_graph(rate, GRAPH_CALL_RECORD_LIMIT, "--call-quality.rate-limit");
        }
        Ok(Some(QualityOptions {
            wait,
            give_up: self.call_quality_give_up,
            max_pending: self.call_quality_max_pending,
            rate,
        }))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        quality: CallQualityArgs,
    }

    fn options(args: &[&str], demo: bool) -> Result<Option<QualityOptions>, CallQualityArgsError> {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .quality
            .options(demo)
    }

    #[test]
    fn off_by_default_on_in_the_demo_and_the_last_flag_wins() {
        assert_eq!(options(&[], false).unwrap(), None);
        let on = options(&["--collector.call-quality"], false)
            .unwrap()
            .unwrap();
        assert_eq!(
            on,
            QualityOptions {
                wait: Duration::from_secs(1200),
                give_up: Duration::from_secs(6 * 3600),
                max_pending: 50_000,
                rate: Rate::new(1350, Duration::from_secs(20)),
            }
        );
        assert_eq!(
            options(
                &["--collector.call-quality", "--no-collector.call-quality"],
                false
            )
            .unwrap(),
            None
        );
        assert_eq!(options(&[], true).unwrap().unwrap().wait, DEMO_WAIT);
        assert_eq!(
            options(&["--no-collector.call-quality"], true).unwrap(),
            None
        );
    }

    #[test]
    fn impossible_flags_are_refused() {
        let error = options(
            &["--collector.call-quality", "--call-quality.wait=7h"],
            false,
        )
        .unwrap_err();
        assert_eq!(error.flag(), "--call-quality.give-up");
        let error = options(
            &["--collector.call-quality", "--call-quality.max-pending=0"],
            false,
        )
        .unwrap_err();
        assert_eq!(error, CallQualityArgsError::NoRoom);
        let custom = options(
            &[
                "--collector.call-quality",
                "--call-quality.rate-limit=100/20s",
            ],
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(custom.rate, Rate::new(100, Duration::from_secs(20)));
    }
}
