//! A call record's JSON as Graph's `callRecord` with `$expand=sessions($expand=segments)`
//! has it: endpoints typed `participantEndpoint` (the Teams client, with the user's
//! identity) or `serviceEndpoint` (with `userAgent.role`), media with the network and
//! device details Graph reports (addresses, device names: personal data, present here so
//! that the exporter's handling of them is tested), and streams whose durations are ISO
//! 8601 (`PT0.016S`).
//!
//! Records are built as `serde_json::Value`: one is rendered per request, not a thousand
//! as for a call-log page, and paging slices its `sessions`.

use serde_json::{json, Value};

use super::model::{draw, CallModel, Client, MediaModel, SegmentKind, StreamModel};
use crate::direct_routing::{user_id, CallRow, TrunkNames, PEOPLE};
use crate::ids::{as_uuid_v4, uuid};
use crate::numbers::mix;
use crate::time::{timestamp, TimeStyle, TICKS_PER_MS};

/// What a record's JSON takes from its tenant rather than from its row.
pub(crate) struct RecordContext<'a> {
    pub seed: u64,
    pub names: &'a TrunkNames,
    /// The tenant's base URL, for `@odata.context`.
    pub base_url: &'a str,
    /// Its `lastModifiedDateTime` (clock ms): when it was published.
    pub last_modified_ms: i64,
}

/// Graph's timestamps in records: seven fractional digits.
const RECORD_TIME: TimeStyle = TimeStyle(7);

const PARTICIPANT: &str = "#microsoft.graph.callRecords.participantEndpoint";
const SERVICE: &str = "#microsoft.graph.callRecords.serviceEndpoint";

