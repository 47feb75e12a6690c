//! The tenants a process reads, as `/metrics`, the landing page and `/-/ready` see them.
//!
//! Each tenant's call metrics and self-metrics are kept without a `tenant` label: the code
//! that counts and records needs no tenant, and a tenant's series go with it when it is
//! removed. [`Fleet`] adds the label as it renders them, and merges the families every
//! tenant shares. The list changes only as a whole ([`Fleet::set`]), at start and when the
//! tenants file is reloaded, so a scrape sees every tenant or none of a change.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

use super::calls::CallMetrics;
use super::self_metrics::TenantMetrics;
use crate::counting::poller::PollerStatus;
use crate::counting::store::StoreStatus;
use crate::source::Function;

/// The label every call metric and per-tenant self-metric carries.
pub const TENANT_LABEL: &str = "tenant";

/// One source (a call-log function of a tenant) as the landing page and `/-/ready` see it.
pub struct SourceView {
    pub function: Function,
    pub status: Arc<PollerStatus>,
    /// `None` without `--state.path`.
    pub state: Option<Arc<StoreStatus>>,
}

/// One tenant as the exposition sees it.
pub struct TenantShown {
    /// The `tenant` label value.
    pub name: String,
    /// The directory (tenant) id or verified domain.
    pub id: String,
    /// Which credential reads it, in words.
    pub credential: String,
    pub metrics: TenantMetrics,
    /// Its sources' call metrics.
    pub calls: Vec<Box<dyn CallMetrics>>,
    /// Its sources, in the order of [`Function::ALL`].
    pub sources: Vec<SourceView>,
    /// Why it could not be started (its credential files or its state), if it could not: it
    /// is shown as down with this, and nothing of it is read.
    pub problem: Option<String>,
}

impl TenantShown {
    /// Whether the latest read of every source succeeded.
    pub fn is_up(&self) -> bool {
        self.problem.is_none()
            && !self.sources.is_empty()
            && self.sources.iter().all(|source| source.status.is_up())
    }

    /// Whether every source has finished a first read, successful or not.
    pub fn has_read_once(&self) -> bool {
        self.problem.is_some() || self.sources.iter().all(|s| s.status.has_read_once())
    }

    /// What is wrong with the tenant now, with the fix: why it could not start, or the
    /// error of a source's latest read.
    pub fn trouble(&self) -> Option<String> {
        if let Some(problem) = &self.problem {
            return Some(problem.clone());
        }
        self.sources.iter().find_map(|source| {
            let poll = source.status.last_poll()?;
            let error = poll.result.err()?;
            Some(format!("{}: {error}", source.function.name()))
        })
    }
}

/// The tenants this process reads.
pub struct Fleet {
    tenants: RwLock<Arc<Vec<Arc<TenantShown>>>>,
    /// Changes with every [`Fleet::set`]: the call metrics' generation must change when the
    /// tenants do, even if the sum of their sources' generations happens not to.
    epoch: AtomicU64,
    /// Once ready, a process stays ready: a tenant added by a reload must not take every
    /// other tenant's metrics out of the Service while it reads its first window.
    ready: AtomicBool,
    /// Whether readiness waits for a successful read ([`Fleet::single_tenant`]).
    ready_on_success: bool,
    descs: Vec<Desc>,
}

impl Default for Fleet {
    fn default() -> Self {
        Self::new()
    }
}

impl Fleet {
    /// The fleet of a process that reads one tenant from the environment: it is ready once
    /// a read of every source has succeeded, as before there were tenants files. With no
    /// other tenant to hold back, a rollout with a wrong secret must not turn ready.
    pub fn single_tenant() -> Self {
        Fleet {
            ready_on_success: true,
            ..Self::new()
        }
    }

    /// No tenants yet.
    pub fn new() -> Self {
        let prototype = TenantMetrics::new().expect("valid metric descriptions");
        let mut descs: Vec<Desc> = prototype
            .descs()
            .into_iter()
            .map(|desc| {
                let mut labels = vec![TENANT_LABEL.to_owned()];
                labels.extend(desc.variable_labels.iter().cloned());
                Desc::new(desc.fq_name, desc.help, labels, Default::default())
                    .expect("valid metric descriptions")
            })
            .collect();
        for (name, help, labels) in [FLEET_UP, FLEET_READY, FLEET_TENANTS] {
            let labels = labels.iter().map(|l| (*l).to_owned()).collect();
            descs.push(
                Desc::new(name.to_owned(), help.to_owned(), labels, Default::default())
                    .expect("valid metric descriptions"),
            );
        }
        Fleet {
            tenants: RwLock::new(Arc::new(Vec::new())),
            epoch: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            ready_on_success: false,
            descs,
        }
    }

