//! The metric families of PSTN calls (Calling Plan, Operator Connect), with their HELP
//! texts: names, labels and HELP are a contract with dashboards, alerts and users' queries.

use prometheus::proto::{self, MetricFamily, MetricType};
use rust_decimal::prelude::ToPrimitive;

use super::charge::IgnoredCharge;
use super::totals::{PstnTotals, DURATION_BUCKETS};
use crate::source::family::{counter, family, histogram, Family};

pub const CALLS: Family = Family {
    name: "teams_pstn_calls_total",
    help: "PSTN calls (Calling Plan, Operator Connect), counted once when their log row first appears in Graph.",
    labels: &[
        "call_type",
        "destination_context",
        "operator",
        "license_capability",
        "usage_country_code",
    ],
};
pub const DURATION: Family = Family {
    name: "teams_pstn_call_duration_seconds",
    help: "Duration of PSTN calls; calls that never connected are observed as 0 (the le=\"0\" bucket).",
    labels: &["call_type", "destination_context"],
};
pub const CHARGES: Family = Family {
    name: "teams_pstn_charges_total",
    help: "Charges of PSTN calls (charge plus connection charge) in units of the currency, summed exactly as Graph wrote them; rows without a currency add nothing.",
    labels: &["currency", "call_type", "destination_context"],
};
pub const BY_COUNTRY: Family = Family {
    name: "teams_pstn_calls_by_country_total",
    help: "PSTN calls by direction and the far end's country (ISO 3166-1 alpha-2: the callee of outbound calls, the caller of inbound ones).",
    labels: &["direction", "country"],
};
pub const CHARGES_IGNORED: Family = Family {
    name: "teams_pstn_charges_ignored_total",
    help: "PSTN calls whose charge was not added to teams_pstn_charges_total (the call itself was counted), by reason: negative, not_a_number, too_large (over 1,000,000 a call), unrepresentable, no_currency.",
    labels: &["reason"],
};
/// Every family [`render`] produces, in its order.
pub const FAMILIES: &[&Family] = &[&CALLS, &DURATION, &CHARGES, &BY_COUNTRY, &CHARGES_IGNORED];

/// The families of `t`, one sample per series. Every reason of
/// `teams_pstn_charges_ignored_total` is shown, at 0 until it happens, so that an alert on
/// its increase sees the first ignored charge.
pub fn render(t: &PstnTotals) -> Vec<MetricFamily> {
    let calls = t.calls.iter().map(|(k, v)| {
        let values = [
            k.call_type.as_str(),
            k.destination_context.as_str(),
            k.operator.as_str(),
            k.license_capability.as_str(),
            k.usage_country_code.as_str(),
        ];
        counter(&CALLS, &values, *v)
    });
    let duration = t.duration.iter().map(|(k, h)| {
        histogram(
            &DURATION,
            &[&k.call_type, &k.destination_context],
            DURATION_BUCKETS,
            h,
        )
    });
    let charges = t.charges.iter().map(|(k, total)| {
        let values = [
            k.currency.as_str(),
            k.call_type.as_str(),
            k.destination_context.as_str(),
        ];
        // Exact until here; the exposition format carries floats.
        amount(&CHARGES, &values, total.to_f64().unwrap_or(0.0))
    });
    let by_country = t
        .by_country
        .iter()
        .map(|(k, v)| counter(&BY_COUNTRY, &[k.direction.as_str(), k.country.as_str()], *v));
    let ignored = IgnoredCharge::ALL.into_iter().map(|reason| {
        let count = t.charges_ignored.get(&reason).copied().unwrap_or(0);
        counter(&CHARGES_IGNORED, &[reason.as_str()], count)
    });
    vec![
        family(&CALLS, MetricType::COUNTER, calls.collect()),
        family(&DURATION, MetricType::HISTOGRAM, duration.collect()),
        family(&CHARGES, MetricType::COUNTER, charges.collect()),
        family(&BY_COUNTRY, MetricType::COUNTER, by_country.collect()),
        family(&CHARGES_IGNORED, MetricType::COUNTER, ignored.collect()),
    ]
}

/// A counter sample of a non-integer value (the shared helper takes counts).
fn amount(f: &Family, values: &[&str], value: f64) -> proto::Metric {
    let mut metric = counter(f, values, 0);
    let mut c = proto::Counter::default();
    c.set_value(value);
    metric.set_counter(c);
    metric
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::pstn::PstnRow;

    #[test]
    fn families_render_every_series_with_its_labels() {
        let mut totals = PstnTotals::default();
        for fields in [
            r#","callType":"user_out","charge":0.1,"connectionCharge":0.2,"currency":"GBP","destinationContext":"International","calleeNumber":"+4930123***","duration":30"#,
            r#","callType":"user_in","callerNumber":"+16137827274","duration":0"#,
            r#","callType":"user_out","charge":-1,"currency":"GBP""#,
        ] {
            let row = PstnRow::parse(&format!(
                r#"{{"id":"r","startDateTime":"2026-11-27T10:00:00Z"{fields}}}"#
            ))
            .unwrap();
            totals.count(&row);
        }
        let families = render(&totals);
        let names: Vec<_> = families.iter().map(|f| f.name()).collect();
        let expected: Vec<_> = FAMILIES.iter().map(|f| f.name).collect();
        assert_eq!(names, expected);
        let charge = &families[2].get_metric()[0];
        assert!((charge.get_counter().get_value() - 0.3).abs() < 1e-12);
        let countries: Vec<Vec<&str>> = families[3]
            .get_metric()
            .iter()
            .map(|m| m.get_label().iter().map(|l| l.value()).collect())
            .collect();
        assert_eq!(
            countries,
            [
                vec!["inbound", "CA"],
                vec!["outbound", "DE"],
                vec!["outbound", "unknown"]
            ]
        );
        let ignored: Vec<(&str, f64)> = families[4]
            .get_metric()
            .iter()
            .map(|m| (m.get_label()[0].value(), m.get_counter().get_value()))
            .collect();
        assert_eq!(ignored.len(), IgnoredCharge::ALL.len());
        assert!(ignored.contains(&("negative", 1.0)));
        assert!(ignored.contains(&("no_currency", 0.0)));
        for family in &families {
            for metric in family.get_metric() {
                assert_eq!(
                    metric.get_label().len(),
                    FAMILIES
                        .iter()
                        .find(|f| f.name == family.name())
                        .unwrap()
                        .labels
                        .len()
                );
            }
        }
    }
}
