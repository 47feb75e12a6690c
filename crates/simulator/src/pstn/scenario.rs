//! The rows of a PSTN scenario: as many calls as the scenario gives Direct Routing, around
//! the bind time, some visible from the start, some arriving late after
//! `SimHandle::release`, some malformed, for exact comparisons with the exporter's counts.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::draw::{draw_call, reprice};
use super::row::{Origin, PstnRow, MALFORMED_KINDS};
use super::tables::SITES;
use crate::direct_routing::pick_weighted;
use crate::store::HIDDEN;
use crate::traffic::Scenario;

/// The shortest time between a call's end and its row in a scenario.
const PUBLISHING_GAP_MS: i64 = 60_000;

/// The PSTN rows of a scenario tenant bound at `bind_ms`, sorted by start; drawn from their
/// own seed so that Direct Routing's rows stay as they were.
pub(crate) fn scenario_rows(seed: u64, scenario: &Scenario, bind_ms: i64) -> Vec<PstnRow> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9057_0000_0000_0001);
    let span_ms = i64::try_from(scenario.span.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let spread_ms = u32::try_from(scenario.arrival_spread.as_millis()).unwrap_or(u32::MAX);
    let total = scenario.preexisting_rows + scenario.late_rows + scenario.malformed_rows;
    let mut rows = Vec::with_capacity(total);
    let published_by_ms = bind_ms - PUBLISHING_GAP_MS.min(span_ms / 2);
    let span_ms = (published_by_ms - (bind_ms - span_ms)).max(1);
    for index in 0..total {
        let start_ms = published_by_ms - 1 - rng.gen_range(0..span_ms);
        let site = pick_weighted(&mut rng, &SITES, |s| s.share);
        let mut row = draw_call(&mut rng, site, start_ms);
        // Calls end by the time the log is published, as it only holds finished calls.
        // From the drawn millisecond, not the written start: how a start is written (its
        // fractional digits) depends on the bind time, which must not change durations.
        let room_s = (published_by_ms - 1 - start_ms) / 1000;
        row.duration_s = row
            .duration_s
            .min(u32::try_from(room_s.max(0)).unwrap_or(u32::MAX));
        reprice(&mut row);
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
