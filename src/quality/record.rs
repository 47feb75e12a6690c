//! A call record as the collector reads it: the audio streams of its segments, which way
//! each flows relative to the trunk, and how Microsoft's Call Quality Dashboard classifies it.
//!
//! Only what the metrics need is deserialized: the endpoints' `@odata.type` and service
//! role, the media's `label` and the streams' direction and averages. Network, device and identity fields
//! (IP and MAC addresses, subnets, device and user names) hold personal data and are never
//! read; a record that is not what Graph documents is reported by its shape only, never by
//! the values it holds.

use serde::Deserialize;

/// Which way an audio stream flows, relative to the trunk (`direction` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamDirection {
    /// From the Teams user's client towards the trunk side.
    ToTrunk,
    /// From the trunk side towards the Teams user's client.
    FromTrunk,
}

impl StreamDirection {
    pub const ALL: [StreamDirection; 2] = [StreamDirection::ToTrunk, StreamDirection::FromTrunk];

    pub fn as_str(self) -> &'static str {
        match self {
            StreamDirection::ToTrunk => "to_trunk",
            StreamDirection::FromTrunk => "from_trunk",
        }
    }
}

/// The Call Quality Dashboard's verdict on a stream (`quality` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Quality {
    Good,
    Poor,
    /// None of the five averages was reported.
    Unclassified,
}

impl Quality {
    pub const ALL: [Quality; 3] = [Quality::Good, Quality::Poor, Quality::Unclassified];

    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Poor => "poor",
            Quality::Unclassified => "unclassified",
        }
    }
}

/// Why a stream is poor (`reason` label); a stream meets one or several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Average network MOS degradation above 1.0.
    Degradation,
    /// Average round trip above 500 ms.
    RoundTrip,
    /// Average packet loss rate above 0.1.
    PacketLoss,
    /// Average jitter above 30 ms.
    Jitter,
    /// Average ratio of concealed samples above 0.07.
    ConcealedSamples,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::Degradation,
        Reason::RoundTrip,
        Reason::PacketLoss,
        Reason::Jitter,
        Reason::ConcealedSamples,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Degradation => "degradation",
            Reason::RoundTrip => "round_trip",
            Reason::PacketLoss => "packet_loss",
            Reason::Jitter => "jitter",
            Reason::ConcealedSamples => "concealed_samples",
        }
    }

    /// The Call Quality Dashboard's threshold: a stream is poor above it.
    pub fn threshold(self) -> f64 {
        match self {
            Reason::Degradation => 1.0,
            Reason::RoundTrip => 0.5,
            Reason::PacketLoss => 0.1,
            Reason::Jitter => 0.03,
            Reason::ConcealedSamples => 0.07,
        }
    }
}

/// One audio stream placed relative to the trunk: its averages, as reported (seconds for
/// jitter and round trip).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AudioStream {
    pub jitter: Option<f64>,
    pub round_trip: Option<f64>,
    pub packet_loss: Option<f64>,
    pub degradation: Option<f64>,
    pub concealed: Option<f64>,
}

impl AudioStream {
    fn value(&self, reason: Reason) -> Option<f64> {
        match reason {
            Reason::Degradation => self.degradation,
            Reason::RoundTrip => self.round_trip,
            Reason::PacketLoss => self.packet_loss,
            Reason::Jitter => self.jitter,
            Reason::ConcealedSamples => self.concealed,
        }
    }

    /// The reasons the stream is poor for, in [`Reason::ALL`]'s order.
    pub fn reasons(&self) -> impl Iterator<Item = Reason> + '_ {
        Reason::ALL
            .into_iter()
            .filter(|reason| self.value(*reason).is_some_and(|v| v > reason.threshold()))
    }

    pub fn quality(&self) -> Quality {
        if Reason::ALL
            .iter()
            .all(|reason| self.value(*reason).is_none())
        {
            Quality::Unclassified
        } else if self.reasons().next().is_some() {
            Quality::Poor
        } else {
            Quality::Good
        }
    }
}

/// The audio streams of a record (or of one page of its sessions).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordStreams {
    pub placed: Vec<(StreamDirection, AudioStream)>,
    /// Audio streams of segments whose ends are not one client and one trunk-side service
    /// endpoint.
    pub not_placed: u64,
}

