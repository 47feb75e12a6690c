//! What PSTN rows (Calling Plan, Operator Connect) add up to: calls by type, destination
//! context, operator, licence and usage country; their durations; their charges, exactly,
//! by currency; calls by direction and far-end country; and charges left out, by reason.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::charge::{Charge, IgnoredCharge, MAX_CHARGE_SCALE};
use super::row::PstnRow;
use crate::source::destination::{country_label, Direction};
use crate::source::family::Histogram;
use crate::source::labels::{self, Label, LabelValues, Shape};
use crate::source::row::UNKNOWN;
use crate::source::Function;

/// Upper bounds of `teams_pstn_call_duration_seconds`: Direct Routing's bounds with a first
/// bucket at 0, as PSTN rows carry calls that never connected (duration 0) and those are
/// worth telling apart from short calls.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0, 5.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
];

/// Labels of `teams_pstn_calls_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey {
    pub call_type: String,
    pub destination_context: String,
    pub operator: String,
    pub license_capability: String,
    pub usage_country_code: String,
}

/// Labels of `teams_pstn_call_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeContextKey {
    pub call_type: String,
    pub destination_context: String,
}

/// Labels of `teams_pstn_charges_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChargeKey {
    pub currency: String,
    pub call_type: String,
    pub destination_context: String,
}

/// Labels of `teams_pstn_calls_by_country_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryKey {
    pub direction: Direction,
    /// ISO 3166-1 alpha-2, or `unknown`.
    pub country: String,
}

/// Everything counted for one tenant's PSTN calls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PstnTotals {
    pub calls: HashMap<CallKey, u64>,
    pub duration: HashMap<TypeContextKey, Histogram>,
    /// Exact sums, in units of the currency.
    pub charges: HashMap<ChargeKey, Decimal>,
    pub by_country: HashMap<CountryKey, u64>,
    pub charges_ignored: HashMap<IgnoredCharge, u64>,
    /// The label values this tenant may use (bounded, see [`labels`]); rebuilt from the
    /// keys above at restore ([`PstnTotals::relearn_labels`]).
    pub labels: LabelValues,
}

/// `destination_context`: `Domestic` or `International`.
const DESTINATION_CONTEXT: Label = Label::new("destination_context", Shape::Identifier);
/// `operator`: `Microsoft` or an Operator Connect carrier's name.
const OPERATOR: Label = Label::new("operator", Shape::ShortName);
/// `license_capability`: `MCOPSTN1`, `MCOEV_VIRTUALUSER`, ...
const LICENSE_CAPABILITY: Label = Label::new("license_capability", Shape::Identifier);
/// `usage_country_code`: ISO 3166 alpha-2.
const USAGE_COUNTRY_CODE: Label = Label::new("usage_country_code", Shape::Identifier);
/// `currency`: ISO 4217, three letters (checked when the row is read).
const CURRENCY: Label = Label::new("currency", Shape::Identifier);

