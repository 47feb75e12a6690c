//! The simulated tenant's telephone system: its trunks, people, call types and call outcomes,
//! and the random model that turns a seed into calls.
//!
//! A call is kept as a compact [`CallRow`] (indices into the static tables below and a few
//! integers) because the demo tenant holds hundreds of thousands of them; the JSON a client
//! sees is rendered from it page by page in `render`. Every random choice is drawn from a
//! seeded `StdRng` in a fixed order, so a seed and a start time always give the same calls.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Scenario;

/// Timestamps are kept in 100 ns ticks since the Unix epoch: Graph prints up to seven
/// fractional digits, and a row's stored start must equal the start its JSON shows so that
/// window filtering here and parsing in the exporter agree to the last digit.
pub(super) const TICKS_PER_SEC: i64 = 10_000_000;
pub(super) const TICKS_PER_MS: i64 = 10_000;

/// `visible_ms` of a row that waits for [`super::SimHandle::release`].
pub(super) const HIDDEN: i64 = i64::MAX;

const MS_PER_SEC: i64 = 1_000;
const MS_PER_MIN: i64 = 60 * MS_PER_SEC;
const MS_PER_HOUR: i64 = 60 * MS_PER_MIN;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// One Direct Routing trunk, i.e. one SBC the tenant has paired with Teams.
pub(super) struct Trunk {
    pub fqdn: &'static str,
    /// Data centre carrying media; `None` when media bypass keeps media off Microsoft's network.
    pub media_location: Option<&'static str>,
    pub signaling_location: &'static str,
    /// Start of the users' numbers behind this trunk (country and area code).
    pub number_prefix: &'static str,
    pub emergency_number: &'static str,
    pub country: &'static str,
    /// Offset of the trunk's office hours from UTC, which shapes its daily volume.
    pub utc_offset_hours: i64,
    /// Share of the tenant's calls at equal time of day.
    pub share: f64,
}

pub(super) static TRUNKS: [Trunk; 6] = [
    Trunk {
        fqdn: "sbc01.contoso.com",
        media_location: Some("EUWE"),
        signaling_location: "EUWE",
        number_prefix: "+4930",
        emergency_number: "112",
        country: "DE",
        utc_offset_hours: 1,
        share: 0.22,
    },
    Trunk {
        fqdn: "sbc02.contoso.com",
        media_location: Some("EUNO"),
        signaling_location: "EUNO",
        number_prefix: "+4940",
        emergency_number: "112",
        country: "DE",
        utc_offset_hours: 1,
        share: 0.18,
    },
    Trunk {
        fqdn: "sbc-us-east.contoso.com",
        media_location: Some("USEA"),
        signaling_location: "USEA",
        number_prefix: "+1212",
        emergency_number: "911",
        country: "US",
        utc_offset_hours: -5,
        share: 0.20,
    },
    Trunk {
        fqdn: "sbc-us-west.contoso.com",
        media_location: None,
        signaling_location: "USWE",
        number_prefix: "+1415",
        emergency_number: "911",
        country: "US",
        utc_offset_hours: -8,
        share: 0.14,
    },
    Trunk {
        fqdn: "sbc-apac.contoso.com",
        media_location: Some("APSE"),
        signaling_location: "APSE",
        number_prefix: "+6562",
        emergency_number: "995",
        country: "SG",
        utc_offset_hours: 8,
        share: 0.16,
    },
    Trunk {
        fqdn: "sbc-legacy.fabrikam.com",
        media_location: Some("EUWE"),
        signaling_location: "EUNO",
        number_prefix: "+4420",
        emergency_number: "999",
        country: "GB",
        utc_offset_hours: 0,
        share: 0.10,
    },
];

/// The trunk that falls over for a quarter of every hour, so that alerts have something to
/// fire on in the demo.
pub(super) const DEGRADING_TRUNK: usize = 5;

/// Which trunk fails, and when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Degradation {
    /// [`DEGRADING_TRUNK`] fails in minutes 40 to 55 of every hour: the demo's default.
    #[default]
    Hourly,
    /// This trunk fails all the time and no other does, so that a test can tell exactly
    /// which trunk an alert must name.
    Constant(usize),
}

