//! What `/metrics` shows: the call aggregates and the exporter's own health.
//!
//! Call metrics are rendered from [`TenantState`] on every scrape by a prometheus
//! [`Collector`], so the aggregates stay plain data that can be saved and restored. The
//! exporter's self-metrics are ordinary prometheus counters and gauges. Names and labels here
//! are a contract with dashboards, alerts and users' queries: change them only with care.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::counting::state::{
    Aggregates, Histogram, TenantState, ARRIVAL_DELAY_BUCKETS, DURATION_BUCKETS, SETUP_BUCKETS,
};

/// The label value of `endpoint` for Direct Routing data requests.
pub const DIRECT_ROUTING_ENDPOINT: &str = "getDirectRoutingCalls";
/// The label value of `endpoint` for token requests to Entra ID.
pub const TOKEN_ENDPOINT: &str = "token";

/// The exporter's own metrics, shared by the Graph client, the token cache and the poller.
#[derive(Clone)]
pub struct ExporterMetrics {
    pub graph_requests: IntCounterVec,
    pub graph_request_duration: HistogramVec,
    pub graph_throttled: IntCounterVec,
    pub graph_retries: IntCounterVec,
    pub rows_received: IntCounterVec,
    pub last_success: GaugeVec,
    pub poll_errors: IntCounterVec,
    pub poll_duration: HistogramVec,
    pub remembered_rows: IntGaugeVec,
    pub token_refreshes: IntCounterVec,
    pub ready: IntGauge,
    pub start_time: Gauge,
    pub poll_interval: Gauge,
    pub state_write_errors: IntCounter,
}

impl ExporterMetrics {
    /// Creates the self-metrics and registers them, with `build_info` and the process
    /// collector, on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let p = |name: &str| format!("teams_voice_exporter_{name}");
        let metrics = ExporterMetrics {
            graph_requests: IntCounterVec::new(
                Opts::new(p("graph_requests_total"), "HTTP requests sent to Microsoft Graph and Entra ID, by endpoint and response status code (\"error\" when no response arrived)."),
                &["endpoint", "code"],
            )?,
            graph_request_duration: HistogramVec::new(
                HistogramOpts::new(p("graph_request_duration_seconds"), "Time from sending a request to Graph or Entra ID until its whole response was read.")
                    .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
                &["endpoint"],
            )?,
            graph_throttled: IntCounterVec::new(
                Opts::new(p("graph_throttled_total"), "Responses from Graph that asked us to slow down (429, or 503 with Retry-After)."),
                &["endpoint"],
            )?,
            graph_retries: IntCounterVec::new(
                Opts::new(p("graph_retries_total"), "Requests to Graph repeated after a transient failure, by reason."),
                &["endpoint", "reason"],
            )?,
            rows_received: IntCounterVec::new(
                Opts::new(p("rows_received_total"), "Rows read from Graph, every read counted, repeats across windows and sweeps included."),
                &["endpoint"],
            )?,
            last_success: GaugeVec::new(
                Opts::new(p("last_success_timestamp_seconds"), "Unix time of the last poll that read its whole call window."),
                &["endpoint"],
            )?,
            poll_errors: IntCounterVec::new(
                Opts::new(p("poll_errors_total"), "Polls that failed to read their whole call window, by reason."),
                &["endpoint", "reason"],
            )?,
            poll_duration: HistogramVec::new(
                HistogramOpts::new(p("poll_duration_seconds"), "Time a poll took, by kind: baseline (first start), recent window, late window, or sweep of the lookback.")
                    .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0]),
                &["endpoint", "kind"],
            )?,
            remembered_rows: IntGaugeVec::new(
                Opts::new(p("remembered_rows"), "Row ids remembered for exactly-once counting (until their call start leaves the lookback)."),
                &["endpoint"],
            )?,
            token_refreshes: IntCounterVec::new(
                Opts::new(p("token_refreshes_total"), "Access token requests to Entra ID, by result (success, or the AADSTS error)."),
                &["result"],
            )?,
            ready: IntGauge::new(p("ready"), "1 once the first poll has read its whole window (what /-/ready reports).")?,
            start_time: Gauge::new(p("start_time_seconds"), "Unix time the exporter started.")?,
            // Alerts need it to tell a stale exporter ("no success for three poll
            // intervals") from a slowly polling one.
            poll_interval: Gauge::new(p("poll_interval_seconds"), "How often the recent window is read (--poll.interval).")?,
            state_write_errors: IntCounter::new(p("state_write_errors_total"), "Failed attempts to save the state to --state.path (a read-only or full disk, say); the state is kept in memory and saved at the next successful attempt.")?,
        };
        let collectors: [Box<dyn Collector>; 14] = [
            Box::new(metrics.graph_requests.clone()),
            Box::new(metrics.graph_request_duration.clone()),
            Box::new(metrics.graph_throttled.clone()),
            Box::new(metrics.graph_retries.clone()),
            Box::new(metrics.rows_received.clone()),
            Box::new(metrics.last_success.clone()),
            Box::new(metrics.poll_errors.clone()),
            Box::new(metrics.poll_duration.clone()),
            Box::new(metrics.remembered_rows.clone()),
            Box::new(metrics.token_refreshes.clone()),
            Box::new(metrics.ready.clone()),
            Box::new(metrics.start_time.clone()),
            Box::new(metrics.poll_interval.clone()),
            Box::new(metrics.state_write_errors.clone()),
        ];
        for collector in collectors {
            registry.register(collector)?;
        }

        let build_info = IntGaugeVec::new(
            Opts::new(p("build_info"), "Always 1; labels name the exporter's version and the Rust version it was built with."),
            &["version", "rustc_version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), rustc_version()])
            .set(1);
        registry.register(Box::new(build_info))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(metrics)
    }
}

