//! The exporter's own metrics, put together: those of one tenant ([`TenantMetrics`]: reading
//! its sources and counting their rows), and the process's own ([`SelfMetrics`]:
//! `build_info`, the start time, the configuration's reloads, the shard, and the process
//! collector).

use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntGauge, IntGaugeVec, Opts, Registry};

use crate::counting::metrics::CountingMetrics;
use crate::quality::metrics::QualityMetrics;
use crate::source::metrics::SourceMetrics;
use crate::source::Function;

/// The process-wide self-metrics, registered on one registry.
#[derive(Clone)]
pub struct SelfMetrics {
    pub start_time: Gauge,
    /// Alerts need it to tell a stale exporter ("no success for three poll intervals") from
    /// a slowly polling one.
    pub poll_interval: Gauge,
    pub config_last_reload_successful: IntGauge,
    pub config_last_reload_success_time: Gauge,
    pub shard_ordinal: IntGaugeVec,
    pub total_shards: IntGauge,
}

impl SelfMetrics {
    /// Creates the self-metrics and registers them, with `build_info` and the process
    /// collector, on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let p = |name: &str| format!("teams_voice_exporter_{name}");
        let metrics = SelfMetrics {
            start_time: Gauge::new(p("start_time_seconds"), "Unix time the exporter started.")?,
            poll_interval: Gauge::new(p("poll_interval_seconds"), "How often the recent window is read (--poll.interval).")?,
            config_last_reload_successful: IntGauge::new(p("config_last_reload_successful"), "Whether the last reading of the tenants file (--config.file; at start, on SIGHUP or POST /-/reload) succeeded: 1, or 0 while the tenants read before it go on unchanged.")?,
            config_last_reload_success_time: Gauge::new(p("config_last_reload_success_timestamp_seconds"), "Unix time of the last successful reading of the configuration.")?,
            // kube-state-metrics' form, which its sharding alerts rely on: the ordinal is
            // both the label and the value.
            shard_ordinal: IntGaugeVec::new(
                Opts::new(p("shard_ordinal"), "This process's shard (--shard, or its StatefulSet ordinal with --shard.auto): it reads the tenants that a consistent hash of the tenant id gives it."),
                &["shard_ordinal"],
            )?,
            total_shards: IntGauge::new(p("total_shards"), "How many shards split the tenants file (--total-shards, or the StatefulSet's replicas with --shard.auto).")?,
        };
        registry.register(Box::new(metrics.start_time.clone()))?;
        registry.register(Box::new(metrics.poll_interval.clone()))?;
        registry.register(Box::new(metrics.config_last_reload_successful.clone()))?;
        registry.register(Box::new(metrics.config_last_reload_success_time.clone()))?;
        registry.register(Box::new(metrics.shard_ordinal.clone()))?;
        registry.register(Box::new(metrics.total_shards.clone()))?;
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

    /// Records a reading of the configuration at `now` (Unix seconds).
    pub fn config_read(&self, ok: bool, now: f64) {
        self.config_last_reload_successful.set(i64::from(ok));
        if ok {
            self.config_last_reload_success_time.set(now);
        }
    }

    /// Records the shard this process is.
    pub fn shard(&self, ordinal: u32, total: u32) {
        self.shard_ordinal.reset();
        self.shard_ordinal
            .with_label_values(&[&ordinal.to_string()])
            .set(i64::from(ordinal));
        self.total_shards.set(i64::from(total));
    }
}

/// The self-metrics of one tenant: reading its sources and counting their rows. Registered
/// nowhere; [`super::fleet::Fleet`] renders them with the `tenant` label.
#[derive(Clone)]
pub struct TenantMetrics {
    pub source: SourceMetrics,
    pub counting: CountingMetrics,
    /// The call-quality collector's, when it is on (`--collector.call-quality`).
    pub quality: Option<QualityMetrics>,
}

impl TenantMetrics {
    pub fn new() -> prometheus::Result<Self> {
        Ok(TenantMetrics {
            source: SourceMetrics::new()?,
            counting: CountingMetrics::new()?,
            quality: None,
        })
    }

    /// With the call-quality collector's metrics too, its request series at zero.
    pub fn with_call_quality(mut self) -> prometheus::Result<Self> {
        self.quality = Some(QualityMetrics::new()?);
        self.source
            .initialise_endpoint(crate::source::metrics::Endpoint::CallRecords);
        Ok(self)
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        let quality = self.quality.iter().flat_map(QualityMetrics::collectors);
        self.source
            .collectors()
            .into_iter()
            .chain(self.counting.collectors())
            .chain(quality)
            .collect()
    }

    /// Creates the series of a source's `function` at zero, so that alerts and
    /// `increase()` see the first event rather than a series appearing from nothing.
    pub fn initialise(&self, function: Function) {
        self.source.initialise(function);
        self.counting.initialise(function);
    }

    /// The tenant's families, without the `tenant` label.
    pub fn families(&self) -> Vec<MetricFamily> {
        self.collectors()
            .into_iter()
            .flat_map(|collector| collector.collect())
            .collect()
    }

    /// The descriptions of the tenant's families.
    pub fn descs(&self) -> Vec<prometheus::core::Desc> {
        self.collectors()
            .into_iter()
            .flat_map(|collector| collector.desc().into_iter().cloned().collect::<Vec<_>>())
            .collect()
    }
}

fn rustc_version() -> &'static str {
    // Set by build.rs.
    option_env!("TVE_RUSTC_VERSION").unwrap_or("unknown")
}
