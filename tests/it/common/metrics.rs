//! A `/metrics` parser written independently of the exporter's own rendering.

use std::collections::BTreeMap;

/// A series: metric name (with `_bucket`/`_sum`/`_count` suffix) and sorted labels.
pub type Series = (String, BTreeMap<String, String>);

/// A parsed text exposition.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub samples: BTreeMap<Series, f64>,
    pub types: BTreeMap<String, String>,
}

impl Metrics {
    /// Parses the Prometheus text format (as much of it as an exporter emits).
    pub fn parse(text: &str) -> Metrics {
        let mut metrics = Metrics::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                metrics.types.insert(
                    parts.next().unwrap().to_owned(),
                    parts.next().unwrap().to_owned(),
                );
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => (
                    name.to_owned(),
                    parse_labels(rest.strip_suffix('}').unwrap()),
                ),
            };
            assert!(
                metrics.samples.insert((name, labels), value).is_none(),
                "duplicate series {line}"
            );
        }
        metrics
    }

    /// All samples of one metric name.
    pub fn of(&self, name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), v)| (labels.clone(), *v))
            .collect()
    }

    /// The sum over all series of a metric whose labels include `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.of(name)
            .iter()
            .filter(|(labels, _)| {
                filter
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}
