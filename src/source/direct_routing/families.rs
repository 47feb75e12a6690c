//! The metric families of Direct Routing calls, with their HELP texts: names, labels and
//! HELP are a contract with dashboards, alerts and users' queries (the golden `/metrics`
//! test shows every change).

use prometheus::proto::{MetricFamily, MetricType};

use super::totals::{DirectRoutingTotals, DURATION_BUCKETS, SETUP_BUCKETS};
use crate::source::family::{counter, family, histogram, Family};
use crate::source::row::UNKNOWN;

pub const CALLS: Family = Family {
    name: "teams_direct_routing_calls_total",
    help: "Direct Routing calls, counted once when their log row first appears in Graph.",
    labels: &[
        "trunk_fqdn",
        "call_type",
        "final_sip_code",
        "successful",
        "media_path_location",
    ],
};
pub const FAILURES: Family = Family {
    name: "teams_direct_routing_call_failures_total",
    help: "Direct Routing calls that were not established, by final SIP code and Microsoft's call end sub-reason.",
    labels: &["trunk_fqdn", "final_sip_code", "call_end_sub_reason"],
};
pub const DURATION: Family = Family {
    name: "teams_direct_routing_call_duration_seconds",
    help: "Duration of established Direct Routing calls.",
    labels: &["trunk_fqdn", "call_type"],
};
pub const SETUP: Family = Family {
    name: "teams_direct_routing_call_setup_seconds",
    help: "Time to establish Direct Routing calls (startDateTime minus inviteDateTime, ringing included), established calls only.",
    labels: &["trunk_fqdn", "call_type"],
};
pub const BY_COUNTRY: Family = Family {
    name: "teams_direct_routing_calls_by_country_total",
    help: "Direct Routing calls by trunk, direction and the far end's country (ISO 3166-1 alpha-2: the callee of outbound calls, the caller of inbound ones).",
    labels: &["trunk_fqdn", "direction", "country"],
};
/// Every family [`render`] produces, in its order.
pub const FAMILIES: &[&Family] = &[&CALLS, &FAILURES, &DURATION, &SETUP, &BY_COUNTRY];

/// The label value of a call's success: Graph's `successfulCall`, or `unknown` when null.
fn successful(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "true",
        Some(false) => "false",
        None => UNKNOWN,
    }
}

/// The families of `t`, one sample per series.
pub fn render(t: &DirectRoutingTotals) -> Vec<MetricFamily> {
    let calls = t.calls.iter().map(|(k, v)| {
        let values = [
            k.trunk_fqdn.as_str(),
            k.call_type.as_str(),
            k.final_sip_code.as_str(),
            successful(k.successful),
            k.media_path_location.as_str(),
        ];
        counter(&CALLS, &values, *v)
    });
    let failures = t.failures.iter().map(|(k, v)| {
        let values = [
            k.trunk_fqdn.as_str(),
            k.final_sip_code.as_str(),
            k.call_end_sub_reason.as_str(),
        ];
        counter(&FAILURES, &values, *v)
    });
    let duration = t.duration.iter().map(|(k, h)| {
        histogram(
            &DURATION,
            &[&k.trunk_fqdn, &k.call_type],
            DURATION_BUCKETS,
            h,
        )
    });
    let setup = t
        .setup
        .iter()
        .map(|(k, h)| histogram(&SETUP, &[&k.trunk_fqdn, &k.call_type], SETUP_BUCKETS, h));
    let by_country = t.by_country.iter().map(|(k, v)| {
        let values = [
            k.trunk_fqdn.as_str(),
            k.direction.as_str(),
            k.country.as_str(),
        ];
        counter(&BY_COUNTRY, &values, *v)
    });
    vec![
        family(&CALLS, MetricType::COUNTER, calls.collect()),
        family(&FAILURES, MetricType::COUNTER, failures.collect()),
        family(&DURATION, MetricType::HISTOGRAM, duration.collect()),
        family(&SETUP, MetricType::HISTOGRAM, setup.collect()),
        family(&BY_COUNTRY, MetricType::COUNTER, by_country.collect()),
    ]
}
