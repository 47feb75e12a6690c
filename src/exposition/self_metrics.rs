//! The exporter's own metrics, put together: those of reading sources
//! ([`SourceMetrics`]), of counting ([`CountingMetrics`]), and the process's own
//! (`build_info`, the start time and the process collector).

use prometheus::{Gauge, IntGaugeVec, Opts, Registry};

use crate::counting::metrics::CountingMetrics;
use crate::source::metrics::SourceMetrics;
use crate::source::Function;

/// Every self-metric, registered on one registry; each layer gets the part it records.
#[derive(Clone)]
pub struct SelfMetrics {
    pub source: SourceMetrics,
    pub counting: CountingMetrics,
    pub start_time: Gauge,
}

impl SelfMetrics {
    /// Creates the self-metrics and registers them, with `build_info` and the process
    /// collector, on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let p = |name: &str| format!("teams_voice_exporter_{name}");
        let metrics = SelfMetrics {
            source: SourceMetrics::register(registry)?,
            counting: CountingMetrics::register(registry)?,
            start_time: Gauge::new(p("start_time_seconds"), "Unix time the exporter started.")?,
        };
        registry.register(Box::new(metrics.start_time.clone()))?;
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

    /// Creates the series of a source's `function` at zero, so that alerts and
    /// `increase()` see the first event rather than a series appearing from nothing.
    pub fn initialise(&self, function: Function) {
        self.source.initialise(function);
        self.counting.initialise(function);
    }
}

fn rustc_version() -> &'static str {
    // Set by build.rs.
    option_env!("TVE_RUSTC_VERSION").unwrap_or("unknown")
}
