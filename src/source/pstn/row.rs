//! PSTN log rows (`pstnCallLogRow`) as Graph sends them, parsed leniently.
//!
//! As with Direct Routing, every property may be null or absent and unknown properties are
//! ignored; a row is accepted when it has an `id` and a parseable `startDateTime`, and a
//! field of the wrong JSON type makes it malformed (skipped and counted). Two things differ:
//! the charges are read exactly, as decimals ([`super::charge`]), and a charge that cannot
//! be added (negative, not a number, absurd) does not make the row malformed: the call is
//! still counted, its charge is not ([`Charge::Ignored`]).
//! The caller's and callee's numbers are read only to find the far end's country; the row
//! keeps the country, never a number.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::charge::{charge, Charge};
use crate::source::destination::{far_end_country, Country, Direction};
use crate::source::row::{after_duration, non_empty, read_wire, text, RowError};

/// The row type in Graph's schema, as errors name it.
const ROW_TYPE: &str = "pstnCallLogRow";

/// The parts of a `pstnCallLogRow` the exporter uses. Names and numbers are not kept: the
/// far end's country is all that is taken from the numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct PstnRow {
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub duration_secs: Option<i64>,
    pub charge: Charge,
    pub call_type: Option<String>,
    pub destination_context: Option<String>,
    pub license_capability: Option<String>,
    pub operator: Option<String>,
    pub usage_country_code: Option<String>,
    pub direction: Direction,
    pub far_end_country: Option<Country>,
}

/// A row as it is on the wire, borrowing its text from the page; only a new row becomes a
/// [`PstnRow`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireRow<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    start_date_time: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    end_date_time: Option<Cow<'a, str>>,
    #[serde(default)]
    duration: Option<i64>,
    // The charges' JSON text, read by `amount` into a decimal: through f64 they would
    // drift (0.01 has no binary form).
    #[serde(borrow, default)]
    charge: Option<&'a RawValue>,
    #[serde(borrow, default)]
    connection_charge: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "text")]
    currency: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    call_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    destination_context: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    license_capability: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    operator: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    usage_country_code: Option<Cow<'a, str>>,
    // Personal data, read only for the far end's country and dropped with the wire row.
    #[serde(borrow, default, deserialize_with = "text")]
    caller_number: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    callee_number: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    other_party_country_code: Option<Cow<'a, str>>,
}

impl<'a> WireRow<'a> {
    /// Reads one row of a page; `Err` when its fields have the wrong JSON types.
    pub fn read(raw: &'a str) -> Result<Self, RowError> {
        read_wire(ROW_TYPE, raw)
    }

    /// The row's id, unless it is missing or blank.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref().filter(|id| !id.trim().is_empty())
    }

    /// Everything the exporter uses: timestamps parsed, charges summed, the far end's
    /// country found.
    pub fn into_row(self) -> Result<PstnRow, RowError> {
        let start = timestamp("startDateTime", self.start_date_time.as_deref())?;
        let end = timestamp("endDateTime", self.end_date_time.as_deref())?;
        let id = self.id().ok_or(RowError::MissingId)?.to_owned();
        let Some(start) = start else {
            return Err(RowError::MissingStart { id });
        };
        let direction = self
            .call_type
            .as_deref()
            .map_or(Direction::Unknown, direction);
        let far_end_country = far_end_country(
            direction,
            self.caller_number.as_deref(),
            self.callee_number.as_deref(),
            self.other_party_country_code.as_deref(),
        );
        let charge = charge(
            self.charge,
            self.connection_charge,
            self.currency.as_deref(),
        );
        Ok(PstnRow {
            id,
            start,
            end,
            duration_secs: self.duration,
            charge,
            call_type: non_empty(self.call_type),
            destination_context: non_empty(self.destination_context),
            license_capability: non_empty(self.license_capability),
            operator: non_empty(self.operator),
            usage_country_code: non_empty(self.usage_country_code),
            direction,
            far_end_country,
        })
    }
}

fn timestamp(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, RowError> {
    crate::source::row::timestamp(ROW_TYPE, field, text)
}

impl<'de> Deserialize<'de> for PstnRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WireRow::deserialize(deserializer)?
            .into_row()
            .map_err(de::Error::custom)
    }
}

impl PstnRow {
    /// Parses one row of a page.
    pub fn parse(raw: &str) -> Result<Self, RowError> {
        WireRow::read(raw)?.into_row()
    }

    /// When the call ended: its `endDateTime`, else start plus duration, else its start.
    pub fn call_end(&self) -> DateTime<Utc> {
        self.end
            .or_else(|| after_duration(self.start, self.duration_secs))
            .unwrap_or(self.start)
    }

