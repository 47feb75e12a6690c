//! Whether the poll schedule fits the request budget: the pages per hour each tier needs
//! at the rows per hour seen so far, against the requests per hour the budget allows, and
//! what gives way when it does not fit.
//!
//! Pure arithmetic, so that the landing page, the log and the metrics say the same thing
//! and tests can check it without Graph. What gives way follows the poller's priorities:
//! sweeps are stretched first (one runs after another, each longer than the sweep
//! interval), then late polls are delayed (they share the long-read lane with sweeps), and
//! the recent poll only when it alone needs more than the budget.

use std::fmt;
use std::time::Duration;

use super::schedule::{Schedule, SWEEP_PART};
use crate::source::graph::BudgetLimits;

/// Rows on a full page: Graph's page size.
pub const PAGE_SIZE: f64 = 1000.0;

/// How the schedule fares against the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every tier keeps its interval.
    Fits,
    /// Sweeps take longer than the sweep interval and run back to back.
    SweepsStretched,
    /// Recent and late polls alone need more than the budget: late polls wait as well.
    LatePollsDelayed,
    /// The recent poll alone needs more than the budget: new calls are counted late.
    RecentPollsDelayed,
}

impl Verdict {
    /// Whether the schedule keeps every interval.
    pub fn fits(self) -> bool {
        self == Verdict::Fits
    }
}

/// The schedule's need against the budget, at an estimated call rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feasibility {
    /// Rows per hour the estimate is based on.
    pub rows_per_hour: f64,
    /// Pages per hour each tier needs at its interval.
    pub recent_pages_per_hour: f64,
    pub late_pages_per_hour: f64,
    pub sweep_pages_per_hour: f64,
    /// Pages one sweep reads.
    pub sweep_pages: f64,
    /// Requests per hour the budget allows one source.
    pub budget_per_hour: f64,
    /// How long a sweep takes with what the recent and late polls leave of the budget.
    pub sweep_duration: Duration,
    pub verdict: Verdict,
}

impl Feasibility {
    /// The pages per hour the schedule needs in all.
    pub fn pages_per_hour(&self) -> f64 {
        self.recent_pages_per_hour + self.late_pages_per_hour + self.sweep_pages_per_hour
    }

    /// Need over budget: above 1 the schedule does not fit.
    pub fn utilisation(&self) -> f64 {
        self.pages_per_hour() / self.budget_per_hour.max(f64::MIN_POSITIVE)
    }

    /// What the user can do when it does not fit.
    pub fn remedy(&self) -> &'static str {
        match self.verdict {
            Verdict::Fits => "",
            Verdict::SweepsStretched => "sweeps run one after another and rows published days late are counted later than --poll.sweep-interval; lengthen --poll.sweep-interval or shorten --poll.lookback, or raise --graph.rate-limit if Graph's limit allows",
            Verdict::LatePollsDelayed => "late polls and sweeps wait for each other, so rows published hours late are counted later; lengthen --poll.late-interval or shorten --poll.late-window",
            Verdict::RecentPollsDelayed => "the recent poll alone needs more requests than the budget, so new calls are counted late; shorten --poll.recent-window or lengthen --poll.interval",
        }
    }
}

impl fmt::Display for Feasibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.0} pages an hour (recent {:.0}, late {:.0}, sweep {:.0}) at about {:.0} rows an hour, of a budget of {:.0} requests an hour ({:.0} %); a sweep of {:.0} pages takes about {}",
            self.pages_per_hour(),
            self.recent_pages_per_hour,
            self.late_pages_per_hour,
            self.sweep_pages_per_hour,
            self.rows_per_hour,
            self.budget_per_hour,
            self.utilisation() * 100.0,
            self.sweep_pages,
            humantime::format_duration(Duration::from_secs(self.sweep_duration.as_secs())),
        )
    }
}

/// Pages to read `window` of calls at `rows_per_hour`: a partly filled page costs a request
/// like a full one, and an empty window still costs one.
fn pages(rows_per_hour: f64, window: Duration) -> f64 {
    (rows_per_hour * window.as_secs_f64() / 3600.0 / PAGE_SIZE)
        .ceil()
        .max(1.0)
}

fn per_hour(interval: Duration) -> f64 {
    3600.0 / interval.as_secs_f64().max(1e-3)
}

