//! The output: call metric families as OpenMetrics text with a timestamp on every sample,
//! as `promtool tsdb create-blocks-from openmetrics` reads it.
//!
//! The families come from the live exporter's own rendering (names, labels, `le` bounds
//! written as `/metrics` writes them), so history and live series are the same series.
//! Each step's samples are written as they are known and never held: a family's header
//! is repeated wherever its samples continue, which promtool accepts. A series appears
//! with a sample of 0 one step before its first count, as the live exporter's new-series
//! hold shows it, so that `increase()` over any range counts its first calls.

use std::collections::HashSet;
use std::fmt::Write as _;

use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};

use crate::exposition::first_samples::series_key;

/// Writes families with timestamps, remembering which series it has written.
#[derive(Default)]
pub struct OpenMetrics {
    /// Every series written so far, by the live exposition's series key.
    known: HashSet<u64>,
    /// Room for building a key.
    buf: Vec<u8>,
}

impl OpenMetrics {
    /// Marks every series of `families` as written (when resuming a file that holds them).
    pub fn mark_known(&mut self, families: &[MetricFamily]) {
        for family in families {
            for metric in family.get_metric() {
                let key = series_key(&mut self.buf, family.name(), metric);
                self.known.insert(key);
            }
        }
    }

    /// Appends `families` sampled at `at` (Unix seconds) to `out`; a series not written
    /// before gets a 0 at `previous` first.
    pub fn write(&mut self, out: &mut String, families: &[MetricFamily], at: i64, previous: i64) {
        for family in families {
            if family.get_metric().is_empty() {
                continue;
            }
            let kind = family.get_field_type();
            let name = match kind {
                MetricType::COUNTER => family
                    .name()
                    .strip_suffix("_total")
                    .unwrap_or(family.name()),
                _ => family.name(),
            };
            let _ = writeln!(out, "# HELP {name} {}", escape_value(family.help()));
            let _ = writeln!(out, "# TYPE {name} {}", type_name(kind));
            for metric in family.get_metric() {
                let labels = label_text(metric.get_label());
                let key = series_key(&mut self.buf, family.name(), metric);
                if self.known.insert(key) && previous < at {
                    sample(out, name, kind, metric, &labels, previous, true);
                }
                sample(out, name, kind, metric, &labels, at, false);
            }
        }
    }
}

/// The end of the file.
pub const EOF: &str = "# EOF\n";

fn type_name(kind: MetricType) -> &'static str {
    match kind {
        MetricType::COUNTER => "counter",
        MetricType::GAUGE => "gauge",
        MetricType::HISTOGRAM => "histogram",
        MetricType::SUMMARY => "summary",
        MetricType::UNTYPED => "unknown",
    }
}

fn sample(
    out: &mut String,
    name: &str,
    kind: MetricType,
    metric: &Metric,
    labels: &str,
    at: i64,
    zero: bool,
) {
    let value = |v: f64| if zero { 0.0 } else { v };
    match kind {
        MetricType::COUNTER => line(
            out,
            name,
            "_total",
            labels,
            None,
            value(metric.get_counter().get_value()),
            at,
        ),
        MetricType::HISTOGRAM => {
            let h = metric.get_histogram();
            for bucket in h.get_bucket() {
                let le = format_float(bucket.upper_bound());
                let count = value(bucket.cumulative_count() as f64);
                line(out, name, "_bucket", labels, Some(&le), count, at);
            }
            let count = value(h.get_sample_count() as f64);
            line(out, name, "_bucket", labels, Some("+Inf"), count, at);
            line(out, name, "_count", labels, None, count, at);
            line(
                out,
                name,
                "_sum",
                labels,
                None,
                value(h.get_sample_sum()),
                at,
            );
        }
        _ => line(
            out,
            name,
            "",
            labels,
            None,
            value(metric.get_gauge().get_value()),
            at,
        ),
    }
}

/// A series' labels as written between the braces, escaped once for all its lines.
fn label_text(labels: &[LabelPair]) -> String {
    let mut text = String::new();
    for pair in labels {
        if !text.is_empty() {
            text.push(',');
        }
        let _ = write!(text, "{}=\"{}\"", pair.name(), escape_value(pair.value()));
    }
    text
}

fn line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    le: Option<&str>,
    value: f64,
    at: i64,
) {
    out.push_str(name);
    out.push_str(suffix);
    match (labels.is_empty(), le) {
        (true, None) => {}
        (false, None) => {
            let _ = write!(out, "{{{labels}}}");
        }
        (true, Some(le)) => {
            let _ = write!(out, "{{le=\"{le}\"}}");
        }
        (false, Some(le)) => {
            let _ = write!(out, "{{{labels},le=\"{le}\"}}");
        }
    }
    let _ = writeln!(out, " {} {at}", format_float(value));
}

/// Floats as the live exporter's text encoder writes them (`1`, `0.5`, `+Inf`): `le` is a
/// label, and history must carry the same value as live series.
fn format_float(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else if v.is_nan() {
        "NaN".to_owned()
    } else {
        v.to_string()
    }
}

fn escape_value(text: &str) -> String {
    text.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::family::{counter, family, histogram, Family, Histogram};

    const CALLS: Family = Family {
        name: "x_calls_total",
        help: "Calls \"here\".",
        labels: &["trunk"],
    };
    const DURATION: Family = Family {
        name: "x_duration_seconds",
        help: "Durations.",
        labels: &["trunk"],
    };

    #[test]
    fn counters_and_histograms_with_timestamps_and_a_first_zero() {
        let bounds = [0.5, 1.0];
        let mut h = Histogram::new(&bounds);
        h.observe(&bounds, 0.7);
        let families = [
            family(
                &CALLS,
                MetricType::COUNTER,
                vec![counter(&CALLS, &["a\"b"], 3)],
            ),
            family(
                &DURATION,
                MetricType::HISTOGRAM,
                vec![histogram(&DURATION, &["a"], &bounds, &h)],
            ),
        ];
        let mut writer = OpenMetrics::default();
        let mut out = String::new();
        writer.write(&mut out, &families, 600, 300);
        writer.write(&mut out, &families, 900, 600);
        let expected = r#"# HELP x_calls Calls \"here\".
# TYPE x_calls counter
x_calls_total{trunk="a\"b"} 0 300
x_calls_total{trunk="a\"b"} 3 600
# HELP x_duration_seconds Durations.
# TYPE x_duration_seconds histogram
x_duration_seconds_bucket{trunk="a",le="0.5"} 0 300
x_duration_seconds_bucket{trunk="a",le="1"} 0 300
x_duration_seconds_bucket{trunk="a",le="+Inf"} 0 300
x_duration_seconds_count{trunk="a"} 0 300
x_duration_seconds_sum{trunk="a"} 0 300
x_duration_seconds_bucket{trunk="a",le="0.5"} 0 600
x_duration_seconds_bucket{trunk="a",le="1"} 1 600
x_duration_seconds_bucket{trunk="a",le="+Inf"} 1 600
x_duration_seconds_count{trunk="a"} 1 600
x_duration_seconds_sum{trunk="a"} 0.7 600
"#;
        assert!(out.starts_with(expected), "{out}");
        assert!(out.ends_with("x_duration_seconds_sum{trunk=\"a\"} 0.7 900\n"));
        assert_eq!(out.matches(" 300\n").count(), 6, "the zeros come once");
    }
}