impl ExporterMetrics {
    /// Records one HTTP request to Graph or Entra ID: its status (or "error") and time.
    pub fn record_request(&self, endpoint: &str, code: &str, started: std::time::Instant) {
        self.graph_requests
            .with_label_values(&[endpoint, code])
            .inc();
        self.graph_request_duration
            .with_label_values(&[endpoint])
            .observe(started.elapsed().as_secs_f64());
    }
}

fn rustc_version() -> &'static str {
    // Set by build.rs.
    option_env!("TVE_RUSTC_VERSION").unwrap_or("unknown")
}

/// Every `reason` a poll can fail with, so the series exist at 0 from the start and
/// `increase()` sees the first failure.
pub const POLL_ERROR_REASONS: &[&str] = &[
    "token_unavailable",
    "token_refused",
    "unauthorized",
    "forbidden",
    "bad_request",
    "not_found",
    "not_acceptable",
    "refused",
    "retries_exhausted",
    "bad_next_link",
];

/// Every `reason` a request is retried for.
pub const RETRY_REASONS: &[&str] = &[
    "throttled",
    "server_error",
    "invalid_json",
    "connection",
    "token_unavailable",
];

impl ExporterMetrics {
    /// Creates the series of one Graph endpoint at zero, so that alerts and `increase()`
    /// see the first event rather than a series appearing from nothing.
    pub fn initialise_endpoint(&self, endpoint: &str) {
        for reason in POLL_ERROR_REASONS {
            self.poll_errors.with_label_values(&[endpoint, reason]);
        }
        for reason in RETRY_REASONS {
            self.graph_retries.with_label_values(&[endpoint, reason]);
        }
        // Present from the start, so that rate() sees the first baseline and sweep end: the
        // stale-poll alert allows for their duration.
        for kind in ["baseline", "recent", "late", "sweep"] {
            self.poll_duration.with_label_values(&[endpoint, kind]);
        }
        self.graph_throttled.with_label_values(&[endpoint]);
        self.rows_received.with_label_values(&[endpoint]);
        self.remembered_rows.with_label_values(&[endpoint]);
    }
}

/// Renders a tenant's call aggregates on every scrape.
pub struct StateCollector {
    state: Arc<Mutex<TenantState>>,
    endpoint: &'static str,
    descs: Vec<Desc>,
}

struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