    /// The tenants, by name.
    pub fn tenants(&self) -> Arc<Vec<Arc<TenantShown>>> {
        self.tenants.read().clone()
    }

    /// Replaces the tenants shown.
    pub fn set(&self, mut tenants: Vec<Arc<TenantShown>>) {
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
        let mut shown = self.tenants.write();
        *shown = Arc::new(tenants);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// The tenants that have not finished their first read yet, by name; empty when ready.
    pub fn waiting(&self) -> Vec<String> {
        if self.ready.load(Ordering::Acquire) {
            return Vec::new();
        }
        let tenants = self.tenants();
        let waiting: Vec<String> = tenants
            .iter()
            .filter(|tenant| {
                if self.ready_on_success {
                    tenant.problem.is_some() || !tenant.sources.iter().all(|s| s.status.is_ready())
                } else {
                    !tenant.has_read_once()
                }
            })
            .map(|tenant| tenant.name.clone())
            .collect();
        if waiting.is_empty() {
            self.ready.store(true, Ordering::Release);
        }
        waiting
    }

    /// Ready once every tenant has finished its first read (see [`Fleet::waiting`]).
    pub fn is_ready(&self) -> bool {
        self.waiting().is_empty()
    }
}

const FLEET_UP: (&str, &str, &[&str]) = (
    "teams_voice_exporter_tenant_up",
    "1 when the latest read of every call log of the tenant succeeded, else 0 (not consented, permission missing, throttled, or its state or credential files unusable; the landing page and the log say which, with the fix).",
    &[TENANT_LABEL],
);
const FLEET_READY: (&str, &str, &[&str]) = (
    "teams_voice_exporter_ready",
    "1 once every tenant's first read has finished, successful or not (what /-/ready reports).",
    &[],
);
const FLEET_TENANTS: (&str, &str, &[&str]) = (
    "teams_voice_exporter_tenants",
    "Tenants this process reads (its shard of the tenants file).",
    &[],
);

fn gauge_family(
    (name, help, _): (&str, &str, &[&str]),
    metrics: Vec<proto::Metric>,
) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(MetricType::GAUGE);
    family.set_metric(metrics);
    family
}

fn gauge(labels: Vec<proto::LabelPair>, value: f64) -> proto::Metric {
    let mut gauge = proto::Gauge::default();
    gauge.set_value(value);
    let mut metric = proto::Metric::from_label(labels);
    metric.set_gauge(gauge);
    metric
}

fn tenant_pair(tenant: &str) -> proto::LabelPair {
    let mut pair = proto::LabelPair::default();
    pair.set_name(TENANT_LABEL.to_owned());
    pair.set_value(tenant.to_owned());
    pair
}

/// Adds `tenant` as the first label of every metric of `families` (as `/metrics` and the
/// backfill's history show them).
pub(crate) fn add_tenant_label(families: &mut [MetricFamily], tenant: &str) {
    for family in families {
        for metric in family.mut_metric().iter_mut() {
            let mut labels = metric.take_label();
            labels.insert(0, tenant_pair(tenant));
            metric.set_label(labels);
        }
    }
}

/// Adds `tenant` as the first label of every metric of `families`, and merges them into
/// `into`: a family already there takes the metrics, another is appended.
fn merge_with_tenant(into: &mut Vec<MetricFamily>, mut families: Vec<MetricFamily>, tenant: &str) {
    add_tenant_label(&mut families, tenant);
    for mut family in families {
        match into.iter_mut().find(|f| f.name() == family.name()) {
            Some(shared) => shared.mut_metric().extend(family.take_metric()),
            None => into.push(family),
        }
    }
}

/// The call metrics of every tenant, as one exposition.
pub struct FleetCalls(pub Arc<Fleet>);

