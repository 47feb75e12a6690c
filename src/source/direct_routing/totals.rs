//! What Direct Routing rows add up to: calls by trunk, type, SIP code, success and media
//! location; failures by SIP code and Microsoft's sub-reason; duration and setup time of
//! established calls by trunk and type; calls by trunk, direction and far-end country.

use std::collections::HashMap;

use super::row::DirectRoutingRow;
use crate::source::destination::{country_label, Direction};
use crate::source::family::Histogram;
use crate::source::labels::{self, LabelValues};
use crate::source::row::UNKNOWN;
use crate::source::Function;

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
    /// The label values this tenant may use (bounded, see [`labels`]); rebuilt from the
    /// keys above at restore ([`DirectRoutingTotals::relearn_labels`]).
    pub labels: LabelValues,
}

impl DirectRoutingTotals {
    /// Counts one new row.
    pub fn count(&mut self, row: &DirectRoutingRow) {
        // Label values checked and bounded (issue #18): out of shape or new beyond the
        // limit counts under `other`. A key already counted holds admitted values only, so
        // a row of an existing series needs no check (nearly every row; the checks cost
        // about 7% of the ingest of new rows when done on each).
        const F: Function = Function::DirectRoutingCalls;
        let raw = |value: Option<String>| value.unwrap_or_else(|| UNKNOWN.to_owned());
        let mut key = CallKey {
            trunk_fqdn: raw(row.trunk_fqdn.as_deref().map(str::to_ascii_lowercase)),
            call_type: raw(row.call_type.clone()),
            final_sip_code: raw(row.final_sip_code.map(|v| v.to_string())),
            successful: row.successful,
            media_path_location: raw(row.media_path_location.clone()),
        };
        if let Some(count) = self.calls.get_mut(&key) {
            *count += 1;
        } else {
            let values = &mut self.labels;
            key = CallKey {
                trunk_fqdn: values.admit(F, &labels::TRUNK_FQDN, Some(key.trunk_fqdn)),
                call_type: values.admit(F, &labels::CALL_TYPE, Some(key.call_type)),
                final_sip_code: values.admit(F, &labels::FINAL_SIP_CODE, Some(key.final_sip_code)),
                successful: key.successful,
                media_path_location: values.admit(
                    F,
                    &labels::MEDIA_PATH_LOCATION,
                    Some(key.media_path_location),
                ),
            };
            *self.calls.entry(key.clone()).or_default() += 1;
        }
        let CallKey {
            trunk_fqdn,
            call_type,
            final_sip_code,
            ..
        } = key;

        let key = CountryKey {
            trunk_fqdn: trunk_fqdn.clone(),
            direction: row.direction,
            country: country_label(row.far_end_country).to_owned(),
        };
        *self.by_country.entry(key).or_default() += 1;

        if row.successful == Some(false) {
            let mut key = FailureKey {
                trunk_fqdn,
                final_sip_code,
                call_end_sub_reason: raw(row.call_end_sub_reason.map(|v| v.to_string())),
            };
            if let Some(count) = self.failures.get_mut(&key) {
                *count += 1;
            } else {
                key.call_end_sub_reason = self.labels.admit(
                    F,
                    &labels::CALL_END_SUB_REASON,
                    Some(key.call_end_sub_reason),
                );
                *self.failures.entry(key).or_default() += 1;
            }
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

impl DirectRoutingTotals {
    /// Rebuilds the known label values from the keys, after a restore: the values served
    /// before a restart stay, and the same new ones are folded as before it.
    pub fn relearn_labels(&mut self) {
        let values = &mut self.labels;
        for key in self.calls.keys() {
            values.relearn(&labels::TRUNK_FQDN, &key.trunk_fqdn);
            values.relearn(&labels::CALL_TYPE, &key.call_type);
            values.relearn(&labels::FINAL_SIP_CODE, &key.final_sip_code);
            values.relearn(&labels::MEDIA_PATH_LOCATION, &key.media_path_location);
        }
        for key in self.failures.keys() {
            values.relearn(&labels::TRUNK_FQDN, &key.trunk_fqdn);
            values.relearn(&labels::FINAL_SIP_CODE, &key.final_sip_code);
            values.relearn(&labels::CALL_END_SUB_REASON, &key.call_end_sub_reason);
        }
        for key in self.duration.keys().chain(self.setup.keys()) {
            values.relearn(&labels::TRUNK_FQDN, &key.trunk_fqdn);
            values.relearn(&labels::CALL_TYPE, &key.call_type);
        }
        for key in self.by_country.keys() {
            values.relearn(&labels::TRUNK_FQDN, &key.trunk_fqdn);
        }
    }
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
