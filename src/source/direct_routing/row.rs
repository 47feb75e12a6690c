//! Direct Routing log rows as Graph sends them, parsed leniently.
//!
//! Graph documents every property of `directRoutingLogRow` as nullable, adds properties in
//! beta that leak into v1.0, and formats timestamps with 0 to 7 fractional digits and either
//! `Z` or `+00:00`. A row is therefore accepted whenever it has what counting needs (an `id`
//! and a parseable `startDateTime`); anything else that is null or absent becomes `unknown`
//! downstream. A row whose fields have the wrong JSON type is malformed: the caller skips it
//! and counts it, and the rest of the page is still used.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::source::destination::{far_end_country, Country, Direction};
use crate::source::row::{after_duration, non_empty, read_wire, text, RowError};

/// The row type in Graph's schema, as errors name it.
const ROW_TYPE: &str = "directRoutingLogRow";

fn timestamp(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, RowError> {
    crate::source::row::timestamp(ROW_TYPE, field, text)
}

/// The parts of a `directRoutingLogRow` the exporter uses.
///
/// Personal fields are not kept: the user is not parsed at all, and the caller's and
/// callee's numbers only long enough to find the far end's country, which is all the row
/// keeps of them. Deserializing it directly (as the ingest benchmark's ceiling does)
/// accepts and refuses exactly the rows [`DirectRoutingRow::parse`] does.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectRoutingRow {
    pub id: String,
    /// The id of the call's call record (`--collector.call-quality`).
    pub correlation_id: Option<String>,
    pub start: DateTime<Utc>,
    pub invite: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub failure: Option<DateTime<Utc>>,
    pub duration_secs: Option<i64>,
    pub call_type: Option<String>,
    pub successful: Option<bool>,
    pub media_path_location: Option<String>,
    pub final_sip_code: Option<i64>,
    pub call_end_sub_reason: Option<i64>,
    pub trunk_fqdn: Option<String>,
    pub media_bypass_enabled: Option<bool>,
    /// From `callType`.
    pub direction: Direction,
    /// The country of the far end: `otherPartyCountryCode`, or the callee's (outbound) or
    /// caller's (inbound) number.
    pub far_end_country: Option<Country>,
}

/// A row as it is on the wire, borrowing its text from the page: reading it allocates
/// nothing and parses no timestamp, so that a row seen before costs one scan; only a new
/// row becomes a [`DirectRoutingRow`].
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireRow<'a> {
    #[serde(borrow, default, deserialize_with = "text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    correlation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    start_date_time: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    invite_date_time: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    end_date_time: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    failure_date_time: Option<Cow<'a, str>>,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(borrow, default, deserialize_with = "text")]
    call_type: Option<Cow<'a, str>>,
    #[serde(default)]
    successful_call: Option<bool>,
    #[serde(borrow, default, deserialize_with = "text")]
    media_path_location: Option<Cow<'a, str>>,
    #[serde(default)]
    final_sip_code: Option<i64>,
    #[serde(default)]
    call_end_sub_reason: Option<i64>,
    #[serde(borrow, default, deserialize_with = "text")]
    trunk_fully_qualified_domain_name: Option<Cow<'a, str>>,
    #[serde(default)]
    media_bypass_enabled: Option<bool>,
    // Personal data, read only for the far end's country and dropped with the wire row.
    #[serde(borrow, default, deserialize_with = "text")]
    caller_number: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    callee_number: Option<Cow<'a, str>>,
    // Beta's ISO code of the far end, which v1.0 responses may carry too.
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

    /// Everything the exporter uses, timestamps parsed.
    pub fn into_row(self) -> Result<DirectRoutingRow, RowError> {
        // Timestamps first: a row with a bad one is malformed whatever else it lacks.
        let start = timestamp("startDateTime", self.start_date_time.as_deref())?;
        let invite = timestamp("inviteDateTime", self.invite_date_time.as_deref())?;
        let end = timestamp("endDateTime", self.end_date_time.as_deref())?;
        let failure = timestamp("failureDateTime", self.failure_date_time.as_deref())?;
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
        Ok(DirectRoutingRow {
            id,
            correlation_id: non_empty(self.correlation_id),
            start,
            invite,
            end,
            failure,
            duration_secs: self.duration,
            call_type: non_empty(self.call_type),
            successful: self.successful_call,
            media_path_location: non_empty(self.media_path_location),
            final_sip_code: self.final_sip_code,
            call_end_sub_reason: self.call_end_sub_reason,
            trunk_fqdn: non_empty(self.trunk_fully_qualified_domain_name),
            media_bypass_enabled: self.media_bypass_enabled,
            direction,
            far_end_country,
        })
    }
}

