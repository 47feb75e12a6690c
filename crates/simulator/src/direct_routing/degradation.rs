//! Which trunk fails, and when: by default the demo's legacy SBC falls over for a quarter
//! of every hour, so alerts have something to fire on; the `failing_trunk` fault makes one
//! chosen trunk fail all the time instead, so a test knows exactly which trunk an alert
//! must name.

use super::tables::{TrunkNames, DEGRADING_TRUNK};
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
    /// No trunk fails more than the usual share of calls: a provider's other customers
    /// when the home tenant has the failing trunk, so that an alert names one tenant.
    Healthy,
}

impl Degradation {
    /// The constant failure of the trunk named `fqdn` (any case) in a tenant's `names`;
    /// `None` when none of its trunks has that name.
    pub fn of_trunk(fqdn: &str, names: &TrunkNames) -> Option<Self> {
        names.position(fqdn).map(Degradation::Constant)
    }

    /// The degradation the `failing_trunk` fault asks for in a tenant's `names`; an FQDN
    /// that is not one of its trunks (refused by the command line for the home tenant, but
    /// possible through `PUT /_sim/faults`, and usual for a provider's other customers)
    /// leaves the default.
    pub fn for_failing_trunk(failing_trunk: Option<&str>, names: &TrunkNames) -> Self {
        failing_trunk
            .and_then(|fqdn| Degradation::of_trunk(fqdn, names))
            .unwrap_or_default()
    }

    /// The degradation `faults` ask for in a tenant's `names`: the failing trunk's, else
    /// none with `quiet_trunks`, else the default.
    pub fn of_faults(faults: &crate::faults::Faults, names: &TrunkNames) -> Self {
        match &faults.failing_trunk {
            None if faults.quiet_trunks => Degradation::Healthy,
            failing => Degradation::for_failing_trunk(failing.as_deref(), names),
        }
    }

    pub(super) fn fails(self, trunk: usize, start_ms: i64) -> bool {
        match self {
            Degradation::Hourly => {
                let minute = start_ms.div_euclid(MS_PER_MIN).rem_euclid(60);
                trunk == DEGRADING_TRUNK && DEGRADED_MINUTES.contains(&minute)
            }
            Degradation::Constant(failing) => trunk == failing,
            Degradation::Healthy => false,
        }
    }
}