    /// The latest time the row carries: it is remembered until that leaves the lookback.
    pub fn latest_time(&self) -> DateTime<Utc> {
        self.end.map_or(self.start, |end| end.max(self.start))
    }
}

/// The direction of a PSTN call type: `*_in` (`user_in`, `conf_in`, `oc_fmc_in`, ...) is
/// inbound, `*_out*` (`user_out`, `user_out_conf`, `oc_fmc_out`, ...) outbound; Microsoft
/// publishes no list, so anything else is unknown.
pub fn direction(call_type: &str) -> Direction {
    let call_type = call_type.trim().to_ascii_lowercase();
    if call_type.ends_with("_in") {
        Direction::Inbound
    } else if call_type.contains("_out") {
        Direction::Outbound
    } else {
        Direction::Unknown
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::source::destination::country_label;
    use crate::source::pstn::charge::IgnoredCharge;
    use crate::source::row::{peek_id, salvage_id};

    /// Microsoft's example row, from its reference page.
    pub const EXAMPLE: &str = r#"{"id": "9c4984c7-6c3c-427d-a30c-bd0b2eacee90", "callId": "1835317186_112562680@61.221.3.176",
 "userId": "db03c14b-06eb-4189-939b-7cbf3a20ba27", "userPrincipalName": "richard.malk@contoso.com",
 "userDisplayName": "Richard Malk", "startDateTime": "2019-11-01T00:00:08.2589935Z",
 "endDateTime": "2019-11-01T00:03:47.2589935Z", "duration": 219, "charge": 0.00,
 "callType": "user_in", "currency": "USD", "calleeNumber": "+1234567890",
 "usageCountryCode": "US", "tenantCountryCode": "US", "connectionCharge": 0.00,
 "callerNumber": "+0123456789", "destinationContext": null, "destinationName": "United States",
 "conferenceId": null, "licenseCapability": "MCOPSTNU", "inventoryType": "Subscriber",
 "operator": "Microsoft", "callDurationSource": "microsoft"}"#;

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn row_with(fields: &str) -> PstnRow {
        PstnRow::parse(&format!(
            r#"{{"id":"r","startDateTime":"2026-11-27T10:00:00Z"{fields}}}"#
        ))
        .unwrap()
    }

    fn charged(fields: &str) -> Charge {
        row_with(fields).charge
    }

    fn usd(amount: &str) -> Charge {
        Charge::Amount {
            currency: "USD".into(),
            amount: Decimal::from_str_exact(amount).unwrap(),
        }
    }

    #[test]
    fn microsoft_example_parses() {
        let row = PstnRow::parse(EXAMPLE).unwrap();
        assert_eq!(row.id, "9c4984c7-6c3c-427d-a30c-bd0b2eacee90");
        assert_eq!(row.start, ts("2019-11-01T00:00:08.2589935Z"));
        assert_eq!(row.end, Some(ts("2019-11-01T00:03:47.2589935Z")));
        assert_eq!(row.duration_secs, Some(219));
        assert_eq!(row.charge, usd("0"));
        assert_eq!(row.call_type.as_deref(), Some("user_in"));
        assert_eq!(row.destination_context, None);
        assert_eq!(row.license_capability.as_deref(), Some("MCOPSTNU"));
        assert_eq!(row.operator.as_deref(), Some("Microsoft"));
        assert_eq!(row.usage_country_code.as_deref(), Some("US"));
        assert_eq!(row.direction, Direction::Inbound);
        // The example's caller "+0123456789" has no country code.
        assert_eq!(row.far_end_country, None);
        assert_eq!(row.call_end(), ts("2019-11-01T00:03:47.2589935Z"));
        assert_eq!(row.latest_time(), ts("2019-11-01T00:03:47.2589935Z"));
    }

    #[test]
    fn every_optional_field_may_be_null_or_absent() {
        let nulls = r#"{"id":"n","startDateTime":"2026-11-27T10:00:00Z","endDateTime":null,
            "duration":null,"charge":null,"connectionCharge":null,"currency":null,"callType":null,
            "destinationContext":null,"destinationName":null,"licenseCapability":null,
            "inventoryType":null,"operator":null,"callDurationSource":null,"tenantCountryCode":null,
            "usageCountryCode":null,"callerNumber":null,"calleeNumber":null,"callId":null,
            "userId":null,"userPrincipalName":null,"userDisplayName":null,"conferenceId":null,
            "otherPartyCountryCode":null}"#;
        let absent = r#"{"id":"n","startDateTime":"2026-11-27T10:00:00Z"}"#;
        for raw in [nulls, absent] {
            let row = PstnRow::parse(raw).unwrap();
            assert_eq!(row.charge, Charge::Nothing);
            assert_eq!(row.direction, Direction::Unknown);
            assert_eq!(row.far_end_country, None);
            assert_eq!(row.call_end(), ts("2026-11-27T10:00:00Z"));
            assert!(row.call_type.is_none() && row.operator.is_none());
        }
        let blank = row_with(r#","callType":"","operator":" ","currency":"""#);
        assert!(blank.call_type.is_none() && blank.operator.is_none());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let row = row_with(
            r#","administrativeUnitInfos":[{"id":"x"}],"clientLocalIpV4Address":"10.0.0.1","newThing":{"a":[1,2]}"#,
        );
        assert_eq!(row.id, "r");
    }

    #[test]
    fn malformed_rows_are_errors_that_name_the_field_only() {
        for (raw, field) in [
            (
                r#"{"id":"b1","startDateTime":"yesterday"}"#,
                "startDateTime",
            ),
            (
                r#"{"id":"b2","startDateTime":"2026-11-27T10:00:00Z","duration":"long"}"#,
                "duration",
            ),
            (
                r#"{"id":"b3","startDateTime":"2026-11-27T10:00:00Z","callType":5}"#,
                "callType",
            ),
            (
                r#"{"id":"b4","startDateTime":"2026-11-27T10:00:00Z","callerNumber":7}"#,
                "callerNumber",
            ),
            (
                r#"{"id":"b5","startDateTime":"2026-11-27T10:00:00Z","endDateTime":"soon"}"#,
                "endDateTime",
            ),
        ] {
            let text = PstnRow::parse(raw).unwrap_err().to_string();
            assert!(text.contains(field) && text.contains(ROW_TYPE), "{text}");
            assert!(salvage_id(raw).unwrap().starts_with('b'));
        }
        assert!(matches!(
            PstnRow::parse(r#"{"id":"b6"}"#),
            Err(RowError::MissingStart { .. })
        ));
        assert!(matches!(
            PstnRow::parse(r#"{"startDateTime":"2026-11-27T10:00:00Z"}"#),
            Err(RowError::MissingId)
        ));
        let raw = r#"{"id":"b7","calleeNumber":"+4930123456","duration":"+4930123456"}"#;
        let text = PstnRow::parse(raw).unwrap_err().to_string();
        assert!(!text.contains("4930123456"), "{text}");
    }

    #[test]
    fn ids_read_alike_whichever_way() {
        for raw in [
            r#"{"id":"a1","startDateTime":"2026-11-27T10:00:00Z"}"#,
            r#"{"startDateTime":"2026-11-27T10:00:00Z","id":"late"}"#,
            r#"{"id":" ","startDateTime":"2026-11-27T10:00:00Z"}"#,
            r#"{"id":"c","charge":"lots"}"#,
            r#"{"id":null}"#,
        ] {
            let salvaged = salvage_id(raw);
            assert_eq!(peek_id(raw).map(Cow::into_owned), salvaged, "{raw}");
            if let Ok(wire) = WireRow::read(raw) {
                assert_eq!(wire.id().map(str::to_owned), salvaged, "{raw}");
            }
        }
    }

    #[test]
    fn call_types_give_directions() {
        for inbound in [
            "user_in",
            "unassigned_in",
            "conf_in",
            "ucap_in",
            "oc_user_in",
            "oc_ucap_in",
            "oc_fmc_in",
            "USER_IN",
        ] {
            assert_eq!(direction(inbound), Direction::Inbound, "{inbound}");
        }
        for outbound in [
            "user_out",
            "user_out_conf",
            "user_out_transfer",
            "user_out_forwarding",
            "conf_out",
            "ucap_out",
            "oc_user_out",
            "oc_user_out_conf",
            "oc_fmc_out",
        ] {
            assert_eq!(direction(outbound), Direction::Outbound, "{outbound}");
        }
        for unknown in ["", "emergency", "ByotIn", "user_inbound", "in", "out"] {
            assert_eq!(direction(unknown), Direction::Unknown, "{unknown}");
        }
        let row = row_with(r#","callType":"brand_new_kind""#);
        assert_eq!(
            (row.direction, row.call_type.as_deref()),
            (Direction::Unknown, Some("brand_new_kind"))
        );
    }

    #[test]
    fn the_far_end_country_comes_from_the_far_end() {
        let numbers = r#","callerNumber":"+4930123***","calleeNumber":"+33123456****""#;
        let country = |fields: &str| country_label(row_with(fields).far_end_country);
        assert_eq!(
            country(&format!(r#","callType":"user_out"{numbers}"#)),
            "FR"
        );
        assert_eq!(country(&format!(r#","callType":"user_in"{numbers}"#)), "DE");
        assert_eq!(
            country(&format!(r#","callType":"odd"{numbers}"#)),
            "unknown"
        );
        assert_eq!(
            country(&format!(
                r#","callType":"user_out","otherPartyCountryCode":"gb"{numbers}"#
            )),
            "GB"
        );
        assert_eq!(
            country(r#","callType":"user_out","calleeNumber":"***""#),
            "unknown"
        );
        assert_eq!(
            country(r#","callType":"user_out","calleeNumber":"Anonymous""#),
            "unknown"
        );
    }

    #[test]
    fn charges_are_read_exactly() {
        assert_eq!(
            charged(r#","charge":0.01,"connectionCharge":0.02,"currency":"usd""#),
            usd("0.03")
        );
        assert_eq!(
            charged(r#","charge":1.1,"connectionCharge":2.2,"currency":"USD""#),
            usd("3.3")
        );
        assert_eq!(charged(r#","charge":"0.10","currency":"USD""#), usd("0.1"));
        assert_eq!(charged(r#","charge":1.5e1,"currency":"USD""#), usd("15"));
        assert_eq!(charged(r#","charge":-0.0,"currency":"USD""#), usd("0"));
        assert_eq!(
            charged(r#","charge":1000000,"currency":"USD""#),
            usd("1000000")
        );
        assert_eq!(
            charged(r#","charge":0.123456789,"currency":"EUR""#),
            Charge::Amount {
                currency: "EUR".into(),
                amount: Decimal::from_str_exact("0.123456789").unwrap(),
            }
        );
        // No currency and nothing charged loses nothing.
        assert_eq!(
            charged(r#","charge":0,"connectionCharge":0.00"#),
            Charge::Nothing
        );
    }

    #[test]
    fn charges_that_cannot_be_added_are_ignored_but_the_call_is_not() {
        for (fields, reason) in [
            (
                r#","charge":-0.01,"currency":"USD""#,
                IgnoredCharge::Negative,
            ),
            (
                r#","charge":0.5,"connectionCharge":-1,"currency":"USD""#,
                IgnoredCharge::Negative,
            ),
            (
                r#","charge":"free","currency":"USD""#,
                IgnoredCharge::NotANumber,
            ),
            (
                r#","charge":"","currency":"USD""#,
                IgnoredCharge::NotANumber,
            ),
            (
                r#","charge":"+1","currency":"USD""#,
                IgnoredCharge::NotANumber,
            ),
            (
                r#","charge":"1_000","currency":"USD""#,
                IgnoredCharge::NotANumber,
            ),
            (
                r#","charge":true,"currency":"USD""#,
                IgnoredCharge::NotANumber,
            ),
            (
                r#","charge":{"value":1},"currency":"USD""#,
                IgnoredCharge::NotANumber,
            ),
            (
                r#","charge":[1],"currency":"USD""#,
                IgnoredCharge::NotANumber,
            ),
            (
                r#","charge":1000000.01,"currency":"USD""#,
                IgnoredCharge::TooLarge,
            ),
            (
                r#","charge":600000,"connectionCharge":600000,"currency":"USD""#,
                IgnoredCharge::TooLarge,
            ),
            (
                r#","charge":1e300,"currency":"USD""#,
                IgnoredCharge::Unrepresentable,
            ),
            (
                r#","charge":99999999999999999999999999999999999,"currency":"USD""#,
                IgnoredCharge::Unrepresentable,
            ),
            (
                r#","charge":0.00000000001,"currency":"USD""#,
                IgnoredCharge::Unrepresentable,
            ),
            (r#","charge":0.5"#, IgnoredCharge::NoCurrency),
            (
                r#","charge":0.5,"currency":"US Dollar""#,
                IgnoredCharge::NoCurrency,
            ),
            (
                r#","connectionCharge":0.5,"currency":"""#,
                IgnoredCharge::NoCurrency,
            ),
        ] {
            let row = row_with(&format!(r#","callType":"user_out"{fields}"#));
            assert_eq!(row.charge, Charge::Ignored(reason), "{fields}");
            assert_eq!(row.direction, Direction::Outbound);
        }
    }

    #[test]
    fn the_call_ends_at_its_end_or_after_its_duration() {
        assert_eq!(
            row_with(r#","duration":60"#).call_end(),
            ts("2026-11-27T10:01:00Z")
        );
        for duration in ["100000000000000", "9223372036854775807", "-5"] {
            let row = row_with(&format!(r#","duration":{duration}"#));
            assert!(row.call_end() >= row.start, "{duration}");
        }
        let row = row_with(r#","endDateTime":"0001-01-01T00:00:00Z","duration":5"#);
        assert_eq!(row.call_end(), ts("2026-11-27T10:00:05Z"));
        assert_eq!(row.latest_time(), row.start);
    }
}
