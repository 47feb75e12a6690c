//! Turns stored calls into the JSON Graph sends: `directRoutingLogRow` objects, the pages
//! that carry them, and the ground-truth view of the same rows.
//!
//! Rows are written by hand into a `String` rather than through `serde_json::Value`: a page
//! of 1,000 rows is rendered for every request, and every byte of a row depends only on the
//! stored row, so a row (including one without an id) looks identical on every page.

use std::fmt::Write;

use chrono::{DateTime, Datelike, Timelike};

use super::model::{
    as_uuid_v4, quirk, CallRow, MalformedKind, Origin, TimeStyle, EXTERNAL_PREFIXES, PEOPLE,
    TICKS_PER_SEC,
};
use super::TruthRow;

/// How Graph prints an absent `endDateTime` or `failureDateTime`.
pub(super) const YEAR_ONE: &str = "0001-01-01T00:00:00Z";

/// Appends `ticks` as an ISO 8601 UTC timestamp in the row's style.
pub(super) fn write_timestamp(out: &mut String, ticks: i64, style: TimeStyle) {
    let seconds = ticks.div_euclid(TICKS_PER_SEC);
    let fraction = ticks.rem_euclid(TICKS_PER_SEC);
    let Some(time) = DateTime::from_timestamp(seconds, 0) else {
        out.push_str(YEAR_ONE);
        return;
    };
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    let digits = style.digits();
    if digits > 0 {
        let shown = fraction / 10_i64.pow(7 - digits);
        let _ = write!(out, ".{:0width$}", shown, width = digits as usize);
    }
    out.push_str(if style.plus_offset() { "+00:00" } else { "Z" });
}

pub(super) fn timestamp(ticks: i64, style: TimeStyle) -> String {
    let mut out = String::with_capacity(33);
    write_timestamp(&mut out, ticks, style);
    out
}

pub(super) fn write_uuid(out: &mut String, id: u128) {
    let hex = format!("{id:032x}");
    let _ = write!(
        out,
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
}

pub(super) fn uuid(id: u128) -> String {
    let mut out = String::with_capacity(36);
    write_uuid(&mut out, id);
    out
}

/// The user-side and other-party numbers, masked like Graph does for tenants that hide
/// personal data.
fn numbers(row: &CallRow) -> (String, String) {
    let trunk = row.trunk();
    let user_number = format!("{}{:03}***", trunk.number_prefix, row.user_digits);
    let other_number = if row.call_type().emergency {
        trunk.emergency_number.to_owned()
    } else {
        format!(
            "{}{:03}***",
            EXTERNAL_PREFIXES[usize::from(row.other_prefix)],
            row.other_digits
        )
    };
    if row.call_type().inbound {
        (other_number, user_number)
    } else {
        (user_number, other_number)
    }
}

fn write_string_field(out: &mut String, name: &str, value: &str) {
    // Every string written here comes from the static tables or from formatting numbers and
    // times, none of which needs JSON escaping.
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

/// Appends one row of a page as JSON.
pub(super) fn write_row(out: &mut String, row: &CallRow) {
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

    if row.call_type().without_user {
        write_string_field(out, "userId", "");
        write_string_field(out, "userPrincipalName", "");
        write_string_field(out, "userDisplayName", "");
    } else {
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
    match row.call_type_name() {
        Some(name) => write_string_field(out, "callType", name),
        None => out.push_str(",\"callType\":null"),
    }
    if kind == Some(MalformedKind::TextSuccess) {
        write_string_field(out, "successfulCall", "yes");
    } else {
        let _ = write!(out, ",\"successfulCall\":{}", row.successful());
    }
    let (caller, callee) = numbers(row);
    write_string_field(out, "callerNumber", &caller);
    write_string_field(out, "calleeNumber", &callee);
    match row.media_path() {
        Some(location) => write_string_field(out, "mediaPathLocation", location),
        None => out.push_str(",\"mediaPathLocation\":null"),
    }
    let trunk = row.trunk();
    write_string_field(out, "signalingLocation", trunk.signaling_location);
    let outcome = row.outcome();
    match row.sip_code() {
        Some(code) => {
            let _ = write!(out, ",\"finalSipCode\":{code}");
        }
        None => out.push_str(",\"finalSipCode\":null"),
    }
    match row.sub_reason() {
        Some(sub_reason) => {
            let _ = write!(out, ",\"callEndSubReason\":{sub_reason}");
        }
        None => out.push_str(",\"callEndSubReason\":null"),
    }
    write_string_field(out, "finalSipCodePhrase", outcome.phrase);
    write_string_field(out, "trunkFullyQualifiedDomainName", &row.trunk_fqdn());
    let _ = write!(
        out,
        ",\"mediaBypassEnabled\":{}",
        trunk.media_location.is_none()
    );
    if row.quirks & quirk::EXTRA_FIELDS != 0 {
        let other_country = match EXTERNAL_PREFIXES[usize::from(row.other_prefix)] {
            prefix if prefix.starts_with("+49") => "DE",
            prefix if prefix.starts_with("+33") => "FR",
            prefix if prefix.starts_with("+44") => "GB",
            prefix if prefix.starts_with("+1") => "US",
            prefix if prefix.starts_with("+65") => "SG",
            prefix if prefix.starts_with("+81") => "JP",
            _ => "NL",
        };
        write_string_field(out, "otherPartyCountryCode", other_country);
        write_string_field(out, "userCountryCode", trunk.country);
    }
    out.push('}');
}

/// A stable id per person, independent of the seed so a person keeps their id across runs.
fn user_id(user: u8) -> u128 {
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

/// Appends a page: the rows, `@odata.count` (rows on this page) and the next link if any.
pub(super) fn write_page(
    out: &mut String,
    context: &str,
    rows: &[&CallRow],
    next_link: Option<&str>,
) {
    out.push_str("{\"@odata.context\":");
    push_json_string(out, context);
    let _ = write!(out, ",\"@odata.count\":{},\"value\":[", rows.len());
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_row(out, row);
    }
    out.push(']');
    if let Some(link) = next_link {
        out.push_str(",\"@odata.nextLink\":");
        push_json_string(out, link);
    }
    out.push('}');
}

/// Appends `value` as a JSON string; used for text that may come from outside (base URLs,
/// request parameters).
pub(super) fn push_json_string(out: &mut String, value: &str) {
    match serde_json::to_string(value) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// The ground-truth view of a well-formed row: the values its JSON carries.
pub(super) fn truth_row(row: &CallRow) -> TruthRow {
    TruthRow {
        id: uuid(row.id),
        trunk_fqdn: Some(row.trunk_fqdn().into_owned()),
        call_type: row.call_type_name().map(str::to_owned),
        final_sip_code: row.sip_code(),
        call_end_sub_reason: row.sub_reason(),
        successful_call: Some(row.successful()),
        media_path_location: row.media_path().map(str::to_owned),
        duration_secs: Some(i64::from(row.duration_s)),
        start: timestamp(row.start, row.style),
        invite: Some(timestamp(row.invite(), row.style)),
        end: row.end().map(|ticks| timestamp(ticks, row.style)),
        failure: row.failure().map(|ticks| timestamp(ticks, row.style)),
    }
}
