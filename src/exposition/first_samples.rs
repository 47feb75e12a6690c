//! New call series are shown at 0 for a while before they carry their counts, so that
//! Prometheus' `rate()` and `increase()` see their first calls.
//!
//! Prometheus takes a series' first sample as its starting point: whatever a counter holds
//! when it is first scraped is invisible to `rate()` and `increase()`. Call series appear
//! all the time (a trunk's first 503, a new sub-reason) and failure series mostly appear
//! holding one or two calls, so without this the first calls of every new failure mode,
//! the ones an operator needs to see, would be lost. A series that appears is therefore
//! rendered with value 0 (counters) or empty buckets (histograms) for `--web.new-series-hold`,
//! measured from the first scrape that rendered it, and with its counts after that.
//!
//! The hold is measured in time rather than in scrapes that saw the 0, because the exporter
//! cannot tell its scrapers apart: with a pair of Prometheus servers, one scrape seeing the
//! 0 says nothing about the other, and a scrape whose answer was lost on the way looks like
//! a successful one. A hold of at least two scrape intervals lets every scraper see the 0,
//! even one that missed a scrape. The price is that a new series' first calls show up one
//! hold late; rows already reach Graph minutes after their calls.
//!
//! Series that exist when the exposition is built were restored from `--state.path`: their
//! previous values were scraped before the restart, so they are shown with their restored
//! values at once. Showing them at 0 would look like a counter reset, and Prometheus would
//! count the restored totals a second time. They keep those values for one hold, so that
//! what the first poll after the restart adds to them (the calls that appeared while the
//! exporter was down) is an increase between two scrapes after the restart, which a window
//! starting at the restart sees.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};

use prometheus::proto::{self, Metric, MetricFamily, MetricType};

/// `--web.new-series-hold` without `--demo`: two scrapes at Prometheus' default interval
/// of one minute, so one failed scrape still leaves one that saw the 0.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(120);
/// With `--demo`: two scrapes at the Compose demo stack's interval of 15 seconds.
pub const DEMO_HOLD: Duration = Duration::from_secs(30);

/// Which series Prometheus may already have seen at 0, and which are still shown at 0 (or,
/// after a restart, at their restored values).
#[derive(Debug)]
pub struct FirstSamples {
    hold: Duration,
    /// Series shown with their values, by [`series_key`].
    shown: HashSet<u64, KeyHash>,
    /// Series shown at 0, and until when.
    held: HashMap<u64, Instant, KeyHash>,
    /// Restored series with their restored values, shown as restored until the hold that
    /// began with the first rendering ends; emptied then.
    restored: HashMap<u64, Metric, KeyHash>,
    /// When the restored values stop being shown: set by the first rendering.
    restored_until: Option<Instant>,
}

impl FirstSamples {
    /// The series of `restored` (from `--state.path`) are never shown at 0: Prometheus
    /// scraped their values before the restart. They are shown with the values they were
    /// restored with for one hold from the first rendering, so that what the first poll
    /// after the restart adds to them (the calls that appeared while the exporter was down)
    /// shows as an increase between two scrapes after the restart, not in the gap before
    /// the first one, where a window that starts at the restart cannot see it.
    pub fn new(hold: Duration, restored: &[MetricFamily]) -> Self {
        let mut shown = HashSet::default();
        let mut values = HashMap::default();
        let mut buf = Vec::new();
        for family in restored {
            for metric in family.get_metric() {
                let key = series_key(&mut buf, family.name(), metric);
                shown.insert(key);
                values.insert(key, metric.clone());
            }
        }
        FirstSamples {
            hold,
            shown,
            held: HashMap::default(),
            restored: values,
            restored_until: None,
        }
    }

    /// Changes the hold of series that appear from now on.
    pub fn set_hold(&mut self, hold: Duration) {
        self.hold = hold;
    }

    /// Shows at 0 the counters and histograms of `families` still held at `now`, starting
    /// the hold of those never rendered before, and restored series at their restored
    /// values during the first hold. Returns when the next hold ends: the rendering is
    /// valid until then.
    pub fn apply(&mut self, families: &mut [MetricFamily], now: Instant) -> Option<Instant> {
        let mut next_end: Option<Instant> = None;
        let restored_until = *self.restored_until.get_or_insert(now + self.hold);
        if now >= restored_until && !self.restored.is_empty() {
            self.restored = HashMap::default();
        }
        let mut buf = Vec::with_capacity(256);
        for family in families.iter_mut() {
            let name = family.name().to_owned();
            let kind = family.get_field_type();
            for metric in family.mut_metric() {
                let key = series_key(&mut buf, &name, metric);
                if self.shown.contains(&key) {
                    if let Some(restored) = self.restored.get(&key) {
                        show_restored(kind, metric, restored);
                        next_end = Some(next_end.map_or(restored_until, |e| e.min(restored_until)));
                    }
                    continue;
                }
                let until = match self.held.get(&key) {
                    Some(until) => *until,
                    None if self.hold.is_zero() => {
                        self.shown.insert(key);
                        continue;
                    }
                    None => {
                        let until = now + self.hold;
                        self.held.insert(key, until);
                        until
                    }
                };
                if until <= now {
                    self.held.remove(&key);
                    self.shown.insert(key);
                    continue;
                }
                show_zero(kind, metric);
                next_end = Some(next_end.map_or(until, |end| end.min(until)));
            }
        }
        next_end
    }