const CALLS: Family = Family {
    name: "teams_direct_routing_calls_total",
    help: "Direct Routing calls, counted once when their log row first appears in Graph.",
    labels: &[
        "trunk_fqdn",
        "call_type",
        "final_sip_code",
        "successful",
        "media_path_location",
    ],
};
const FAILURES: Family = Family {
    name: "teams_direct_routing_call_failures_total",
    help: "Direct Routing calls that were not established, by final SIP code and Microsoft's call end sub-reason.",
    labels: &["trunk_fqdn", "final_sip_code", "call_end_sub_reason"],
};
const DURATION: Family = Family {
    name: "teams_direct_routing_call_duration_seconds",
    help: "Duration of established Direct Routing calls.",
    labels: &["trunk_fqdn", "call_type"],
};
const SETUP: Family = Family {
    name: "teams_direct_routing_call_setup_seconds",
    help: "Time to establish Direct Routing calls (startDateTime minus inviteDateTime, ringing included), established calls only.",
    labels: &["trunk_fqdn", "call_type"],
};
const INGESTED: Family = Family {
    name: "teams_voice_exporter_rows_ingested_total",
    help: "Rows counted into the call metrics: each row once, the first time it was seen.",
    labels: &["endpoint"],
};
const INVALID: Family = Family {
    name: "teams_voice_exporter_rows_invalid_total",
    help: "Malformed rows skipped (each distinct row once); the log names each one.",
    labels: &["endpoint"],
};
const ARRIVAL: Family = Family {
    name: "teams_voice_exporter_row_arrival_delay_seconds",
    help: "How late Graph publishes rows: first seen minus call end, for counted rows.",
    labels: &["endpoint"],
};
const FAMILIES: [&Family; 7] = [
    &CALLS, &FAILURES, &DURATION, &SETUP, &INGESTED, &INVALID, &ARRIVAL,
];

impl StateCollector {
    pub fn new(state: Arc<Mutex<TenantState>>, endpoint: &'static str) -> Self {
        let descs = FAMILIES
            .iter()
            .map(|f| {
                Desc::new(
                    f.name.to_owned(),
                    f.help.to_owned(),
                    f.labels.iter().map(|l| (*l).to_owned()).collect(),
                    HashMap::new(),
                )
                .expect("static metric descriptions are valid")
            })
            .collect();
        StateCollector {
            state,
            endpoint,
            descs,
        }
    }
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (_, aggregates) = self.snapshot();
        self.families(&aggregates)
    }
}

impl StateCollector {
    /// The aggregates `/metrics` shows and their generation, taken under the state's lock
    /// and rendered after it is released, so that a scrape never holds up ingestion.
    pub fn snapshot(&self) -> (u64, Arc<Aggregates>) {
        self.state.lock().exposed_snapshot()
    }

    /// The generation of the aggregates `/metrics` shows.
    pub fn generation(&self) -> u64 {
        self.state.lock().generation()
    }

    /// The call metric families of `a`.
    pub fn families(&self, a: &Aggregates) -> Vec<MetricFamily> {
        let endpoint = [self.endpoint];
        let calls = a.calls.iter().map(|(k, v)| {
            let values = [
                k.trunk_fqdn.as_str(),
                k.call_type.as_str(),
                k.final_sip_code.as_str(),
                k.successful,
                k.media_path_location.as_str(),
            ];
            counter(&CALLS, &values, *v)
        });
        let failures = a.failures.iter().map(|(k, v)| {
            let values = [
                k.trunk_fqdn.as_str(),
                k.final_sip_code.as_str(),
                k.call_end_sub_reason.as_str(),
            ];
            counter(&FAILURES, &values, *v)
        });
        let duration = a.duration.iter().map(|(k, h)| {
            histogram(
                &DURATION,
                &[&k.trunk_fqdn, &k.call_type],
                DURATION_BUCKETS,
                h,
            )
        });
        let setup = a
            .setup
            .iter()
            .map(|(k, h)| histogram(&SETUP, &[&k.trunk_fqdn, &k.call_type], SETUP_BUCKETS, h));

        vec![
            family(&CALLS, MetricType::COUNTER, calls.collect()),
            family(&FAILURES, MetricType::COUNTER, failures.collect()),
            family(&DURATION, MetricType::HISTOGRAM, duration.collect()),
            family(&SETUP, MetricType::HISTOGRAM, setup.collect()),
            family(
                &INGESTED,
                MetricType::COUNTER,
                vec![counter(&INGESTED, &endpoint, a.rows_ingested)],
            ),
            family(
                &INVALID,
                MetricType::COUNTER,
                vec![counter(&INVALID, &endpoint, a.rows_invalid)],
            ),
            family(
                &ARRIVAL,
                MetricType::HISTOGRAM,
                vec![histogram(
                    &ARRIVAL,
                    &endpoint,
                    ARRIVAL_DELAY_BUCKETS,
                    &a.arrival_delay,
                )],
            ),
        ]
    }
}

fn labels(family: &Family, values: &[&str]) -> Vec<proto::LabelPair> {
    family
        .labels
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let mut pair = proto::LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect()
}

fn counter(family: &Family, values: &[&str], value: u64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(value as f64);
    let mut metric = proto::Metric::from_label(labels(family, values));
    metric.set_counter(c);
    metric
}