/// A record or a session page that is not what Graph documents.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    /// Not serde's message: it would quote the body, which holds personal data.
    #[error("a call record that is not valid JSON of the documented shape ({kind} error at line {line} column {column}, {bytes} bytes)")]
    Shape {
        kind: String,
        line: usize,
        column: usize,
        bytes: usize,
    },
    #[error("a call record stream whose {field} is not an ISO 8601 duration or a number")]
    Value { field: &'static str },
}

#[derive(Deserialize)]
struct WireRecord {
    #[serde(default)]
    sessions: Option<Vec<WireSession>>,
    #[serde(rename = "sessions@odata.nextLink", default)]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct WireSessionPage {
    #[serde(default)]
    value: Option<Vec<WireSession>>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct WireSession {
    #[serde(default)]
    segments: Option<Vec<WireSegment>>,
}

#[derive(Deserialize)]
struct WireSegment {
    #[serde(default)]
    caller: Option<WireEndpoint>,
    #[serde(default)]
    callee: Option<WireEndpoint>,
    #[serde(default)]
    media: Option<Vec<WireMedia>>,
}

#[derive(Deserialize)]
struct WireEndpoint {
    #[serde(rename = "@odata.type", default)]
    odata_type: Option<String>,
    #[serde(rename = "userAgent", default)]
    user_agent: Option<WireUserAgent>,
}

#[derive(Deserialize)]
struct WireUserAgent {
    /// A `serviceUserAgent`'s role: which service the endpoint is.
    #[serde(default)]
    role: Option<String>,
}

/// Service roles on the trunk side of a call: the mediation server (media through
/// Microsoft) and the gateway (the SBC itself, with media bypass). Conferencing, call
/// queues, auto attendants, voicemail and the like are services too, but a client's audio
/// with them says nothing about the trunk.
const TRUNK_SIDE_ROLES: [&str; 3] = [
    "mediationServer",
    "mediationServerCloudConnectorEdition",
    "gateway",
];

#[derive(Deserialize)]
struct WireMedia {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    streams: Option<Vec<WireStream>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStream {
    #[serde(default)]
    stream_direction: Option<String>,
    #[serde(default)]
    average_jitter: Option<String>,
    #[serde(default)]
    average_round_trip_time: Option<String>,
    #[serde(default)]
    average_packet_loss_rate: Option<f64>,
    #[serde(default)]
    average_audio_degradation: Option<f64>,
    #[serde(default)]
    average_ratio_of_concealed_samples: Option<f64>,
}

/// What kind of endpoint a segment's end is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndKind {
    /// A Teams user's client.
    Client,
    /// The trunk side: a service endpoint in one of [`TRUNK_SIDE_ROLES`].
    TrunkSide,
    /// Any other service (conference server, call queue, voicemail…) or an unknown end.
    Other,
}

fn end_kind(end: Option<&WireEndpoint>) -> EndKind {
    let kind = end.and_then(|e| e.odata_type.as_deref()).unwrap_or("");
    if kind.ends_with(".participantEndpoint") {
        return EndKind::Client;
    }
    let role = end
        .and_then(|e| e.user_agent.as_ref())
        .and_then(|agent| agent.role.as_deref());
    match role {
        Some(role)
            if kind.ends_with(".serviceEndpoint")
                && TRUNK_SIDE_ROLES
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(role)) =>
        {
            EndKind::TrunkSide
        }
        _ => EndKind::Other,
    }
}

fn shape_error(error: &serde_json::Error, bytes: usize) -> RecordError {
    RecordError::Shape {
        kind: format!("{:?}", error.classify()),
        line: error.line(),
        column: error.column(),
        bytes,
    }
}

/// The audio streams of a record's first response and its `sessions@odata.nextLink`.
pub fn read_record(body: &[u8]) -> Result<(RecordStreams, Option<String>), RecordError> {
    let record: WireRecord =
        serde_json::from_slice(body).map_err(|e| shape_error(&e, body.len()))?;
    let streams = streams_of(record.sessions.unwrap_or_default())?;
    Ok((streams, record.next_link))
}

/// The audio streams of one page of a record's sessions, and the next page's link.
pub fn read_session_page(body: &[u8]) -> Result<(RecordStreams, Option<String>), RecordError> {
    let page: WireSessionPage =
        serde_json::from_slice(body).map_err(|e| shape_error(&e, body.len()))?;
    let streams = streams_of(page.value.unwrap_or_default())?;
    Ok((streams, page.next_link))
}

