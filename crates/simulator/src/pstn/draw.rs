//! The random model of one PSTN call: its office, call type, far end, licence, duration,
//! charges, nulls and when its row is published.
//!
//! Every random choice is drawn from a seeded `StdRng` in a fixed order, so a seed and a
//! start time always give the same calls; changing the order of draws changes every row.

use rand::rngs::StdRng;
use rand::Rng;

use super::row::{digits_needed, quirk, Origin, PstnRow};
use super::tables::{
    Party, CALL_KINDS, FREECALL, MCOEV, MCOEV_VIRTUALUSER, MCOMEETACPEA, MCOMEETADD, MCOPSTN1,
    MCOPSTN2, MCOPSTNPP, MCOPSTNU, RATES, SITES,
};
use crate::direct_routing::{
    pick_weighted, publication_delay_ms, talk_seconds, time_style, PEOPLE,
};
use crate::ids::random_uuid;
use crate::numbers::{NORMAL_COUNTRIES, RANGES};
use crate::store::ServedFlag;
use crate::time::{TICKS_PER_MS, TICKS_PER_SEC};

/// Share of outbound calls that stay in the office's country, and of inbound calls that
/// come from it.
const DOMESTIC_OUT: f64 = 0.65;
const DOMESTIC_IN: f64 = 0.75;

/// How often each null or extra field appears; drawn in this order.
const QUIRK_ODDS: [(u16, f64); 15] = [
    (quirk::NULL_CALL_ID, 0.004),
    (quirk::NULL_USER, 0.003),
    (quirk::NULL_DESTINATION_CONTEXT, 0.01),
    (quirk::NULL_DESTINATION_NAME, 0.003),
    (quirk::NULL_LICENSE, 0.003),
    (quirk::NULL_INVENTORY, 0.003),
    (quirk::NULL_OPERATOR, 0.002),
    (quirk::NULL_DURATION_SOURCE, 0.003),
    (quirk::NULL_COUNTRY_CODES, 0.002),
    (quirk::NULL_CHARGES, 0.002),
    (quirk::NULL_NUMBERS, 0.002),
    (quirk::NULL_CALL_TYPE, 0.002),
    (quirk::NULL_DURATION, 0.002),
    (quirk::NULL_END, 0.002),
    (quirk::OTHER_PARTY_COUNTRY, 0.3),
];

/// Draws one call of office `site` that starts at `start_ms`, visible once its publication
/// delay after the call's end has passed.
pub(crate) fn draw_call(rng: &mut StdRng, site: usize, start_ms: i64) -> PstnRow {
    let site = site.min(SITES.len() - 1);
    let operator_connect = SITES[site].operator_connect;
    let style = time_style(rng);
    let start = style.quantize(start_ms * TICKS_PER_MS + rng.gen_range(0..TICKS_PER_MS));
    let kind = pick_weighted(rng, &CALL_KINDS, |k| {
        if k.operator_connect == operator_connect {
            k.weight
        } else {
            0.0
        }
    });
    let call_kind = &CALL_KINDS[kind];
    let domestic = rng.gen_bool(if call_kind.inbound {
        DOMESTIC_IN
    } else {
        DOMESTIC_OUT
    });
    let country = if domestic {
        usize::from(SITES[site].country)
    } else {
        // Any other normal country, evenly.
        let other = rng.gen_range(0..NORMAL_COUNTRIES - 1);
        if other >= usize::from(SITES[site].country) {
            other + 1
        } else {
            other
        }
    };
    let far_range = pick_range(rng, country);
    let duration_s = if rng.gen_bool(0.03) {
        0
    } else {
        talk_seconds(rng)
    };
    let user = rng.gen_range(0..PEOPLE.len()) as u8;
    let mut quirks = QUIRK_ODDS
        .iter()
        .filter(|(_, odds)| rng.gen_bool(*odds))
        .fold(0, |quirks, (flag, _)| quirks | flag);
    // Graph often leaves the context of an inbound call empty.
    if call_kind.inbound && rng.gen_bool(0.5) {
        quirks |= quirk::NULL_DESTINATION_CONTEXT;
    }
    let mut row = PstnRow {
        id: random_uuid(rng),
        start,
        visible_ms: 0,
        arrival_ms: 0,
        duration_s,
        digits: rng.gen(),
        charge: 0,
        connection_charge: 0,
        charge_digits: 2,
        site: site as u8,
        kind: kind as u8,
        user,
        far_range,
        license: 0,
        style,
        quirks,
        origin: Origin::Live,
        served: ServedFlag::default(),
    };
    row.license = draw_license(rng, &row);
    price(rng, &mut row);
    row.visible_ms = row.end_ticks().div_euclid(TICKS_PER_MS) + publication_delay_ms(rng);
    row
}