/// The whole record of `row` (an established call), every session inline.
pub(crate) fn record_json(row: &CallRow, context: &RecordContext<'_>) -> Value {
    let model = draw(row, context.seed);
    let ids = IdSource(mix(context.seed ^ row.correlation_id as u64));
    let (given, surname) = PEOPLE[usize::from(row.user)];
    let user = json!({"user": {
        "id": uuid(user_id(row.user)),
        "displayName": format!("{given} {surname}"),
    }});
    let (caller_number, callee_number) = row.numbers();
    let inbound = row.call_type().inbound;
    let other_number = if inbound {
        caller_number
    } else {
        callee_number
    };
    let phone = json!({"phone": {"id": other_number, "displayName": null}});
    let endpoints = Endpoints::new(row, context.names, &model, user.clone());
    let mut modalities = vec!["audio"];
    let sessions: Vec<Value> = model
        .sessions
        .iter()
        .enumerate()
        .map(|(index, session)| {
            let segments: Vec<Value> = session
                .segments
                .iter()
                .enumerate()
                .map(|(segment_index, segment)| {
                    for media in &segment.media {
                        let modality = match media.label {
                            "main-video" => "video",
                            label if label.starts_with("applicationsharing") => "screenSharing",
                            _ => "audio",
                        };
                        if !modalities.contains(&modality) {
                            modalities.push(modality);
                        }
                    }
                    let (caller, callee) = endpoints.of(segment.kind, inbound);
                    json!({
                        "id": ids.next(index * 16 + segment_index + 1),
                        "startDateTime": timestamp(session.start_ticks, RECORD_TIME),
                        "endDateTime": timestamp(session.end_ticks, RECORD_TIME),
                        "caller": caller.json,
                        "callee": callee.json,
                        "failureInfo": null,
                        "media": segment.media.iter().enumerate().map(|(n, media)| {
                            media_json(media, &caller, &callee, row.trunk().media_location.is_none() && segment.kind == SegmentKind::Trunk, &ids, index * 16 + segment_index, n)
                        }).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let (caller, callee) = (&segments[0]["caller"], &segments[0]["callee"]);
            json!({
                "id": ids.next(index * 16),
                "modalities": ["audio"],
                "startDateTime": timestamp(session.start_ticks, RECORD_TIME),
                "endDateTime": timestamp(session.end_ticks, RECORD_TIME),
                "isTest": false,
                "caller": caller.clone(),
                "callee": callee.clone(),
                "failureInfo": null,
                "segments": segments,
            })
        })
        .collect();
    let start = model.sessions.first().map_or(row.start, |s| s.start_ticks);
    let end = model.sessions.last().map_or(row.start, |s| s.end_ticks);
    json!({
        "@odata.context": format!(
            "{}/v1.0/$metadata#communications/callRecords(sessions(segments()))/$entity",
            context.base_url
        ),
        "id": uuid(row.correlation_id),
        "version": 1,
        "type": "peerToPeer",
        "modalities": modalities,
        "lastModifiedDateTime": timestamp(context.last_modified_ms * TICKS_PER_MS, RECORD_TIME),
        "startDateTime": timestamp(start, RECORD_TIME),
        "endDateTime": timestamp(end, RECORD_TIME),
        "joinWebUrl": null,
        "organizer": if inbound { phone.clone() } else { user.clone() },
        "participants": [user, phone],
        "sessions": sessions,
    })
}

/// Session and segment ids: fixed by the call, distinct within it.
struct IdSource(u64);

impl IdSource {
    fn next(&self, n: usize) -> String {
        let high = mix(self.0 ^ (n as u64).wrapping_mul(2));
        let low = mix(self.0 ^ (n as u64).wrapping_mul(2).wrapping_add(1));
        uuid(as_uuid_v4((u128::from(high) << 64) | u128::from(low)))
    }
}

/// An endpoint of a segment with the network and device its media report for it.
#[derive(Clone)]
struct Endpoint {
    json: Value,
    network: Value,
    device: Value,
}

/// The endpoints a call's segments are made of.
struct Endpoints {
    client: Endpoint,
    colleague: Endpoint,
    trunk_side: Endpoint,
    /// The mediation server that hands the call to a hold service.
    mediation: Endpoint,
    hold_services: Vec<(&'static str, Endpoint)>,
}

impl Endpoints {
    fn new(row: &CallRow, names: &TrunkNames, model: &CallModel, user: Value) -> Self {
        let client = &model.client;
        let (given, surname) = PEOPLE[usize::from(model.colleague)];
        let colleague_identity = json!({"user": {
            "id": uuid(user_id(model.colleague)),
            "displayName": format!("{given} {surname}"),
        }});
        let bypass = row.trunk().media_location.is_none();
        let sbc = names.fqdn(usize::from(row.trunk), row.copy);
        let trunk_side = if bypass {
            service(
                "gateway",
                &format!("AudioCodes/7.40A.500.326 ({sbc})"),
                "203.0.113.",
                row.trunk,
            )
        } else {
            mediation_server(row.trunk)
        };
        let hold_services = model
            .sessions
            .iter()
            .flat_map(|session| &session.segments)
            .filter_map(|segment| match segment.kind {
                SegmentKind::ServiceToService { role } => Some((
                    role,
                    service(role, "RTCC/7.0.0.0 ServiceCall", "52.113.", row.trunk),
                )),
                _ => None,
            })
            .collect();
        Endpoints {
            client: participant(user, client, 0),
            colleague: participant(colleague_identity, client, 1),
            trunk_side,
            mediation: mediation_server(row.trunk),
            hold_services,
        }
    }

    /// `(caller, callee)` of a segment of this kind.
    fn of(&self, kind: SegmentKind, inbound: bool) -> (Endpoint, Endpoint) {
        match kind {
            SegmentKind::Trunk if inbound => (self.trunk_side.clone(), self.client.clone()),
            SegmentKind::Trunk => (self.client.clone(), self.trunk_side.clone()),
            SegmentKind::ClientToClient => (self.client.clone(), self.colleague.clone()),
            SegmentKind::ServiceToService { role } => {
                let service = self
                    .hold_services
                    .iter()
                    .find(|(r, _)| *r == role)
                    .map_or_else(|| self.mediation.clone(), |(_, e)| e.clone());
                (self.mediation.clone(), service)
            }
        }
    }
}

/// A Teams client; `which` tells the user's (0) from a colleague's (1) addresses.
fn participant(identity: Value, client: &Client, which: u8) -> Endpoint {
    let [a, b, c] = client.address;
    let [m1, m2, m3] = client.mac;
    let [r1, r2] = client.reflexive;
    let c = c.wrapping_add(which);
    Endpoint {
        json: json!({
            "@odata.type": PARTICIPANT,
            "identity": identity,
            "userAgent": {
                "@odata.type": "#microsoft.graph.callRecords.clientUserAgent",
                "platform": client.platform,
                "productFamily": "teams",
                "headerValue": client.user_agent,
                "applicationVersion": null,
            },
        }),
        network: json!({
            "ipAddress": format!("10.{a}.{b}.{c}"),
            "subnet": format!("10.{a}.{b}.0"),
            "macAddress": format!("F0-1F-AF-{m1:02X}-{m2:02X}-{:02X}", m3.wrapping_add(which)),
            "reflexiveIPAddress": format!("198.51.{r1}.{r2}"),
            "connectionType": if client.wifi { "wifi" } else { "wired" },
            "wifiSignalStrength": if client.wifi { json!(72) } else { Value::Null },
            "dnsSuffix": "corp.contoso.com",
            "networkTransportProtocol": "udp",
            "port": 50_000 + u32::from(b),
        }),
        device: json!({
            "captureDeviceName": client.capture_device,
            "renderDeviceName": client.render_device,
            "captureDeviceDriver": "Microsoft: 10.0.22621.1",
            "renderDeviceDriver": "Microsoft: 10.0.22621.1",
        }),
    }
}

fn mediation_server(trunk: u8) -> Endpoint {
    service(
        "mediationServer",
        "RTCC/7.0.0.0 MediationProcessor/2024.11.1.1",
        "52.114.",
        trunk,
    )
}

/// A service endpoint at an address in `prefix` (two octets and a dot).
fn service(role: &str, header: &str, prefix: &str, trunk: u8) -> Endpoint {
    Endpoint {
        json: json!({
            "@odata.type": SERVICE,
            "userAgent": {
                "@odata.type": "#microsoft.graph.callRecords.serviceUserAgent",
                "role": role,
                "headerValue": header,
                "applicationVersion": null,
            },
        }),
        network: json!({
            "ipAddress": format!("{prefix}{}.{}", 10 + trunk, 20 + trunk),
            "subnet": null,
            "macAddress": null,
            "connectionType": "wired",
            "networkTransportProtocol": "udp",
            "port": 3478,
        }),
        device: json!({"captureDeviceName": null, "renderDeviceName": null}),
    }
}

fn media_json(
    media: &MediaModel,
    caller: &Endpoint,
    callee: &Endpoint,
    bypassed: bool,
    ids: &IdSource,
    segment: usize,
    n: usize,
) -> Value {
    let audio = media.label.contains("audio");
    let streams: Vec<Value> = media
        .streams
        .iter()
        .zip(["callerToCallee", "calleeToCaller"])
        .enumerate()
        .map(|(index, (stream, direction))| {
            let stream_id = ids.0.wrapping_add((segment * 8 + n * 2 + index) as u64) % 100_000;
            stream_json(stream, direction, stream_id, audio, bypassed)
        })
        .collect();
    json!({
        "label": media.label,
        "callerNetwork": caller.network,
        "calleeNetwork": callee.network,
        "callerDevice": caller.device,
        "calleeDevice": callee.device,
        "streams": streams,
    })
}

fn stream_json(
    stream: &StreamModel,
    direction: &str,
    stream_id: u64,
    audio: bool,
    bypassed: bool,
) -> Value {
    json!({
        "streamId": stream_id.to_string(),
        "streamDirection": direction,
        "averageJitter": stream.jitter_ms.map(iso_duration),
        "averageRoundTripTime": stream.round_trip_ms.map(iso_duration),
        "averagePacketLossRate": stream.packet_loss_rate,
        "averageAudioDegradation": stream.degradation.filter(|_| audio),
        "averageRatioOfConcealedSamples": stream.concealed_ratio.filter(|_| audio),
        "averageBandwidthEstimate": stream.jitter_ms.map(|_| 2_500_000),
        "wasMediaBypassed": bypassed,
    })
}

/// Milliseconds as Graph writes a duration: `PT0.016S`.
pub(super) fn iso_duration(ms: u32) -> String {
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}
