//! Where a call went or came from: the far end's country (ISO 3166-1 alpha-2), from the
//! row's `otherPartyCountryCode` or else from the far end's number.
//!
//! The far end is the callee of an outbound call and the caller of an inbound one. Numbers
//! are personal data: they are read here, transiently, and only the country comes out;
//! nothing keeps or logs a number. What is remembered, in memory only and for speed, is
//! numbering-plan data: the region of a NANP area code, and of a block of at least 1,000
//! numbers under another shared code. Numbers arrive as E.164, as E.164 with
//! the last 3 or 4 digits masked by `*` (tenants in some European countries), or as free
//! text; anything that does not give a country is `None` (the label `unknown`).
//!
//! The country comes from the country calling code, through libphonenumber's numbering
//! plans (the `phonenumber` crate). Most codes belong to one region, which is then the
//! answer whatever the rest of the number: validating it could only confirm that region or
//! fall back to it. Codes that several regions share (+1 NANP, +7, +44, +47, +61, +358,
//! ...) need the number itself: it is parsed and validated with its masked digits filled
//! in, and a number that is still not valid gets the code's main region (+1 → US).
//! International networks (+800, +870, +881, +882, +883, ...) belong to no country: `None`.
//!
//! Cost, measured over 100,000 numbers of a mix of countries (release build, loaded
//! 2-core machine): about 0.1 µs a number once its code's region is known; validating a
//! number under a shared code the first time its area code or block is seen takes
//! libphonenumber 10–25 µs.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::LazyLock;

use phonenumber::metadata::DATABASE;

/// Which way a call went, as the `direction` label shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Towards the tenant: the far end is the caller.
    Inbound,
    /// Away from the tenant: the far end is the callee.
    Outbound,
    /// A call type the exporter does not know the direction of.
    Unknown,
}

impl Direction {
    /// Every direction, in label order.
    pub const ALL: [Direction; 3] = [Direction::Inbound, Direction::Outbound, Direction::Unknown];

    /// The `direction` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Unknown => crate::source::row::UNKNOWN,
        }
    }

    /// The direction whose label [`Direction::as_str`] wrote (state files keep labels).
    pub fn from_label(label: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.as_str() == label)
    }
}

/// A country as ISO 3166-1 alpha-2, two uppercase ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// The country of a code such as Graph's `otherPartyCountryCode`: two ASCII letters, in
    /// either case. `ZZ` is libphonenumber's and CLDR's "unknown region", so `None` too.
    pub fn from_code(code: &str) -> Option<Country> {
        match code.trim().as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                let country = Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]);
                (country.as_str() != "ZZ").then_some(country)
            }
            _ => None,
        }
    }

    /// The code, e.g. `DE`.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or(crate::source::row::UNKNOWN)
    }
}

/// The `country` label value of a country that may be unknown.
pub fn country_label(country: Option<Country>) -> &'static str {
    // The label values are few (about 250 countries); interning them keeps a label a
    // `&'static str` without a table of our own.
    match country {
        Some(country) => interned(country),
        None => crate::source::row::UNKNOWN,
    }
}

/// The far end's country of a call: `other_party_country_code` when it is a usable code,
/// else the country of the callee's number (outbound) or the caller's (inbound). A call of
/// unknown direction has no far end to look at, only its country code.
pub fn far_end_country(
    direction: Direction,
    caller_number: Option<&str>,
    callee_number: Option<&str>,
    other_party_country_code: Option<&str>,
) -> Option<Country> {
    if let Some(country) = other_party_country_code.and_then(Country::from_code) {
        return Some(country);
    }
    let far_end = match direction {
        Direction::Inbound => caller_number,
        Direction::Outbound => callee_number,
        Direction::Unknown => None,
    };
    country_of_number(far_end?)
}

/// Longest digit string taken as a number: E.164 allows 15 digits; a little more is
/// tolerated for numbers with stray prefixes, anything longer is not a phone number.
const MAX_DIGITS: usize = 17;
/// Shortest: the shortest national numbers (a few islands') plus their code are 7 digits;
/// anything shorter is a short code or a fragment, whose country cannot be told.
const MIN_DIGITS: usize = 7;

/// A number's digits, `*` where masked, without the international prefix.
struct Digits {
    text: String,
    /// Whether the number was written with `+` or `00` (international form); a number
    /// without is only taken when it is valid as international (Graph drops the `+` now
    /// and then), never by fallback, as national numbers look alike.
    international: bool,
}

