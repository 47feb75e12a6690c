//! The Direct Routing tenant's fixed data: its trunks (SBCs), people, call types, call
//! outcomes and the numbers its calls reach. Rows refer to these tables by index, which
//! keeps a stored call small.
//!
//! Rows name a trunk by index; [`TrunkNames`] gives it the FQDN of its tenant's domain.
//!
//! The tables are data, not logic; the longest of them, [`OUTCOMES`], mirrors the SIP
//! answers and `callEndSubReason` codes of the reference (`graph-call-logs.md`).

use std::borrow::Cow;

/// One Direct Routing trunk, i.e. one SBC the tenant has paired with Teams.
pub(crate) struct Trunk {
    pub fqdn: &'static str,
    /// Data centre carrying media; `None` when media bypass keeps media off Microsoft's network.
    pub media_location: Option<&'static str>,
    pub signaling_location: &'static str,
    /// The range (`numbers::RANGES`) of the users' numbers behind this trunk.
    pub user_range: u8,
    pub emergency_number: &'static str,
    pub country: &'static str,
    /// Offset of the trunk's office hours from UTC, which shapes its daily volume.
    pub utc_offset_hours: i64,
    /// Share of the tenant's calls at equal time of day.
    pub share: f64,
}

pub(crate) static TRUNKS: [Trunk; 6] = [
    Trunk {
        fqdn: "sbc01.contoso.com",
        media_location: Some("EUWE"),
        signaling_location: "EUWE",
        user_range: 0,
        emergency_number: "112",
        country: "DE",
        utc_offset_hours: 1,
        share: 0.22,
    },
    Trunk {
        fqdn: "sbc02.contoso.com",
        media_location: Some("EUNO"),
        signaling_location: "EUNO",
        user_range: 3,
        emergency_number: "112",
        country: "DE",
        utc_offset_hours: 1,
        share: 0.18,
    },
    Trunk {
        fqdn: "sbc-us-east.contoso.com",
        media_location: Some("USEA"),
        signaling_location: "USEA",
        user_range: 20,
        emergency_number: "911",
        country: "US",
        utc_offset_hours: -5,
        share: 0.20,
    },
    Trunk {
        fqdn: "sbc-us-west.contoso.com",
        media_location: None,
        signaling_location: "USWE",
        user_range: 23,
        emergency_number: "911",
        country: "US",
        utc_offset_hours: -8,
        share: 0.14,
    },
    Trunk {
        fqdn: "sbc-apac.contoso.com",
        media_location: Some("APSE"),
        signaling_location: "APSE",
        user_range: 24,
        emergency_number: "995",
        country: "SG",
        utc_offset_hours: 8,
        share: 0.16,
    },
    Trunk {
        fqdn: "sbc-legacy.fabrikam.com",
        media_location: Some("EUWE"),
        signaling_location: "EUNO",
        user_range: 5,
        emergency_number: "999",
        country: "GB",
        utc_offset_hours: 0,
        share: 0.10,
    },
];

/// Trunks of the demo tenant.
pub const DEMO_TRUNKS: usize = TRUNKS.len();

/// The most trunks a simulated tenant can have (`--simulate.trunks`).
pub const MAX_TRUNKS: usize = 6_000;

/// The FQDNs of the simulated tenant's trunks (the home tenant's, for a provider).
pub fn trunk_fqdns() -> impl Iterator<Item = &'static str> {
    TRUNKS.iter().map(|t| t.fqdn)
}

/// How a tenant names its trunks: the demo's FQDNs ([`TRUNKS`]), or the same hosts in a
/// domain of its own (`sbc01.DOMAIN`, ...), so that a provider's customers have SBCs of
/// their own unless two are given one domain.
#[derive(Clone, Debug, Default)]
pub(crate) struct TrunkNames {
    domain: Option<Box<str>>,
}

impl TrunkNames {
    /// Trunks in `domain`: a DNS name (letters, digits, `-` and `.`), since it is written
    /// into rows unescaped; `None` if it is not one.
    pub fn in_domain(domain: &str) -> Option<Self> {
        let domain = domain.trim().to_ascii_lowercase();
        let valid = !domain.is_empty()
            && domain.len() <= 200
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        valid.then(|| TrunkNames {
            domain: Some(domain.into()),
        })
    }

    /// The FQDN of copy `copy` of trunk `trunk` (copy 0 is the trunk itself; copy n of
    /// `sbc01.contoso.com` is `sbc01-n.contoso.com`).
    pub fn fqdn(&self, trunk: usize, copy: u16) -> Cow<'static, str> {
        let fqdn = TRUNKS[trunk].fqdn;
        match (&self.domain, copy) {
            (None, 0) => fqdn.into(),
            (domain, copy) => {
                let (host, own_domain) = fqdn.split_once('.').unwrap_or((fqdn, ""));
                let domain = domain.as_deref().unwrap_or(own_domain);
                if copy == 0 {
                    format!("{host}.{domain}").into()
                } else {
                    format!("{host}-{copy}.{domain}").into()
                }
            }
        }
    }

    /// The trunk (index into [`TRUNKS`]) named `fqdn` (any case), copies aside.
    pub fn position(&self, fqdn: &str) -> Option<usize> {
        let fqdn = fqdn.trim();
        (0..TRUNKS.len()).find(|&trunk| self.fqdn(trunk, 0).eq_ignore_ascii_case(fqdn))
    }
}

