//! The `/metrics` body: the call metrics, kept rendered between changes, followed by the
//! self-metrics, with gzip that reuses the kept part.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus::{Encoder, IntGauge, Registry, TextEncoder};

use super::calls::CallMetrics;
use super::first_samples::{FirstSamples, DEFAULT_HOLD};
use super::series_bound::SeriesBound;

/// What `/metrics` answers: the call metrics, rendered once per change of the aggregates
/// (or when a new series' hold ends, see [`super::first_samples`]) and kept (as text and as
/// deflated text), then the exporter's own metrics, rendered on every scrape.
///
/// Rendering tens of thousands of call series takes milliseconds and compressing them
/// more, while they change only when a poll counts rows (with `--state.path`, when it
/// commits): many scrapers, or one scraping often, would otherwise redo the same work.
pub struct Exposition {
    /// The self-metrics, `build_info` and the process collector.
    registry: Registry,
    calls: Box<dyn CallMetrics>,
    /// `teams_voice_exporter_new_series_held`: why a series may read 0 for a while.
    held: IntGauge,
    /// The rendering of the latest generation and which series it holds at 0; its lock
    /// also makes concurrent scrapes of a new generation wait for one rendering instead of
    /// each doing their own.
    cache: Mutex<Cache>,
    /// `--web.max-series` and its gauges, when set ([`Exposition::with_max_series`]).
    series_bound: Option<SeriesBound>,
}

struct Cache {
    rendered: Option<Arc<Rendered>>,
    first_samples: FirstSamples,
}

/// The call metrics of one generation.
struct Rendered {
    generation: u64,
    /// When the first hold of a new series shown at 0 ends: the text is stale from then on.
    until: Option<Instant>,
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
    /// The exposition of `calls`, whose series so far are restored ones (`--state.path`),
    /// shown with their values from the first scrape on; series that appear later are shown
    /// at 0 for [`DEFAULT_HOLD`] first. Build it before anything is counted.
    pub fn new(registry: Registry, calls: Box<dyn CallMetrics>) -> Self {
        let (_, restored) = calls.gather();
        let first_samples = FirstSamples::new(DEFAULT_HOLD, &restored);
        let held = IntGauge::new(
            "teams_voice_exporter_new_series_held",
            "Call series that appeared less than --web.new-series-hold ago, shown at 0 until then so that rate() and increase() see their first calls.",
        )
        .expect("a valid metric description");
        registry
            .register(Box::new(held.clone()))
            .expect("one exposition per registry");
        Exposition {
            registry,
            calls,
            held,
            cache: Mutex::new(Cache {
                rendered: None,
                first_samples,
            }),
            series_bound: None,
        }
    }

    /// `--web.max-series`: serves at most `max` call series (see [`super::series_bound`]).
    pub fn with_max_series(mut self, max: usize) -> Self {
        let bound = SeriesBound::register(max, &self.registry)
            .expect("valid metric descriptions, registered once per exposition");
        self.series_bound = Some(bound);
        self
    }

    /// `--web.new-series-hold`: how long a new series is shown at 0 (0 for not at all).
    pub fn with_new_series_hold(self, hold: Duration) -> Self {
        self.cache.lock().first_samples.set_hold(hold);
        self
    }

    /// New series shown at 0 (as of the last rendering of the call metrics).
    pub fn held_series(&self) -> usize {
        self.cache.lock().first_samples.held()
    }

    /// The registry of the self-metrics.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Renders `/metrics`, gzipped if `gzip`.
    pub fn render(&self, gzip: bool) -> Result<Body, prometheus::Error> {
        self.render_at(gzip, Instant::now())
    }