/// Reads `number` into its digits: `+`, `00` or no prefix, digits and `*`, and the
/// separators people type (spaces, `-`, `.`, `/`, parentheses). Anything else (letters,
/// extensions, SIP URIs, `anonymous`) is free text: `None`.
fn digits(number: &str) -> Option<Digits> {
    let mut text = number.trim();
    if text
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("tel:"))
    {
        text = &text[4..];
    }
    let (rest, international) = if let Some(rest) = text.strip_prefix('+') {
        (rest, true)
    } else if let Some(rest) = text.strip_prefix("00") {
        (rest, true)
    } else {
        (text, false)
    };
    let mut digits = String::with_capacity(MAX_DIGITS);
    for c in rest.chars() {
        match c {
            '0'..='9' | '*' if digits.len() < MAX_DIGITS => digits.push(c),
            '0'..='9' | '*' => return None,
            ' ' | '-' | '.' | '/' | '(' | ')' => {}
            _ => return None,
        }
    }
    // The country code is never masked; a fully masked number (`***`) tells nothing.
    if digits.len() < MIN_DIGITS || !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(Digits {
        text: digits,
        international,
    })
}

/// What the numbering plans say of one country calling code.
#[derive(Clone, Copy)]
enum Plan {
    /// One region has the code: the answer for every number under it.
    Region(Country),
    /// Several regions share it: the number decides, else the main region.
    Shared(Country),
    /// International networks and services (+800, +882, +883, ...): no country.
    NonGeographic,
}

/// Country calling code (1–999) → its plan, read once from libphonenumber's metadata, so
/// that the common case (a code of one region) costs an array lookup and no regex.
static PLANS: LazyLock<Vec<Option<Plan>>> = LazyLock::new(|| {
    (0..1000u16)
        .map(|code| {
            let regions = DATABASE.region(&code)?;
            let main = regions.first()?;
            if *main == "001" {
                return Some(Plan::NonGeographic);
            }
            let main = Country::from_code(main)?;
            Some(if regions.len() == 1 {
                Plan::Region(main)
            } else {
                Plan::Shared(main)
            })
        })
        .collect()
});

/// Loads libphonenumber's metadata and the plan table now rather than on the first new
/// row (it takes some milliseconds); later calls cost nothing.
pub fn load_numbering_plans() {
    LazyLock::force(&PLANS);
}

/// The country of a phone number, or `None` when the number does not tell (free text,
/// fully masked, an international network, no such country code).
pub fn country_of_number(number: &str) -> Option<Country> {
    let digits = digits(number)?;
    // Country codes are prefix-free and never start with 0: the first of 1, 2 or 3 digits
    // that is a code is it.
    if digits.text.starts_with('0') {
        return None;
    }
    let (code_len, plan) = (1..=3).find_map(|len| {
        let code: u16 = digits.text.get(..len)?.parse().ok()?;
        Some((len, (*PLANS.get(usize::from(code))?)?))
    })?;
    match plan {
        Plan::NonGeographic => None,
        Plan::Region(country) if digits.international => Some(country),
        Plan::Shared(main) if digits.international => {
            Some(shared_code_region(&digits.text, code_len).unwrap_or(main))
        }
        // Without `+`, "4930..." may as well be a national number: only a number valid as
        // international is taken, with the region it is valid in.
        Plan::Region(_) | Plan::Shared(_) => valid_region(&digits.text),
    }
}

/// The region of a number under a shared code, as libphonenumber validates it with its
/// masked digits filled in; `None` when no filling makes it valid.
///
/// In the NANP (+1) the area code alone decides the region (each is assigned to one
/// country), so the region found for an area code is remembered ([`NANP_AREAS`]): a
/// validation costs 10–25 µs, a remembered area code nothing. A number that does not
/// validate is tried once more with made-up line digits.
fn shared_code_region(digits: &str, code_len: usize) -> Option<Country> {
    let area = (&digits[..code_len] == "1")
        .then(|| digits.get(code_len..code_len + 3))
        .flatten()
        .and_then(|area| area.parse::<usize>().ok());
    let Some(area) = area else {
        return remembered_block_region(digits, code_len);
    };
    let remembered = NANP_AREAS
        .get(area)
        .map_or(0, |slot| slot.load(Ordering::Relaxed));
    if let [a @ b'A'..=b'Z', b @ b'A'..=b'Z'] = remembered.to_be_bytes() {
        return Some(Country([a, b]));
    }
    // 234-5678: an exchange of [2-9] and a line that no plan excludes.
    let found = valid_region(digits).or_else(|| valid_region(&format!("1{area:03}2345678")))?;
    if let Some(slot) = NANP_AREAS.get(area) {
        slot.store(u16::from_be_bytes(found.0), Ordering::Relaxed);
    }
    Some(found)
}

