//! The rows of a Direct Routing scenario: a fixed set of calls around the bind time,
//! some visible from the start, some arriving late after `SimHandle::release`, some
//! malformed, for exact comparisons with the exporter's counts.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::degradation::Degradation;
use super::draw::{draw_call, pick_weighted};
use super::row::{CallRow, Origin, MALFORMED_KINDS};
use super::tables::TRUNKS;
use crate::store::HIDDEN;
use crate::time::MS_PER_SEC;
use crate::traffic::Scenario;

/// The shortest time between a call's end and its row in a scenario.
const PUBLISHING_GAP_MS: i64 = 60_000;

/// The rows of a scenario tenant bound at `bind_ms`, sorted by start.
pub(crate) fn scenario_rows(
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
