//! Direct Routing's totals as the state file keeps them (`--state.path`).
//!
//! The layout is part of the file format: postcard writes these fields in this order,
//! inline, as the first fields of the saved aggregates, so that files written before the
//! exporter read more than one function load unchanged.

use serde::{Deserialize, Serialize};

use super::totals::{
    CallKey, DirectRoutingTotals, FailureKey, TrunkTypeKey, DURATION_BUCKETS, SETUP_BUCKETS,
};
use crate::source::family::{check_bounds, SavedHistogram};
use crate::source::DamagedTotals;

#[derive(Debug, Serialize, Deserialize)]
struct SavedCall {
    trunk_fqdn: String,
    call_type: String,
    final_sip_code: String,
    successful: Option<bool>,
    media_path_location: String,
    count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedFailure {
    trunk_fqdn: String,
    final_sip_code: String,
    call_end_sub_reason: String,
    count: u64,
}

/// Every Direct Routing total, with the histogram bounds they were counted with, so that
/// a later version that changes a bound can tell (and this one refuses such a file).
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedTotals {
    calls: Vec<SavedCall>,
    failures: Vec<SavedFailure>,
    duration_bounds: Vec<f64>,
    duration: Vec<SavedHistogram>,
    setup_bounds: Vec<f64>,
    setup: Vec<SavedHistogram>,
}

impl From<&DirectRoutingTotals> for SavedTotals {
    fn from(t: &DirectRoutingTotals) -> Self {
        let histograms = |map: &std::collections::HashMap<TrunkTypeKey, _>| {
            map.iter()
                .map(|(k, h)| SavedHistogram::save(&k.trunk_fqdn, &k.call_type, h))
                .collect()
        };
        SavedTotals {
            calls: t
                .calls
                .iter()
                .map(|(k, count)| SavedCall {
                    trunk_fqdn: k.trunk_fqdn.clone(),
                    call_type: k.call_type.clone(),
                    final_sip_code: k.final_sip_code.clone(),
                    successful: k.successful,
                    media_path_location: k.media_path_location.clone(),
                    count: *count,
                })
                .collect(),
            failures: t
                .failures
                .iter()
                .map(|(k, count)| SavedFailure {
                    trunk_fqdn: k.trunk_fqdn.clone(),
                    final_sip_code: k.final_sip_code.clone(),
                    call_end_sub_reason: k.call_end_sub_reason.clone(),
                    count: *count,
                })
                .collect(),
            duration_bounds: DURATION_BUCKETS.to_vec(),
            duration: histograms(&t.duration),
            setup_bounds: SETUP_BUCKETS.to_vec(),
            setup: histograms(&t.setup),
        }
    }
}

impl SavedTotals {
    /// The totals this saved form holds; an error says what in the file does not add up.
    pub fn restore(self) -> Result<DirectRoutingTotals, DamagedTotals> {
        check_bounds("duration", &self.duration_bounds, DURATION_BUCKETS)?;
        check_bounds("setup", &self.setup_bounds, SETUP_BUCKETS)?;
        let damaged = |what: &str| DamagedTotals(what.to_owned());
        let mut t = DirectRoutingTotals::default();
        for c in self.calls {
            let key = CallKey {
                trunk_fqdn: c.trunk_fqdn,
                call_type: c.call_type,
                final_sip_code: c.final_sip_code,
                successful: c.successful,
                media_path_location: c.media_path_location,
            };
            if t.calls.insert(key, c.count).is_some() {
                return Err(damaged("a call series is saved twice"));
            }
        }
        for f in self.failures {
            let key = FailureKey {
                trunk_fqdn: f.trunk_fqdn,
                final_sip_code: f.final_sip_code,
                call_end_sub_reason: f.call_end_sub_reason,
            };
            if t.failures.insert(key, f.count).is_some() {
                return Err(damaged("a failure series is saved twice"));
            }
        }
        for (saved, bounds, target) in [
            (self.duration, DURATION_BUCKETS, &mut t.duration),
            (self.setup, SETUP_BUCKETS, &mut t.setup),
        ] {
            for h in saved {
                let key = TrunkTypeKey {
                    trunk_fqdn: h.trunk_fqdn.clone(),
                    call_type: h.call_type.clone(),
                };
                if target.insert(key, h.restore(bounds)?).is_some() {
                    return Err(damaged("a histogram series is saved twice"));
                }
            }
        }
        // Label bounds (issue #18): the values served before a restart are the known ones.
        t.relearn_labels();
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::direct_routing::DirectRoutingRow;

    fn totals() -> DirectRoutingTotals {
        let row = DirectRoutingRow::parse(
            r#"{"id":"a","startDateTime":"2026-11-27T10:00:25Z","inviteDateTime":"2026-11-27T10:00:21Z",
            "duration":300,"callType":"ByotIn","successfulCall":true,"finalSipCode":0,
            "trunkFullyQualifiedDomainName":"sbc1.contoso.com"}"#,
        )
        .unwrap();
        let mut totals = DirectRoutingTotals::default();
        totals.count(&row);
        totals
    }

    #[test]
    fn saved_totals_come_back_equal() {
        let totals = totals();
        assert_eq!(SavedTotals::from(&totals).restore().unwrap(), totals);
    }

    // The messages name what is damaged as the store's did before the totals moved here.
    #[test]
    fn damaged_totals_are_refused_with_what_is_wrong() {
        let refused = |saved: SavedTotals| saved.restore().unwrap_err().to_string();
        let mut twice = SavedTotals::from(&totals());
        let first = &twice.calls[0];
        let again = SavedCall {
            trunk_fqdn: first.trunk_fqdn.clone(),
            call_type: first.call_type.clone(),
            final_sip_code: first.final_sip_code.clone(),
            successful: first.successful,
            media_path_location: first.media_path_location.clone(),
            count: 1,
        };
        twice.calls.push(again);
        assert_eq!(refused(twice), "a call series is saved twice");
        let mut bounds = SavedTotals::from(&totals());
        bounds.duration_bounds.push(1e9);
        assert_eq!(
            refused(bounds),
            "its duration histogram has other buckets than this version's"
        );
        let mut histogram = SavedTotals::from(&totals());
        histogram.setup[0] = SavedHistogram::save("sbc1.contoso.com", "ByotIn", &{
            let mut h = crate::source::family::Histogram::new(SETUP_BUCKETS);
            h.count = 5;
            h
        });
        assert_eq!(refused(histogram), "a histogram does not add up");
    }
}
