use serde_json::json;

use super::*;

fn client() -> serde_json::Value {
    json!({"@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
        "identity": {"user": {"id": "u-1", "displayName": "Ada Lovelace"}},
        "userAgent": {"@odata.type": "#microsoft.graph.callRecords.clientUserAgent",
            "platform": "windows", "productFamily": "teams", "headerValue": "x"}})
}

fn service(role: &str) -> serde_json::Value {
    json!({"@odata.type": "#microsoft.graph.callRecords.serviceEndpoint",
        "userAgent": {"@odata.type": "#microsoft.graph.callRecords.serviceUserAgent",
            "role": role, "headerValue": "y"}})
}

fn stream(direction: &str, jitter: Option<&str>, loss: Option<f64>) -> serde_json::Value {
    json!({"streamId": "1", "streamDirection": direction, "averageJitter": jitter,
        "averageRoundTripTime": "PT0.04S", "averagePacketLossRate": loss,
        "averageAudioDegradation": 0.2, "averageRatioOfConcealedSamples": 0.01,
        "wasMediaBypassed": false})
}

fn segment(
    caller: serde_json::Value,
    callee: serde_json::Value,
    label: &str,
    streams: Vec<serde_json::Value>,
) -> serde_json::Value {
    json!({"id": "s", "caller": caller, "callee": callee, "media": [{
        "label": label,
        "callerNetwork": {"ipAddress": "10.1.2.3", "subnet": "10.1.2.0", "macAddress": "00-11-22-33-44-55"},
        "callerDevice": {"captureDeviceName": "Headset of Ada"},
        "streams": streams}]})
}

fn record(segments: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"id": "r", "version": 1, "sessions": [{"id": "x", "segments": segments}]}),
    )
    .unwrap()
}

#[test]
fn direction_follows_the_client_and_the_trunk_side() {
    let body = record(vec![
        segment(
            client(),
            service("mediationServer"),
            "main-audio",
            vec![
                stream("callerToCallee", Some("PT0.016S"), Some(0.01)),
                stream("calleeToCaller", Some("PT0.05S"), Some(0.2)),
            ],
        ),
        segment(
            service("gateway"),
            client(),
            "main-audio",
            vec![stream("callerToCallee", Some("PT0.001S"), None)],
        ),
        segment(
            client(),
            service("mediationServerCloudConnectorEdition"),
            "main-audio",
            vec![stream("calleeToCaller", None, None)],
        ),
    ]);
    let (streams, next) = read_record(&body).unwrap();
    assert_eq!(next, None);
    let directions: Vec<_> = streams.placed.iter().map(|(d, _)| *d).collect();
    assert_eq!(
        directions,
        [
            StreamDirection::ToTrunk,
            StreamDirection::FromTrunk,
            StreamDirection::FromTrunk,
            StreamDirection::FromTrunk
        ]
    );
    assert_eq!(streams.placed[0].1.jitter, Some(0.016));
    assert_eq!(streams.placed[0].1.round_trip, Some(0.04));
    assert_eq!(streams.not_placed, 0);
}

#[test]
fn segments_without_one_client_and_the_trunk_side_are_not_placed_and_video_is_ignored() {
    let body = record(vec![
        segment(
            service("mediationServer"),
            service("gateway"),
            "main-audio",
            vec![stream("callerToCallee", None, None)],
        ),
        segment(
            client(),
            client(),
            "main-audio",
            vec![stream("calleeToCaller", None, None)],
        ),
        segment(
            json!({"@odata.type": "#microsoft.graph.somethingNew"}),
            service("gateway"),
            "main-audio",
            vec![stream("callerToCallee", None, None)],
        ),
        segment(
            client(),
            service("gateway"),
            "main-audio",
            vec![stream("sideways", None, None)],
        ),
        segment(
            client(),
            service("conferencingAnnouncementService"),
            "main-audio",
            vec![stream("callerToCallee", None, None)],
        ),
        segment(
            service("skypeForBusinessCallQueues"),
            client(),
            "main-audio",
            vec![stream("calleeToCaller", None, None)],
        ),
        segment(
            client(),
            service("voicemail"),
            "main-audio",
            vec![stream("callerToCallee", None, None)],
        ),
        segment(
            client(),
            json!({"@odata.type": "#microsoft.graph.callRecords.serviceEndpoint"}),
            "main-audio",
            vec![stream("callerToCallee", None, None)],
        ),
        segment(
            client(),
            service("gateway"),
            "main-video",
            vec![stream("callerToCallee", None, None)],
        ),
        segment(
            client(),
            service("gateway"),
            "applicationsharing-video",
            vec![stream("callerToCallee", None, None)],
        ),
    ]);
    let (streams, _) = read_record(&body).unwrap();
    assert!(streams.placed.is_empty());
    assert_eq!(
        streams.not_placed, 8,
        "only a mediation server or gateway is the trunk side"
    );
}