impl Degradation {
    /// The constant failure of the trunk named `fqdn` (any case); `None` when no simulated
    /// trunk has that name.
    pub fn of_trunk(fqdn: &str) -> Option<Self> {
        TRUNKS
            .iter()
            .position(|t| t.fqdn.eq_ignore_ascii_case(fqdn.trim()))
            .map(Degradation::Constant)
    }

    fn fails(self, trunk: usize, start_ms: i64) -> bool {
        match self {
            Degradation::Hourly => {
                let minute = start_ms.div_euclid(MS_PER_MIN).rem_euclid(60);
                trunk == DEGRADING_TRUNK && DEGRADED_MINUTES.contains(&minute)
            }
            Degradation::Constant(failing) => trunk == failing,
        }
    }
}
const DEGRADED_MINUTES: std::ops::Range<i64> = 40..55;
const DEGRADED_FAILURE_SHARE: f64 = 0.85;

pub(super) struct CallType {
    pub name: &'static str,
    pub weight: f64,
    pub inbound: bool,
    /// Calls to a resource account (call queue, auto attendant) carry no Teams user.
    pub without_user: bool,
    pub emergency: bool,
}

pub(super) static CALL_TYPES: [CallType; 7] = [
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
pub(super) enum SubReason {
    /// The SBC sent the final response: 540xxx inbound, 560xxx outbound (xxx = 000 for BYE).
    FromSbc,
    /// A Microsoft service generated the response, or the sub-reason is pinned regardless of
    /// direction.
    Fixed(i64),
}

pub(super) struct Outcome {
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

pub(super) const SUCCESS: u8 = 0;
const DEGRADED_503: u8 = 13;
const DEGRADED_408: u8 = 14;

pub(super) static OUTCOMES: [Outcome; 15] = [
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

const SUCCESS_SHARE: f64 = 0.80;
const EMERGENCY_SUCCESS_SHARE: f64 = 0.97;

/// The tenant's people: (given name, surname). UPNs are `given.surname@contoso.com`.
pub(super) static PEOPLE: [(&str, &str); 24] = [
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

/// Country and area codes of the other party.
pub(super) static EXTERNAL_PREFIXES: [&str; 10] = [
    "+4989", "+4930", "+4969", "+33142", "+44207", "+1312", "+1646", "+6531", "+8190", "+3120",
];

/// Which malformed shape a released malformed row takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MalformedKind {
    TextStart,
    TextDuration,
    TextSuccess,
    BareNumber,
    MissingId,
}

const MALFORMED_KINDS: [MalformedKind; 5] = [
    MalformedKind::TextStart,
    MalformedKind::TextDuration,
    MalformedKind::TextSuccess,
    MalformedKind::BareNumber,
    MalformedKind::MissingId,
];

/// Why a row exists, which decides whether the ground truth counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// Generated by the live traffic model.
    Live,
    /// Scenario row visible from the start.
    Preexisting,
    /// Scenario row hidden until release.
    Late,
    /// Scenario row hidden until release whose JSON is broken; `ordinal` keeps rows of the
    /// same kind distinct even where they carry no id.
    Malformed { kind: MalformedKind, ordinal: u16 },
}

/// Bit flags for rows that exercise lenient parsing.
pub(super) mod quirk {
    pub const EXTRA_FIELDS: u8 = 1;
    pub const NULL_SUB_REASON: u8 = 2;
    pub const NULL_MEDIA_PATH: u8 = 4;
    pub const NULL_CALL_TYPE: u8 = 8;
    pub const NULL_SIP_CODE: u8 = 16;
    /// The trunk's FQDN in upper case: DNS names are case-insensitive, and admins type them.
    pub const UPPER_CASE_TRUNK: u8 = 32;
}

/// How a row prints its timestamps: the low three bits give the number of fractional
/// digits (0–7), [`TimeStyle::OFFSET`] selects `+00:00` instead of `Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TimeStyle(pub u8);

impl TimeStyle {
    pub const OFFSET: u8 = 8;

    pub fn digits(self) -> u32 {
        u32::from(self.0 & 7)
    }

    pub fn plus_offset(self) -> bool {
        self.0 & Self::OFFSET != 0
    }

    /// Truncates `ticks` to the precision this style prints.
    pub fn quantize(self, ticks: i64) -> i64 {
        let step = 10_i64.pow(7 - self.digits());
        ticks.div_euclid(step) * step
    }
}

/// One call as the tenant stores it.
#[derive(Clone, Debug)]
pub(super) struct CallRow {
    pub id: u128,
    pub correlation_id: u128,
    /// Start time in ticks, already truncated to the precision the row prints.
    pub start: i64,
    /// Clock time (ms) from which the row is in results; [`HIDDEN`] until released.
    pub visible_ms: i64,
    /// For rows hidden until release: how long after the release they appear.
    pub arrival_ms: u32,
    pub setup_ms: u32,
    pub duration_s: u32,
    pub user_digits: u16,
    pub other_digits: u16,
    pub user: u8,
    pub other_prefix: u8,
    pub trunk: u8,
    /// Which copy of the trunk carried the call (`--simulate.trunks`); 0 is the trunk itself.
    pub copy: u16,
    pub call_type: u8,
    pub outcome: u8,
    pub style: TimeStyle,
    pub quirks: u8,
    pub origin: Origin,
}

impl CallRow {
    pub fn trunk(&self) -> &'static Trunk {
        &TRUNKS[usize::from(self.trunk)]
    }

    pub fn call_type(&self) -> &'static CallType {
        &CALL_TYPES[usize::from(self.call_type)]
    }

    pub fn outcome(&self) -> &'static Outcome {
        &OUTCOMES[usize::from(self.outcome)]
    }

    pub fn successful(&self) -> bool {
        self.outcome == SUCCESS
    }

    pub fn sub_reason(&self) -> Option<i64> {
        if self.quirks & quirk::NULL_SUB_REASON != 0 {
            return None;
        }
        let outcome = self.outcome();
        Some(match outcome.sub_reason {
            SubReason::Fixed(code) => code,
            SubReason::FromSbc if self.call_type().inbound => 540_000 + outcome.code,
            SubReason::FromSbc => 560_000 + outcome.code,
        })
    }

    /// The call type as the row prints it (null for a few rows).
    pub fn call_type_name(&self) -> Option<&'static str> {
        (self.quirks & quirk::NULL_CALL_TYPE == 0).then(|| self.call_type().name)
    }

    /// The final SIP code as the row prints it (null for a few rows).
    pub fn sip_code(&self) -> Option<i64> {
        (self.quirks & quirk::NULL_SIP_CODE == 0).then(|| self.outcome().code)
    }

    /// The trunk FQDN as the row prints it.
    pub fn trunk_fqdn(&self) -> std::borrow::Cow<'static, str> {
        let fqdn = self.trunk().fqdn;
        if self.copy > 0 {
            // Copy n of `sbc01.contoso.com` is `sbc01-n.contoso.com`.
            let (host, domain) = fqdn.split_once('.').unwrap_or((fqdn, ""));
            let copy = format!("{host}-{}.{domain}", self.copy);
            return if self.quirks & quirk::UPPER_CASE_TRUNK != 0 {
                copy.to_ascii_uppercase().into()
            } else {
                copy.into()
            };
        }
        if self.quirks & quirk::UPPER_CASE_TRUNK != 0 {
            fqdn.to_ascii_uppercase().into()
        } else {
            fqdn.into()
        }
    }

    pub fn media_path(&self) -> Option<&'static str> {
        if self.quirks & quirk::NULL_MEDIA_PATH != 0 {
            return None;
        }
        self.trunk().media_location
    }

    pub fn invite(&self) -> i64 {
        self.start - i64::from(self.setup_ms) * TICKS_PER_MS
    }

    /// End of a successful call; failed calls print year 1.
    pub fn end(&self) -> Option<i64> {
        self.successful()
            .then(|| self.start + i64::from(self.duration_s) * TICKS_PER_SEC)
    }

    /// Failure time of a failed call, which Graph reports as its start as well.
    pub fn failure(&self) -> Option<i64> {
        (!self.successful()).then_some(self.start)
    }

    fn end_ms(&self) -> i64 {
        self.end().unwrap_or(self.start).div_euclid(TICKS_PER_MS)
    }

    pub fn is_visible(&self, now_ms: i64) -> bool {
        self.visible_ms <= now_ms
    }
}