    /// Renders `/metrics` as of `now`, which decides the series still held at 0.
    fn render_at(&self, gzip: bool, now: Instant) -> Result<Body, prometheus::Error> {
        let calls = self.rendered_calls(now)?;
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

    fn rendered_calls(&self, now: Instant) -> Result<Arc<Rendered>, prometheus::Error> {
        let mut cache = self.cache.lock();
        if let Some(rendered) = cache.rendered.as_ref() {
            if rendered.generation == self.calls.generation()
                && rendered.until.is_none_or(|until| now < until)
            {
                return Ok(Arc::clone(rendered));
            }
        }
        let (generation, mut families) = self.calls.gather();
        // Before the holds: a series left out is not served, so not held either.
        if let Some(bound) = &self.series_bound {
            bound.apply(&mut families);
        }
        let until = cache.first_samples.apply(&mut families, now);
        self.held.set(cache.first_samples.held() as i64);
        let capacity = cache.rendered.as_ref().map_or(64 * 1024, |r| r.text.len());
        let mut text = Vec::with_capacity(capacity);
        // As `Registry::gather` does: a family without series is left out.
        families.retain(|family| !family.get_metric().is_empty());
        TextEncoder::new().encode(&families, &mut text)?;
        drop(families);
        // Kept until the next generation: no room to spare.
        text.shrink_to_fit();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&text);
        let rendered = Arc::new(Rendered {
            generation,
            until,
            text,
            deflated: std::sync::OnceLock::new(),
            crc: crc.finalize(),
        });
        cache.rendered = Some(Arc::clone(&rendered));
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
    use crate::counting::state::{Ingest, TenantState};
    use crate::exposition::calls::StateCollector;
    use crate::exposition::self_metrics::SelfMetrics;
    use crate::source::direct_routing::DirectRouting;

    /// An exposition that shows new series at once, as before holds existed; the tests
    /// of holds set their own.
    fn exposition() -> (Exposition, Arc<Mutex<TenantState<DirectRouting>>>) {
        let registry = Registry::new();
        SelfMetrics::register(&registry).unwrap();
        let state = Arc::new(Mutex::new(TenantState::new()));
        let calls = StateCollector::new(state.clone());
        let exposition = Exposition::new(registry, Box::new(calls));
        (exposition.with_new_series_hold(Duration::ZERO), state)
    }

    fn ingest(state: &Mutex<TenantState<DirectRouting>>, id: &str) {
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

    /// The `teams_direct_routing_calls_total` line of `trunk`'s series in a plain body.
    fn calls_line(body: Body, trunk: &str) -> Option<String> {
        String::from_utf8(body.bytes)
            .unwrap()
            .lines()
            .find(|l| {
                l.starts_with("teams_direct_routing_calls_total{")
                    && l.contains(&format!("trunk_fqdn=\"sbc{trunk}.example.com\""))
            })
            .map(str::to_owned)
    }

    #[test]
    fn a_new_series_is_shown_at_zero_until_its_hold_ends() {
        let (exposition, state) = exposition();
        let hold = Duration::from_secs(30);
        let exposition = exposition.with_new_series_hold(hold);
        let start = Instant::now();
        ingest(&state, "a");
        let line = calls_line(exposition.render_at(false, start).unwrap(), "a").unwrap();
        assert!(line.ends_with(" 0"), "{line}");
        assert_eq!(
            exposition.held_series(),
            3,
            "calls, calls by country, and the duration of a success"
        );
        // The kept rendering is reused within the hold and replaced when it ends.
        let almost = start + hold - Duration::from_millis(1);
        let line = calls_line(exposition.render_at(false, almost).unwrap(), "a").unwrap();
        assert!(line.ends_with(" 0"), "{line}");
        let gzipped = exposition.render_at(true, start + hold).unwrap();
        let body = Body {
            bytes: gunzip(&gzipped.bytes),
            gzip: false,
        };
        assert!(calls_line(body, "a").unwrap().ends_with(" 1"));
        let body = exposition.render_at(false, start + hold).unwrap();
        assert!(calls_line(body, "a").unwrap().ends_with(" 1"));
        assert_eq!(exposition.held_series(), 0);
    }

    #[test]
    fn series_present_when_built_are_shown_with_their_values_at_once() {
        let registry = Registry::new();
        let state = Arc::new(Mutex::new(TenantState::<DirectRouting>::new()));
        ingest(&state, "a");
        let calls = StateCollector::new(state.clone());
        let exposition = Exposition::new(registry, Box::new(calls))
            .with_new_series_hold(Duration::from_secs(30));
        ingest(&state, "b");
        let now = Instant::now();
        let line = calls_line(exposition.render_at(false, now).unwrap(), "a").unwrap();
        assert!(line.ends_with(" 1"), "{line}");
        let line = calls_line(exposition.render_at(false, now).unwrap(), "b").unwrap();
        assert!(line.ends_with(" 0"), "{line}");
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
