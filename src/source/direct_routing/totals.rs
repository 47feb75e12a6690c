//! What Direct Routing rows add up to: calls by trunk, type, SIP code, success and media
//! location; failures by SIP code and Microsoft's sub-reason; duration and setup time of
//! established calls by trunk and type; calls by trunk, direction and far-end country.

use std::collections::HashMap;

use super::row::DirectRoutingRow;
use crate::source::destination::{country_label, Direction};
use crate::source::family::Histogram;
use crate::source::row::UNKNOWN;

/// Upper bounds of `teams_direct_routing_call_duration_seconds`: phone calls last seconds
/// to hours.
pub const DURATION_BUCKETS: &[f64] = &[
    5.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
];
/// Upper bounds of `teams_direct_routing_call_setup_seconds`: post-dial delay plus ringing.
pub const SETUP_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 45.0, 60.0, 120.0,
];
/// Labels of `teams_direct_routing_calls_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey {
    pub trunk_fqdn: String,
    pub call_type: String,
    pub final_sip_code: String,
    pub successful: Option<bool>,
    pub media_path_location: String,
}

/// Labels of `teams_direct_routing_call_failures_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FailureKey {
    pub trunk_fqdn: String,
    pub final_sip_code: String,
    pub call_end_sub_reason: String,
}

/// Labels of the per-trunk histograms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrunkTypeKey {
    pub trunk_fqdn: String,
    pub call_type: String,
}

/// Labels of `teams_direct_routing_calls_by_country_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryKey {
    pub trunk_fqdn: String,
    pub direction: Direction,
    /// ISO 3166-1 alpha-2, or `unknown`.
    pub country: String,
}

/// Everything counted for one tenant's Direct Routing calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectRoutingTotals {
    pub calls: HashMap<CallKey, u64>,
    pub failures: HashMap<FailureKey, u64>,
    pub duration: HashMap<TrunkTypeKey, Histogram>,
    pub setup: HashMap<TrunkTypeKey, Histogram>,
    pub by_country: HashMap<CountryKey, u64>,
}

impl DirectRoutingTotals {
    /// Counts one new row.
    pub fn count(&mut self, row: &DirectRoutingRow) {
        let trunk_fqdn = row
            .trunk_fqdn
            .as_deref()
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| UNKNOWN.to_owned());
        let call_type = label(row.call_type.as_deref());
        let final_sip_code = number_label(row.final_sip_code);
        let key = CallKey {
            trunk_fqdn: trunk_fqdn.clone(),
            call_type: call_type.clone(),
            final_sip_code: final_sip_code.clone(),
            successful: row.successful,
            media_path_location: label(row.media_path_location.as_deref()),
        };
        *self.calls.entry(key).or_default() += 1;

        let key = CountryKey {
            trunk_fqdn: trunk_fqdn.clone(),
            direction: row.direction,
            country: country_label(row.far_end_country).to_owned(),
        };
        *self.by_country.entry(key).or_default() += 1;

        if row.successful == Some(false) {
            let key = FailureKey {
                trunk_fqdn,
                final_sip_code,
                call_end_sub_reason: number_label(row.call_end_sub_reason),
            };
            *self.failures.entry(key).or_default() += 1;
        } else if row.successful == Some(true) {
            let key = TrunkTypeKey {
                trunk_fqdn,
                call_type,
            };
            if let Some(duration) = row.duration_secs.filter(|d| *d >= 0) {
                self.duration
                    .entry(key.clone())
                    .or_insert_with(|| Histogram::new(DURATION_BUCKETS))
                    .observe(DURATION_BUCKETS, duration as f64);
            }
            if let Some(setup) = row.setup_seconds() {
                self.setup
                    .entry(key)
                    .or_insert_with(|| Histogram::new(SETUP_BUCKETS))
                    .observe(SETUP_BUCKETS, setup);
            }
        }
    }
}

fn label(value: Option<&str>) -> String {
    value.unwrap_or(UNKNOWN).to_owned()
}

fn number_label(value: Option<i64>) -> String {
    value.map_or_else(|| UNKNOWN.to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_is_counted_by_trunk_direction_and_country() {
        let mut totals = DirectRoutingTotals::default();
        for fields in [
            r#","callType":"ByotIn","trunkFullyQualifiedDomainName":"SBC1.Contoso.com","callerNumber":"+4930123***","successfulCall":false"#,
            r#","callType":"ByotOutUserForwarding","trunkFullyQualifiedDomainName":"sbc1.contoso.com","calleeNumber":"+33123456****","callerNumber":"+4930123***""#,
            r#","callType":"ByotOut","calleeNumber":"Anonymous""#,
            r#","callType":"Teams2Teams","otherPartyCountryCode":"jp""#,
        ] {
            let row = DirectRoutingRow::parse(&format!(
                r#"{{"id":"r","startDateTime":"2026-11-27T10:00:00Z"{fields}}}"#
            ))
            .unwrap();
            totals.count(&row);
        }
        let key = |trunk: &str, direction, country: &str| CountryKey {
            trunk_fqdn: trunk.into(),
            direction,
            country: country.into(),
        };
        let mut expected = HashMap::new();
        expected.insert(key("sbc1.contoso.com", Direction::Inbound, "DE"), 1);
        expected.insert(key("sbc1.contoso.com", Direction::Outbound, "FR"), 1);
        expected.insert(key(UNKNOWN, Direction::Outbound, UNKNOWN), 1);
        expected.insert(key(UNKNOWN, Direction::Unknown, "JP"), 1);
        assert_eq!(totals.by_country, expected);
    }
}