/// Stamps the version (4) and variant bits of a random UUID onto `raw`.
pub(super) fn as_uuid_v4(raw: u128) -> u128 {
    (raw & !(0xF000_u128 << 64) & !(0xC_u128 << 60)) | (0x4000_u128 << 64) | (0x8_u128 << 60)
}

/// A random v4-style UUID.
pub(super) fn random_uuid(rng: &mut impl Rng) -> u128 {
    as_uuid_v4(rng.gen())
}

fn pick_weighted<T>(rng: &mut StdRng, items: &[T], weight: impl Fn(&T) -> f64) -> usize {
    let total: f64 = items.iter().map(&weight).sum();
    let mut target = rng.gen::<f64>() * total;
    for (index, item) in items.iter().enumerate() {
        let w = weight(item);
        if target < w {
            return index;
        }
        target -= w;
    }
    // Rounding can leave a sliver past the last weight; the last item with weight takes it.
    items
        .iter()
        .rposition(|item| weight(item) > 0.0)
        .unwrap_or(0)
}

fn standard_normal(rng: &mut StdRng) -> f64 {
    // Box–Muller; `1 - u` keeps the logarithm's argument in (0, 1].
    let u1 = 1.0 - rng.gen::<f64>();
    let u2 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Conversation length of an established call: log-normal around three minutes, at most 4 h.
fn talk_seconds(rng: &mut StdRng) -> u32 {
    let seconds = (180_f64.ln() + 1.1 * standard_normal(rng)).exp();
    seconds.round().clamp(1.0, 4.0 * 3600.0) as u32
}

/// How long after a call ends its row shows up in Graph: mostly minutes, sometimes days,
/// so rows arrive out of order.
fn publication_delay_ms(rng: &mut StdRng) -> i64 {
    let bucket = rng.gen::<f64>();
    let (low, high) = if bucket < 0.55 {
        (30 * MS_PER_SEC, 5 * MS_PER_MIN)
    } else if bucket < 0.85 {
        (5 * MS_PER_MIN, MS_PER_HOUR)
    } else if bucket < 0.97 {
        (MS_PER_HOUR, 6 * MS_PER_HOUR)
    } else {
        (6 * MS_PER_HOUR, 48 * MS_PER_HOUR)
    };
    rng.gen_range(low..high)
}

fn time_style(rng: &mut StdRng) -> TimeStyle {
    // Most rows print milliseconds or ticks, the rest anything from none to six digits.
    let digits = match rng.gen_range(0..10) {
        0..=3 => 7,
        4..=6 => 3,
        _ => rng.gen_range(0..=6),
    };
    let offset = if rng.gen_bool(0.2) {
        TimeStyle::OFFSET
    } else {
        0
    };
    TimeStyle(digits | offset)
}

fn draw_outcome(
    rng: &mut StdRng,
    trunk: usize,
    call_type: &CallType,
    start_ms: i64,
    degradation: Degradation,
) -> u8 {
    if degradation.fails(trunk, start_ms) && rng.gen_bool(DEGRADED_FAILURE_SHARE) {
        return if rng.gen_bool(0.7) {
            DEGRADED_503
        } else {
            DEGRADED_408
        };
    }
    let success_share = if call_type.emergency {
        EMERGENCY_SUCCESS_SHARE
    } else {
        SUCCESS_SHARE
    };
    if rng.gen_bool(success_share) {
        SUCCESS
    } else {
        pick_weighted(rng, &OUTCOMES, |o| o.weight) as u8
    }
}

/// Draws one call on `trunk` that starts at `start_ms`, visible once its publication delay
/// after the call's end has passed.
pub(super) fn draw_call(
    rng: &mut StdRng,
    trunk: usize,
    start_ms: i64,
    degradation: Degradation,
) -> CallRow {
    let style = time_style(rng);
    let start = style.quantize(start_ms * TICKS_PER_MS + rng.gen_range(0..TICKS_PER_MS));
    let call_type = pick_weighted(rng, &CALL_TYPES, |c| c.weight);
    let outcome = draw_outcome(rng, trunk, &CALL_TYPES[call_type], start_ms, degradation);
    let duration_s = if outcome == SUCCESS {
        talk_seconds(rng)
    } else {
        0
    };
    // How often each quirk appears; drawn in this order so a seed gives the same rows.
    const QUIRK_ODDS: [(u8, f64); 6] = [
        (quirk::EXTRA_FIELDS, 0.01),
        (quirk::NULL_SUB_REASON, 0.005),
        (quirk::NULL_MEDIA_PATH, 0.005),
        (quirk::NULL_CALL_TYPE, 0.003),
        (quirk::NULL_SIP_CODE, 0.003),
        (quirk::UPPER_CASE_TRUNK, 0.01),
    ];
    let quirks = QUIRK_ODDS
        .iter()
        .filter(|(_, odds)| rng.gen_bool(*odds))
        .fold(0, |quirks, (flag, _)| quirks | flag);
    let mut row = CallRow {
        id: random_uuid(rng),
        correlation_id: random_uuid(rng),
        start,
        visible_ms: 0,
        arrival_ms: 0,
        setup_ms: rng.gen_range(1_000..=25_000),
        duration_s,
        user_digits: rng.gen_range(0..1000),
        other_digits: rng.gen_range(0..1000),
        user: rng.gen_range(0..PEOPLE.len()) as u8,
        other_prefix: rng.gen_range(0..EXTERNAL_PREFIXES.len()) as u8,
        trunk: trunk as u8,
        copy: 0,
        call_type: call_type as u8,
        outcome,
        style,
        quirks,
        origin: Origin::Live,
    };
    row.visible_ms = row.end_ms() + publication_delay_ms(rng);
    row
}

/// Relative call volume at a local time: office hours on weekdays, a trickle at night and
/// at weekends.
fn office_hours_shape(local_ms: i64) -> f64 {
    let hour = local_ms.div_euclid(MS_PER_HOUR).rem_euclid(24);
    // 1970-01-01 was a Thursday; 0 = Monday.
    let weekday = (local_ms.div_euclid(MS_PER_DAY) + 3).rem_euclid(7);
    let weekday_level = match hour {
        0..=5 => 0.06,
        6 | 7 => 0.5,
        8..=11 => 1.8,
        12 => 1.2,
        13..=16 => 1.7,
        17 | 18 => 0.7,
        _ => 0.2,
    };
    let office = if weekday >= 5 {
        weekday_level * 0.15
    } else {
        weekday_level
    };
    // Contact centres, emergency lines and global teams call around the clock.
    ROUND_THE_CLOCK + office
}

/// The share of traffic that does not follow office hours.
const ROUND_THE_CLOCK: f64 = 0.35;

/// Live traffic: a non-homogeneous Poisson process per trunk, generated by thinning a
/// homogeneous process at the peak rate. Candidates are processed strictly in time order,
/// so the calls produced do not depend on how often [`LiveGenerator::generate_until`] runs.
pub(super) struct LiveGenerator {
    rng: StdRng,
    next_candidate_ms: f64,
    /// Calls per ms of each trunk where its office-hours shape is 1.
    unit_rates: [f64; TRUNKS.len()],
    /// Upper bound of the total rate (calls per ms).
    peak_rate: f64,
    /// Which trunk fails; it may change between calls of [`LiveGenerator::generate_until`].
    pub degradation: Degradation,
    /// How many copies of each trunk carry its calls (1: the trunk alone).
    copies: [u16; TRUNKS.len()],
}

/// The most trunks `--simulate.trunks` may ask for.
pub const MAX_TRUNKS: usize = 6_000;

impl LiveGenerator {
    /// Spreads the calls of the tenant's trunks over `trunks` trunks in all (at least the
    /// tenant's own): trunk k beyond them is a copy of trunk k mod 6, with its share of
    /// calls split evenly among the copies and otherwise the same (media location,
    /// numbers, office hours, failures), so that a tenant can have as many series as the
    /// largest ones.
    pub fn with_trunks(mut self, trunks: usize) -> Self {
        let trunks = trunks.clamp(TRUNKS.len(), MAX_TRUNKS);
        self.copies = std::array::from_fn(|i| ((trunks - i).div_ceil(TRUNKS.len())) as u16);
        self
    }
}

impl LiveGenerator {
    pub fn new(seed: u64, calls_per_day: f64, from_ms: i64) -> Self {
        let calls_per_day = if calls_per_day.is_finite() {
            calls_per_day.max(0.0)
        } else {
            0.0
        };
        let week_hours = (0..7 * 24).map(|h| office_hours_shape(h * MS_PER_HOUR));
        let mean_shape = week_hours.clone().sum::<f64>() / (7.0 * 24.0);
        let peak_shape = week_hours.fold(0.0, f64::max);
        let total_share: f64 = TRUNKS.iter().map(|t| t.share).sum();
        let per_ms = calls_per_day / MS_PER_DAY as f64;
        let unit_rates =
            std::array::from_fn(|i| per_ms * TRUNKS[i].share / total_share / mean_shape);
        let peak_rate = unit_rates.iter().sum::<f64>() * peak_shape;
        let mut generator = LiveGenerator {
            rng: StdRng::seed_from_u64(seed),
            next_candidate_ms: from_ms as f64,
            unit_rates,
            peak_rate,
            degradation: Degradation::Hourly,
            copies: [1; TRUNKS.len()],
        };
        generator.advance();
        generator
    }

    fn advance(&mut self) {
        if self.peak_rate > 0.0 {
            let gap = -(1.0 - self.rng.gen::<f64>()).ln() / self.peak_rate;
            self.next_candidate_ms += gap;
        } else {
            self.next_candidate_ms = f64::INFINITY;
        }
    }

    /// All calls that start after the previous call up to and including `until_ms`, in
    /// start order (before truncation of their printed start).
    pub fn generate_until(&mut self, until_ms: i64) -> Vec<CallRow> {
        let mut calls = Vec::new();
        while self.next_candidate_ms <= until_ms as f64 {
            let at_ms = self.next_candidate_ms.floor() as i64;
            self.advance();
            let rates: [f64; TRUNKS.len()] = std::array::from_fn(|i| {
                let local_ms = at_ms + TRUNKS[i].utc_offset_hours * MS_PER_HOUR;
                self.unit_rates[i] * office_hours_shape(local_ms)
            });
            let total: f64 = rates.iter().sum();
            if self.rng.gen::<f64>() * self.peak_rate >= total {
                continue;
            }
            let trunk = pick_weighted(&mut self.rng, &rates, |r| *r);
            let mut call = draw_call(&mut self.rng, trunk, at_ms, self.degradation);
            // Drawn only with copies, so that a seed gives the same calls as ever without.
            if self.copies[trunk] > 1 {
                call.copy = self.rng.gen_range(0..self.copies[trunk]);
            }
            calls.push(call);
        }
        calls
    }
}

/// The shortest time between a call's end and its row in a scenario.
const PUBLISHING_GAP_MS: i64 = 60_000;

/// The rows of a scenario tenant bound at `bind_ms`, sorted by start.
pub(super) fn scenario_rows(
    seed: u64,
    scenario: &Scenario,
    bind_ms: i64,
    degradation: Degradation,
) -> Vec<CallRow> {
    let mut rng = StdRng::seed_from_u64(seed);
    let span_ms = i64::try_from(scenario.span.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let spread_ms = u32::try_from(scenario.arrival_spread.as_millis()).unwrap_or(u32::MAX);
    let total = scenario.preexisting_rows + scenario.late_rows + scenario.malformed_rows;
    let mut rows = Vec::with_capacity(total);
    // Graph publishes a row a minute or more after the call ended, so no call in the log
    // at bind time ended in the last minute (a shorter span shrinks the gap to fit).
    let published_by_ms = bind_ms - PUBLISHING_GAP_MS.min(span_ms / 2);
    let span_ms = (published_by_ms - (bind_ms - span_ms)).max(1);
    for index in 0..total {
        // Starts lie in [bind - span, published_by); calls end by then, as the log only
        // holds finished calls.
        let start_ms = published_by_ms - 1 - rng.gen_range(0..span_ms);
        let trunk = pick_weighted(&mut rng, &TRUNKS, |t| t.share);
        let mut row = draw_call(&mut rng, trunk, start_ms, degradation);
        let room_s = (published_by_ms - start_ms) / MS_PER_SEC;
        row.duration_s = row
            .duration_s
            .min(u32::try_from(room_s).unwrap_or(u32::MAX));
        if index < scenario.preexisting_rows {
            row.origin = Origin::Preexisting;
            row.visible_ms = bind_ms;
        } else {
            row.origin = if index < scenario.preexisting_rows + scenario.late_rows {
                Origin::Late
            } else {
                let ordinal = index - scenario.preexisting_rows - scenario.late_rows;
                Origin::Malformed {
                    kind: MALFORMED_KINDS[ordinal % MALFORMED_KINDS.len()],
                    ordinal: u16::try_from(ordinal / MALFORMED_KINDS.len()).unwrap_or(u16::MAX),
                }
            };
            row.visible_ms = HIDDEN;
            row.arrival_ms = rng.gen_range(0..=spread_ms);
        }
        rows.push(row);
    }
    rows.sort_by_key(|row| (row.start, row.id));
    rows
}