/// Digits of the national number that name its block, for [`BLOCKS`]: the regions that
/// share a code split them by at most 5 leading digits (IM's 74576, VA's 06698, CC's
/// 89162, YT's 2690x), so a valid number's block of 6 tells every other valid number's.
const BLOCK_DIGITS: usize = 6;
/// Digits a block leaves unnamed at least: a block key is a range of at least 1,000
/// numbers, never one person's. Shorter national numbers are validated every time.
const BLOCK_HIDDEN_DIGITS: usize = 3;
/// Most blocks remembered; past it, numbers of new blocks are validated every time.
const MAX_BLOCKS: usize = 50_000;

/// The region of number blocks under shared codes other than +1 (country code and first
/// [`BLOCK_DIGITS`] national digits), remembered once a number of the block validated:
/// libphonenumber takes about 24 µs to validate a UK number, a remembered block well under
/// one. Blocks are numbering-plan data held in memory only, never saved nor shown.
static BLOCKS: LazyLock<parking_lot::Mutex<std::collections::HashMap<(u16, u32), Country>>> =
    LazyLock::new(Default::default);

/// [`valid_region`], remembered by block when the number is long enough to have one.
fn remembered_block_region(digits: &str, code_len: usize) -> Option<Country> {
    let national = &digits[code_len..];
    let block = (national.len() >= BLOCK_DIGITS + BLOCK_HIDDEN_DIGITS)
        .then(|| {
            let code = digits[..code_len].parse::<u16>().ok()?;
            let block = national.get(..BLOCK_DIGITS)?.parse::<u32>().ok()?;
            Some((code, block))
        })
        .flatten();
    let Some(block) = block else {
        return valid_region(digits);
    };
    if let Some(country) = BLOCKS.lock().get(&block) {
        return Some(*country);
    }
    let found = valid_region(digits)?;
    let mut blocks = BLOCKS.lock();
    if blocks.len() < MAX_BLOCKS {
        blocks.insert(block, found);
    }
    Some(found)
}

/// The region of each NANP area code (200–999) once a number of it validated, as two
/// ASCII letters in a `u16`; 0 until then. Area codes are numbering-plan data, not
/// anyone's number.
static NANP_AREAS: [AtomicU16; 1000] = [const { AtomicU16::new(0) }; 1000];

/// The region libphonenumber finds `digits` valid in, trying the masked digits as 0s and
/// then as 5s (a few ranges exclude 0s).
fn valid_region(digits: &str) -> Option<Country> {
    let fills: &[char] = if digits.contains('*') {
        &['0', '5']
    } else {
        &['0']
    };
    fills.iter().find_map(|fill| {
        let filled: Cow<'_, str> = if digits.contains('*') {
            Cow::Owned(digits.replace('*', fill.encode_utf8(&mut [0; 4])))
        } else {
            Cow::Borrowed(digits)
        };
        library_region(&format!("+{filled}"))
    })
}

/// The region libphonenumber finds the E.164 `number` valid in. The library has panicked
/// on odd input before (its issues #32, #43); only digits reach it here, but a row must
/// never bring down a poller, so a panic is taken as "not valid" (the main region then
/// answers).
fn library_region(number: &str) -> Option<Country> {
    std::panic::catch_unwind(|| {
        let number = phonenumber::parse(None, number).ok()?;
        if !number.is_valid() {
            return None;
        }
        Country::from_code(number.country().id()?.as_ref())
    })
    .ok()
    .flatten()
}