fn histogram(family: &Family, values: &[&str], bounds: &[f64], h: &Histogram) -> proto::Metric {
    let mut cumulative = 0;
    let buckets = bounds
        .iter()
        .zip(&h.buckets)
        .map(|(bound, count)| {
            cumulative += count;
            let mut bucket = proto::Bucket::default();
            bucket.set_upper_bound(*bound);
            bucket.set_cumulative_count(cumulative);
            bucket
        })
        .collect();
    let mut out = proto::Histogram::default();
    out.set_bucket(buckets);
    out.set_sample_count(h.count);
    out.set_sample_sum(h.sum);
    let mut metric = proto::Metric::from_label(labels(family, values));
    metric.set_histogram(out);
    metric
}

fn family(f: &Family, kind: MetricType, mut metrics: Vec<proto::Metric>) -> MetricFamily {
    // Stable output order makes scrapes diffable and tests simple.
    metrics.sort_by(|a, b| {
        a.get_label()
            .iter()
            .map(|l| l.value())
            .cmp(b.get_label().iter().map(|l| l.value()))
    });
    let mut family = MetricFamily::default();
    family.set_name(f.name.to_owned());
    family.set_help(f.help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

/// What `/metrics` answers: the call metrics, rendered once per change of the aggregates
/// and kept (as text and as deflated text), then the exporter's own metrics, rendered on
/// every scrape.
///
/// Rendering tens of thousands of call series takes milliseconds and compressing them
/// more, while they change only when a poll counts rows (with `--state.path`, when it
/// commits): many scrapers, or one scraping often, would otherwise redo the same work.
pub struct Exposition {
    /// The self-metrics, `build_info` and the process collector.
    registry: Registry,
    calls: StateCollector,
    /// The rendering of the latest generation; its lock also makes concurrent scrapes of a
    /// new generation wait for one rendering instead of each doing their own.
    cache: Mutex<Option<Arc<Rendered>>>,
}

/// The call metrics of one generation.
struct Rendered {
    generation: u64,
    text: Vec<u8>,
    /// `text` as raw deflate blocks ending in a full flush: byte-aligned, not final and
    /// without references beyond their own data, so that another deflate stream may follow
    /// them in one gzip member. Made by the first scrape that asks for gzip.
    deflated: std::sync::OnceLock<std::io::Result<Vec<u8>>>,
    crc: u32,
}

/// A `/metrics` body.
pub struct Body {
    pub bytes: Vec<u8>,
    /// Whether `bytes` is gzip (only when asked for).
    pub gzip: bool,
}

/// What the text format is sent as.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

impl Exposition {
    pub fn new(registry: Registry, calls: StateCollector) -> Self {
        Exposition {
            registry,
            calls,
            cache: Mutex::new(None),
        }
    }

    /// The registry of the self-metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders `/metrics`, gzipped if `gzip`.
    pub fn render(&self, gzip: bool) -> Result<Body, prometheus::Error> {
        let calls = self.rendered_calls()?;
        let mut own = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut own)?;
        if gzip {
            if let Ok(bytes) = gzip_after(&calls, &own) {
                return Ok(Body { bytes, gzip: true });
            }
        }
        let mut bytes = Vec::with_capacity(calls.text.len() + own.len());
        bytes.extend_from_slice(&calls.text);
        bytes.extend_from_slice(&own);
        Ok(Body { bytes, gzip: false })
    }

    fn rendered_calls(&self) -> Result<Arc<Rendered>, prometheus::Error> {
        let mut cache = self.cache.lock();
        if let Some(rendered) = cache.as_ref() {
            if rendered.generation == self.calls.generation() {
                return Ok(Arc::clone(rendered));
            }
        }
        let (generation, aggregates) = self.calls.snapshot();
        let mut text = Vec::with_capacity(cache.as_ref().map_or(64 * 1024, |r| r.text.len()));
        let mut families = self.calls.families(&aggregates);
        // As `Registry::gather` does: a family without series is left out.
        families.retain(|family| !family.get_metric().is_empty());
        TextEncoder::new().encode(&families, &mut text)?;
        drop(aggregates);
        // Kept until the next generation: no room to spare.
        text.shrink_to_fit();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&text);
        let rendered = Arc::new(Rendered {
            generation,
            text,
            deflated: std::sync::OnceLock::new(),
            crc: crc.finalize(),
        });
        *cache = Some(Arc::clone(&rendered));
        Ok(rendered)
    }
}

