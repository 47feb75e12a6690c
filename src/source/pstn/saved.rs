//! PSTN totals as the state file keeps them (`--state.path`).
//!
//! Charges are saved as the exact decimal text of their totals (`"10000.00"`), never as
//! floats, so that a restart neither adds drift nor loses a cent; a total that does not read
//! back as a non-negative decimal makes the file damaged, as does a series saved twice or a
//! histogram that does not add up.

use std::collections::HashMap;
use std::hash::Hash;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::charge::IgnoredCharge;
use super::totals::{CallKey, ChargeKey, CountryKey, PstnTotals, TypeContextKey, DURATION_BUCKETS};
use crate::source::destination::Direction;
use crate::source::family::{check_bounds, SavedBuckets};
use crate::source::DamagedTotals;

#[derive(Debug, Serialize, Deserialize)]
struct SavedCall {
    call_type: String,
    destination_context: String,
    operator: String,
    license_capability: String,
    usage_country_code: String,
    count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedDuration {
    call_type: String,
    destination_context: String,
    histogram: SavedBuckets,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedCharge {
    currency: String,
    call_type: String,
    destination_context: String,
    /// The exact total, as `Decimal`'s text.
    total: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedCountry {
    direction: String,
    country: String,
    count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedIgnored {
    reason: String,
    count: u64,
}

/// Every PSTN total, with the duration bounds they were counted with.
#[derive(Debug, Serialize, Deserialize)]
pub struct Saved {
    calls: Vec<SavedCall>,
    duration_bounds: Vec<f64>,
    duration: Vec<SavedDuration>,
    charges: Vec<SavedCharge>,
    by_country: Vec<SavedCountry>,
    charges_ignored: Vec<SavedIgnored>,
}

impl From<&PstnTotals> for Saved {
    fn from(t: &PstnTotals) -> Self {
        Saved {
            calls: t
                .calls
                .iter()
                .map(|(k, count)| SavedCall {
                    call_type: k.call_type.clone(),
                    destination_context: k.destination_context.clone(),
                    operator: k.operator.clone(),
                    license_capability: k.license_capability.clone(),
                    usage_country_code: k.usage_country_code.clone(),
                    count: *count,
                })
                .collect(),
            duration_bounds: DURATION_BUCKETS.to_vec(),
            duration: t
                .duration
                .iter()
                .map(|(k, h)| SavedDuration {
                    call_type: k.call_type.clone(),
                    destination_context: k.destination_context.clone(),
                    histogram: SavedBuckets::save(h),
                })
                .collect(),
            charges: t
                .charges
                .iter()
                .map(|(k, total)| SavedCharge {
                    currency: k.currency.clone(),
                    call_type: k.call_type.clone(),
                    destination_context: k.destination_context.clone(),
                    total: total.to_string(),
                })
                .collect(),
            by_country: t
                .by_country
                .iter()
                .map(|(k, count)| SavedCountry {
                    direction: k.direction.as_str().to_owned(),
                    country: k.country.clone(),
                    count: *count,
                })
                .collect(),
            charges_ignored: t
                .charges_ignored
                .iter()
                .map(|(reason, count)| SavedIgnored {
                    reason: reason.as_str().to_owned(),
                    count: *count,
                })
                .collect(),
        }
    }
}

/// Inserts a restored series, refusing one saved twice.
fn insert<K: Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    key: K,
    value: V,
    what: &str,
) -> Result<(), DamagedTotals> {
    match map.insert(key, value) {
        None => Ok(()),
        Some(_) => Err(DamagedTotals(format!("a {what} series is saved twice"))),
    }
}

impl Saved {
    /// The totals this saved form holds; an error says what in the file does not add up.
    pub fn restore(self) -> Result<PstnTotals, DamagedTotals> {
        check_bounds("PSTN duration", &self.duration_bounds, DURATION_BUCKETS)?;
        let mut t = PstnTotals::default();
        for c in self.calls {
            let key = CallKey {
                call_type: c.call_type,
                destination_context: c.destination_context,
                operator: c.operator,
                license_capability: c.license_capability,
                usage_country_code: c.usage_country_code,
            };
            insert(&mut t.calls, key, c.count, "PSTN call")?;
        }
        for d in self.duration {
            let key = TypeContextKey {
                call_type: d.call_type,
                destination_context: d.destination_context,
            };
            let histogram = d.histogram.restore(DURATION_BUCKETS)?;
            insert(&mut t.duration, key, histogram, "PSTN duration")?;
        }
        for c in self.charges {
            let total = Decimal::from_str_exact(&c.total)
                .ok()
                .filter(|total| !total.is_sign_negative() || total.is_zero())
                .ok_or_else(|| DamagedTotals("a PSTN charge total is not an amount".into()))?;
            let key = ChargeKey {
                currency: c.currency,
                call_type: c.call_type,
                destination_context: c.destination_context,
            };
            insert(&mut t.charges, key, total, "PSTN charge")?;
        }
        for c in self.by_country {
            let direction = Direction::from_label(&c.direction)
                .ok_or_else(|| DamagedTotals("a PSTN call direction is not one".into()))?;
            let key = CountryKey {
                direction,
                country: c.country,
            };
            insert(&mut t.by_country, key, c.count, "PSTN country")?;
        }
        for i in self.charges_ignored {
            let reason = IgnoredCharge::from_label(&i.reason)
                .ok_or_else(|| DamagedTotals("a reason for an ignored charge is not one".into()))?;
            insert(
                &mut t.charges_ignored,
                reason,
                i.count,
                "PSTN ignored charge",
            )?;
        }
        t.relearn_labels();
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::pstn::PstnRow;

    fn totals() -> PstnTotals {
        let mut totals = PstnTotals::default();
        for fields in [
            r#","callType":"user_out","charge":0.01,"connectionCharge":0.001,"currency":"EUR","destinationContext":"Domestic","calleeNumber":"+3120123****","duration":42,"operator":"Microsoft","licenseCapability":"MCOPSTN1","usageCountryCode":"NL""#,
            r#","callType":"oc_fmc_in","callerNumber":"+4144668****","duration":0"#,
            r#","charge":"n/a","currency":"EUR""#,
        ] {
            let row = PstnRow::parse(&format!(
                r#"{{"id":"r","startDateTime":"2026-11-27T10:00:00Z"{fields}}}"#
            ))
            .unwrap();
            totals.count(&row);
        }
        totals
    }

    fn roundtrip(saved: &Saved) -> Saved {
        postcard::from_bytes(&postcard::to_allocvec(saved).unwrap()).unwrap()
    }

    #[test]
    fn saved_totals_come_back_equal_to_the_cent() {
        let totals = totals();
        let restored = roundtrip(&Saved::from(&totals)).restore().unwrap();
        assert_eq!(restored, totals);
        let charge = restored.charges.values().next().unwrap();
        assert_eq!(charge.to_string(), "0.011");
        assert_eq!(restored.charges_ignored[&IgnoredCharge::NotANumber], 1);
        assert_eq!(
            PstnTotals::default(),
            Saved::from(&PstnTotals::default()).restore().unwrap()
        );
    }

    #[test]
    fn damaged_totals_are_refused_with_what_is_wrong() {
        let refused = |change: &dyn Fn(&mut Saved)| {
            let mut saved = Saved::from(&totals());
            change(&mut saved);
            saved.restore().unwrap_err().to_string()
        };
        assert_eq!(
            refused(&|s| s.charges[0].total = "0.0.1".into()),
            "a PSTN charge total is not an amount"
        );
        assert_eq!(
            refused(&|s| s.charges[0].total = "-0.01".into()),
            "a PSTN charge total is not an amount"
        );
        assert_eq!(
            refused(&|s| s.charges[0].total = "1e3".into()),
            "a PSTN charge total is not an amount"
        );
        assert_eq!(
            refused(&|s| {
                let again = SavedCharge {
                    total: "1".into(),
                    ..clone_charge(&s.charges[0])
                };
                s.charges.push(again);
            }),
            "a PSTN charge series is saved twice"
        );
        assert_eq!(
            refused(&|s| s.by_country[0].direction = "sideways".into()),
            "a PSTN call direction is not one"
        );
        assert_eq!(
            refused(&|s| s.charges_ignored[0].reason = "bored".into()),
            "a reason for an ignored charge is not one"
        );
        assert_eq!(
            refused(&|s| {
                s.duration_bounds.remove(0);
            }),
            "its PSTN duration histogram has other buckets than this version's"
        );
        assert_eq!(
            refused(&|s| {
                let mut h = crate::source::family::Histogram::new(DURATION_BUCKETS);
                h.count = 5;
                s.duration[0].histogram = SavedBuckets::save(&h);
            }),
            "a histogram does not add up"
        );
    }

    fn clone_charge(c: &SavedCharge) -> SavedCharge {
        SavedCharge {
            currency: c.currency.clone(),
            call_type: c.call_type.clone(),
            destination_context: c.destination_context.clone(),
            total: c.total.clone(),
        }
    }
}
