//! What the audio streams of the counted call records add up to, per trunk and direction:
//! plain data, saved with the pending records and rendered as the
//! `teams_direct_routing_audio_*` families.

use std::collections::BTreeMap;

use prometheus::proto::{MetricFamily, MetricType};
use serde::{Deserialize, Serialize};

use super::record::{AudioStream, Quality, Reason, RecordStreams, StreamDirection};
use crate::source::family::{counter, family, histogram, Family, Histogram};
use crate::source::labels::{self, LabelValues};
use crate::source::{DamagedTotals, Function};

/// `teams_direct_routing_audio_jitter_seconds`: Microsoft calls above 30 ms poor.
pub const JITTER_BUCKETS: &[f64] = &[0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5];
/// `teams_direct_routing_audio_packet_loss_ratio`: poor above 0.1.
pub const PACKET_LOSS_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5];
/// `teams_direct_routing_audio_round_trip_seconds`: poor above 500 ms.
pub const ROUND_TRIP_BUCKETS: &[f64] = &[0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0];
/// `teams_direct_routing_audio_degradation`: network MOS degradation, 0–5, poor above 1.
pub const DEGRADATION_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0];

/// The four histograms: family, bounds, and which average each observes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Measure {
    Jitter,
    PacketLoss,
    RoundTrip,
    Degradation,
}

impl Measure {
    pub const ALL: [Measure; 4] = [
        Measure::Jitter,
        Measure::PacketLoss,
        Measure::RoundTrip,
        Measure::Degradation,
    ];

    pub fn bounds(self) -> &'static [f64] {
        match self {
            Measure::Jitter => JITTER_BUCKETS,
            Measure::PacketLoss => PACKET_LOSS_BUCKETS,
            Measure::RoundTrip => ROUND_TRIP_BUCKETS,
            Measure::Degradation => DEGRADATION_BUCKETS,
        }
    }

    fn family(self) -> &'static Family {
        match self {
            Measure::Jitter => &JITTER,
            Measure::PacketLoss => &PACKET_LOSS,
            Measure::RoundTrip => &ROUND_TRIP,
            Measure::Degradation => &DEGRADATION,
        }
    }

    fn of(self, stream: &AudioStream) -> Option<f64> {
        match self {
            Measure::Jitter => stream.jitter,
            Measure::PacketLoss => stream.packet_loss,
            Measure::RoundTrip => stream.round_trip,
            Measure::Degradation => stream.degradation,
        }
    }
}

const STREAMS: Family = Family {
    name: "teams_direct_routing_audio_streams_total",
    help: "Audio streams of established Direct Routing calls, from their call records, by trunk, direction (to_trunk: from the Teams client towards the trunk side) and quality as Microsoft's Call Quality Dashboard classifies it (poor: degradation > 1, round trip > 500 ms, packet loss > 0.1, jitter > 30 ms or concealed samples > 0.07; unclassified: none of them reported).",
    labels: &["trunk_fqdn", "direction", "quality"],
};
const POOR: Family = Family {
    name: "teams_direct_routing_audio_poor_streams_total",
    help: "Poor audio streams by the reason they are poor; a stream counts under each reason it meets.",
    labels: &["trunk_fqdn", "direction", "reason"],
};
const JITTER: Family = Family {
    name: "teams_direct_routing_audio_jitter_seconds",
    help: "Average jitter of each audio stream that reports it.",
    labels: &["trunk_fqdn", "direction"],
};
const PACKET_LOSS: Family = Family {
    name: "teams_direct_routing_audio_packet_loss_ratio",
    help: "Average packet loss rate of each audio stream that reports it.",
    labels: &["trunk_fqdn", "direction"],
};
const ROUND_TRIP: Family = Family {
    name: "teams_direct_routing_audio_round_trip_seconds",
    help: "Average round-trip time of each audio stream that reports it.",
    labels: &["trunk_fqdn", "direction"],
};
const DEGRADATION: Family = Family {
    name: "teams_direct_routing_audio_degradation",
    help: "Average network MOS degradation (0-5) of each audio stream that reports it.",
    labels: &["trunk_fqdn", "direction"],
};

