//! The random model of one call record: its sessions, their segments, and each medium's
//! streams with jitter, packet loss, round trip, network MOS degradation and concealed
//! samples, drawn from a stream of its own (the tenant's seed and the correlation id) so
//! that a record is the same every time it is derived.
//!
//! Most audio is good. A call drawn while its trunk was failing (`CallRow::degraded`) has
//! poor audio in both directions: jitter and loss up, as on a congested SBC uplink. Some
//! streams report nothing (unclassified); some segments are service to service (music on
//! hold) or client to client (a consultation with a colleague, now and then with video),
//! which have no trunk side; calls put on hold or transferred have several sessions.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::model_seed;
use crate::direct_routing::CallRow;

/// A call's record, before rendering.
pub(super) struct CallModel {
    pub sessions: Vec<SessionModel>,
    pub client: Client,
    /// The colleague a consultation session talks to (an index into `PEOPLE`).
    pub colleague: u8,
}

pub(super) struct SessionModel {
    pub start_ticks: i64,
    pub end_ticks: i64,
    pub segments: Vec<SegmentModel>,
}

pub(super) struct SegmentModel {
    pub kind: SegmentKind,
    pub media: Vec<MediaModel>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SegmentKind {
    /// The Teams user's client and the trunk side (mediation server, or the SBC itself
    /// with media bypass).
    Trunk,
    /// Two services, e.g. the mediation server and the announcement service of a hold.
    ServiceToService { role: &'static str },
    /// The user's client and a colleague's, in a consultation before a transfer.
    ClientToClient,
}

pub(super) struct MediaModel {
    pub label: &'static str,
    /// `callerToCallee`, then `calleeToCaller`.
    pub streams: [StreamModel; 2],
}

/// One stream's averages; None where the stream does not report it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct StreamModel {
    pub jitter_ms: Option<u32>,
    pub round_trip_ms: Option<u32>,
    pub packet_loss_rate: Option<f64>,
    pub degradation: Option<f64>,
    pub concealed_ratio: Option<f64>,
}

/// The user's client: personal data the record carries (and the exporter must drop).
pub(super) struct Client {
    pub platform: &'static str,
    pub user_agent: &'static str,
    pub capture_device: &'static str,
    pub render_device: &'static str,
    pub wifi: bool,
    /// Last three octets of the client's private address.
    pub address: [u8; 3],
    pub mac: [u8; 3],
    /// Last two octets of the site's public address.
    pub reflexive: [u8; 2],
}

const PLATFORMS: [(&str, &str); 4] = [
    (
        "windows",
        "Microsoft Teams/24295.605.3225.8804 (Windows NT 10.0; Win64; x64)",
    ),
    (
        "macOS",
        "Microsoft Teams/24295.606.3238.6194 (Macintosh; Intel Mac OS X 14_6)",
    ),
    ("iOS", "Microsoft Teams/6.23.1 (iPhone; iOS 17.6.1)"),
    (
        "android",
        "Microsoft Teams/1416/1.0.0.2024143204 (Android 14)",
    ),
];

const DEVICES: [&str; 5] = [
    "Headset Microphone (Jabra Evolve2 65)",
    "Microphone Array (Realtek(R) Audio)",
    "Echo Cancelling Speakerphone (Poly Sync 20)",
    "MacBook Pro Microphone",
    "Headset (Logitech Zone Wireless)",
];

/// Roles of the services a call is handed to while on hold or in a queue.
const HOLD_SERVICES: [&str; 2] = [
    "conferencingAnnouncementService",
    "skypeForBusinessCallQueues",
];

/// Share of streams that report none of the five averages (unclassified).
const UNREPORTED_SHARE: f64 = 0.04;
/// Share of a healthy trunk's streams that are poor for one reason or another.
const HEALTHY_POOR_SHARE: f64 = 0.015;
/// Share of a failing trunk's streams that are poor.
const DEGRADED_POOR_SHARE: f64 = 0.8;

/// Draws the record of `row`, an established call, for a tenant of `seed`.
pub(super) fn draw(row: &CallRow, seed: u64) -> CallModel {
    let mut rng = StdRng::seed_from_u64(model_seed(seed, row.correlation_id));
    let session_count = match rng.gen::<f64>() {
        x if x < 0.80 => 1,
        x if x < 0.97 => rng.gen_range(2..=5),
        _ => rng.gen_range(6..=12),
    };
    let (platform, user_agent) = PLATFORMS[rng.gen_range(0..PLATFORMS.len())];
    let client = Client {
        platform,
        user_agent,
        capture_device: DEVICES[rng.gen_range(0..DEVICES.len())],
        render_device: DEVICES[rng.gen_range(0..DEVICES.len())],
        wifi: rng.gen_bool(0.4),
        address: rng.gen(),
        mac: rng.gen(),
        reflexive: rng.gen(),
    };
    let colleague = rng.gen_range(0..crate::direct_routing::PEOPLE.len()) as u8;
    // The record spans the call from its invite to its end, in equal sessions.
    let start = row.invite();
    let end = row.end().unwrap_or(row.start).max(start + 1);
    let step = (end - start) / session_count;
    let sessions = (0..session_count)
        .map(|index| {
            let session_start = start + index * step;
            let session_end = if index + 1 == session_count {
                end
            } else {
                session_start + step
            };
            let consultation = index > 0 && rng.gen_bool(0.25);
            SessionModel {
                start_ticks: session_start,
                end_ticks: session_end,
                segments: draw_segments(&mut rng, row, consultation),
            }
        })
        .collect();
    CallModel {
        sessions,
        client,
        colleague,
    }
}

fn draw_segments(rng: &mut StdRng, row: &CallRow, consultation: bool) -> Vec<SegmentModel> {
    let mut segments = Vec::with_capacity(2);
    if consultation {
        let mut media = vec![audio(rng, false)];
        if rng.gen_bool(0.4) {
            media.push(other_media(rng, "main-video"));
        }
        if rng.gen_bool(0.1) {
            media.push(other_media(rng, "applicationsharing-video"));
        }
        segments.push(SegmentModel {
            kind: SegmentKind::ClientToClient,
            media,
        });
        return segments;
    }
    segments.push(SegmentModel {
        kind: SegmentKind::Trunk,
        media: vec![audio(rng, row.degraded)],
    });
    if rng.gen_bool(0.06) {
        let role = HOLD_SERVICES[rng.gen_range(0..HOLD_SERVICES.len())];
        segments.push(SegmentModel {
            kind: SegmentKind::ServiceToService { role },
            media: vec![audio(rng, false)],
        });
    }
    segments
}

fn audio(rng: &mut StdRng, degraded: bool) -> MediaModel {
    MediaModel {
        label: "main-audio",
        streams: [draw_stream(rng, degraded), draw_stream(rng, degraded)],
    }
}

/// A medium that is not audio: its streams report what video streams do.
fn other_media(rng: &mut StdRng, label: &'static str) -> MediaModel {
    MediaModel {
        label,
        streams: [draw_stream(rng, false), draw_stream(rng, false)],
    }
}

/// One stream: mostly good; poor in most streams of a failing trunk.
fn draw_stream(rng: &mut StdRng, degraded: bool) -> StreamModel {
    if rng.gen_bool(UNREPORTED_SHARE) {
        return StreamModel::default();
    }
    let mut jitter_ms = rng.gen_range(2..=18_u32);
    let mut round_trip_ms = rng.gen_range(20..=160_u32);
    let mut loss = rng.gen_range(0.0..0.02);
    let mut degradation = rng.gen_range(0.0..0.6);
    let mut concealed = rng.gen_range(0.0..0.03);
    if degraded && rng.gen_bool(DEGRADED_POOR_SHARE) {
        // A congested uplink: everything at once.
        jitter_ms = rng.gen_range(35..=110);
        round_trip_ms = rng.gen_range(80..=420);
        loss = rng.gen_range(0.06..0.3);
        degradation = rng.gen_range(1.0..3.0);
        concealed = rng.gen_range(0.05..0.2);
    } else if rng.gen_bool(HEALTHY_POOR_SHARE) {
        // A bad moment on a healthy path: one average over its threshold.
        match rng.gen_range(0..5) {
            0 => jitter_ms = rng.gen_range(35..=80),
            1 => round_trip_ms = rng.gen_range(520..=900),
            2 => loss = rng.gen_range(0.11..0.25),
            3 => degradation = rng.gen_range(1.1..2.0),
            _ => concealed = rng.gen_range(0.08..0.15),
        }
    }
    StreamModel {
        jitter_ms: Some(jitter_ms),
        round_trip_ms: (!rng.gen_bool(0.05)).then_some(round_trip_ms),
        packet_loss_rate: Some(round_to(loss, 4)),
        degradation: (!rng.gen_bool(0.03)).then_some(round_to(degradation, 2)),
        concealed_ratio: (!rng.gen_bool(0.08)).then_some(round_to(concealed, 4)),
    }
}

fn round_to(value: f64, digits: i32) -> f64 {
    let scale = 10_f64.powi(digits);
    (value * scale).round() / scale
}
