//! Telephone numbers of the simulated world: the countries the tenant's calls reach, number
//! ranges in each that libphonenumber recognises as that country (so the exporter can derive
//! the far end's country from a number), and the masking some countries apply.
//!
//! Both call logs draw their numbers from here, so that one set of countries is the
//! tenant's normal traffic; [`FRAUD_COUNTRY`] is kept out of it and is only ever called in
//! the toll-fraud fault. Numbers are written from a range and a few random digits rather
//! than stored, because the demo tenant holds hundreds of thousands of rows.

use std::fmt::Write;

/// A country the simulated calls reach.
pub(crate) struct Country {
    /// ISO 3166 alpha-2, as `otherPartyCountryCode` and `usageCountryCode` print it.
    pub iso: &'static str,
    /// English name, as `destinationName` prints it.
    pub name: &'static str,
    /// ITU calling code, without `+`.
    pub calling_code: &'static str,
    /// How many trailing digits of the external party's number Graph masks in tenants of
    /// this country (`shared/reference/graph-call-logs.md`): 3 or 4, 0 for none.
    pub mask: u8,
}

/// A block of numbers: the national digits that start it and how many follow.
pub(crate) struct Range {
    pub country: u8,
    pub national_prefix: &'static str,
    pub digits: u8,
}

pub(crate) const DE: u8 = 0;
pub(crate) const GB: u8 = 1;
pub(crate) const FR: u8 = 2;
pub(crate) const NL: u8 = 3;
pub(crate) const CH: u8 = 4;
pub(crate) const ES: u8 = 5;
pub(crate) const IT: u8 = 6;
pub(crate) const SE: u8 = 7;
pub(crate) const US: u8 = 8;
pub(crate) const SG: u8 = 9;
pub(crate) const JP: u8 = 10;
/// Index of [`FRAUD_COUNTRY`] in [`COUNTRIES`]: the last, outside the normal traffic.
pub(crate) const SL: u8 = 15;

/// The countries of the normal traffic, then the fraud destination.
pub(crate) static COUNTRIES: [Country; 16] = [
    country("DE", "Germany", "49", 3),
    country("GB", "United Kingdom", "44", 0),
    country("FR", "France", "33", 4),
    country("NL", "Netherlands", "31", 3),
    country("CH", "Switzerland", "41", 4),
    country("ES", "Spain", "34", 3),
    country("IT", "Italy", "39", 3),
    country("SE", "Sweden", "46", 3),
    country("US", "United States", "1", 0),
    country("SG", "Singapore", "65", 0),
    country("JP", "Japan", "81", 0),
    country("IN", "India", "91", 0),
    country("AU", "Australia", "61", 0),
    country("BR", "Brazil", "55", 0),
    country("PL", "Poland", "48", 0),
    country("SL", "Sierra Leone", "232", 0),
];

/// Countries the tenant calls normally: all of [`COUNTRIES`] but the fraud destination.
pub(crate) const NORMAL_COUNTRIES: usize = SL as usize;

/// ISO 3166 alpha-2 code of the country only the toll-fraud fault calls (Sierra Leone, a
/// destination of premium-rate fraud); no other traffic of the tenant reaches it.
pub const TOLL_FRAUD_COUNTRY: &str = "SL";
/// Calling code of [`TOLL_FRAUD_COUNTRY`], as its numbers start.
pub const TOLL_FRAUD_CALLING_CODE: &str = "+232";
/// `destinationName` of [`TOLL_FRAUD_COUNTRY`] in PSTN rows.
pub const TOLL_FRAUD_COUNTRY_NAME: &str = "Sierra Leone";

const fn country(iso: &'static str, name: &'static str, code: &'static str, mask: u8) -> Country {
    Country {
        iso,
        name,
        calling_code: code,
        mask,
    }
}

const fn range(country: u8, national_prefix: &'static str, digits: u8) -> Range {
    Range {
        country,
        national_prefix,
        digits,
    }
}

