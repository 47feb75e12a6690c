//! The simulated tenant's own flags (`--simulate.*`), flattened into the exporter's command
//! line for `--demo` and the `simulate` subcommand.

use std::time::Duration;

use clap::Args;
use tve_clock::Clock;

use crate::config::{SimConfig, DEMO_CALLS_PER_DAY};
use crate::direct_routing::{trunk_fqdns, DEMO_TRUNKS, MAX_TRUNKS};
use crate::traffic::Traffic;

/// The simulated tenant's traffic, for `--demo` and `simulate`.
#[derive(Debug, Args)]
pub struct SimulationArgs {
    /// Average calls a day in the simulated tenant.
    #[arg(long = "simulate.calls-per-day", default_value_t = DEMO_CALLS_PER_DAY, value_name = "N")]
    pub calls_per_day: f64,
    /// Seed for the simulated traffic (the same seed gives the same calls).
    #[arg(long = "simulate.seed", default_value_t = 1, value_name = "N")]
    pub seed: u64,
    /// Call history the simulated tenant holds at start [default: 74h; 12h with --demo].
    #[arg(long = "simulate.history", value_parser = parse_duration, value_name = "DURATION")]
    pub history: Option<Duration>,
    /// Make every call on this simulated trunk fail (mostly SIP 503 and 408) and no other
    /// trunk degrade, e.g. to try alerts [default: sbc-legacy.fabrikam.com fails in minutes
    /// 40-55 of every hour].
    #[arg(long = "simulate.failing-trunk", value_parser = parse_simulated_trunk, value_name = "FQDN")]
    pub failing_trunk: Option<String>,
    /// Trunks of the simulated tenant: its six, and beyond them copies (sbc01-1.contoso.com,
    /// ...) that share their calls, for as many series as the largest tenants have.
    #[arg(long = "simulate.trunks", default_value_t = DEMO_TRUNKS, value_parser = parse_simulated_trunks, value_name = "N")]
    pub trunks: usize,
}

fn parse_simulated_trunks(text: &str) -> Result<usize, String> {
    let (min, max) = (DEMO_TRUNKS, MAX_TRUNKS);
    match text.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}' is not a number of trunks from {min} to {max}"
        )),
    }
}

fn parse_simulated_trunk(text: &str) -> Result<String, String> {
    let wanted = text.trim().to_ascii_lowercase();
    if trunk_fqdns().any(|fqdn| fqdn == wanted) {
        Ok(wanted)
    } else {
        let known: Vec<_> = trunk_fqdns().collect();
        Err(format!(
            "'{text}' is not a simulated trunk; use one of {}",
            known.join(", ")
        ))
    }
}

impl SimulationArgs {
    /// The demo tenant with the traffic these flags ask for; `default_history` when
    /// `--simulate.history` is not given.
    pub fn config(&self, default_history: Duration, clock: Clock) -> SimConfig {
        let mut config = SimConfig::demo(clock);
        config.seed = self.seed;
        config.traffic = Traffic::Live {
            calls_per_day: self.calls_per_day,
            history: self.history.unwrap_or(default_history),
            trunks: self.trunks,
        };
        config.faults.failing_trunk = self.failing_trunk.clone();
        config
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!(
            "'{text}' is not a duration; write a number with a unit, such as 90s, 5m, 1h or 1h30m"
        )
    })
}
