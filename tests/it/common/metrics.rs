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

    /// The metrics of an exporter that reads one tenant, with the `tenant` label (the same
    /// on every series that has it) taken off, so that tests of one tenant compare label
    /// sets as they always have. Panics if two tenants are found.
    pub fn of_single_tenant(self) -> Metrics {
        let tenants: std::collections::BTreeSet<&String> = self
            .samples
            .keys()
            .filter_map(|(_, labels)| labels.get("tenant"))
            .collect();
        assert!(tenants.len() <= 1, "one tenant expected, found {tenants:?}");
        self.with_tenant_removed()
    }

    /// The series of `tenant`, without the `tenant` label; the process-wide series (without
    /// one) are left out.
    pub fn of_tenant(&self, tenant: &str) -> Metrics {
        Metrics {
            samples: self
                .samples
                .iter()
                .filter(|((_, labels), _)| labels.get("tenant").map(String::as_str) == Some(tenant))
                .map(|(series, value)| (series.clone(), *value))
                .collect(),
            types: self.types.clone(),
        }
        .with_tenant_removed()
    }

    /// The tenants that have series.
    pub fn tenants(&self) -> std::collections::BTreeSet<String> {
        self.samples
            .keys()
            .filter_map(|(_, labels)| labels.get("tenant").cloned())
            .collect()
    }

    fn with_tenant_removed(self) -> Metrics {
        Metrics {
            samples: self
                .samples
                .into_iter()
                .map(|((name, mut labels), value)| {
                    labels.remove("tenant");
                    ((name, labels), value)
                })
                .collect(),
            types: self.types,
        }
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