/// Number ranges by country: fixed lines of big cities and mobile blocks. Indices are
/// used by the tables of both logs, so entries are only ever appended.
pub(crate) static RANGES: [Range; 36] = [
    range(DE, "30", 8),   // 0 Berlin
    range(DE, "89", 8),   // 1 Munich
    range(DE, "69", 8),   // 2 Frankfurt
    range(DE, "40", 8),   // 3 Hamburg
    range(DE, "151", 8),  // 4 mobile
    range(GB, "207", 7),  // 5 London
    range(GB, "203", 7),  // 6 London
    range(GB, "7912", 6), // 7 mobile (07911 1 and 07911 7 are Guernsey's)
    range(FR, "142", 6),  // 8 Paris
    range(FR, "6", 8),    // 9 mobile
    range(NL, "20", 7),   // 10 Amsterdam
    range(NL, "6", 8),    // 11 mobile
    range(CH, "44", 7),   // 12 Zurich
    range(CH, "79", 7),   // 13 mobile
    range(ES, "91", 7),   // 14 Madrid
    range(ES, "6", 8),    // 15 mobile
    range(IT, "02", 8),   // 16 Milan
    range(IT, "33", 8),   // 17 mobile
    range(SE, "8", 8),    // 18 Stockholm
    range(SE, "70", 7),   // 19 mobile
    range(US, "2125", 6), // 20 New York
    range(US, "6463", 6), // 21 New York
    range(US, "3127", 6), // 22 Chicago
    range(US, "4155", 6), // 23 San Francisco
    range(SG, "6", 7),    // 24 fixed
    range(SG, "9", 7),    // 25 mobile
    range(JP, "3", 8),    // 26 Tokyo
    range(JP, "90", 8),   // 27 mobile
    range(11, "98", 8),   // 28 India mobile
    range(11, "22", 8),   // 29 Mumbai
    range(12, "2", 8),    // 30 Sydney
    range(12, "4", 8),    // 31 Australia mobile
    range(13, "119", 8),  // 32 Sao Paulo mobile
    range(14, "22", 7),   // 33 Warsaw
    range(SL, "76", 6),   // 34 Sierra Leone mobile
    range(SL, "77", 6),   // 35 Sierra Leone mobile
];

/// Ranges of the fraud destination, which normal traffic never draws.
pub(crate) const FRAUD_RANGES: [u8; 2] = [34, 35];

/// For each normal country, a range in it: what a roster of calls to every country uses.
pub(crate) const ROSTER_RANGES: [u8; NORMAL_COUNTRIES] =
    [1, 5, 8, 10, 12, 14, 16, 18, 20, 24, 26, 28, 30, 32, 33];

pub(crate) fn range_country(range: u8) -> &'static Country {
    let country = RANGES.get(usize::from(range)).map_or(0, |r| r.country);
    &COUNTRIES[usize::from(country).min(COUNTRIES.len() - 1)]
}

/// Appends the number of `range` whose free digits come from `digits`, its last `mask`
/// digits replaced by `*`.
pub(crate) fn write_number(out: &mut String, range: u8, digits: u64, mask: u8) {
    let Some(block) = RANGES.get(usize::from(range)) else {
        return;
    };
    let country = range_country(range);
    let width = usize::from(block.digits);
    let modulus = 10_u64.saturating_pow(u32::from(block.digits));
    let mut free = format!("{:0width$}", digits % modulus.max(1));
    let masked = usize::from(mask).min(free.len());
    free.truncate(free.len() - masked);
    let _ = write!(
        out,
        "+{}{}{free}{}",
        country.calling_code,
        block.national_prefix,
        "*".repeat(masked)
    );
}

pub(crate) fn number(range: u8, digits: u64, mask: u8) -> String {
    let mut out = String::with_capacity(20);
    write_number(&mut out, range, digits, mask);
    out
}

/// A well-mixed 64-bit value of `seed` (splitmix64), for digits that must not take a draw
/// from a call's random stream.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