/// The direction of a Direct Routing call type: `ByotIn`, `ByotInUcap` are inbound,
/// `ByotOut`, `ByotOutUserForwarding`, ... outbound. Microsoft publishes no list: the word
/// after `Byot` decides, else whether `Out` or `In` appears at all (`Out` first, as in
/// `ByotOutUserForwarding` the word `In` does not, but a future `...OutInternational`
/// would), else unknown.
pub fn direction(call_type: &str) -> Direction {
    let call_type = call_type.trim();
    let kind = call_type.strip_prefix("Byot").unwrap_or(call_type);
    if kind.starts_with("Out") {
        Direction::Outbound
    } else if kind.starts_with("In") {
        Direction::Inbound
    } else if call_type.contains("Out") {
        Direction::Outbound
    } else if call_type.contains("In") {
        Direction::Inbound
    } else {
        Direction::Unknown
    }
}

impl<'de> Deserialize<'de> for DirectRoutingRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WireRow::deserialize(deserializer)?
            .into_row()
            .map_err(de::Error::custom)
    }
}

impl DirectRoutingRow {
    /// Parses one row of a page.
    pub fn parse(raw: &str) -> Result<Self, RowError> {
        WireRow::read(raw)?.into_row()
    }

    /// When the call ended, as well as the row tells: the end of a successful call, the
    /// failure time of a failed one, or start plus duration.
    pub fn call_end(&self) -> DateTime<Utc> {
        self.end
            .or(self.failure)
            .or_else(|| after_duration(self.start, self.duration_secs))
            .unwrap_or(self.start)
    }

    /// The latest time the row carries. Graph filters windows on a call start time whose
    /// exact definition is not documented for failed calls, so a row is remembered until
    /// its latest timestamp leaves the lookback.
    pub fn latest_time(&self) -> DateTime<Utc> {
        [self.invite, self.end, self.failure]
            .into_iter()
            .flatten()
            .fold(self.start, DateTime::max)
    }

