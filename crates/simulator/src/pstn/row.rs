//! A PSTN call as the tenant stores it: a compact [`PstnRow`] of indices into the tables
//! and a few integers, with the values its `pstnCallLogRow` JSON derives from them.

use super::tables::{CallKind, Party, Site, CALL_KINDS, LICENSES, SITES, TENANT_COUNTRY};
use crate::numbers::{self, Country, COUNTRIES};
use crate::store::{ServedFlag, StoredRow};
use crate::time::{TimeStyle, TICKS_PER_SEC};

/// Which malformed shape a released malformed row takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MalformedKind {
    TextStart,
    TextDuration,
    /// An object where the call type's string belongs. (A charge the exporter cannot read
    /// is no malformed row: the call is counted and its charge left out.)
    ObjectCallType,
    BareNumber,
    MissingId,
}

pub(crate) const MALFORMED_KINDS: [MalformedKind; 5] = [
    MalformedKind::TextStart,
    MalformedKind::TextDuration,
    MalformedKind::ObjectCallType,
    MalformedKind::BareNumber,
    MalformedKind::MissingId,
];

/// Why a row exists, which decides whether the ground truth counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Live traffic (history included), the roster and the toll fraud.
    Live,
    /// Scenario row visible from the start.
    Preexisting,
    /// Scenario row hidden until release.
    Late,
    /// Scenario row hidden until release whose JSON is broken; `ordinal` keeps rows of the
    /// same kind distinct even where they carry no id.
    Malformed { kind: MalformedKind, ordinal: u16 },
}

/// Bit flags of fields a row prints as null, and of the beta field it adds.
pub(crate) mod quirk {
    pub const NULL_CALL_ID: u16 = 1;
    pub const NULL_USER: u16 = 2;
    pub const NULL_DESTINATION_CONTEXT: u16 = 4;
    pub const NULL_DESTINATION_NAME: u16 = 8;
    pub const NULL_LICENSE: u16 = 16;
    pub const NULL_INVENTORY: u16 = 32;
    pub const NULL_OPERATOR: u16 = 64;
    pub const NULL_DURATION_SOURCE: u16 = 128;
    pub const NULL_COUNTRY_CODES: u16 = 256;
    /// `charge`, `connectionCharge` and `currency` all null.
    pub const NULL_CHARGES: u16 = 512;
    pub const NULL_NUMBERS: u16 = 1024;
    pub const NULL_CALL_TYPE: u16 = 2048;
    pub const NULL_DURATION: u16 = 4096;
    pub const NULL_END: u16 = 8192;
    /// The beta `otherPartyCountryCode`.
    pub const OTHER_PARTY_COUNTRY: u16 = 16384;
}

/// One PSTN call as the tenant stores it.
#[derive(Clone, Debug)]
pub(crate) struct PstnRow {
    pub id: u128,
    /// Start time in ticks, already truncated to the precision the row prints.
    pub start: i64,
    /// Clock time (ms) from which the row is in results; `store::HIDDEN` until released.
    pub visible_ms: i64,
    /// For rows hidden until release: how long after the release they appear.
    pub arrival_ms: u32,
    pub duration_s: u32,
    /// Source of the callId, the conference id and the far end's free digits.
    pub digits: u64,
    /// Amounts in ten-thousandths of the currency.
    pub charge: u32,
    pub connection_charge: u32,
    /// Fractional digits the amounts print with (2 to 4).
    pub charge_digits: u8,
    pub site: u8,
    pub kind: u8,
    pub user: u8,
    /// Index into `numbers::RANGES` of the far end's number.
    pub far_range: u8,
    pub license: u8,
    pub style: TimeStyle,
    pub quirks: u16,
    pub origin: Origin,
    pub served: ServedFlag,
}

