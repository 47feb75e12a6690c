//! The `/metrics` body: the call metrics, kept rendered between changes, followed by the
//! self-metrics, with gzip that reuses the kept part.

use std::sync::Arc;

use parking_lot::Mutex;
use prometheus::{Encoder, Registry, TextEncoder};

use super::calls::CallMetrics;

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
    calls: Box<dyn CallMetrics>,
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
    pub fn new(registry: Registry, calls: Box<dyn CallMetrics>) -> Self {
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
        let (generation, mut families) = self.calls.gather();
        let mut text = Vec::with_capacity(cache.as_ref().map_or(64 * 1024, |r| r.text.len()));
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
    use crate::counting::state::{Ingest, TenantState};
    use crate::exposition::calls::StateCollector;
    use crate::exposition::self_metrics::SelfMetrics;
    use crate::source::direct_routing::DirectRouting;

    fn exposition() -> (Exposition, Arc<Mutex<TenantState<DirectRouting>>>) {
        let registry = Registry::new();
        SelfMetrics::register(&registry).unwrap();
        let state = Arc::new(Mutex::new(TenantState::new()));
        let calls = StateCollector::new(state.clone());
        (Exposition::new(registry, Box::new(calls)), state)
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
