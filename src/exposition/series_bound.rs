//! A bound on the call series one exporter serves (`--web.max-series`), the last line of
//! defence of the Prometheus servers scraping it.
//!
//! The label limits (`--labels.max-*`, [`crate::source::labels`]) bound each label's values,
//! but not their product: a tenant with thousands of trunks and every SIP code could still
//! serve more series than a Prometheus wants from one target. So the rendering counts the
//! series it serves, as Prometheus counts them (a counter is one series, a histogram one per
//! bucket plus `_sum` and `_count`), shows them in `teams_voice_exporter_call_series`, warns
//! from 80 % of the bound on, and at the bound **leaves out the series beyond it**: the
//! families in their order, each family's series in label order, whole series only, as many
//! as fit; the exporter's own families the call collector renders (rows ingested, arrival
//! delay, ...) are neither counted nor left out. What is left out is still counted (and saved with `--state.path`); it shows again
//! once the bound is raised. `teams_voice_exporter_call_series_dropped` says how many series
//! a scrape lacks, and an error is logged while any are.

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::proto::{MetricFamily, MetricType};
use prometheus::{IntGauge, Registry};

/// `--web.max-series`'s default: far above the largest tenants (thousands of trunks make a
/// few hundred thousand series), far below what makes a scrape or a Prometheus struggle.
pub const DEFAULT_MAX_SERIES: usize = 1_000_000;

/// The exporter's own families: not call series, never left out.
const OWN_PREFIX: &str = "teams_voice_exporter_";

/// From this share of the bound on, a warning is logged.
const WARN_SHARE: f64 = 0.8;

/// The bound and its gauges.
pub struct SeriesBound {
    max: usize,
    served: IntGauge,
    dropped: IntGauge,
    /// Whether the last rendering was near the bound (logged once per crossing).
    near: AtomicBool,
    /// Whether the last rendering left series out (logged once per crossing).
    over: AtomicBool,
}

impl SeriesBound {
    /// The bound of `max` series, its gauges registered with `registry`.
    pub fn register(max: usize, registry: &Registry) -> prometheus::Result<SeriesBound> {
        let served = IntGauge::new(
            "teams_voice_exporter_call_series",
            "Call series served by the latest rendering of /metrics, as Prometheus counts them (a histogram is one series per bucket plus _sum and _count); at most --web.max-series.",
        )?;
        let limit = IntGauge::new(
            "teams_voice_exporter_call_series_limit",
            "--web.max-series: the most call series one scrape serves; series beyond it are left out (still counted) until it is raised.",
        )?;
        let dropped = IntGauge::new(
            "teams_voice_exporter_call_series_dropped",
            "Call series left out of the latest rendering of /metrics because of --web.max-series; their calls are still counted and show once the bound is raised.",
        )?;
        limit.set(i64::try_from(max).unwrap_or(i64::MAX));
        for gauge in [&served, &limit, &dropped] {
            registry.register(Box::new(gauge.clone()))?;
        }
        Ok(SeriesBound {
            max,
            served,
            dropped,
            near: AtomicBool::new(false),
            over: AtomicBool::new(false),
        })
    }

    /// Leaves out of `families` the series beyond the bound, and updates the gauges.
    pub fn apply(&self, families: &mut [MetricFamily]) {
        let mut served = 0usize;
        let mut dropped = 0usize;
        // The exporter's own families among them (rows ingested, arrival delay, ...) are a
        // few series per source, and what tells that something is wrong: always served.
        let calls = families
            .iter_mut()
            .filter(|family| !family.name().starts_with(OWN_PREFIX));
        for family in calls {
            let weight = |metric: &prometheus::proto::Metric| match family.get_field_type() {
                MetricType::HISTOGRAM => metric.get_histogram().get_bucket().len() + 3,
                MetricType::SUMMARY => metric.get_summary().get_quantile().len() + 2,
                _ => 1,
            };
            let metrics = family.get_metric();
            let mut keep = metrics.len();
            for (index, metric) in metrics.iter().enumerate() {
                let series = weight(metric);
                if served + series > self.max {
                    keep = index;
                    dropped += metrics[index..].iter().map(weight).sum::<usize>();
                    break;
                }
                served += series;
            }
            if keep < metrics.len() {
                family.mut_metric().truncate(keep);
            }
        }
        self.served.set(i64::try_from(served).unwrap_or(i64::MAX));
        self.dropped.set(i64::try_from(dropped).unwrap_or(i64::MAX));
        self.log(served, dropped);
    }

    fn log(&self, served: usize, dropped: usize) {
        let near = served as f64 >= self.max as f64 * WARN_SHARE;
        if near && !self.near.swap(true, Ordering::Relaxed) && dropped == 0 {
            tracing::warn!(
                series = served,
                limit = self.max,
                "the call series near --web.max-series; at the bound, series beyond it are left out of /metrics (still counted). Check the label limits (--labels.max-*, teams_voice_exporter_label_values_folded_total) or raise --web.max-series"
            );
        } else if !near {
            self.near.store(false, Ordering::Relaxed);
        }
        if dropped > 0 && !self.over.swap(true, Ordering::Relaxed) {
            tracing::error!(
                series = served,
                dropped,
                limit = self.max,
                "call series beyond --web.max-series are left out of /metrics (their calls are still counted); raise --web.max-series or lower the label limits (--labels.max-*)"
            );
        } else if dropped == 0 {
            self.over.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::family::{counter, family, histogram, Family, Histogram};

    const CALLS: Family = Family {
        name: "calls_total",
        help: "h",
        labels: &["trunk"],
    };
    const DURATION: Family = Family {
        name: "duration_seconds",
        help: "h",
        labels: &["trunk"],
    };

    #[test]
    fn series_beyond_the_bound_are_left_out_and_counted() {
        let registry = Registry::new();
        let bound = SeriesBound::register(10, &registry).unwrap();
        let bounds = [1.0, 2.0];
        let mut families = vec![
            family(
                &CALLS,
                MetricType::COUNTER,
                (0..6)
                    .map(|i| counter(&CALLS, &[&format!("t{i}")], 1))
                    .collect(),
            ),
            // Each histogram is 3 buckets (with +Inf) plus _sum and _count: 5 series.
            family(
                &DURATION,
                MetricType::HISTOGRAM,
                (0..2)
                    .map(|i| {
                        histogram(
                            &DURATION,
                            &[&format!("t{i}")],
                            &bounds,
                            &Histogram::new(&bounds),
                        )
                    })
                    .collect(),
            ),
        ];
        const OWN: Family = Family {
            name: "teams_voice_exporter_rows_ingested_total",
            help: "h",
            labels: &["endpoint"],
        };
        families.insert(
            0,
            family(
                &OWN,
                MetricType::COUNTER,
                vec![counter(&OWN, &["getDirectRoutingCalls"], 3)],
            ),
        );
        bound.apply(&mut families);
        assert_eq!(
            families[0].get_metric().len(),
            1,
            "the exporter's own: served"
        );
        assert_eq!(families[1].get_metric().len(), 6);
        assert_eq!(families[2].get_metric().len(), 0, "6 + 5 > 10");
        assert_eq!(bound.served.get(), 6);
        assert_eq!(bound.dropped.get(), 10);

        let registry = Registry::new();
        let roomy = SeriesBound::register(100, &registry).unwrap();
        let mut families = vec![family(
            &CALLS,
            MetricType::COUNTER,
            vec![counter(&CALLS, &["a"], 1)],
        )];
        roomy.apply(&mut families);
        assert_eq!((roomy.served.get(), roomy.dropped.get()), (1, 0));
    }
}