/// The schedule's need at `rows_per_hour` against the budget of one source of a tenant
/// that has `sources` of them.
pub fn assess(
    schedule: &Schedule,
    rows_per_hour: f64,
    budget: BudgetLimits,
    sources: usize,
) -> Feasibility {
    let rows_per_hour = rows_per_hour.max(0.0);
    let tenant_share = budget.per_tenant.per_hour() / sources.max(1) as f64;
    let budget_per_hour = budget.per_function.per_hour().min(tenant_share);
    let recent = per_hour(schedule.poll_interval) * pages(rows_per_hour, schedule.recent_window);
    let late = if schedule.has_late_tier() {
        per_hour(schedule.late_interval) * pages(rows_per_hour, schedule.late_window)
    } else {
        0.0
    };
    // A sweep is read in parts, each ending with a partly filled page.
    let full_parts = (schedule.lookback.as_secs() / SWEEP_PART.as_secs()) as f64;
    let rest = schedule
        .lookback
        .saturating_sub(SWEEP_PART.mul_f64(full_parts));
    let sweep_pages = full_parts * pages(rows_per_hour, SWEEP_PART)
        + if rest.is_zero() {
            0.0
        } else {
            pages(rows_per_hour, rest)
        };
    let left_for_sweeps = budget_per_hour - recent - late;
    let sweep_duration = if left_for_sweeps > 0.0 {
        Duration::try_from_secs_f64(sweep_pages / left_for_sweeps * 3600.0).unwrap_or(Duration::MAX)
    } else {
        Duration::MAX
    };
    let verdict = if recent > budget_per_hour {
        Verdict::RecentPollsDelayed
    } else if recent + late > budget_per_hour {
        Verdict::LatePollsDelayed
    } else if sweep_duration > schedule.sweep_interval {
        Verdict::SweepsStretched
    } else {
        Verdict::Fits
    };
    Feasibility {
        rows_per_hour,
        recent_pages_per_hour: recent,
        late_pages_per_hour: late,
        sweep_pages_per_hour: sweep_pages * per_hour(schedule.sweep_interval),
        sweep_pages,
        budget_per_hour,
        sweep_duration,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tve_clock::Rate;

    fn hour_rate(calls_per_day: f64) -> f64 {
        calls_per_day / 24.0
    }

    #[test]
    fn the_default_schedule_fits_a_large_tenant() {
        let f = assess(
            &Schedule::default(),
            hour_rate(100_000.0),
            BudgetLimits::default(),
            1,
        );
        assert_eq!(f.verdict, Verdict::Fits);
        // 60 recent polls of 2 pages, 4 late polls of 25, a sweep of 12 parts of 25 pages
        // every six hours.
        assert_eq!(f.recent_pages_per_hour, 120.0);
        assert_eq!(f.late_pages_per_hour, 100.0);
        assert_eq!(f.sweep_pages, 12.0 * 25.0);
        assert_eq!(f.sweep_pages_per_hour, 50.0);
        assert!(f.pages_per_hour() <= 400.0, "{f}");
        assert_eq!(f.budget_per_hour, 2700.0);
        // 300 pages with 2,480 requests an hour left: about 7 minutes.
        assert!(f.sweep_duration < Duration::from_secs(8 * 60), "{f}");
    }

    #[test]
    fn what_gives_way_follows_the_priorities() {
        let schedule = Schedule::default();
        let tight = |per_hour: u32| BudgetLimits {
            per_function: Rate::new(per_hour, Duration::from_secs(3600)),
            per_tenant: Rate::new(10_000, Duration::from_secs(3600)),
        };
        let rate = hour_rate(100_000.0);
        // Recent and late take 220 an hour; 230 leaves 10 for a 300-page sweep.
        assert_eq!(
            assess(&schedule, rate, tight(230), 1).verdict,
            Verdict::SweepsStretched
        );
        assert_eq!(
            assess(&schedule, rate, tight(200), 1).verdict,
            Verdict::LatePollsDelayed
        );
        let f = assess(&schedule, rate, tight(100), 1);
        assert_eq!(f.verdict, Verdict::RecentPollsDelayed);
        assert!(f.remedy().contains("--poll.recent-window"));
        assert!(f.utilisation() > 1.0);
    }

    #[test]
    fn a_tenant_budget_shared_by_sources_binds_each_of_them() {
        let budget = BudgetLimits {
            per_function: Rate::new(45, Duration::from_secs(60)),
            per_tenant: Rate::new(60, Duration::from_secs(60)),
        };
        let f = assess(&Schedule::default(), 100.0, budget, 4);
        assert_eq!(f.budget_per_hour, 900.0);
    }

    #[test]
    fn an_idle_tenant_still_costs_a_page_a_poll() {
        let f = assess(&Schedule::default(), 0.0, BudgetLimits::default(), 1);
        assert_eq!(f.recent_pages_per_hour, 60.0);
        assert_eq!(f.sweep_pages, 12.0);
        assert_eq!(f.verdict, Verdict::Fits);
    }
}