/// A range of normal numbers in `country`, evenly among its ranges.
fn pick_range(rng: &mut StdRng, country: usize) -> u8 {
    let count = RANGES
        .iter()
        .filter(|r| usize::from(r.country) == country)
        .count();
    let nth = rng.gen_range(0..count.max(1));
    RANGES
        .iter()
        .enumerate()
        .filter(|(_, r)| usize::from(r.country) == country)
        .nth(nth)
        .map_or(0, |(index, _)| index as u8)
}

/// The licence that carried the call: the resource accounts', the bridge's, Phone System
/// alone for Operator Connect, else the user's Calling Plan (pay-per-minute credits for
/// international calls beyond a domestic plan), and now and then one not rated.
fn draw_license(rng: &mut StdRng, row: &PstnRow) -> u8 {
    if rng.gen_bool(0.004) {
        return FREECALL;
    }
    let kind = row.kind();
    match kind.party {
        Party::ResourceAccount => MCOEV_VIRTUALUSER,
        Party::Nobody if kind.conference => {
            if rng.gen_bool(0.8) {
                MCOMEETADD
            } else {
                MCOMEETACPEA
            }
        }
        _ if kind.operator_connect => MCOEV,
        _ => {
            // Each person has one plan.
            let plan = [MCOPSTN1, MCOPSTNU, MCOPSTN2][usize::from(row.user) % 3];
            if plan == MCOPSTN1 && !kind.inbound && row.international() {
                MCOPSTNPP
            } else {
                plan
            }
        }
    }
}

/// Charges: none for inbound, unrated or domestic calls; international ones by the minute
/// at the destination's rate, sometimes with a connection fee.
fn price(rng: &mut StdRng, row: &mut PstnRow) {
    let connection = rng.gen_range(300..=1_500_u32);
    let with_connection = rng.gen_bool(0.3);
    let extra_digits = rng.gen_range(0..=2_u8);
    row.connection_charge = 0;
    if charged(row) && with_connection {
        row.connection_charge = connection;
    }
    row.charge_digits = 2 + extra_digits;
    reprice(row);
}

fn charged(row: &PstnRow) -> bool {
    !row.kind().inbound && row.license != FREECALL && row.international()
}

/// Sets the charge from the call's duration (after a scenario shortened it), with enough
/// fractional digits to show both amounts exactly.
pub(crate) fn reprice(row: &mut PstnRow) {
    row.charge = 0;
    if charged(row) {
        let minutes = row.duration_s.div_ceil(60);
        let rate = RATES
            .get(usize::from(row.far_country_index()))
            .copied()
            .unwrap_or(0);
        row.charge = minutes.saturating_mul(rate);
    }
    let needed = digits_needed(row.charge).max(digits_needed(row.connection_charge));
    row.charge_digits = row.charge_digits.max(needed).min(4);
}

impl PstnRow {
    fn far_country_index(&self) -> u8 {
        RANGES
            .get(usize::from(self.far_range))
            .map_or(0, |range| range.country)
    }
}

/// A short call to `far_range` by a person of `site`, published within seconds: what the
/// roster and the toll fraud place.
pub(crate) fn quick_call(
    rng: &mut StdRng,
    site: u8,
    user: u8,
    far_range: u8,
    start_ms: i64,
    duration_s: u32,
) -> PstnRow {
    let mut row = draw_call(rng, usize::from(site), start_ms);
    row.kind = super::tables::USER_OUT;
    row.user = user;
    row.far_range = far_range;
    row.duration_s = duration_s;
    row.quirks = 0;
    row.license = MCOPSTN2;
    price(rng, &mut row);
    let end_ms = (row.start + i64::from(duration_s) * TICKS_PER_SEC).div_euclid(TICKS_PER_MS);
    row.visible_ms = end_ms + rng.gen_range(5_000..=20_000);
    row
}
