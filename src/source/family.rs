//! The building blocks of call metrics: a fixed-bounds histogram kept as plain data, and
//! the prometheus families each call-log function renders its totals into.
//!
//! Totals stay plain data (saved, restored, compared in tests) and become metric families
//! only when `/metrics` is rendered, by the helpers here.

use prometheus::proto::{self, MetricFamily, MetricType};
use serde::{Deserialize, Serialize};

use super::DamagedTotals;

/// A histogram with fixed bounds, kept as per-bucket (not cumulative) counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// One count per bound, plus the `+Inf` bucket last.
    pub buckets: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new(bounds: &[f64]) -> Self {
        Histogram {
            buckets: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        let index = bounds.partition_point(|bound| *bound < value);
        self.buckets[index] += 1;
        self.sum += value;
        self.count += 1;
    }
}

/// A histogram as the state file keeps it, with the labels of its series (empty for a
/// histogram that has none).
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedHistogram {
    pub trunk_fqdn: String,
    pub call_type: String,
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl SavedHistogram {
    /// `h`, saved under a trunk and call type.
    pub fn save(trunk_fqdn: &str, call_type: &str, h: &Histogram) -> Self {
        SavedHistogram {
            trunk_fqdn: trunk_fqdn.to_owned(),
            call_type: call_type.to_owned(),
            buckets: h.buckets.clone(),
            sum: h.sum,
            count: h.count,
        }
    }

    /// The histogram, once its buckets add up for `bounds`.
    pub fn restore(self, bounds: &[f64]) -> Result<Histogram, DamagedTotals> {
        SavedBuckets {
            buckets: self.buckets,
            sum: self.sum,
            count: self.count,
        }
        .restore(bounds)
    }
}

/// A histogram's counts as the state file keeps them, its labels saved beside it by the
/// function that owns it.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedBuckets {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl SavedBuckets {
    pub fn save(h: &Histogram) -> Self {
        SavedBuckets {
            buckets: h.buckets.clone(),
            sum: h.sum,
            count: h.count,
        }
    }

    /// The histogram, once its buckets add up for `bounds`.
    pub fn restore(self, bounds: &[f64]) -> Result<Histogram, DamagedTotals> {
        if self.buckets.len() != bounds.len() + 1
            || self.buckets.iter().sum::<u64>() != self.count
            || !self.sum.is_finite()
        {
            return Err(DamagedTotals("a histogram does not add up".into()));
        }
        Ok(Histogram {
            buckets: self.buckets,
            sum: self.sum,
            count: self.count,
        })
    }
}

/// Refuses a saved histogram counted with other bounds than this version's.
pub fn check_bounds(name: &str, saved: &[f64], ours: &[f64]) -> Result<(), DamagedTotals> {
    if saved == ours {
        Ok(())
    } else {
        Err(DamagedTotals(format!(
            "its {name} histogram has other buckets than this version's"
        )))
    }
}

pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

impl Family {
    /// The description a prometheus collector announces for this family.
    pub fn desc(&self) -> prometheus::core::Desc {
        prometheus::core::Desc::new(
            self.name.to_owned(),
            self.help.to_owned(),
            self.labels.iter().map(|l| (*l).to_owned()).collect(),
            std::collections::HashMap::new(),
        )
        .expect("static metric descriptions are valid")
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

pub fn counter(family: &Family, values: &[&str], value: u64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(value as f64);
    let mut metric = proto::Metric::from_label(labels(family, values));
    metric.set_counter(c);
    metric
}

pub fn histogram(family: &Family, values: &[&str], bounds: &[f64], h: &Histogram) -> proto::Metric {
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

pub fn family(f: &Family, kind: MetricType, mut metrics: Vec<proto::Metric>) -> MetricFamily {
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