/// Every family, announced before the first scrape.
pub const FAMILIES: &[&Family] = &[
    &STREAMS,
    &POOR,
    &JITTER,
    &PACKET_LOSS,
    &ROUND_TRIP,
    &DEGRADATION,
];

/// The streams of every counted record of one tenant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityTotals {
    pub streams: BTreeMap<(String, StreamDirection, Quality), u64>,
    pub poor: BTreeMap<(String, StreamDirection, Reason), u64>,
    pub histograms: BTreeMap<(String, StreamDirection, Measure), Histogram>,
    /// Audio streams that could not be placed relative to the trunk.
    pub not_placed: u64,
    /// Label values in use (bounded like the call metrics' trunks).
    labels: LabelValues,
}

impl QualityTotals {
    /// Counts the streams of one record of a call through `trunk_fqdn`.
    pub fn count(&mut self, trunk_fqdn: &str, streams: &RecordStreams) {
        self.not_placed += streams.not_placed;
        if streams.placed.is_empty() {
            return;
        }
        let trunk = self.labels.admit(
            Function::DirectRoutingCalls,
            &labels::TRUNK_FQDN,
            Some(trunk_fqdn.to_owned()),
        );
        for (direction, stream) in &streams.placed {
            let quality = stream.quality();
            *self
                .streams
                .entry((trunk.clone(), *direction, quality))
                .or_default() += 1;
            for reason in stream.reasons() {
                *self
                    .poor
                    .entry((trunk.clone(), *direction, reason))
                    .or_default() += 1;
            }
            for measure in Measure::ALL {
                if let Some(value) = measure.of(stream) {
                    self.histograms
                        .entry((trunk.clone(), *direction, measure))
                        .or_insert_with(|| Histogram::new(measure.bounds()))
                        .observe(measure.bounds(), value);
                }
            }
        }
    }

    /// The `teams_direct_routing_audio_*` families.
    pub fn families(&self) -> Vec<MetricFamily> {
        let streams = self
            .streams
            .iter()
            .map(|((t, d, q), n)| counter(&STREAMS, &[t, d.as_str(), q.as_str()], *n))
            .collect();
        let poor = self
            .poor
            .iter()
            .map(|((t, d, r), n)| counter(&POOR, &[t, d.as_str(), r.as_str()], *n))
            .collect();
        let mut families = vec![
            family(&STREAMS, MetricType::COUNTER, streams),
            family(&POOR, MetricType::COUNTER, poor),
        ];
        for measure in Measure::ALL {
            let f = measure.family();
            let metrics = self
                .histograms
                .iter()
                .filter(|((_, _, m), _)| *m == measure)
                .map(|((t, d, _), h)| histogram(f, &[t, d.as_str()], measure.bounds(), h))
                .collect();
            families.push(family(f, MetricType::HISTOGRAM, metrics));
        }
        families
    }

    pub fn save(&self) -> SavedQualityTotals {
        SavedQualityTotals {
            streams: self
                .streams
                .iter()
                .map(|((t, d, q), n)| (t.clone(), *d as u8, *q as u8, *n))
                .collect(),
            poor: self
                .poor
                .iter()
                .map(|((t, d, r), n)| (t.clone(), *d as u8, *r as u8, *n))
                .collect(),
            histograms: self
                .histograms
                .iter()
                .map(|((t, d, m), h)| SavedQualityHistogram {
                    trunk_fqdn: t.clone(),
                    direction: *d as u8,
                    measure: *m,
                    buckets: h.buckets.clone(),
                    sum: h.sum,
                    count: h.count,
                })
                .collect(),
            not_placed: self.not_placed,
        }
    }
}