impl PstnTotals {
    /// Counts one new row.
    pub fn count(&mut self, row: &PstnRow) {
        // Label values checked and bounded (`source::labels`): a key already counted holds
        // admitted values only, so a row of an existing series needs no check.
        const F: Function = Function::PstnCalls;
        let mut key = CallKey {
            call_type: label(row.call_type.as_deref()),
            destination_context: label(row.destination_context.as_deref()),
            operator: label(row.operator.as_deref()),
            license_capability: label(row.license_capability.as_deref()),
            usage_country_code: label(row.usage_country_code.as_deref()),
        };
        if let Some(count) = self.calls.get_mut(&key) {
            *count += 1;
        } else {
            let values = &mut self.labels;
            key = CallKey {
                call_type: values.admit(F, &labels::CALL_TYPE, Some(key.call_type)),
                destination_context: values.admit(
                    F,
                    &DESTINATION_CONTEXT,
                    Some(key.destination_context),
                ),
                operator: values.admit(F, &OPERATOR, Some(key.operator)),
                license_capability: values.admit(
                    F,
                    &LICENSE_CAPABILITY,
                    Some(key.license_capability),
                ),
                usage_country_code: values.admit(
                    F,
                    &USAGE_COUNTRY_CODE,
                    Some(key.usage_country_code),
                ),
            };
            *self.calls.entry(key.clone()).or_default() += 1;
        }
        // The values the call was counted under, admitted above or before.
        let CallKey {
            call_type,
            destination_context,
            ..
        } = key;

        let key = CountryKey {
            direction: row.direction,
            country: country_label(row.far_end_country).to_owned(),
        };
        *self.by_country.entry(key).or_default() += 1;

        // A call that never connected has duration 0 and is observed as such; a missing or
        // negative duration tells nothing and is left out.
        if let Some(duration) = row.duration_secs.filter(|d| *d >= 0) {
            let key = TypeContextKey {
                call_type: call_type.clone(),
                destination_context: destination_context.clone(),
            };
            self.duration
                .entry(key)
                .or_insert_with(|| Histogram::new(DURATION_BUCKETS))
                .observe(DURATION_BUCKETS, duration as f64);
        }

        match &row.charge {
            Charge::Amount { currency, amount } => {
                let currency = self.labels.admit(F, &CURRENCY, Some(currency.clone()));
                let key = ChargeKey {
                    currency,
                    call_type,
                    destination_context,
                };
                let total = self.charges.entry(key).or_default();
                match add_exactly(*total, *amount) {
                    Some(sum) => *total = sum,
                    None => self.ignore(IgnoredCharge::Unrepresentable),
                }
            }
            Charge::Nothing => {}
            Charge::Ignored(reason) => self.ignore(*reason),
        }
    }

    /// Rebuilds the known label values from the keys, after a restore: the values served
    /// before a restart stay, and the same new ones are folded as before it. (`country` and
    /// `direction` need no bound: they are ISO codes and three words by construction.)
    pub fn relearn_labels(&mut self) {
        let values = &mut self.labels;
        for key in self.calls.keys() {
            values.relearn(&labels::CALL_TYPE, &key.call_type);
            values.relearn(&DESTINATION_CONTEXT, &key.destination_context);
            values.relearn(&OPERATOR, &key.operator);
            values.relearn(&LICENSE_CAPABILITY, &key.license_capability);
            values.relearn(&USAGE_COUNTRY_CODE, &key.usage_country_code);
        }
        for key in self.charges.keys() {
            values.relearn(&CURRENCY, &key.currency);
        }
    }

    fn ignore(&mut self, reason: IgnoredCharge) {
        *self.charges_ignored.entry(reason).or_default() += 1;
    }
}

/// `total + amount`, or `None` when the sum would not be exact: a decimal that runs out of
/// digits rounds to fewer places instead of failing. With charges of at most
/// [`MAX_CHARGE_SCALE`] places and a million each, that takes trillions of calls in one
/// series.
fn add_exactly(total: Decimal, amount: Decimal) -> Option<Decimal> {
    let sum = total.checked_add(amount)?;
    let scale = total.scale().max(amount.scale()).min(MAX_CHARGE_SCALE);
    (sum.scale() >= scale).then_some(sum)
}

