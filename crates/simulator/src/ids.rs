//! UUIDs as the simulated services use them: drawn from seeded generators, so a seed gives
//! the same ids, and printed in Graph's hyphenated lower-case form.

use std::fmt::Write;

use rand::Rng;

/// Stamps the version (4) and variant bits of a random UUID onto `raw`.
pub(crate) fn as_uuid_v4(raw: u128) -> u128 {
    (raw & !(0xF000_u128 << 64) & !(0xC_u128 << 60)) | (0x4000_u128 << 64) | (0x8_u128 << 60)
}

/// A random v4-style UUID.
pub(crate) fn random_uuid(rng: &mut impl Rng) -> u128 {
    as_uuid_v4(rng.gen())
}

pub(crate) fn write_uuid(out: &mut String, id: u128) {
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

pub(crate) fn uuid(id: u128) -> String {
    let mut out = String::with_capacity(36);
    write_uuid(&mut out, id);
    out
}

/// A UUID in its hyphenated form (any case); None if `text` is not one.
pub(crate) fn parse_uuid(text: &str) -> Option<u128> {
    let well_formed = text.len() == 36
        && text.bytes().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        });
    if !well_formed {
        return None;
    }
    u128::from_str_radix(&text.replace('-', ""), 16).ok()
}
