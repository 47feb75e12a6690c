//! What PSTN rows (Calling Plan, Operator Connect) add up to: calls by type, destination
//! context, operator, licence and usage country; their durations; their charges, exactly,
//! by currency; calls by direction and far-end country; and charges left out, by reason.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::row::{Charge, IgnoredCharge, PstnRow, MAX_CHARGE_SCALE};
use crate::source::destination::{country_label, Direction};
use crate::source::family::Histogram;
use crate::source::row::UNKNOWN;

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
}

impl PstnTotals {
    /// Counts one new row.
    pub fn count(&mut self, row: &PstnRow) {
        let call_type = label(row.call_type.as_deref());
        let destination_context = label(row.destination_context.as_deref());
        let key = CallKey {
            call_type: call_type.clone(),
            destination_context: destination_context.clone(),
            operator: label(row.operator.as_deref()),
            license_capability: label(row.license_capability.as_deref()),
            usage_country_code: label(row.usage_country_code.as_deref()),
        };
        *self.calls.entry(key).or_default() += 1;

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
                let key = ChargeKey {
                    currency: currency.clone(),
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