/// The trunk that falls over for a quarter of every hour, so that alerts have something to
/// fire on in the demo.
pub(crate) const DEGRADING_TRUNK: usize = 5;

pub(crate) struct CallType {
    pub name: &'static str,
    pub weight: f64,
    pub inbound: bool,
    /// Calls to a resource account (call queue, auto attendant) carry no Teams user.
    pub without_user: bool,
    pub emergency: bool,
}

pub(crate) static CALL_TYPES: [CallType; 7] = [
    call_type("ByotIn", 45.0, true),
    call_type("ByotOut", 40.0, false),
    call_type("ByotOutUserForwarding", 5.0, false),
    call_type("ByotOutUserTransfer", 4.0, false),
    call_type("ByotOutUserConf", 3.0, false),
    CallType {
        without_user: true,
        ..call_type("ByotInUcap", 2.5, true)
    },
    CallType {
        emergency: true,
        ..call_type("ByotOutEmergency", 0.5, false)
    },
];

const fn call_type(name: &'static str, weight: f64, inbound: bool) -> CallType {
    CallType {
        name,
        weight,
        inbound,
        without_user: false,
        emergency: false,
    }
}

/// How `callEndSubReason` follows from the final SIP code.
#[derive(Clone, Copy)]
pub(crate) enum SubReason {
    /// The SBC sent the final response: 540xxx inbound, 560xxx outbound (xxx = 000 for BYE).
    FromSbc,
    /// A Microsoft service generated the response, or the sub-reason is pinned regardless of
    /// direction.
    Fixed(i64),
}

pub(crate) struct Outcome {
    pub code: i64,
    pub phrase: &'static str,
    /// Relative weight among failures; 0 for outcomes only the degradation model picks.
    pub weight: f64,
    pub sub_reason: SubReason,
}

const fn outcome(code: i64, phrase: &'static str, weight: f64) -> Outcome {
    Outcome {
        code,
        phrase,
        weight,
        sub_reason: SubReason::FromSbc,
    }
}

/// Indices into [`OUTCOMES`] that the model picks by name.
pub(crate) const SUCCESS: u8 = 0;
pub(crate) const DEGRADED_503: u8 = 13;
pub(crate) const DEGRADED_408: u8 = 14;

pub(crate) static OUTCOMES: [Outcome; 15] = [
    outcome(0, "BYE", 0.0),
    outcome(486, "Busy Here", 25.0),
    outcome(487, "Request Terminated", 28.0),
    outcome(480, "Temporarily Unavailable", 14.0),
    outcome(408, "Request Timeout", 7.0),
    outcome(404, "Not Found", 6.0),
    outcome(603, "Decline", 7.0),
    outcome(503, "Service Unavailable", 4.0),
    outcome(500, "Server Internal Error", 2.0),
    outcome(488, "Not Acceptable Here", 2.0),
    outcome(403, "Forbidden", 2.0),
    Outcome {
        sub_reason: SubReason::Fixed(510403),
        ..outcome(403, "Forbidden", 1.5)
    },
    Outcome {
        sub_reason: SubReason::Fixed(531000),
        ..outcome(480, "Temporarily Unavailable", 1.5)
    },
    Outcome {
        sub_reason: SubReason::Fixed(560503),
        ..outcome(503, "Service Unavailable", 0.0)
    },
    Outcome {
        sub_reason: SubReason::Fixed(560408),
        ..outcome(408, "Request Timeout", 0.0)
    },
];

/// The tenant's people: (given name, surname). UPNs are `given.surname@contoso.com`.
pub(crate) static PEOPLE: [(&str, &str); 24] = [
    ("Adele", "Vance"),
    ("Alex", "Wilber"),
    ("Allan", "Deyoung"),
    ("Christie", "Cline"),
    ("Debra", "Berger"),
    ("Diego", "Siciliani"),
    ("Emily", "Braun"),
    ("Enrico", "Cattaneo"),
    ("Gerhart", "Moller"),
    ("Grady", "Archie"),
    ("Henrietta", "Mueller"),
    ("Irvin", "Sayers"),
    ("Isaiah", "Langer"),
    ("Johanna", "Lorenz"),
    ("Joni", "Sherman"),
    ("Lee", "Gu"),
    ("Lidia", "Holloway"),
    ("Lynne", "Robbins"),
    ("Megan", "Bowen"),
    ("Miriam", "Graham"),
    ("Nestor", "Wilke"),
    ("Patti", "Fernandez"),
    ("Pradeep", "Gupta"),
    ("Richard", "Malk"),
];

/// Number ranges (`numbers::RANGES`) of the other party: the first
/// [`NORMAL_EXTERNAL_RANGES`] are the tenant's normal traffic (Munich, Berlin, Frankfurt,
/// Paris, London, Chicago, New York, Singapore, Japanese mobiles, Amsterdam), the last the
/// toll-fraud destination, which only the fault calls.
pub(crate) static EXTERNAL_RANGES: [u8; 11] = [1, 0, 2, 8, 5, 22, 21, 24, 27, 10, 34];

/// How many of [`EXTERNAL_RANGES`] normal calls draw from.
pub(crate) const NORMAL_EXTERNAL_RANGES: usize = 10;
/// The index in [`EXTERNAL_RANGES`] of the toll-fraud destination.
pub(crate) const FRAUD_EXTERNAL_RANGE: u8 = 10;