impl CallMetrics for FleetCalls {
    fn generation(&self) -> u64 {
        let fleet = &self.0;
        let tenants = fleet.tenants.read();
        let epoch = fleet.epoch.load(Ordering::Acquire);
        // Each source's generation only grows, so the sum changes whenever one does; the
        // epoch, far above any sum, changes it whenever the tenants do.
        tenants
            .iter()
            .flat_map(|tenant| tenant.calls.iter())
            .fold(epoch << 40, |sum, source| {
                sum.wrapping_add(source.generation())
            })
    }

    fn gather(&self) -> (u64, Vec<MetricFamily>) {
        let fleet = &self.0;
        let (tenants, epoch) = {
            let tenants = fleet.tenants.read();
            (tenants.clone(), fleet.epoch.load(Ordering::Acquire))
        };
        let mut generation = epoch << 40;
        let mut families = Vec::new();
        for tenant in tenants.iter() {
            for source in &tenant.calls {
                let (source_generation, source_families) = source.gather();
                generation = generation.wrapping_add(source_generation);
                merge_with_tenant(&mut families, source_families, &tenant.name);
            }
        }
        (generation, families)
    }
}

/// The self-metrics of every tenant, with `teams_voice_exporter_tenant_up`, `_ready` and
/// `_tenants`: registered with the process's own metrics.
pub struct FleetSelfMetrics(pub Arc<Fleet>);

impl Collector for FleetSelfMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let fleet = &self.0;
        let tenants = fleet.tenants();
        let mut families = Vec::new();
        let mut up = Vec::with_capacity(tenants.len());
        for tenant in tenants.iter() {
            merge_with_tenant(&mut families, tenant.metrics.families(), &tenant.name);
            let value = if tenant.is_up() { 1.0 } else { 0.0 };
            up.push(gauge(vec![tenant_pair(&tenant.name)], value));
        }
        families.retain(|family| !family.get_metric().is_empty());
        families.push(gauge_family(FLEET_UP, up));
        let ready = if fleet.is_ready() { 1.0 } else { 0.0 };
        families.push(gauge_family(FLEET_READY, vec![gauge(Vec::new(), ready)]));
        families.push(gauge_family(
            FLEET_TENANTS,
            vec![gauge(Vec::new(), tenants.len() as f64)],
        ));
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, Registry, TextEncoder};

    fn tenant(name: &str) -> Arc<TenantShown> {
        let metrics = TenantMetrics::new().unwrap();
        metrics.initialise(Function::DirectRoutingCalls);
        metrics
            .source
            .rows_received
            .with_label_values(&["getDirectRoutingCalls"])
            .inc_by(if name == "contoso" { 3 } else { 5 });
        Arc::new(TenantShown {
            name: name.to_owned(),
            id: format!("{name}.onmicrosoft.com"),
            credential: "test".to_owned(),
            metrics,
            calls: Vec::new(),
            sources: Vec::new(),
            problem: None,
        })
    }

    fn text(registry: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_tenants_self_metrics_carry_its_name_and_go_with_it() {
        let fleet = Arc::new(Fleet::new());
        let registry = Registry::new();
        registry
            .register(Box::new(FleetSelfMetrics(fleet.clone())))
            .unwrap();
        fleet.set(vec![tenant("fabrikam"), tenant("contoso")]);
        let shown = text(&registry);
        assert!(shown.contains(
            "teams_voice_exporter_rows_received_total{tenant=\"contoso\",endpoint=\"getDirectRoutingCalls\"} 3"
        ), "{shown}");
        assert!(shown.contains(
            "teams_voice_exporter_rows_received_total{tenant=\"fabrikam\",endpoint=\"getDirectRoutingCalls\"} 5"
        ));
        assert!(shown.contains("teams_voice_exporter_tenants 2"));
        // Not consented or not yet read: no read has succeeded.
        assert!(shown.contains("teams_voice_exporter_tenant_up{tenant=\"contoso\"} 0"));

        fleet.set(vec![tenant("fabrikam")]);
        let shown = text(&registry);
        assert!(!shown.contains("contoso"), "a removed tenant's series go");
        assert!(shown.contains("teams_voice_exporter_tenants 1"));
    }

    #[test]
    fn the_generation_changes_with_the_tenants() {
        let fleet = Arc::new(Fleet::new());
        let calls = FleetCalls(fleet.clone());
        let before = calls.generation();
        fleet.set(vec![tenant("contoso")]);
        assert_ne!(calls.generation(), before);
    }
}
