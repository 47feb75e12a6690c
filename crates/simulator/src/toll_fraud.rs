//! The toll-fraud fault: one compromised account calling [`TOLL_FRAUD_COUNTRY`], a country
//! the tenant never calls otherwise, over both of its ways to the phone network, so that an
//! alert on calls to a new country (or on charges) has something to fire on within minutes.
//!
//! The calls are a Poisson process of [`CALLS_PER_MINUTE`] in tenant time, each a coin
//! toss between a Direct Routing `ByotOut` call and a Calling Plan `user_out` call, 20 to
//! 60 s long and published 5 to 20 s after its end. They are drawn from a random stream of
//! their own, so the rest of the tenant's traffic is the same with or without them.
//!
//! [`TOLL_FRAUD_COUNTRY`]: crate::TOLL_FRAUD_COUNTRY

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::direct_routing::{self, FRAUD_EXTERNAL_RANGE};
use crate::faults::Faults;
use crate::numbers::FRAUD_RANGES;
use crate::pstn::{self, FRAUD_SITE};
use crate::time::MS_PER_MIN;

/// Fraudulent calls per minute of tenant time.
pub(crate) const CALLS_PER_MINUTE: f64 = 4.0;

/// The compromised account (an index into the tenant's people): Irvin Sayers.
const FRAUD_USER: u8 = 11;

/// The fraud's state across live steps.
pub(crate) struct TollFraud {
    rng: StdRng,
    /// Start of the next fraudulent call (ms), once the fraud runs.
    next_ms: Option<f64>,
}

impl TollFraud {
    pub fn new(seed: u64) -> Self {
        TollFraud {
            rng: StdRng::seed_from_u64(seed ^ 0x7011_f4a0_d000_0000),
            next_ms: None,
        }
    }

    fn gap_ms(&mut self) -> f64 {
        let per_ms = CALLS_PER_MINUTE / MS_PER_MIN as f64;
        -(1.0 - self.rng.gen::<f64>()).ln() / per_ms
    }

    /// Adds the fraudulent calls that started up to `now_ms` when `faults` ask for fraud.
    pub fn step(
        &mut self,
        faults: &Faults,
        bind_ms: i64,
        now_ms: i64,
        direct_routing: &direct_routing::Log,
        pstn: &pstn::Log,
    ) {
        if !faults.toll_fraud {
            self.next_ms = None;
            return;
        }
        let from_ms = faults.toll_fraud_from_ms(bind_ms);
        if now_ms < from_ms {
            return;
        }
        // Switched on (again) late: the fraud starts now, with no backlog.
        let mut next_ms = match self.next_ms {
            Some(next_ms) => next_ms,
            None => from_ms.max(now_ms - 1000) as f64,
        };
        let (mut direct, mut calling_plan) = (Vec::new(), Vec::new());
        while next_ms <= now_ms as f64 {
            let start_ms = next_ms.floor() as i64;
            next_ms += self.gap_ms();
            let duration_s = self.rng.gen_range(20..=60);
            if self.rng.gen_bool(0.5) {
                direct.push(direct_routing::quick_call(
                    &mut self.rng,
                    0,
                    FRAUD_USER,
                    FRAUD_EXTERNAL_RANGE,
                    start_ms,
                    duration_s,
                ));
            } else {
                let range = FRAUD_RANGES[self.rng.gen_range(0..FRAUD_RANGES.len())];
                calling_plan.push(pstn::quick_call(
                    &mut self.rng,
                    FRAUD_SITE,
                    FRAUD_USER,
                    range,
                    start_ms,
                    duration_s,
                ));
            }
        }
        self.next_ms = Some(next_ms);
        if !direct.is_empty() {
            let mut store = direct_routing.write();
            for call in direct {
                store.insert(call);
            }
        }
        if !calling_plan.is_empty() {
            let mut store = pstn.write();
            for call in calling_plan {
                store.insert(call);
            }
        }
    }
}