/// Scrapes ask for gzip on every request; speed matters more than the last few percent.
const GZIP_LEVEL: flate2::Compression = flate2::Compression::fast();

fn deflate_full_flush(text: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut compress = flate2::Compress::new(GZIP_LEVEL, false);
    let mut out = Vec::with_capacity(text.len() / 6 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = compress.total_in() as usize;
        compress
            .compress_vec(&text[consumed..], &mut out, flate2::FlushCompress::Full)
            .map_err(std::io::Error::other)?;
        // The flush is complete once all input is in and the output did not fill up.
        if compress.total_in() as usize == text.len() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}

/// One gzip member (RFC 1952) of `head`'s text followed by `tail`: `head`'s deflate blocks
/// as kept, then `tail` as a new deflate stream ending in the final block (RFC 1951 lets a
/// stream continue after a flushed, non-final block), and the CRC and length of both.
fn gzip_after(head: &Rendered, tail: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    // No file name, no modification time, operating system "unknown".
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let deflated = head
        .deflated
        .get_or_init(|| deflate_full_flush(&head.text))
        .as_ref()
        .map_err(|error| std::io::Error::new(error.kind(), error.to_string()))?;
    let mut out = Vec::with_capacity(HEADER.len() + deflated.len() + tail.len() / 4 + 64);
    out.extend_from_slice(&HEADER);
    out.extend_from_slice(deflated);
    let mut encoder = flate2::write::DeflateEncoder::new(out, GZIP_LEVEL);
    encoder.write_all(tail)?;
    let mut out = encoder.finish()?;
    let length = head.text.len() + tail.len();
    let mut crc = crc32fast::Hasher::new_with_initial_len(head.crc, head.text.len() as u64);
    crc.update(tail);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32.
    out.extend_from_slice(&(length as u32).to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counting::state::Ingest;

    fn exposition() -> (Exposition, Arc<Mutex<TenantState>>) {
        let registry = Registry::new();
        ExporterMetrics::register(&registry).unwrap();
        let state = Arc::new(Mutex::new(TenantState::new()));
        let calls = StateCollector::new(state.clone(), DIRECT_ROUTING_ENDPOINT);
        (Exposition::new(registry, calls), state)
    }

    fn ingest(state: &Mutex<TenantState>, id: &str) {
        let row = format!(
            r#"{{"id":"{id}","startDateTime":"2026-11-27T10:00:00Z","successfulCall":true,"duration":60,"trunkFullyQualifiedDomainName":"sbc{id}.example.com"}}"#
        );
        let now = "2026-11-27T12:00:00Z".parse().unwrap();
        let from = "2026-11-27T00:00:00Z".parse().unwrap();
        state
            .lock()
            .ingest([row.as_str()], Ingest::Count, now, from);
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Read as _;
        let mut out = Vec::new();
        // A single-member decoder: the body must be one gzip member, not several.
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn gzip_body_is_one_member_equal_to_the_plain_body() {
        let (exposition, state) = exposition();
        for id in ["a", "b", "c"] {
            ingest(&state, id);
            let plain = exposition.render(false).unwrap();
            let gzipped = exposition.render(true).unwrap();
            assert!(!plain.gzip && gzipped.gzip);
            let text = String::from_utf8(gunzip(&gzipped.bytes)).unwrap();
            // The self-metrics (process CPU time, say) may change between two renders.
            let families = |t: &str| {
                t.lines()
                    .filter(|l| l.starts_with("teams_"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            let plain = String::from_utf8(plain.bytes).unwrap();
            assert_eq!(families(&text), families(&plain));
            assert!(text.contains(&format!("trunk_fqdn=\"sbc{id}.example.com\"")));
            assert!(text.contains("teams_voice_exporter_build_info"));
        }
    }

    #[test]
    fn call_metrics_follow_every_change() {
        let (exposition, state) = exposition();
        let count = |body: Body| {
            String::from_utf8(body.bytes)
                .unwrap()
                .lines()
                .find(|l| l.starts_with("teams_voice_exporter_rows_ingested_total"))
                .unwrap()
                .to_owned()
        };
        assert!(count(exposition.render(false).unwrap()).ends_with(" 0"));
        ingest(&state, "a");
        assert!(count(exposition.render(false).unwrap()).ends_with(" 1"));
        ingest(&state, "a");
        ingest(&state, "b");
        assert!(count(exposition.render(false).unwrap()).ends_with(" 2"));
    }
}