#[test]
fn classification_follows_the_call_quality_dashboard() {
    let good = AudioStream {
        jitter: Some(0.03),
        round_trip: Some(0.5),
        packet_loss: Some(0.1),
        degradation: Some(1.0),
        concealed: Some(0.07),
    };
    assert_eq!(
        good.quality(),
        Quality::Good,
        "thresholds themselves are good"
    );
    assert_eq!(good.reasons().count(), 0);
    let poor = AudioStream {
        jitter: Some(0.031),
        packet_loss: Some(0.11),
        ..good
    };
    assert_eq!(poor.quality(), Quality::Poor);
    assert_eq!(
        poor.reasons().collect::<Vec<_>>(),
        [Reason::PacketLoss, Reason::Jitter]
    );
    let every = AudioStream {
        jitter: Some(1.0),
        round_trip: Some(1.0),
        packet_loss: Some(1.0),
        degradation: Some(5.0),
        concealed: Some(1.0),
    };
    assert_eq!(every.reasons().collect::<Vec<_>>(), Reason::ALL);
    assert_eq!(AudioStream::default().quality(), Quality::Unclassified);
    let one = AudioStream {
        concealed: Some(0.0),
        ..AudioStream::default()
    };
    assert_eq!(
        one.quality(),
        Quality::Good,
        "one average reported is enough"
    );
}

#[test]
fn iso_8601_durations() {
    assert_eq!(iso8601_seconds("PT0.016S"), Some(0.016));
    assert_eq!(iso8601_seconds("PT0S"), Some(0.0));
    assert_eq!(iso8601_seconds("PT1M2.5S"), Some(62.5));
    assert_eq!(iso8601_seconds("PT1H"), Some(3600.0));
    assert_eq!(iso8601_seconds("P1DT1S"), Some(86_401.0));
    assert_eq!(iso8601_seconds("P1W"), Some(604_800.0));
    for bad in [
        "", "P", "PT", "0.016", "PT0.016", "PT-1S", "P1Y", "P1M", "PT1S1M", "PT1S1S", "PTS",
        "P1DT", "PT1.2.3S", "pt1s",
    ] {
        assert_eq!(iso8601_seconds(bad), None, "{bad}");
    }
}

#[test]
fn bad_values_are_errors_that_quote_nothing() {
    let body = record(vec![segment(
        client(),
        service("gateway"),
        "main-audio",
        vec![stream("callerToCallee", Some("10.1.2.3"), None)],
    )]);
    let error = read_record(&body).unwrap_err();
    assert_eq!(
        error,
        RecordError::Value {
            field: "averageJitter"
        }
    );

    let body = br#"{"sessions":[{"segments":[{"media":[{"label":"main-audio","streams":[{"averageJitter":"PT1S","averagePacketLossRate":"Ada's phone"}]}]}]}]}"#;
    let error = read_record(body).unwrap_err().to_string();
    assert!(!error.contains("Ada"), "{error}");
}

#[test]
fn a_negative_average_is_taken_as_not_reported_and_the_rest_counts() {
    let mut bad = stream("callerToCallee", Some("-PT0.01S"), Some(-0.5));
    bad["averageAudioDegradation"] = json!(-1.0);
    let body = record(vec![segment(
        client(),
        service("gateway"),
        "main-audio",
        vec![bad, stream("calleeToCaller", Some("PT0.05S"), Some(0.01))],
    )]);
    let (streams, _) = read_record(&body).expect("one bad value spoils nothing else");
    assert_eq!(streams.placed.len(), 2);
    let first = streams.placed[0].1;
    assert_eq!(
        (first.jitter, first.packet_loss, first.degradation),
        (None, None, None)
    );
    assert_eq!(
        (first.round_trip, first.concealed),
        (Some(0.04), Some(0.01))
    );
    assert_eq!(first.quality(), Quality::Good);
    assert_eq!(streams.placed[1].1.quality(), Quality::Poor);
}

#[test]
fn session_pages_and_links() {
    let body = serde_json::to_vec(
        &json!({"id": "r", "sessions": [], "sessions@odata.nextLink": "https://graph/next"}),
    )
    .unwrap();
    assert_eq!(
        read_record(&body).unwrap().1.as_deref(),
        Some("https://graph/next")
    );
    let page = serde_json::to_vec(&json!({"@odata.context": "c", "value": [{"segments": [
        segment(client(), service("gateway"), "main-audio", vec![stream("callerToCallee", None, None)])]}]})).unwrap();
    let (streams, next) = read_session_page(&page).unwrap();
    assert_eq!((streams.placed.len(), next), (1, None));
    assert_eq!(
        streams.placed[0].1.quality(),
        Quality::Good,
        "round trip, degradation and concealment are reported"
    );
}