    /// Series shown at 0 at the last [`FirstSamples::apply`] or since.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

/// A counter at 0, or a histogram with empty buckets, as before its first observation.
fn show_zero(kind: MetricType, metric: &mut Metric) {
    // The prometheus crate gives no mutable access to a metric's value: replace it.
    match kind {
        MetricType::COUNTER => metric.set_counter(proto::Counter::default()),
        MetricType::HISTOGRAM => {
            let buckets = metric
                .get_histogram()
                .get_bucket()
                .iter()
                .map(|bucket| {
                    let mut zero = proto::Bucket::default();
                    zero.set_upper_bound(bucket.upper_bound());
                    zero
                })
                .collect();
            let mut empty = proto::Histogram::default();
            empty.set_bucket(buckets);
            metric.set_histogram(empty);
        }
        // Call metrics are counters and histograms; a gauge's first value is seen as is.
        _ => {}
    }
}

/// `metric` with the values it was restored with.
fn show_restored(kind: MetricType, metric: &mut Metric, restored: &Metric) {
    match kind {
        MetricType::COUNTER => metric.set_counter(restored.get_counter().clone()),
        MetricType::HISTOGRAM => metric.set_histogram(restored.get_histogram().clone()),
        _ => {}
    }
}

/// A series' identity: its family's name and its label values (the label names are the
/// family's, in its order), as XXH3 of them written one after the other into `buf`. A
/// digest rather than the strings themselves, so that remembering tens of thousands of
/// series costs 8 bytes each and no allocation per scrape; a collision (odds about 10^-10
/// among 100,000 series) would only show one new series without its hold. 0xff never
/// occurs in UTF-8, so it separates the parts unambiguously.
pub(crate) fn series_key(buf: &mut Vec<u8>, family: &str, metric: &Metric) -> u64 {
    buf.clear();
    buf.extend_from_slice(family.as_bytes());
    buf.push(0xff);
    for label in metric.get_label() {
        buf.extend_from_slice(label.value().as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh3::xxh3_64(buf)
}

/// The keys are XXH3 digests already: hashing them again would only cost time.
type KeyHash = BuildHasherDefault<KeyHasher>;

#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in, to stay correct.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::family::{counter, family, histogram, Family, Histogram};

    const CALLS: Family = Family {
        name: "calls_total",
        help: "Calls.",
        labels: &["trunk", "code"],
    };
    const SETUP: Family = Family {
        name: "setup_seconds",
        help: "Setup.",
        labels: &["trunk"],
    };
    const BOUNDS: &[f64] = &[1.0, 5.0];

    /// `calls_total` with these series and values, and a histogram per trunk with one
    /// observation of 2 s per call.
    fn families(calls: &[(&str, &str, u64)]) -> Vec<MetricFamily> {
        let counters = calls
            .iter()
            .map(|(trunk, code, value)| counter(&CALLS, &[trunk, code], *value))
            .collect();
        let mut per_trunk = std::collections::BTreeMap::<&str, Histogram>::new();
        for (trunk, _, value) in calls {
            let h = per_trunk
                .entry(trunk)
                .or_insert_with(|| Histogram::new(BOUNDS));
            for _ in 0..*value {
                h.observe(BOUNDS, 2.0);
            }
        }
        let histograms = per_trunk
            .iter()
            .map(|(trunk, h)| histogram(&SETUP, &[trunk], BOUNDS, h))
            .collect();
        vec![
            family(&CALLS, MetricType::COUNTER, counters),
            family(&SETUP, MetricType::HISTOGRAM, histograms),
        ]
    }

    /// A histogram's count, sum and cumulative buckets.
    type Shown = (u64, f64, Vec<u64>);

    /// The counter values of `calls_total`, and each histogram's count, sum and buckets.
    fn values(families: &[MetricFamily]) -> (Vec<f64>, Vec<Shown>) {
        let counters = families[0]
            .get_metric()
            .iter()
            .map(|m| m.get_counter().get_value())
            .collect();
        let histograms = families[1]
            .get_metric()
            .iter()
            .map(|m| {
                let h = m.get_histogram();
                let buckets = h
                    .get_bucket()
                    .iter()
                    .map(|b| b.cumulative_count())
                    .collect();
                (h.get_sample_count(), h.get_sample_sum(), buckets)
            })
            .collect();
        (counters, histograms)
    }

    #[test]
    fn a_new_series_shows_zero_for_the_hold_then_its_counts() {
        let start = Instant::now();
        let hold = Duration::from_secs(10);
        let mut first = FirstSamples::new(hold, &[]);
        let mut f = families(&[("a", "503", 2)]);
        assert_eq!(first.apply(&mut f, start), Some(start + hold));
        assert_eq!(values(&f), (vec![0.0], vec![(0, 0.0, vec![0, 0])]));
        assert_eq!(first.held(), 2, "the counter and the histogram");

        // Counted again during the hold: still 0, and the hold does not start over.
        let mut f = families(&[("a", "503", 3)]);
        let later = start + Duration::from_secs(9);
        assert_eq!(first.apply(&mut f, later), Some(start + hold));
        assert_eq!(values(&f).0, vec![0.0]);

        let mut f = families(&[("a", "503", 3)]);
        assert_eq!(first.apply(&mut f, start + hold), None);
        assert_eq!(values(&f), (vec![3.0], vec![(3, 6.0, vec![0, 3])]));
        assert_eq!(first.held(), 0);
    }

    #[test]
    fn restored_series_are_never_shown_at_zero_and_new_ones_are_held() {
        let start = Instant::now();
        let hold = Duration::from_secs(10);
        let restored = families(&[("a", "503", 7)]);
        let mut first = FirstSamples::new(hold, &restored);
        let mut f = families(&[("a", "503", 8), ("a", "408", 1), ("b", "503", 1)]);
        assert_eq!(first.apply(&mut f, start), Some(start + hold));
        // Sorted by label values: a/408, a/503, b/503; a/503 as restored.
        assert_eq!(values(&f).0, vec![0.0, 7.0, 0.0]);
        // The histogram of trunk a was restored; trunk b's is new.
        let histograms = values(&f).1;
        assert_eq!(histograms[0].0, 7);
        assert_eq!(histograms[1], (0, 0.0, vec![0, 0]));
        let mut f = families(&[("a", "503", 8), ("a", "408", 1), ("b", "503", 1)]);
        assert_eq!(first.apply(&mut f, start + hold), None);
        assert_eq!(values(&f).0, vec![1.0, 8.0, 1.0]);
    }

    #[test]
    fn restored_series_keep_their_restored_values_for_one_hold_after_the_first_rendering() {
        let start = Instant::now();
        let hold = Duration::from_secs(10);
        let restored = families(&[("a", "503", 7)]);
        let mut first = FirstSamples::new(hold, &restored);
        // The first poll after the restart counted two more calls before the first scrape.
        let mut f = families(&[("a", "503", 9)]);
        assert_eq!(first.apply(&mut f, start), Some(start + hold));
        assert_eq!(values(&f), (vec![7.0], vec![(7, 14.0, vec![0, 7])]));
        let mut f = families(&[("a", "503", 9)]);
        assert_eq!(first.apply(&mut f, start + hold), None);
        assert_eq!(values(&f), (vec![9.0], vec![(9, 18.0, vec![0, 9])]));
        assert!(first.restored.is_empty(), "restored values are dropped");
    }

    #[test]
    fn each_series_has_its_own_hold_and_the_earliest_end_is_returned() {
        let start = Instant::now();
        let hold = Duration::from_secs(10);
        let mut first = FirstSamples::new(hold, &[]);
        first.apply(&mut families(&[("a", "503", 1)]), start);
        let then = start + Duration::from_secs(4);
        let mut f = families(&[("a", "503", 1), ("b", "503", 1)]);
        assert_eq!(first.apply(&mut f, then), Some(start + hold));
        let mut f = families(&[("a", "503", 1), ("b", "503", 1)]);
        assert_eq!(first.apply(&mut f, start + hold), Some(then + hold));
        assert_eq!(values(&f).0, vec![1.0, 0.0]);
    }

    #[test]
    fn a_zero_hold_shows_every_series_at_once() {
        let mut first = FirstSamples::new(Duration::ZERO, &[]);
        let mut f = families(&[("a", "503", 2)]);
        assert_eq!(first.apply(&mut f, Instant::now()), None);
        assert_eq!(values(&f).0, vec![2.0]);
        assert_eq!(first.held(), 0);
    }

    #[test]
    fn series_differ_by_family_and_by_every_label_value() {
        let a = families(&[("a", "503", 1)]);
        let b = families(&[("a", "408", 1)]);
        let mut buf = Vec::new();
        let mut key = |f: &MetricFamily| series_key(&mut buf, f.name(), &f.get_metric()[0]);
        assert_ne!(key(&a[0]), key(&b[0]));
        assert_ne!(key(&a[0]), key(&a[1]));
        // The separator keeps "ab","c" apart from "a","bc".
        let x = family(
            &CALLS,
            MetricType::COUNTER,
            vec![counter(&CALLS, &["ab", "c"], 1)],
        );
        let y = family(
            &CALLS,
            MetricType::COUNTER,
            vec![counter(&CALLS, &["a", "bc"], 1)],
        );
        assert_ne!(key(&x), key(&y));
    }
}
