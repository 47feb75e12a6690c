//! The PSTN tenant's fixed data: its offices with Calling Plan or Operator Connect numbers,
//! the call types of `pstnCallLogRow`, licences, resource accounts and call rates. Rows
//! refer to these tables by index, which keeps a stored call small.

use crate::numbers::{CH, DE, ES, FR, GB, IT, NL, SE, US};

/// The tenant's country and currency: every charge is in euros.
pub(crate) const TENANT_COUNTRY: &str = "DE";
pub(crate) const CURRENCY: &str = "EUR";

/// An office whose users have PSTN numbers from Microsoft (Calling Plan) or a carrier
/// (Operator Connect).
pub(crate) struct Site {
    /// Index into `numbers::COUNTRIES`: the users' usage location.
    pub country: u8,
    /// Index into `numbers::RANGES` of the users' own numbers.
    pub user_range: u8,
    /// `operator`: `Microsoft` for Calling Plans, else the carrier's name.
    pub operator: &'static str,
    pub operator_connect: bool,
    pub utc_offset_hours: i64,
    /// Share of the tenant's PSTN calls at equal time of day.
    pub share: f64,
}

const fn site(
    country: u8,
    user_range: u8,
    operator: &'static str,
    utc_offset_hours: i64,
    share: f64,
) -> Site {
    Site {
        country,
        user_range,
        operator,
        operator_connect: !matches!(operator.as_bytes(), b"Microsoft"),
        utc_offset_hours,
        share,
    }
}

pub(crate) static SITES: [Site; 9] = [
    site(DE, 2, "Microsoft", 1, 0.20),       // Frankfurt, Calling Plan
    site(GB, 6, "Microsoft", 0, 0.18),       // London, Calling Plan
    site(FR, 8, "Orange Business", 1, 0.12), // Paris, Operator Connect
    site(NL, 10, "Microsoft", 1, 0.10),      // Amsterdam, Calling Plan
    site(CH, 12, "Swisscom", 1, 0.08),       // Zurich, Operator Connect
    site(ES, 14, "Telefónica", 1, 0.08),     // Madrid, Operator Connect
    site(IT, 16, "BT", 1, 0.06),             // Milan, Operator Connect
    site(SE, 18, "Microsoft", 1, 0.06),      // Stockholm, Calling Plan
    site(US, 21, "Microsoft", -5, 0.12),     // New York, Calling Plan
];

/// The Calling Plan office the toll fraud's account sits in (Frankfurt).
pub(crate) const FRAUD_SITE: u8 = 0;
/// An office without masking that calls every country at start (London).
pub(crate) const ROSTER_SITE: u8 = 1;

/// Who the row's user fields name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Party {
    /// A Teams user with a number.
    Person,
    /// An auto attendant's or call queue's resource account.
    ResourceAccount,
    /// The audio-conferencing bridge, or an unassigned number: no user.
    Nobody,
}

pub(crate) struct CallKind {
    pub name: &'static str,
    pub weight: f64,
    pub inbound: bool,
    pub party: Party,
    pub operator_connect: bool,
    /// Conference calls carry a `conferenceId`.
    pub conference: bool,
}

const fn kind(name: &'static str, weight: f64, inbound: bool, party: Party) -> CallKind {
    CallKind {
        name,
        weight,
        inbound,
        party,
        operator_connect: matches!(name.as_bytes(), [b'o', b'c', b'_', ..]),
        conference: false,
    }
}

const fn conference(kind: CallKind) -> CallKind {
    CallKind {
        conference: true,
        ..kind
    }
}

/// The call types, Calling Plan and bridge ones first, then Operator Connect's (which an
/// office has depends on its operator).
pub(crate) static CALL_KINDS: [CallKind; 16] = [
    kind("user_in", 40.0, true, Party::Person),
    kind("user_out", 34.0, false, Party::Person),
    conference(kind("user_out_conf", 2.0, false, Party::Person)),
    kind("user_out_transfer", 2.0, false, Party::Person),
    kind("user_out_forwarding", 3.0, false, Party::Person),
    kind("unassigned_in", 1.0, true, Party::Nobody),
    kind("ucap_in", 8.0, true, Party::ResourceAccount),
    kind("ucap_out", 1.0, false, Party::ResourceAccount),
    conference(kind("conf_in", 6.0, true, Party::Nobody)),
    conference(kind("conf_out", 3.0, false, Party::Nobody)),
    kind("oc_user_in", 40.0, true, Party::Person),
    kind("oc_user_out", 36.0, false, Party::Person),
    conference(kind("oc_user_out_conf", 2.0, false, Party::Person)),
    kind("oc_ucap_in", 8.0, true, Party::ResourceAccount),
    kind("oc_fmc_in", 3.0, true, Party::Person),
    kind("oc_fmc_out", 3.0, false, Party::Person),
];

/// `user_out`: what the roster and the toll fraud dial.
pub(crate) const USER_OUT: u8 = 1;

/// `licenseCapability` values (from the reference).
pub(crate) static LICENSES: [&str; 10] = [
    "MCOPSTN1",
    "MCOPSTN2",
    "MCOPSTNU",
    "MCOPSTN5",
    "MCOPSTNPP",
    "MCOEV",
    "MCOEV_VIRTUALUSER",
    "MCOMEETADD",
    "MCOMEETACPEA",
    "FREECALL",
];
pub(crate) const MCOPSTN1: u8 = 0;
pub(crate) const MCOPSTN2: u8 = 1;
pub(crate) const MCOPSTNU: u8 = 2;
pub(crate) const MCOPSTNPP: u8 = 4;
pub(crate) const MCOEV: u8 = 5;
pub(crate) const MCOEV_VIRTUALUSER: u8 = 6;
pub(crate) const MCOMEETADD: u8 = 7;
pub(crate) const MCOMEETACPEA: u8 = 8;
pub(crate) const FREECALL: u8 = 9;

/// Resource accounts of auto attendants and call queues: (display name, UPN local part).
pub(crate) static RESOURCE_ACCOUNTS: [(&str, &str); 3] = [
    ("Main Auto Attendant", "aa-main"),
    ("Service Desk Queue", "cq-servicedesk"),
    ("Sales Queue", "cq-sales"),
];

/// Per-minute rate of an international call to each country of `numbers::COUNTRIES`, in
/// ten-thousandths of a euro: cents to Europe and the US, more further away, far more to
/// the fraud destination.
pub(crate) static RATES: [u32; 16] = [
    215, 190, 240, 260, 410, 250, 255, 270, 145, 520, 890, 1230, 610, 1150, 330, 14_500,
];
