//! What a PSTN row's `charge`, `connectionCharge` and `currency` come to, read exactly.
//!
//! Graph writes charges as JSON decimals (`0.12`), or as strings holding one (OData's
//! `IEEE754Compatible` form). They are read from the number's own text into a [`Decimal`],
//! so that sums over millions of rows are exact, never through `f64`. A charge that cannot be
//! added (negative, not a number, absurd, in no currency) is [`Charge::Ignored`] with its
//! reason: the call is counted all the same, and a counter never goes down.

use rust_decimal::Decimal;
use serde_json::value::RawValue;

/// The largest charge (charge plus connection charge) of one call that is believed: a
/// million units of any currency for one phone call is a data error, and adding it would
/// spoil the total for good (a counter cannot be corrected downwards).
pub const MAX_CHARGE: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// The most decimal places of a charge that is added: sums at this scale stay exact for
/// trillions of maximal charges, while a charge with more places (no currency has them) could
/// force a total to round.
pub const MAX_CHARGE_SCALE: u32 = 10;

/// Why a row's charge was not added to `teams_pstn_charges_total`: the `reason` label of
/// `teams_pstn_charges_ignored_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IgnoredCharge {
    /// Below zero: a refund or a data error; adding it would make the counter go down.
    Negative,
    /// Not a number (text that is not one, `true`, an object).
    NotANumber,
    /// More than [`MAX_CHARGE`] for one call.
    TooLarge,
    /// A number a decimal cannot hold exactly (more than [`MAX_CHARGE_SCALE`] places, an
    /// exponent out of range), or one that would make a total round.
    Unrepresentable,
    /// Something was charged, but in no currency (null, empty or not an ISO 4217 code).
    NoCurrency,
}

impl IgnoredCharge {
    /// Every reason, so that each series exists at 0 from the start.
    pub const ALL: [IgnoredCharge; 5] = [
        IgnoredCharge::Negative,
        IgnoredCharge::NotANumber,
        IgnoredCharge::TooLarge,
        IgnoredCharge::Unrepresentable,
        IgnoredCharge::NoCurrency,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoredCharge::Negative => "negative",
            IgnoredCharge::NotANumber => "not_a_number",
            IgnoredCharge::TooLarge => "too_large",
            IgnoredCharge::Unrepresentable => "unrepresentable",
            IgnoredCharge::NoCurrency => "no_currency",
        }
    }

    /// The reason whose label [`IgnoredCharge::as_str`] wrote.
    pub fn from_label(label: &str) -> Option<IgnoredCharge> {
        IgnoredCharge::ALL.into_iter().find(|r| r.as_str() == label)
    }
}

/// What a row's charges come to.
#[derive(Debug, Clone, PartialEq)]
pub enum Charge {
    /// `charge` plus `connectionCharge` (null counts as 0), exactly, in `currency` (an
    /// uppercase ISO 4217 code).
    Amount { currency: String, amount: Decimal },
    /// No currency and nothing charged: nothing to add, nothing lost.
    Nothing,
    /// A charge that is not added, and why.
    Ignored(IgnoredCharge),
}

/// What a row's `charge`, `connectionCharge` and `currency` come to.
pub(super) fn charge(
    charge: Option<&RawValue>,
    connection: Option<&RawValue>,
    currency: Option<&str>,
) -> Charge {
    let amount = match (amount(charge), amount(connection)) {
        (Ok(charge), Ok(connection)) => charge.checked_add(connection),
        (Err(reason), _) | (_, Err(reason)) => return Charge::Ignored(reason),
    };
    let Some(amount) = amount else {
        return Charge::Ignored(IgnoredCharge::Unrepresentable);
    };
    if amount > MAX_CHARGE {
        return Charge::Ignored(IgnoredCharge::TooLarge);
    }
    match currency.and_then(currency_code) {
        Some(currency) => Charge::Amount { currency, amount },
        None if amount.is_zero() => Charge::Nothing,
        None => Charge::Ignored(IgnoredCharge::NoCurrency),
    }
}

/// An ISO 4217 code: three ASCII letters, uppercased. Anything else would make a label of
/// free text.
fn currency_code(text: &str) -> Option<String> {
    let text = text.trim();
    (text.len() == 3 && text.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| text.to_ascii_uppercase())
}

/// One charge field exactly as written: a JSON number, or a string holding one (OData's
/// `IEEE754Compatible` form of a decimal). Absent or null is 0.
fn amount(raw: Option<&RawValue>) -> Result<Decimal, IgnoredCharge> {
    let Some(raw) = raw else {
        return Ok(Decimal::ZERO);
    };
    let json = raw.get().trim();
    let quoted;
    let text = if json.starts_with('"') {
        quoted = serde_json::from_str::<String>(json).map_err(|_| IgnoredCharge::NotANumber)?;
        quoted.trim()
    } else {
        json
    };
    if json == "null" {
        return Ok(Decimal::ZERO);
    }
    if !is_json_number(text) {
        return Err(IgnoredCharge::NotANumber);
    }
    let value = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str_exact(text)
    }
    .map_err(|_| IgnoredCharge::Unrepresentable)?
    .normalize();
    if value.is_sign_negative() && !value.is_zero() {
        Err(IgnoredCharge::Negative)
    } else if value.scale() > MAX_CHARGE_SCALE {
        Err(IgnoredCharge::Unrepresentable)
    } else if value > MAX_CHARGE {
        Err(IgnoredCharge::TooLarge)
    } else {
        // -0 as 0, so that it adds as nothing at all.
        Ok(value.abs())
    }
}

/// Whether `text` is a number in JSON's grammar: `-`, digits, `.` and digits, exponent.
/// The decimal parsers also take forms JSON has not (`_` separators, `+1`, `.5`), which in
/// a string would say the value is not what Graph meant.
fn is_json_number(text: &str) -> bool {
    let bytes = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let integer = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if integer == 0 {
        return false;
    }
    let mut rest = &bytes[integer..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = &fraction[digits..];
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        return !exponent.is_empty() && exponent.iter().all(u8::is_ascii_digit);
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_json_grammar() {
        for yes in ["0", "-0", "1.5", "10", "1e5", "1E-5", "2.5e+3"] {
            assert!(is_json_number(yes), "{yes}");
        }
        for no in [
            "", "-", ".5", "1.", "+1", "1_0", "1e", "0x10", "NaN", "Infinity", "1 ", "١",
        ] {
            assert!(!is_json_number(no), "{no}");
        }
    }
}
