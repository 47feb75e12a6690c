//! The JSON of a Direct Routing row: a `directRoutingLogRow` object as Graph sends it,
//! nulls, extra beta fields, varied timestamp formats and deliberately malformed rows
//! included.
//!
//! Every string written here comes from the static tables or from formatting numbers and
//! times, none of which needs JSON escaping, so rows are written straight into the page.

use std::fmt::Write;

use super::row::{CallRow, MalformedKind, Origin};
use super::tables::{TrunkNames, PEOPLE};
use crate::call_log::LogRow;
use crate::ids::{as_uuid_v4, write_uuid};
use crate::time::{write_timestamp, TimeStyle, YEAR_ONE};

impl LogRow for CallRow {
    const JSON_BYTES: usize = 1100;

    type Names = TrunkNames;

    fn write_json(&self, out: &mut String, names: &TrunkNames) {
        write_row(out, self, names);
    }
}

fn write_string_field(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, ",\"{name}\":\"{value}\"");
}

fn write_time_field(out: &mut String, name: &str, ticks: Option<i64>, style: TimeStyle) {
    let _ = write!(out, ",\"{name}\":\"");
    match ticks {
        Some(ticks) => write_timestamp(out, ticks, style),
        None => out.push_str(YEAR_ONE),
    }
    out.push('"');
}

fn write_optional_number(out: &mut String, name: &str, value: Option<i64>) {
    match value {
        Some(value) => {
            let _ = write!(out, ",\"{name}\":{value}");
        }
        None => {
            let _ = write!(out, ",\"{name}\":null");
        }
    }
}

fn write_optional_string(out: &mut String, name: &str, value: Option<&str>) {
    match value {
        Some(value) => write_string_field(out, name, value),
        None => {
            let _ = write!(out, ",\"{name}\":null");
        }
    }
}

/// Appends one row of a page as JSON, its trunk named in its tenant's `names`.
pub(crate) fn write_row(out: &mut String, row: &CallRow, names: &TrunkNames) {
    let malformed = match row.origin {
        Origin::Malformed { kind, ordinal } => Some((kind, ordinal)),
        _ => None,
    };
    if let Some((MalformedKind::BareNumber, ordinal)) = malformed {
        let _ = write!(out, "{}", 17 + u32::from(ordinal));
        return;
    }
    let kind = malformed.map(|(kind, _)| kind);
    out.push('{');
    // The first field carries no leading comma; rows without an id start with correlationId.
    if kind == Some(MalformedKind::MissingId) {
        out.push_str("\"correlationId\":\"");
    } else {
        out.push_str("\"id\":\"");
        write_uuid(out, row.id);
        out.push_str("\",\"correlationId\":\"");
    }
    write_uuid(out, row.correlation_id);
    out.push('"');
    write_user(out, row);

    if kind == Some(MalformedKind::TextStart) {
        write_string_field(out, "startDateTime", "yesterday");
    } else {
        write_time_field(out, "startDateTime", Some(row.start), row.style);
    }
    write_time_field(out, "inviteDateTime", Some(row.invite()), row.style);
    write_time_field(out, "failureDateTime", row.failure(), row.style);
    write_time_field(out, "endDateTime", row.end(), row.style);
    if kind == Some(MalformedKind::TextDuration) {
        write_string_field(out, "duration", "long");
    } else {
        let _ = write!(out, ",\"duration\":{}", row.duration_s);
    }
    write_optional_string(out, "callType", row.call_type_name());
    if kind == Some(MalformedKind::TextSuccess) {
        write_string_field(out, "successfulCall", "yes");
    } else {
        let _ = write!(out, ",\"successfulCall\":{}", row.successful());
    }
    write_call_path(out, row, names);
    out.push('}');
}

/// The Teams user's fields; empty for calls to a resource account.
fn write_user(out: &mut String, row: &CallRow) {
    if row.call_type().without_user {
        write_string_field(out, "userId", "");
        write_string_field(out, "userPrincipalName", "");
        write_string_field(out, "userDisplayName", "");
        return;
    }
    let (given, surname) = PEOPLE[usize::from(row.user)];
    out.push_str(",\"userId\":\"");
    write_uuid(out, user_id(row.user));
    out.push('"');
    let _ = write!(
        out,
        ",\"userPrincipalName\":\"{}.{}@contoso.com\",\"userDisplayName\":\"{given} {surname}\"",
        given.to_ascii_lowercase(),
        surname.to_ascii_lowercase()
    );
}

/// The fields from the numbers to the end of the row: who called whom over which trunk,
/// and how the call ended.
fn write_call_path(out: &mut String, row: &CallRow, names: &TrunkNames) {
    let (caller, callee) = row.numbers();
    write_string_field(out, "callerNumber", &caller);
    write_string_field(out, "calleeNumber", &callee);
    write_optional_string(out, "mediaPathLocation", row.media_path());
    let trunk = row.trunk();
    write_string_field(out, "signalingLocation", trunk.signaling_location);
    write_optional_number(out, "finalSipCode", row.sip_code());
    write_optional_number(out, "callEndSubReason", row.sub_reason());
    write_string_field(out, "finalSipCodePhrase", row.outcome().phrase);
    write_string_field(out, "trunkFullyQualifiedDomainName", &row.trunk_fqdn(names));
    let _ = write!(
        out,
        ",\"mediaBypassEnabled\":{}",
        trunk.media_location.is_none()
    );
    if let Some(other_country) = row.other_party_country_code() {
        write_string_field(out, "otherPartyCountryCode", other_country);
        write_string_field(out, "userCountryCode", trunk.country);
    }
}

/// A stable id per person, independent of the seed so a person keeps their id across runs.
pub(crate) fn user_id(user: u8) -> u128 {
    // splitmix64 of the index, twice, gives two well-mixed halves.
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let high = mix(u64::from(user) * 2);
    let low = mix(u64::from(user) * 2 + 1);
    as_uuid_v4((u128::from(high) << 64) | u128::from(low))
}
