//! Which trunk fails, and when: by default the demo's legacy SBC falls over for a quarter
//! of every hour, so alerts have something to fire on; the `failing_trunk` fault makes one
//! chosen trunk fail all the time instead, so a test knows exactly which trunk an alert
//! must name.

use super::tables::{DEGRADING_TRUNK, TRUNKS};
use crate::time::MS_PER_MIN;

/// Minutes of every hour in which [`DEGRADING_TRUNK`] fails by default.
const DEGRADED_MINUTES: std::ops::Range<i64> = 40..55;
/// Share of a degraded trunk's calls that fail.
pub(super) const DEGRADED_FAILURE_SHARE: f64 = 0.85;

/// Which trunk fails, and when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Degradation {
    /// [`DEGRADING_TRUNK`] fails in minutes 40 to 55 of every hour: the demo's default.
    #[default]
    Hourly,
    /// This trunk fails all the time and no other does.
    Constant(usize),
}

impl Degradation {
    /// The constant failure of the trunk named `fqdn` (any case); `None` when no simulated
    /// trunk has that name.
    pub fn of_trunk(fqdn: &str) -> Option<Self> {
        TRUNKS
            .iter()
            .position(|t| t.fqdn.eq_ignore_ascii_case(fqdn.trim()))
            .map(Degradation::Constant)
    }

    /// The degradation the `failing_trunk` fault asks for; an unknown FQDN (refused by the
    /// command line, but possible through `PUT /_sim/faults`) leaves the default.
    pub fn for_failing_trunk(failing_trunk: Option<&str>) -> Self {
        failing_trunk
            .and_then(Degradation::of_trunk)
            .unwrap_or_default()
    }

    pub(super) fn fails(self, trunk: usize, start_ms: i64) -> bool {
        match self {
            Degradation::Hourly => {
                let minute = start_ms.div_euclid(MS_PER_MIN).rem_euclid(60);
                trunk == DEGRADING_TRUNK && DEGRADED_MINUTES.contains(&minute)
            }
            Degradation::Constant(failing) => trunk == failing,
        }
    }
}
