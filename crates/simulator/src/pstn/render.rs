//! The JSON of a PSTN row: a `pstnCallLogRow` object as Graph sends it, with nulls, the
//! beta `otherPartyCountryCode`, varied timestamp formats, charges as decimal numbers and
//! deliberately malformed rows.
//!
//! Every string written here comes from the static tables or from formatting numbers and
//! times, none of which needs JSON escaping, so rows are written straight into the page.

use std::fmt::Write;

use super::row::{quirk, MalformedKind, Origin, PstnRow};
use super::tables::{Party, CURRENCY, RESOURCE_ACCOUNTS};
use crate::call_log::LogRow;
use crate::direct_routing::PEOPLE;
use crate::ids::{as_uuid_v4, write_uuid};
use crate::numbers::mix;
use crate::time::write_timestamp;

impl LogRow for PstnRow {
    const JSON_BYTES: usize = 1000;

    type Names = ();

    fn write_json(&self, out: &mut String, _names: &()) {
        write_row(out, self);
    }
}

fn string_field(out: &mut String, name: &str, value: Option<&str>) {
    match value {
        Some(value) => {
            let _ = write!(out, ",\"{name}\":\"{value}\"");
        }
        None => {
            let _ = write!(out, ",\"{name}\":null");
        }
    }
}

/// A field whose value is JSON already (a number), or null.
fn raw_field(out: &mut String, name: &str, value: Option<&str>) {
    let _ = write!(out, ",\"{name}\":{}", value.unwrap_or("null"));
}

/// Appends one row of a page as JSON.
pub(crate) fn write_row(out: &mut String, row: &PstnRow) {
    let kind = match row.origin {
        Origin::Malformed { kind, ordinal } => {
            if kind == MalformedKind::BareNumber {
                let _ = write!(out, "{}", 23 + u32::from(ordinal));
                return;
            }
            Some(kind)
        }
        _ => None,
    };
    out.push('{');
    // The first field carries no leading comma; rows without an id start with callId.
    if kind == Some(MalformedKind::MissingId) {
        out.push_str("\"callId\":");
    } else {
        out.push_str("\"id\":\"");
        write_uuid(out, row.id);
        out.push_str("\",\"callId\":");
    }
    if row.null(quirk::NULL_CALL_ID) {
        out.push_str("null");
    } else {
        // `<number>_<number>@<ip>`, as Microsoft's example shows: not unique, not an id.
        let d = row.digits;
        let _ = write!(
            out,
            "\"{}_{}@10.{}.{}.{}\"",
            d >> 33,
            d & 0x1FFF_FFFF,
            (d >> 8) & 0xFF,
            (d >> 16) & 0xFF,
            1 + (d >> 24) % 254
        );
    }
    write_user(out, row);
    if kind == Some(MalformedKind::TextStart) {
        string_field(out, "startDateTime", Some("yesterday"));
    } else {
        out.push_str(",\"startDateTime\":\"");
        write_timestamp(out, row.start, row.style);
        out.push('"');
    }
    match row.end() {
        Some(end) => {
            out.push_str(",\"endDateTime\":\"");
            write_timestamp(out, end, row.style);
            out.push('"');
        }
        None => out.push_str(",\"endDateTime\":null"),
    }
    if kind == Some(MalformedKind::TextDuration) {
        string_field(out, "duration", Some("long"));
    } else {
        raw_field(
            out,
            "duration",
            row.duration().map(|d| d.to_string()).as_deref(),
        );
    }
    raw_field(out, "charge", row.charge_text().as_deref());
    if kind == Some(MalformedKind::ObjectCallType) {
        out.push_str(",\"callType\":{\"kind\":\"user_out\"}");
    } else {
        string_field(out, "callType", row.call_type());
    }
    string_field(out, "currency", row.has_charges().then_some(CURRENCY));
    let (caller, callee) = row.numbers();
    string_field(out, "calleeNumber", callee.as_deref());
    string_field(out, "usageCountryCode", row.usage_country_code());
    string_field(out, "tenantCountryCode", row.tenant_country_code());
    raw_field(
        out,
        "connectionCharge",
        row.connection_charge_text().as_deref(),
    );
    string_field(out, "callerNumber", caller.as_deref());
    string_field(out, "destinationContext", row.destination_context());
    string_field(out, "destinationName", row.destination_name());
    write_conference_and_rest(out, row);
    out.push('}');
}

/// The Teams user's fields: a person, a resource account, or null for the bridge and
/// unassigned numbers.
fn write_user(out: &mut String, row: &PstnRow) {
    let party = if row.null(quirk::NULL_USER) {
        Party::Nobody
    } else {
        row.kind().party
    };
    match party {
        Party::Nobody => {
            out.push_str(",\"userId\":null,\"userPrincipalName\":null,\"userDisplayName\":null");
        }
        Party::Person => {
            let (given, surname) = PEOPLE[usize::from(row.user) % PEOPLE.len()];
            out.push_str(",\"userId\":\"");
            write_uuid(out, person_id(row.user));
            let _ = write!(
                out,
                "\",\"userPrincipalName\":\"{}.{}@contoso.com\",\"userDisplayName\":\"{given} {surname}\"",
                given.to_ascii_lowercase(),
                surname.to_ascii_lowercase()
            );
        }
        Party::ResourceAccount => {
            let account = usize::from(row.user) % RESOURCE_ACCOUNTS.len();
            let (name, upn) = RESOURCE_ACCOUNTS[account];
            out.push_str(",\"userId\":\"");
            write_uuid(out, as_uuid_v4(u128::from(mix(0xACC0 + account as u64))));
            let _ = write!(
                out,
                "\",\"userPrincipalName\":\"{upn}@contoso.com\",\"userDisplayName\":\"{name}\""
            );
        }
    }
}

fn write_conference_and_rest(out: &mut String, row: &PstnRow) {
    if row.kind().conference {
        let _ = write!(out, ",\"conferenceId\":\"{}\"", row.digits % 1_000_000_000);
    } else {
        out.push_str(",\"conferenceId\":null");
    }
    string_field(out, "licenseCapability", row.license());
    string_field(out, "inventoryType", row.inventory_type());
    string_field(out, "operator", row.operator());
    string_field(out, "callDurationSource", row.call_duration_source());
    if let Some(country) = row.other_party_country_code() {
        string_field(out, "otherPartyCountryCode", Some(country));
    }
}

/// A stable id per person, the same as their Direct Routing rows carry.
fn person_id(user: u8) -> u128 {
    let high = mix(u64::from(user) * 2);
    let low = mix(u64::from(user) * 2 + 1);
    as_uuid_v4((u128::from(high) << 64) | u128::from(low))
}