/// [`QualityTotals`] as the state file keeps them (enums by their index).
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedQualityTotals {
    streams: Vec<(String, u8, u8, u64)>,
    poor: Vec<(String, u8, u8, u64)>,
    histograms: Vec<SavedQualityHistogram>,
    not_placed: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedQualityHistogram {
    trunk_fqdn: String,
    direction: u8,
    measure: Measure,
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

fn index<T: Copy>(all: &[T], i: u8, what: &str) -> Result<T, DamagedTotals> {
    all.get(usize::from(i)).copied().ok_or_else(|| {
        DamagedTotals(format!(
            "call quality: {what} {i} is not one this exporter knows"
        ))
    })
}

impl SavedQualityTotals {
    pub fn restore(self) -> Result<QualityTotals, DamagedTotals> {
        let mut totals = QualityTotals {
            not_placed: self.not_placed,
            ..QualityTotals::default()
        };
        let directions = &StreamDirection::ALL;
        for (trunk, d, q, n) in self.streams {
            totals.labels.relearn(&labels::TRUNK_FQDN, &trunk);
            let key = (
                trunk,
                index(directions, d, "direction")?,
                index(&Quality::ALL, q, "quality")?,
            );
            totals.streams.insert(key, n);
        }
        for (trunk, d, r, n) in self.poor {
            let key = (
                trunk,
                index(directions, d, "direction")?,
                index(&Reason::ALL, r, "reason")?,
            );
            totals.poor.insert(key, n);
        }
        for h in self.histograms {
            let bounds = h.measure.bounds();
            if h.buckets.len() != bounds.len() + 1 || h.buckets.iter().sum::<u64>() != h.count {
                return Err(DamagedTotals(
                    "call quality: a histogram's buckets do not add up to its count".into(),
                ));
            }
            let key = (
                h.trunk_fqdn,
                index(directions, h.direction, "direction")?,
                h.measure,
            );
            totals.histograms.insert(
                key,
                Histogram {
                    buckets: h.buckets,
                    sum: h.sum,
                    count: h.count,
                },
            );
        }
        Ok(totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(jitter: f64, loss: f64) -> AudioStream {
        AudioStream {
            jitter: Some(jitter),
            packet_loss: Some(loss),
            ..AudioStream::default()
        }
    }

    #[test]
    fn streams_count_by_quality_reason_and_histogram_and_survive_saving() {
        let mut totals = QualityTotals::default();
        let record = RecordStreams {
            placed: vec![
                (StreamDirection::ToTrunk, stream(0.01, 0.0)),
                (StreamDirection::ToTrunk, stream(0.05, 0.2)),
                (StreamDirection::FromTrunk, AudioStream::default()),
            ],
            not_placed: 2,
        };
        totals.count("sbc1.contoso.com", &record);
        let key = |d, q| ("sbc1.contoso.com".to_owned(), d, q);
        assert_eq!(
            totals.streams[&key(StreamDirection::ToTrunk, Quality::Good)],
            1
        );
        assert_eq!(
            totals.streams[&key(StreamDirection::ToTrunk, Quality::Poor)],
            1
        );
        assert_eq!(
            totals.streams[&key(StreamDirection::FromTrunk, Quality::Unclassified)],
            1
        );
        assert_eq!(totals.poor.len(), 2, "jitter and packet loss");
        let jitter = &totals.histograms[&(
            "sbc1.contoso.com".to_owned(),
            StreamDirection::ToTrunk,
            Measure::Jitter,
        )];
        assert_eq!(
            (jitter.count, jitter.buckets[1], jitter.buckets[4]),
            (2, 1, 1)
        );
        assert!(!totals
            .histograms
            .keys()
            .any(|(_, d, _)| *d == StreamDirection::FromTrunk));
        assert_eq!(totals.not_placed, 2);
        let json = serde_json::to_vec(&totals.save()).unwrap();
        let restored = serde_json::from_slice::<SavedQualityTotals>(&json)
            .unwrap()
            .restore()
            .unwrap();
        assert_eq!(restored.streams, totals.streams);
        assert_eq!(restored.poor, totals.poor);
        assert_eq!(restored.histograms, totals.histograms);
        let names: Vec<String> = restored
            .families()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert_eq!(
            names,
            FAMILIES
                .iter()
                .map(|f| f.name.to_owned())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn trunks_out_of_shape_are_folded() {
        let mut totals = QualityTotals::default();
        let record = RecordStreams {
            placed: vec![(StreamDirection::ToTrunk, stream(0.01, 0.0))],
            not_placed: 0,
        };
        totals.count("not a trunk <script>", &record);
        assert!(totals.streams.keys().all(|(t, _, _)| t == labels::OTHER));
    }
}