impl PstnRow {
    pub fn site(&self) -> &'static Site {
        &SITES[usize::from(self.site).min(SITES.len() - 1)]
    }

    pub fn kind(&self) -> &'static CallKind {
        &CALL_KINDS[usize::from(self.kind).min(CALL_KINDS.len() - 1)]
    }

    fn has(&self, flag: u16) -> bool {
        self.quirks & flag != 0
    }

    pub fn site_country(&self) -> &'static Country {
        &COUNTRIES[usize::from(self.site().country).min(COUNTRIES.len() - 1)]
    }

    pub fn far_country(&self) -> &'static Country {
        numbers::range_country(self.far_range)
    }

    pub fn international(&self) -> bool {
        self.far_country().iso != self.site_country().iso
    }

    pub fn call_type(&self) -> Option<&'static str> {
        (!self.has(quirk::NULL_CALL_TYPE)).then(|| self.kind().name)
    }

    pub fn duration(&self) -> Option<i64> {
        (!self.has(quirk::NULL_DURATION)).then_some(i64::from(self.duration_s))
    }

    pub fn end(&self) -> Option<i64> {
        (!self.has(quirk::NULL_END)).then(|| self.end_ticks())
    }

    pub fn end_ticks(&self) -> i64 {
        self.start + i64::from(self.duration_s) * TICKS_PER_SEC
    }

    /// `(callerNumber, calleeNumber)`: the far end's number masked as the office's country
    /// masks it.
    pub fn numbers(&self) -> (Option<String>, Option<String>) {
        if self.has(quirk::NULL_NUMBERS) {
            return (None, None);
        }
        let user_digits = numbers::mix(u64::from(self.user) | (u64::from(self.site) << 8));
        let own = numbers::number(self.site().user_range, user_digits, 0);
        let far = numbers::number(self.far_range, self.digits, self.site_country().mask);
        if self.kind().inbound {
            (Some(far), Some(own))
        } else {
            (Some(own), Some(far))
        }
    }

    pub fn destination_context(&self) -> Option<&'static str> {
        (!self.has(quirk::NULL_DESTINATION_CONTEXT)).then(|| {
            if self.international() {
                "International"
            } else {
                "Domestic"
            }
        })
    }

    /// The country dialled on outbound calls; the office's own on inbound ones.
    pub fn destination_name(&self) -> Option<&'static str> {
        (!self.has(quirk::NULL_DESTINATION_NAME)).then(|| {
            if self.kind().inbound {
                self.site_country().name
            } else {
                self.far_country().name
            }
        })
    }

    pub fn license(&self) -> Option<&'static str> {
        (!self.has(quirk::NULL_LICENSE))
            .then(|| LICENSES.get(usize::from(self.license)).copied())
            .flatten()
    }

    pub fn operator(&self) -> Option<&'static str> {
        (!self.has(quirk::NULL_OPERATOR)).then(|| self.site().operator)
    }

    pub fn usage_country_code(&self) -> Option<&'static str> {
        (!self.has(quirk::NULL_COUNTRY_CODES)).then(|| self.site_country().iso)
    }

    pub fn tenant_country_code(&self) -> Option<&'static str> {
        (!self.has(quirk::NULL_COUNTRY_CODES)).then_some(TENANT_COUNTRY)
    }

    /// Resource accounts and the bridge have service numbers; people, and unassigned
    /// numbers, subscriber numbers.
    pub fn inventory_type(&self) -> Option<&'static str> {
        let kind = self.kind();
        let service = kind.party == Party::ResourceAccount || kind.conference;
        (!self.has(quirk::NULL_INVENTORY)).then_some(if service { "Service" } else { "Subscriber" })
    }

    /// `operator` when a carrier reported the duration (Operator Connect), else `microsoft`.
    pub fn call_duration_source(&self) -> Option<&'static str> {
        let source = if self.site().operator_connect {
            "operator"
        } else {
            "microsoft"
        };
        (!self.has(quirk::NULL_DURATION_SOURCE)).then_some(source)
    }

    pub fn other_party_country_code(&self) -> Option<&'static str> {
        self.has(quirk::OTHER_PARTY_COUNTRY)
            .then(|| self.far_country().iso)
    }

    pub fn has_charges(&self) -> bool {
        !self.has(quirk::NULL_CHARGES)
    }

    /// `charge` as the JSON writes it: a decimal number with 2 to 4 fractional digits.
    pub fn charge_text(&self) -> Option<String> {
        self.has_charges()
            .then(|| decimal(self.charge, self.charge_digits))
    }

    pub fn connection_charge_text(&self) -> Option<String> {
        self.has_charges()
            .then(|| decimal(self.connection_charge, self.charge_digits))
    }

    pub fn null(&self, flag: u16) -> bool {
        self.has(flag)
    }
}

/// `amount` ten-thousandths written with `digits` (2 to 4) fractional digits; digits the
/// amount does not need are zeros, and the drawing makes sure it needs no more.
pub(crate) fn decimal(amount: u32, digits: u8) -> String {
    let digits = u32::from(digits.clamp(2, 4));
    let whole = amount / 10_000;
    let fraction = (amount % 10_000) / 10_u32.pow(4 - digits);
    format!("{whole}.{fraction:0width$}", width = digits as usize)
}

/// The fewest fractional digits (at least 2) that show `amount` ten-thousandths exactly.
pub(crate) fn digits_needed(amount: u32) -> u8 {
    if amount.is_multiple_of(100) {
        2
    } else if amount.is_multiple_of(10) {
        3
    } else {
        4
    }
}

impl StoredRow for PstnRow {
    fn start(&self) -> i64 {
        self.start
    }

    fn id(&self) -> u128 {
        self.id
    }

    fn visible_ms(&self) -> i64 {
        self.visible_ms
    }

    fn set_visible_ms(&mut self, visible_ms: i64) {
        self.visible_ms = visible_ms;
    }

    fn arrival_ms(&self) -> u32 {
        self.arrival_ms
    }

    fn is_malformed(&self) -> bool {
        matches!(self.origin, Origin::Malformed { .. })
    }

    fn mark_served(&self) -> bool {
        self.served.mark()
    }
}