fn streams_of(sessions: Vec<WireSession>) -> Result<RecordStreams, RecordError> {
    let mut out = RecordStreams::default();
    for segment in sessions
        .into_iter()
        .flat_map(|s| s.segments.unwrap_or_default())
    {
        let ends = (
            end_kind(segment.caller.as_ref()),
            end_kind(segment.callee.as_ref()),
        );
        // Which way "callerToCallee" flows, when one end is the client and the other the trunk side.
        let caller_to_callee = match ends {
            (EndKind::Client, EndKind::TrunkSide) => Some(StreamDirection::ToTrunk),
            (EndKind::TrunkSide, EndKind::Client) => Some(StreamDirection::FromTrunk),
            _ => None,
        };
        for media in segment.media.unwrap_or_default() {
            let audio = media
                .label
                .as_deref()
                .is_some_and(|label| label.to_ascii_lowercase().contains("audio"));
            if !audio {
                continue;
            }
            for stream in media.streams.unwrap_or_default() {
                let direction = match (caller_to_callee, stream.stream_direction.as_deref()) {
                    (Some(d), Some("callerToCallee")) => d,
                    (Some(StreamDirection::ToTrunk), Some("calleeToCaller")) => {
                        StreamDirection::FromTrunk
                    }
                    (Some(StreamDirection::FromTrunk), Some("calleeToCaller")) => {
                        StreamDirection::ToTrunk
                    }
                    _ => {
                        out.not_placed += 1;
                        continue;
                    }
                };
                out.placed.push((direction, audio_stream(&stream)?));
            }
        }
    }
    Ok(out)
}

/// A stream's averages. One that is negative (a number, or a duration written `-PT…`) or
/// not finite is a measurement gone wrong, not a record of another shape: it is taken as
/// not reported (logged at debug by its field only) and the stream's other averages
/// still count.
fn audio_stream(stream: &WireStream) -> Result<AudioStream, RecordError> {
    let unreported = |field: &'static str| {
        tracing::debug!(
            field,
            "a call record stream reports a negative or infinite average; it is taken as not reported"
        );
        Ok(None)
    };
    let duration = |field, text: &Option<String>| match text {
        None => Ok(None),
        Some(text) if text.starts_with("-P") => unreported(field),
        Some(text) => iso8601_seconds(text)
            .map(Some)
            .ok_or(RecordError::Value { field }),
    };
    let number = |field, value: Option<f64>| match value {
        Some(v) if !(v.is_finite() && v >= 0.0) => unreported(field),
        other => Ok(other),
    };
    Ok(AudioStream {
        jitter: duration("averageJitter", &stream.average_jitter)?,
        round_trip: duration("averageRoundTripTime", &stream.average_round_trip_time)?,
        packet_loss: number("averagePacketLossRate", stream.average_packet_loss_rate)?,
        degradation: number("averageAudioDegradation", stream.average_audio_degradation)?,
        concealed: number(
            "averageRatioOfConcealedSamples",
            stream.average_ratio_of_concealed_samples,
        )?,
    })
}

/// Seconds of an ISO 8601 duration as Graph writes them (`PT0.016S`, `PT1M2.5S`,
/// `P1DT2H`); `None` for anything else, negative durations and years or months (whose
/// length is not fixed) included.
pub fn iso8601_seconds(text: &str) -> Option<f64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut seconds = 0.0;
    let mut any = false;
    for (part, units) in [(date, &[('W', 604_800.0), ('D', 86_400.0)][..])]
        .into_iter()
        .chain(time.map(|t| (t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)][..])))
    {
        if time == Some(part) && part.is_empty() {
            return None;
        }
        let mut rest = part;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
            let (number, unit) = (&rest[..end], rest[end..].chars().next()?);
            let index = units[next_unit..].iter().position(|(u, _)| *u == unit)? + next_unit;
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return None;
            }
            seconds += number.parse::<f64>().ok()? * units[index].1;
            any = true;
            next_unit = index + 1;
            rest = &rest[end + 1..];
        }
    }
    (any && seconds.is_finite()).then_some(seconds)
}

#[cfg(test)]
mod tests;