    /// Time to establish the call (ringing included), when both ends of it are known and
    /// in order.
    pub fn setup_seconds(&self) -> Option<f64> {
        let invite = self.invite?;
        let setup = (self.start - invite).num_microseconds()? as f64 / 1e6;
        (setup >= 0.0).then_some(setup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::row::{parse_timestamp, peek_id, salvage_id, Page};

    const EXAMPLE: &str = include_str!("../../../tests/data/example-response.json");

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn microsoft_example_parses() {
        let page: Page = serde_json::from_str(EXAMPLE).unwrap();
        assert_eq!(page.value.len(), 1);
        assert!(page.next_link.unwrap().ends_with("?$skip=1000"));
        let row = DirectRoutingRow::parse(page.value[0].get()).unwrap();
        assert_eq!(row.id, "9e8bba57-dc14-533a-a7dd-f0da6575eed1");
        assert_eq!(row.start, ts("2019-11-01T00:00:25.105Z"));
        assert_eq!(row.failure, None, "year 1 means absent");
        assert_eq!(row.end, Some(ts("2019-11-01T00:00:30.105Z")));
        assert_eq!(row.duration_secs, Some(5));
        assert_eq!(row.call_type.as_deref(), Some("ByotIn"));
        assert_eq!(row.successful, Some(true));
        assert_eq!(row.final_sip_code, Some(0));
        assert_eq!(row.call_end_sub_reason, Some(540000));
        assert_eq!(row.media_path_location.as_deref(), Some("USWE"));
        assert_eq!(
            row.trunk_fqdn.as_deref(),
            Some("tll-audiocodes01.adatum.biz")
        );
        assert_eq!(row.setup_seconds(), Some(3.156));
        assert_eq!(row.direction, Direction::Inbound);
        // The caller, +1 234 5678***: Ohio's area code 234.
        assert_eq!(row.far_end_country, Country::from_code("US"));
        assert_eq!(row.call_end(), ts("2019-11-01T00:00:30.105Z"));
    }

    #[test]
    fn a_body_without_rows_is_not_a_page() {
        for body in [
            r#"{}"#,
            r#"{"error":{"code":"x"}}"#,
            r#"{"value":null}"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<Page>(body).is_err(), "{body}");
        }
        let empty: Page = serde_json::from_str(r#"{"@odata.count":0,"value":[]}"#).unwrap();
        assert!(empty.value.is_empty() && empty.next_link.is_none());
    }

    #[test]
    fn timestamps_with_any_precision_and_offset_form() {
        for (text, expected) in [
            ("2026-11-27T10:00:00Z", "2026-11-27T10:00:00Z"),
            ("2026-11-27T10:00:00.1Z", "2026-11-27T10:00:00.1Z"),
            (
                "2026-11-27T10:00:00.1234567Z",
                "2026-11-27T10:00:00.1234567Z",
            ),
            (
                "2026-11-27T10:00:00.1234567+00:00",
                "2026-11-27T10:00:00.1234567Z",
            ),
            ("2026-11-27T10:00:00+00:00", "2026-11-27T10:00:00Z"),
            ("2026-11-27T11:00:00+01:00", "2026-11-27T10:00:00Z"),
            ("2026-11-27T10:00:00.12", "2026-11-27T10:00:00.12Z"),
        ] {
            assert_eq!(parse_timestamp(text), Some(ts(expected)), "{text}");
        }
        assert_eq!(parse_timestamp("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_timestamp("0001-01-01T00:00:00.0000000+00:00"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn nulls_and_absent_fields_are_accepted() {
        let row = DirectRoutingRow::parse(
            r#"{"id":"a","startDateTime":"2026-11-27T10:00:00Z","inviteDateTime":null,
               "endDateTime":null,"duration":null,"callType":null,"successfulCall":null,
               "mediaPathLocation":null,"finalSipCode":null,"callEndSubReason":null,
               "trunkFullyQualifiedDomainName":"","userId":null}"#,
        )
        .unwrap();
        assert_eq!(row.call_type, None);
        assert_eq!(row.trunk_fqdn, None, "empty string is absent");
        assert_eq!(row.setup_seconds(), None);
        assert_eq!(row.call_end(), row.start);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let row = DirectRoutingRow::parse(
            r#"{"id":"a","startDateTime":"2026-11-27T10:00:00Z","otherPartyCountryCode":"DE",
               "administrativeUnitInfos":[{"id":"x"}],"transferorCorrelationId":null}"#,
        )
        .unwrap();
        assert_eq!(row.id, "a");
    }

    #[test]
    fn malformed_rows_are_errors_with_salvageable_ids() {
        for raw in [
            r#"{"id":"b1","startDateTime":"yesterday"}"#,
            r#"{"id":"b2","startDateTime":"2026-11-27T10:00:00Z","duration":"long"}"#,
            r#"{"id":"b3","startDateTime":"2026-11-27T10:00:00Z","successfulCall":"yes"}"#,
            r#"{"id":"b4","startDateTime":null}"#,
            r#"{"id":"b5"}"#,
        ] {
            assert!(DirectRoutingRow::parse(raw).is_err(), "{raw}");
            assert!(salvage_id(raw).unwrap().starts_with('b'));
        }
        for raw in [
            "17",
            r#"{"startDateTime":"2026-11-27T10:00:00Z"}"#,
            r#"{"id":""}"#,
            r#"{"id":5}"#,
        ] {
            assert!(DirectRoutingRow::parse(raw).is_err(), "{raw}");
            assert_eq!(salvage_id(raw), None, "{raw}");
        }
    }

    #[test]
    fn ids_read_alike_whichever_way() {
        for raw in [
            r#"{"id":"a1","startDateTime":"2026-11-27T10:00:00Z"}"#,
            r#"{"id":"a\u0062c","startDateTime":"2026-11-27T10:00:00Z"}"#,
            r#"{"startDateTime":"2026-11-27T10:00:00Z","id":"late"}"#,
            r#"{"id":"b1","startDateTime":"yesterday"}"#,
            r#"{"id":"b2","duration":"long"}"#,
            r#"{"id":" ","startDateTime":"2026-11-27T10:00:00Z"}"#,
            r#"{"id":5}"#,
            r#"{"id":null}"#,
            r#"{"id":"d","id":"e"}"#,
            r#"{"callType":"x"}"#,
            "17",
        ] {
            let salvaged = salvage_id(raw);
            assert_eq!(peek_id(raw).map(Cow::into_owned), salvaged, "{raw}");
            if let Ok(wire) = WireRow::read(raw) {
                assert_eq!(wire.id().map(str::to_owned), salvaged, "{raw}");
            }
        }
    }

    #[test]
    fn escaped_text_is_read_too() {
        let row = DirectRoutingRow::parse(
            r#"{"id":"a\"b","startDateTime":"2026-11-27T10:00:00\u005a","trunkFullyQualifiedDomainName":"sbc\u002eexample.com"}"#,
        )
        .unwrap();
        assert_eq!(row.id, "a\"b");
        assert_eq!(row.trunk_fqdn.as_deref(), Some("sbc.example.com"));
        assert_eq!(row.start, ts("2026-11-27T10:00:00Z"));
    }

    #[test]
    fn absurd_durations_do_not_overflow() {
        for duration in ["100000000000000", "9223372036854775807", "-5"] {
            let raw = format!(
                r#"{{"id":"d","startDateTime":"2026-11-27T10:00:00Z","duration":{duration}}}"#
            );
            let row = DirectRoutingRow::parse(&raw).unwrap();
            assert!(row.call_end() >= row.start, "{duration}");
        }
    }

    #[test]
    fn errors_name_the_field_but_never_the_value() {
        let raw = r#"{"id":"b2","callerNumber":"+4930123***","duration":"+4930123456","startDateTime":"2026-11-27T10:00:00Z"}"#;
        let text = DirectRoutingRow::parse(raw).unwrap_err().to_string();
        assert!(
            text.contains("field duration") && text.contains("expected i64"),
            "{text}"
        );
        assert!(!text.contains("4930123"), "{text}");
        let text = DirectRoutingRow::parse(r#"{"id":"b3","userPrincipalName":"adele@contoso.com","successfulCall":"adele@contoso.com"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("successfulCall") && !text.contains("adele"),
            "{text}"
        );
    }

    #[test]
    fn call_types_give_directions() {
        for (call_type, expected) in [
            ("ByotIn", Direction::Inbound),
            ("ByotInUcap", Direction::Inbound),
            ("ByotOut", Direction::Outbound),
            ("ByotOutUserForwarding", Direction::Outbound),
            ("ByotOutUserTransfer", Direction::Outbound),
            ("ByotOutUserConf", Direction::Outbound),
            ("ByotOutEmergency", Direction::Outbound),
            ("ByotOutInternational", Direction::Outbound),
            ("ForwardIn", Direction::Inbound),
            ("Byot", Direction::Unknown),
            ("user_in", Direction::Unknown),
            ("", Direction::Unknown),
        ] {
            assert_eq!(direction(call_type), expected, "{call_type}");
        }
    }

    #[test]
    fn the_far_end_country_is_all_that_is_kept_of_the_numbers() {
        let parse = |fields: &str| {
            DirectRoutingRow::parse(&format!(
                r#"{{"id":"n","startDateTime":"2026-11-27T10:00:00Z"{fields}}}"#
            ))
            .unwrap()
        };
        let numbers = r#","callerNumber":"+4930123***","calleeNumber":"+442071838750""#;
        let country =
            |fields: &str| crate::source::destination::country_label(parse(fields).far_end_country);
        assert_eq!(country(&format!(r#","callType":"ByotOut"{numbers}"#)), "GB");
        assert_eq!(country(&format!(r#","callType":"ByotIn"{numbers}"#)), "DE");
        assert_eq!(
            country(&format!(r#","callType":"Other"{numbers}"#)),
            "unknown"
        );
        assert_eq!(
            country(&format!(
                r#","callType":"ByotIn","otherPartyCountryCode":"nl"{numbers}"#
            )),
            "NL"
        );
        assert_eq!(
            country(r#","callType":"ByotOut","calleeNumber":"***""#),
            "unknown"
        );
        assert_eq!(
            country(
                r#","callType":"ByotOut","calleeNumber":null,"callerNumber":null,"otherPartyCountryCode":null"#
            ),
            "unknown"
        );
        let row = parse(&format!(r#","callType":"ByotOut"{numbers}"#));
        assert!(!format!("{row:?}").contains("2071838750"));
        assert!(DirectRoutingRow::parse(
            r#"{"id":"n","startDateTime":"2026-11-27T10:00:00Z","calleeNumber":44}"#
        )
        .is_err());
    }

    #[test]
    fn the_latest_time_covers_every_timestamp() {
        let row = DirectRoutingRow::parse(
            r#"{"id":"t","startDateTime":"2026-11-27T10:00:00Z","inviteDateTime":"2026-11-27T09:59:50Z",
               "endDateTime":"2026-11-27T10:30:00Z","failureDateTime":"0001-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(row.latest_time(), ts("2026-11-27T10:30:00Z"));
    }

    #[test]
    fn negative_setup_is_absent_and_failed_call_ends_at_failure() {
        let row = DirectRoutingRow::parse(
            r#"{"id":"c","startDateTime":"2026-11-27T10:00:00Z","inviteDateTime":"2026-11-27T10:00:05Z",
               "failureDateTime":"2026-11-27T10:00:07Z","endDateTime":"0001-01-01T00:00:00Z","duration":0}"#,
        )
        .unwrap();
        assert_eq!(row.setup_seconds(), None);
        assert_eq!(row.call_end(), ts("2026-11-27T10:00:07Z"));
    }
}
