//! Direct Routing's totals as the state file keeps them (`--state.path`).
//!
//! The layout is part of the file format: postcard writes these fields in this order,
//! inline, as the first fields of the saved aggregates, so that files written before the
//! exporter read more than one function load unchanged. [`SavedTotalsV1`] is the layout of
//! state format version 1, byte for byte; [`SavedTotals`] writes the same fields first (a
//! nested struct is inline in postcard) and the calls by country after them.

use serde::{Deserialize, Serialize};

use super::totals::{
    CallKey, CountryKey, DirectRoutingTotals, FailureKey, TrunkTypeKey, DURATION_BUCKETS,
    SETUP_BUCKETS,
};
use crate::source::destination::Direction;
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

/// The Direct Routing totals of state format version 1, with the histogram bounds they
/// were counted with, so that a later version that changes a bound can tell (and this one
/// refuses such a file). Its layout must not change: version 1 files are read with it.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedTotalsV1 {
    calls: Vec<SavedCall>,
    failures: Vec<SavedFailure>,
    duration_bounds: Vec<f64>,
    duration: Vec<SavedHistogram>,
    setup_bounds: Vec<f64>,
    setup: Vec<SavedHistogram>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedCountry {
    trunk_fqdn: String,
    direction: String,
    country: String,
    count: u64,
}

/// Every Direct Routing total: those of format version 1, then the calls by country.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedTotals {
    /// The fields of [`SavedTotalsV1`], in its layout and first.
    v1: SavedTotalsV1,
    by_country: Vec<SavedCountry>,
}

impl From<&DirectRoutingTotals> for SavedTotals {
    fn from(t: &DirectRoutingTotals) -> Self {
        SavedTotals {
            v1: t.into(),
            by_country: t
                .by_country
                .iter()
                .map(|(k, count)| SavedCountry {
                    trunk_fqdn: k.trunk_fqdn.clone(),
                    direction: k.direction.as_str().to_owned(),
                    country: k.country.clone(),
                    count: *count,
                })
                .collect(),
        }
    }
}

impl SavedTotals {
    /// The totals this saved form holds; an error says what in the file does not add up.
    pub fn restore(self) -> Result<DirectRoutingTotals, DamagedTotals> {
        let mut t = self.v1.restore()?;
        for c in self.by_country {
            let direction = Direction::from_label(&c.direction)
                .ok_or_else(|| DamagedTotals("a call direction is not one".into()))?;
            let key = CountryKey {
                trunk_fqdn: c.trunk_fqdn,
                direction,
                country: c.country,
            };
            if t.by_country.insert(key, c.count).is_some() {
                return Err(DamagedTotals("a country series is saved twice".into()));
            }
        }
        // Again, for the trunks of calls by country.
        t.relearn_labels();
        Ok(t)
    }
}

/// The version 1 part of the totals (calls by country are not in it).
impl From<&DirectRoutingTotals> for SavedTotalsV1 {
    fn from(t: &DirectRoutingTotals) -> Self {
        let histograms = |map: &std::collections::HashMap<TrunkTypeKey, _>| {
            map.iter()
                .map(|(k, h)| SavedHistogram::save(&k.trunk_fqdn, &k.call_type, h))
                .collect()
        };
        SavedTotalsV1 {
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

impl SavedTotalsV1 {
    /// The totals a version 1 file holds (none by country: that version did not count
    /// them); an error says what in the file does not add up.
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
        let mut totals = DirectRoutingTotals::default();
        for raw in [
            r#"{"id":"a","startDateTime":"2026-11-27T10:00:25Z","inviteDateTime":"2026-11-27T10:00:21Z",
            "duration":300,"callType":"ByotIn","successfulCall":true,"finalSipCode":0,
            "trunkFullyQualifiedDomainName":"sbc1.contoso.com","callerNumber":"+4930123***"}"#,
            r#"{"id":"b","startDateTime":"2026-11-27T10:00:25Z","callType":"ByotOut","successfulCall":false,
            "finalSipCode":486,"trunkFullyQualifiedDomainName":"sbc1.contoso.com","calleeNumber":"+16137827274"}"#,
        ] {
            totals.count(&DirectRoutingRow::parse(raw).unwrap());
        }
        totals
    }

    fn through_postcard<T: Serialize + serde::de::DeserializeOwned>(saved: &T) -> T {
        postcard::from_bytes(&postcard::to_allocvec(saved).unwrap()).unwrap()
    }

    #[test]
    fn saved_totals_come_back_equal() {
        let totals = totals();
        assert_eq!(totals.by_country.len(), 2);
        let restored = through_postcard(&SavedTotals::from(&totals))
            .restore()
            .unwrap();
        assert_eq!(restored, totals);
    }

    #[test]
    fn the_saved_form_starts_with_version_1_and_version_1_still_reads() {
        let totals = totals();
        let v1 = postcard::to_allocvec(&SavedTotalsV1::from(&totals)).unwrap();
        let current = postcard::to_allocvec(&SavedTotals::from(&totals)).unwrap();
        assert!(current.len() > v1.len() && current.starts_with(&v1));
        let from_v1 = postcard::from_bytes::<SavedTotalsV1>(&v1)
            .unwrap()
            .restore()
            .unwrap();
        assert!(from_v1.by_country.is_empty());
        assert_eq!(
            DirectRoutingTotals {
                by_country: totals.by_country.clone(),
                ..from_v1
            },
            totals
        );
    }

    // The messages name what is damaged as the store's did before the totals moved here.
    #[test]
    fn damaged_totals_are_refused_with_what_is_wrong() {
        let refused = |saved: SavedTotals| saved.restore().unwrap_err().to_string();
        let mut twice = SavedTotals::from(&totals());
        let first = &twice.v1.calls[0];
        let again = SavedCall {
            trunk_fqdn: first.trunk_fqdn.clone(),
            call_type: first.call_type.clone(),
            final_sip_code: first.final_sip_code.clone(),
            successful: first.successful,
            media_path_location: first.media_path_location.clone(),
            count: 1,
        };
        twice.v1.calls.push(again);
        assert_eq!(refused(twice), "a call series is saved twice");
        let mut bounds = SavedTotals::from(&totals());
        bounds.v1.duration_bounds.push(1e9);
        assert_eq!(
            refused(bounds),
            "its duration histogram has other buckets than this version's"
        );
        let mut histogram = SavedTotals::from(&totals());
        histogram.v1.setup[0] = SavedHistogram::save("sbc1.contoso.com", "ByotIn", &{
            let mut h = crate::source::family::Histogram::new(SETUP_BUCKETS);
            h.count = 5;
            h
        });
        assert_eq!(refused(histogram), "a histogram does not add up");
        let mut direction = SavedTotals::from(&totals());
        direction.by_country[0].direction = "sideways".into();
        assert_eq!(refused(direction), "a call direction is not one");
        let mut country = SavedTotals::from(&totals());
        let first = &country.by_country[0];
        let again = SavedCountry {
            trunk_fqdn: first.trunk_fqdn.clone(),
            direction: first.direction.clone(),
            country: first.country.clone(),
            count: 3,
        };
        country.by_country.push(again);
        assert_eq!(refused(country), "a country series is saved twice");
    }
}
