//! The simulated tenant's own flags (`--simulate.*`), flattened into the exporter's command
//! line for `--demo` and the `simulate` subcommand; `--simulate.tenants` makes it a
//! provider of several.

use std::time::Duration;

use clap::Args;
use tve_clock::{Clock, Rate};

use crate::config::{SimConfig, DEMO_CALLS_PER_DAY};
use crate::direct_routing::{trunk_fqdns, DEMO_TRUNKS, MAX_TRUNKS};
use crate::faults::{GraphLimits, RateLimit};
use crate::provider::provider_tenants;
use crate::traffic::Traffic;

/// When `--simulate.call-record-delay` is not given: the earliest of Graph's 15-60 minutes.
pub const CALL_RECORD_DELAY: Duration = Duration::from_secs(15 * 60);

/// When `--demo` is not given `--simulate.call-record-delay`: records 1-4 minutes after
/// the call, so that a newcomer sees call quality within minutes rather than an hour.
pub const DEMO_CALL_RECORD_DELAY: Duration = Duration::from_secs(60);

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
    // The limits are written `std::option::Option` so that clap takes `off` as a value
    // (None) instead of making the flag optional.
    /// Graph's limit on requests to one call-log function of the simulated tenant, per
    /// window of the tenant's clock: more get 429 with Retry-After, and throttled requests
    /// count too. `off` switches it off. With the exporter's --demo, the default limits run
    /// 30 times faster (50/2s and so on), as the demo's schedule does.
    #[arg(long = "simulate.rate-limit", default_value = "50/60s", value_parser = parse_limit, value_name = "N/DURATION")]
    pub rate_limit: std::option::Option<RateLimit>,
    /// Graph's limit on the app's requests to all call-log functions together; `off`
    /// switches it off.
    #[arg(long = "simulate.app-rate-limit", default_value = "200/60s", value_parser = parse_limit, value_name = "N/DURATION")]
    pub app_rate_limit: std::option::Option<RateLimit>,
    /// Graph's limit on the requests of all apps of the simulated tenant together, the
    /// exporter's and --simulate.other-apps'; `off` switches it off.
    #[arg(long = "simulate.tenant-rate-limit", default_value = "1000/60s", value_parser = parse_limit, value_name = "N/DURATION")]
    pub tenant_rate_limit: std::option::Option<RateLimit>,
    /// Requests the simulated tenant's other apps send, evenly spread over time: they count
    /// against --simulate.tenant-rate-limit and leave the exporter less of it (e.g. 900/60s).
    #[arg(long = "simulate.other-apps", default_value = "off", value_parser = parse_limit, value_name = "N/DURATION")]
    pub other_apps: std::option::Option<RateLimit>,
    /// Calling Plan and Operator Connect calls a day of the simulated tenant (getPstnCalls),
    /// on top of --simulate.calls-per-day's Direct Routing calls [default: a fifth of
    /// --simulate.calls-per-day].
    #[arg(long = "simulate.pstn-calls-per-day", value_name = "N")]
    pub pstn_calls_per_day: Option<u64>,
    /// Simulate toll fraud: from --simulate.toll-fraud-after on, one account places a few
    /// short, expensive calls a minute to Sierra Leone (+232), a country the tenant never
    /// calls otherwise, over a Direct Routing trunk and its Calling Plan.
    #[arg(long = "simulate.toll-fraud")]
    pub toll_fraud: bool,
    /// Simulate a managed-service provider with N customer tenants, served from one
    /// address and read with the one multi-tenant app: tenant 0 is the demo tenant
    /// (contoso) at --simulate.calls-per-day, the others (northwind, adatum, litware, ...,
    /// then customer-NN) at 1/2, 1/3, ... of it (at least 300 calls a day). With N >= 3,
    /// the last tenant has not consented (token requests answer AADSTS700016), the one
    /// before it consented without CallRecords.Read.All (Graph answers 403), and tenant 1
    /// (northwind) calls over contoso's SBCs (shared trunk FQDNs); with N >= 5, tenant 2
    /// also has an app of its own. GET /_sim/tenants lists them.
    #[arg(long = "simulate.tenants", default_value_t = 1, value_parser = parse_tenant_count, value_name = "N")]
    pub tenants: usize,
    /// Calls a day of every customer of --simulate.tenants alike, instead of their
    /// decreasing sizes (a provider of equal customers, for load tests).
    #[arg(long = "simulate.customer-calls-per-day", value_name = "N")]
    pub customer_calls_per_day: Option<f64>,
    /// How long after the simulated tenant's start the toll fraud begins.
    #[arg(long = "simulate.toll-fraud-after", default_value = "2m", value_parser = parse_duration, value_name = "DURATION")]
    pub toll_fraud_after: Duration,
    /// How soon after a call Graph publishes its call record (call quality) at the
    /// earliest: each appears 1 to 4 times this long after the call ends, never before the
    /// call's row [default: 15m, i.e. 15-60 minutes as Graph documents it; 1m with --demo,
    /// so that its call quality shows within minutes]
    #[arg(long = "simulate.call-record-delay", value_parser = parse_duration, value_name = "DURATION")]
    pub call_record_delay: Option<Duration>,
    /// Share of call records (0 to 1) Graph never publishes: they answer 404 for as long
    /// as the call is kept.
    #[arg(long = "simulate.unpublished-call-records", default_value_t = 0.02, value_parser = parse_ratio, value_name = "RATIO")]
    pub unpublished_call_records: f64,
    /// Graph's limit on the app's call-record requests (/communications/callRecords/{id}),
    /// which do not count against the call-log limits; `off` switches it off.
    #[arg(long = "simulate.call-record-rate-limit", default_value = "1500/20s", value_parser = parse_limit, value_name = "N/DURATION")]
    pub call_record_rate_limit: std::option::Option<RateLimit>,
}

