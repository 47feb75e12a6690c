//! The random model of one Direct Routing call: its call type, outcome, duration, people,
//! timestamp format and quirks, and when its row is published.
//!
//! Every random choice is drawn from a seeded `StdRng` in a fixed order, so a seed and a
//! start time always give the same calls; changing the order of draws changes every row.

use rand::rngs::StdRng;
use rand::Rng;

use super::degradation::{Degradation, DEGRADED_FAILURE_SHARE};
use super::row::{quirk, CallRow, Origin};
use super::tables::{
    CallType, CALL_TYPES, DEGRADED_408, DEGRADED_503, NORMAL_EXTERNAL_RANGES, OUTCOMES, PEOPLE,
    SUCCESS,
};
use crate::ids::random_uuid;
use crate::store::ServedFlag;
use crate::time::{TimeStyle, MS_PER_HOUR, MS_PER_MIN, MS_PER_SEC, TICKS_PER_MS};

const SUCCESS_SHARE: f64 = 0.80;
const EMERGENCY_SUCCESS_SHARE: f64 = 0.97;

/// How often each quirk appears; drawn in this order so a seed gives the same rows.
const QUIRK_ODDS: [(u8, f64); 6] = [
    (quirk::EXTRA_FIELDS, 0.01),
    (quirk::NULL_SUB_REASON, 0.005),
    (quirk::NULL_MEDIA_PATH, 0.005),
    (quirk::NULL_CALL_TYPE, 0.003),
    (quirk::NULL_SIP_CODE, 0.003),
    (quirk::UPPER_CASE_TRUNK, 0.01),
];

/// Draws one call on `trunk` that starts at `start_ms`, visible once its publication delay
/// after the call's end has passed.
pub(crate) fn draw_call(
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
    let quirks = QUIRK_ODDS
        .iter()
        .filter(|(_, odds)| rng.gen_bool(*odds))
        .fold(0, |quirks, (flag, _)| quirks | flag);
    let id = random_uuid(rng);
    let correlation_id = random_uuid(rng);
    let setup_ms = rng.gen_range(1_000..=25_000);
    // Once the last digits of the user's number, which is now the person's own; still
    // drawn so that a seed gives the same calls as before.
    let _ = rng.gen_range(0..1000_u16);
    let other_digits = rng.gen_range(0..1000_u16);
    let mut row = CallRow {
        id,
        correlation_id,
        start,
        visible_ms: 0,
        arrival_ms: 0,
        setup_ms,
        duration_s,
        other_digits,
        user: rng.gen_range(0..PEOPLE.len()) as u8,
        other_range: rng.gen_range(0..NORMAL_EXTERNAL_RANGES) as u8,
        trunk: trunk as u8,
        copy: 0,
        call_type: call_type as u8,
        outcome,
        style,
        quirks,
        origin: Origin::Live,
        degraded: degradation.fails(trunk, start_ms),
        served: ServedFlag::default(),
    };
    row.visible_ms = row.end_ms() + publication_delay_ms(rng);
    row
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

/// The index of an item drawn with probability proportional to its weight.
pub(crate) fn pick_weighted<T>(rng: &mut StdRng, items: &[T], weight: impl Fn(&T) -> f64) -> usize {
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
pub(crate) fn talk_seconds(rng: &mut StdRng) -> u32 {
    let seconds = (180_f64.ln() + 1.1 * standard_normal(rng)).exp();
    seconds.round().clamp(1.0, 4.0 * 3600.0) as u32
}

/// How long after a call ends its row shows up in Graph: mostly minutes, sometimes days,
/// so rows arrive out of order.
pub(crate) fn publication_delay_ms(rng: &mut StdRng) -> i64 {
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

pub(crate) fn time_style(rng: &mut StdRng) -> TimeStyle {
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

/// `ByotOut` in [`CALL_TYPES`].
const BYOT_OUT: u8 = 1;

/// A short outbound call (`ByotOut`) by person `user` over `trunk` to the number range
/// `other_range` (an index into `EXTERNAL_RANGES`), established and published within
/// seconds of its end: what the roster of countries and the toll fraud place.
pub(crate) fn quick_call(
    rng: &mut StdRng,
    trunk: usize,
    user: u8,
    other_range: u8,
    start_ms: i64,
    duration_s: u32,
) -> CallRow {
    // No trunk fails: these calls are meant to be seen.
    let mut row = draw_call(rng, trunk, start_ms, Degradation::Constant(usize::MAX));
    row.call_type = BYOT_OUT;
    row.outcome = SUCCESS;
    row.duration_s = duration_s;
    row.user = user;
    row.other_range = other_range;
    row.quirks = 0;
    row.visible_ms = row.end_ms() + rng.gen_range(5_000..=20_000);
    row
}