/// `country` as a `&'static str`, from a table of every two-letter code made once.
fn interned(country: Country) -> &'static str {
    static TABLE: LazyLock<Vec<String>> = LazyLock::new(|| {
        (b'A'..=b'Z')
            .flat_map(|a| (b'A'..=b'Z').map(move |b| String::from_utf8_lossy(&[a, b]).into_owned()))
            .collect()
    });
    let [a, b] = country.0;
    a.checked_sub(b'A')
        .zip(b.checked_sub(b'A'))
        .and_then(|(a, b)| TABLE.get(usize::from(a) * 26 + usize::from(b)))
        .map_or(crate::source::row::UNKNOWN, String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn country(number: &str) -> &'static str {
        country_label(country_of_number(number))
    }

    #[test]
    fn real_numbers_give_their_country() {
        for (number, expected) in [
            ("+4930123456", "DE"),
            ("+49 30 1234567", "DE"),
            ("+4915112345678", "DE"),
            ("+33142685300", "FR"),
            ("+33 6 12 34 56 78", "FR"),
            ("+442071838750", "GB"),
            ("+447400123456", "GB"),
            ("+12125550123", "US"),
            ("+1 (206) 555-0100", "US"),
            ("+16137827274", "CA"),
            ("+14165550199", "CA"),
            ("+41446681800", "CH"),
            ("+31201234567", "NL"),
            ("+74951234567", "RU"),
            ("+77172123456", "KZ"),
            ("+441481712345", "GG"),
            ("+18765551234", "JM"),
            ("+61298765432", "AU"),
            ("tel:+4930123456", "DE"),
            ("004930123456", "DE"),
        ] {
            assert_eq!(country(number), expected, "{number}");
        }
    }

    #[test]
    fn masked_numbers_survive_their_mask() {
        for (number, expected) in [
            ("+4930123***", "DE"),
            ("+49301234***", "DE"),
            ("+33123456****", "FR"),
            ("+331426****", "FR"),
            ("+4144668****", "CH"),
            ("+4179123****", "CH"),
            ("+3120123****", "NL"),
            ("+31201234***", "NL"),
            ("+3222345***", "BE"),
            ("+4687654***", "SE"),
            ("+1613782****", "CA"),
            ("+1212555****", "US"),
            ("+4420718****", "GB"),
            ("+4414817*****", "GG"),
        ] {
            assert_eq!(country(number), expected, "{number}");
        }
    }

    #[test]
    fn numbers_not_valid_get_the_main_region_of_their_code() {
        // Too short or unallocated, but the code is clear.
        assert_eq!(country("+490000000"), "DE");
        assert_eq!(country("+1000000000000"), "US");
        assert_eq!(country("+4400000000"), "GB");
        assert_eq!(country("+70000000000"), "RU");
    }

    #[test]
    fn remembered_regions_answer_as_the_library_does() {
        for number in [
            "+442071838750",
            "+447911123456",
            "+441481712345",
            "+441624230123",
            "+74951234567",
            "+77172123456",
            "+61891621234",
            "+61298765432",
            "+12125550123",
            "+16137827274",
        ] {
            let library = valid_region(&number[1..]);
            assert!(library.is_some(), "{number}");
            for _ in 0..2 {
                assert_eq!(country_of_number(number), library, "{number}");
            }
        }
    }

    #[test]
    fn any_digits_give_an_answer_without_panicking() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        for _ in 0..3_000 {
            let len = rng.gen_range(1..=20);
            let mut number = String::from(["+", "00", ""][rng.gen_range(0..3)]);
            // Mostly codes that several regions share: those reach the library.
            number.push_str(["1", "44", "7", "61", "590", "39", "358", ""][rng.gen_range(0..8)]);
            for i in 0..len {
                let masked = i + 4 > len && rng.gen_bool(0.3);
                number.push(if masked {
                    '*'
                } else {
                    char::from(b'0' + rng.gen_range(0..10))
                });
            }
            let _ = country_of_number(&number);
        }
    }

    #[test]
    fn international_networks_have_no_country() {
        for number in [
            "+882345678901",
            "+883510001234567",
            "+80012345678",
            "+870773123456",
        ] {
            assert_eq!(country_of_number(number), None, "{number}");
        }
    }

    #[test]
    fn free_text_empty_and_fully_masked_are_unknown() {
        for number in [
            "",
            "   ",
            "***",
            "+***",
            "**********",
            "anonymous",
            "Anonymous",
            "sip:alice@contoso.com",
            "+49 30 12345 ext 12",
            "+0123456789",
            "112",
            "+49",
            "+4930",
            "+123456789012345678901",
            "+٤٩٣٠١٢٣٤٥٦",
        ] {
            assert_eq!(country_of_number(number), None, "{number:?}");
        }
    }

    #[test]
    fn numbers_without_prefix_count_only_when_valid() {
        assert_eq!(country("4930123456"), "DE");
        assert_eq!(country("16137827274"), "CA");
        assert_eq!(country_of_number("030123456"), None);
        assert_eq!(country_of_number("4900000000"), None);
    }

    #[test]
    fn the_far_end_is_the_callee_outbound_and_the_caller_inbound() {
        let caller = Some("+4930123456");
        let callee = Some("+33142685300");
        let label = |d, code| country_label(far_end_country(d, caller, callee, code));
        assert_eq!(label(Direction::Outbound, None), "FR");
        assert_eq!(label(Direction::Inbound, None), "DE");
        assert_eq!(label(Direction::Unknown, None), "unknown");
        assert_eq!(label(Direction::Outbound, Some("ch")), "CH");
        assert_eq!(label(Direction::Unknown, Some("CH")), "CH");
        // Not a usable code: the number decides.
        for code in ["", "C", "CHE", "12", "zz", "Ü"] {
            assert_eq!(label(Direction::Outbound, Some(code)), "FR", "{code}");
        }
        assert_eq!(
            country_label(far_end_country(Direction::Inbound, None, callee, None)),
            "unknown"
        );
    }

    #[test]
    fn directions_read_back_from_their_labels() {
        for d in Direction::ALL {
            assert_eq!(Direction::from_label(d.as_str()), Some(d));
        }
        assert_eq!(Direction::from_label("sideways"), None);
    }
}