/// A share from 0 to 1.
fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!(
            "'{text}' is not a share from 0 to 1; write e.g. 0.02 for 2%"
        )),
    }
}

/// A rate limit flag: `N/DURATION` with a whole number of seconds, or `off`.
fn parse_limit(text: &str) -> Result<Option<RateLimit>, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let rate: Rate = text.parse().map_err(|error| format!("{error}, or off"))?;
    RateLimit::try_from(rate).map(Some).map_err(|_| {
        format!(
            "the window of '{text}' is not a whole number of seconds; write it as 10/2s, 50/60s or 1000/1m"
        )
    })
}

/// The most tenants `--simulate.tenants` simulates.
const MAX_TENANTS: usize = 10_000;

fn parse_tenant_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_TENANTS).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}' is not a number of tenants from 1 to {MAX_TENANTS}"
        )),
    }
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
    /// The demo tenant with the traffic, failing trunk and limits these flags ask for, and
    /// the provider's other tenants ([`provider_tenants`]) with `--simulate.tenants`;
    /// `default_history` when `--simulate.history` is not given.
    pub fn config(&self, default_history: Duration, clock: Clock) -> SimConfig {
        let mut config = SimConfig::demo(clock);
        config.seed = self.seed;
        config.traffic = Traffic::Live {
            calls_per_day: self.calls_per_day,
            history: self.history.unwrap_or(default_history),
            trunks: self.trunks,
        };
        config.faults.failing_trunk = self.failing_trunk.clone();
        config.faults.limits = self.limits();
        config.faults.pstn_calls_per_day = self.pstn_calls_per_day;
        config.faults.toll_fraud = self.toll_fraud;
        config.faults.toll_fraud_after_secs = Some(self.toll_fraud_after.as_secs());
        config.faults.call_record_delay = self.call_record_delay.unwrap_or(CALL_RECORD_DELAY);
        config.faults.unpublished_call_records = self.unpublished_call_records;
        config.tenants = provider_tenants(self.tenants, self.calls_per_day, self.seed);
        if let Some(calls_per_day) = self.customer_calls_per_day {
            for tenant in &mut config.tenants {
                tenant.calls_per_day = calls_per_day;
            }
        }
        config
    }

    /// The limits these flags ask for (by default Graph's documented ones, no other apps;
    /// the call records' among them).
    pub fn limits(&self) -> GraphLimits {
        GraphLimits {
            per_function: self.rate_limit,
            per_app: self.app_rate_limit,
            per_tenant: self.tenant_rate_limit,
            other_apps: self.other_apps,
            call_records: self.call_record_rate_limit,
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!(
            "'{text}' is not a duration; write a number with a unit, such as 90s, 5m, 1h or 1h30m"
        )
    })
}