fn label(value: Option<&str>) -> String {
    value.unwrap_or(UNKNOWN).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &str) -> PstnRow {
        PstnRow::parse(&format!(
            r#"{{"id":"r","startDateTime":"2026-11-27T10:00:00Z"{fields}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn label_values_out_of_shape_count_under_other_and_a_restore_keeps_them() {
        let mut totals = PstnTotals::default();
        totals.count(&row(r#","operator":"Telefónica","callType":"oc_user_out""#));
        totals.count(&row(
            r#","operator":"<b>x</b>","callType":"user out; drop""#,
        ));
        let operators: Vec<&str> = totals.calls.keys().map(|k| k.operator.as_str()).collect();
        assert!(operators.contains(&"Telefónica"), "{operators:?}");
        assert!(operators.contains(&labels::OTHER), "{operators:?}");
        let call_types: Vec<&str> = totals.calls.keys().map(|k| k.call_type.as_str()).collect();
        assert!(call_types.contains(&labels::OTHER), "{call_types:?}");
        assert_eq!(totals.calls.values().sum::<u64>(), 2, "both calls counted");

        let restored = crate::source::pstn::saved::Saved::from(&totals)
            .restore()
            .unwrap();
        let mut again = restored.clone();
        again.count(&row(r#","operator":"Telefónica","callType":"oc_user_out""#));
        assert_eq!(again.calls.values().sum::<u64>(), 3);
        assert_eq!(
            again.labels, totals.labels,
            "the same values are known after a restore"
        );
    }

    #[test]
    fn a_million_cents_are_ten_thousand_exactly() {
        // The sum itself, a million times (counting whole rows that often takes seconds
        // in a debug build)...
        let cent = Decimal::from_str_exact("0.01").unwrap();
        let mut total = Decimal::ZERO;
        for _ in 0..1_000_000 {
            total = add_exactly(total, cent).unwrap();
        }
        assert_eq!(total.to_string(), "10000.00");
        // ...where f64 would have drifted.
        let drifting: f64 = (0..1_000_000).map(|_| 0.01).sum();
        assert_ne!(drifting, 10000.0);
        // ...and through whole rows.
        let row = row(r#","charge":0.01,"currency":"EUR","callType":"user_out""#);
        let mut totals = PstnTotals::default();
        for _ in 0..10_000 {
            totals.count(&row);
        }
        let key = ChargeKey {
            currency: "EUR".into(),
            call_type: "user_out".into(),
            destination_context: UNKNOWN.into(),
        };
        assert_eq!(totals.charges[&key].to_string(), "100.00");
    }

    #[test]
    fn every_row_is_counted_once_whatever_it_lacks() {
        let mut totals = PstnTotals::default();
        totals.count(&row(""));
        totals.count(&row(
            r#","callType":"user_out","charge":-5,"currency":"USD","duration":0"#,
        ));
        totals.count(&row(
            r#","callType":"user_out","charge":0.25,"connectionCharge":0.1,"currency":"USD",
               "destinationContext":"International","operator":"Microsoft","licenseCapability":"MCOPSTN2",
               "usageCountryCode":"DE","calleeNumber":"+33123456****","duration":61"#,
        ));
        assert_eq!(totals.calls.values().sum::<u64>(), 3);
        assert_eq!(totals.by_country.values().sum::<u64>(), 3);
        let unknown = CallKey {
            call_type: UNKNOWN.into(),
            destination_context: UNKNOWN.into(),
            operator: UNKNOWN.into(),
            license_capability: UNKNOWN.into(),
            usage_country_code: UNKNOWN.into(),
        };
        assert_eq!(totals.calls[&unknown], 1);
        let france = CountryKey {
            direction: Direction::Outbound,
            country: "FR".into(),
        };
        assert_eq!(totals.by_country[&france], 1);
        assert_eq!(totals.charges_ignored[&IgnoredCharge::Negative], 1);
        let charge = ChargeKey {
            currency: "USD".into(),
            call_type: "user_out".into(),
            destination_context: "International".into(),
        };
        assert_eq!(
            totals.charges[&charge],
            Decimal::from_str_exact("0.35").unwrap()
        );
        assert_eq!(
            totals.charges.len(),
            1,
            "the negative charge made no series"
        );
        // Durations: 0 in the first bucket, 61 s in (60, 120]; the row without one is not
        // observed.
        let observed: u64 = totals.duration.values().map(|h| h.count).sum();
        assert_eq!(observed, 2);
        let never_connected = &totals.duration[&TypeContextKey {
            call_type: "user_out".into(),
            destination_context: UNKNOWN.into(),
        }];
        assert_eq!(never_connected.buckets[0], 1);
    }

    #[test]
    fn sums_that_would_round_are_refused() {
        let big = Decimal::from_i128_with_scale(79_228_162_514_264_337_593_543_950_335, 10);
        assert_eq!(add_exactly(big, Decimal::new(1, 10)), None);
        assert_eq!(
            add_exactly(Decimal::new(1, 2), Decimal::new(2, 2)),
            Some(Decimal::new(3, 2))
        );
    }
}
