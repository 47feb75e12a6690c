//! Label values checked and bounded per tenant, so that whatever answers at
//! `--graph.endpoint` cannot make the exporter serve unbounded series.
//!
//! Every call-metric label takes its values from the rows, which the exporter does not
//! control: a proxy, a test endpoint or a schema change can send a new random trunk or
//! call type on every row, and each would become new series in every Prometheus scraping
//! the exporter. So each label has a [`Shape`] its values must have (a SIP code is 100–699
//! or 0, a trunk is a DNS name, ...) and a maximum number of distinct values per tenant
//! and call log (`--labels.max-*`). A value out of shape, or new once the label is full, is
//! counted under [`OTHER`]: the call is still counted, only its label value is lost. How
//! many rows were folded shows in `teams_voice_exporter_label_values_folded_total{endpoint,
//! label}`, and a rate-limited log line names the label, never the value (values can hold
//! whatever the upstream put there, personal data included).
//!
//! The values a tenant has are kept in [`LabelValues`], beside the totals they label, and
//! rebuilt from restored totals with [`LabelValues::relearn`], so that a restart keeps the
//! same values and folds the same new ones.
//!
//! How a call log uses it (Direct Routing's `totals.rs` does exactly this):
//!
//! ```ignore
//! // counting a row: build the key from the row's values; if the key is counted already,
//! // its values were admitted before (a counted key holds admitted values only) ...
//! if let Some(count) = totals.calls.get_mut(&key) {
//!     *count += 1;
//! } else {
//!     // ... else admit each value (it comes back as itself, `other` or `unknown`):
//!     key.trunk_fqdn = totals.labels.admit(Function::DirectRoutingCalls, &labels::TRUNK_FQDN, Some(key.trunk_fqdn));
//!     *totals.calls.entry(key).or_default() += 1;
//! }
//! // restoring totals: every value of every key, so a restart folds the same values
//! totals.labels.relearn(&labels::TRUNK_FQDN, &key.trunk_fqdn);
//! ```
//!
//! A label of another call log is a [`Label`] of its own, e.g.
//! `const OPERATOR: Label = Label::new("operator", Shape::ShortName);`, limited by
//! `--labels.max-values`; labels shared with Direct Routing (`call_type`) reuse its constant.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus::{IntCounterVec, Opts, Registry};

use super::row::UNKNOWN;
use super::Function;

/// The value a label takes when the row's value is out of shape or beyond the label's
/// limit of distinct values.
pub const OTHER: &str = "other";

/// What a label's values must look like; anything else is counted under [`OTHER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A SIP response code, 100–699, or 0 (Graph's "no SIP code"), in decimal.
    SipCode,
    /// A non-negative integer of at most 7 digits (Microsoft's call-end sub-reasons have 6).
    SmallInteger,
    /// A short data-centre code (`USWE`, `EUNO`): 1–16 ASCII letters and digits.
    DataCentre,
    /// A DNS name: dot-separated labels of ASCII letters, digits and `-`, each 1–63
    /// characters, 253 at most in all.
    Fqdn,
    /// A short identifier: 1–64 ASCII letters, digits, `_` and `-` (call types, country
    /// and currency codes, license capabilities).
    Identifier,
    /// A short name that may have spaces (a carrier's name): 1–64 letters and digits (of
    /// any script: `Telefónica`), spaces and `.,&'()_-`.
    ShortName,
}

impl Shape {
    /// Whether `value` has this shape.
    pub fn accepts(self, value: &str) -> bool {
        let bytes = value.as_bytes();
        match self {
            Shape::SipCode => {
                value == "0"
                    || (bytes.len() == 3
                        && (b'1'..=b'6').contains(&bytes[0])
                        && bytes[1..].iter().all(u8::is_ascii_digit))
            }
            Shape::SmallInteger => {
                (1..=7).contains(&bytes.len())
                    && bytes.iter().all(u8::is_ascii_digit)
                    && (bytes.len() == 1 || bytes[0] != b'0')
            }
            Shape::DataCentre => {
                (1..=16).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_alphanumeric)
            }
            Shape::Fqdn => {
                (1..=253).contains(&bytes.len())
                    && value.split('.').all(|part| {
                        (1..=63).contains(&part.len())
                            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
            }
            Shape::Identifier => {
                (1..=64).contains(&bytes.len())
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
            }
            Shape::ShortName => {
                (1..=64).contains(&value.chars().count())
                    && value
                        .chars()
                        .all(|c| c.is_alphanumeric() || " .,&'()_-".contains(c))
            }
        }
    }
}

/// Which limit of distinct values applies to a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `--labels.max-trunks`.
    Trunks,
    /// `--labels.max-call-types`.
    CallTypes,
    /// `--labels.max-sip-codes`.
    SipCodes,
    /// `--labels.max-sub-reasons`.
    SubReasons,
    /// `--labels.max-media-locations`.
    MediaLocations,
    /// `--labels.max-values`: every label without a limit of its own.
    Other,
}

/// A call-metric label: its name (as in the families), shape and limit.
#[derive(Debug)]
pub struct Label {
    pub name: &'static str,
    pub shape: Shape,
    pub limit: Limit,
}

impl Label {
    /// A label whose limit is `--labels.max-values` (e.g. PSTN's `operator`).
    pub const fn new(name: &'static str, shape: Shape) -> Label {
        Label {
            name,
            shape,
            limit: Limit::Other,
        }
    }
}

/// `trunk_fqdn`, lower-cased by the caller.
pub const TRUNK_FQDN: Label = Label {
    name: "trunk_fqdn",
    shape: Shape::Fqdn,
    limit: Limit::Trunks,
};
/// `call_type`, of Direct Routing and PSTN alike.
pub const CALL_TYPE: Label = Label {
    name: "call_type",
    shape: Shape::Identifier,
    limit: Limit::CallTypes,
};
/// `final_sip_code`.
pub const FINAL_SIP_CODE: Label = Label {
    name: "final_sip_code",
    shape: Shape::SipCode,
    limit: Limit::SipCodes,
};
/// `call_end_sub_reason`.
pub const CALL_END_SUB_REASON: Label = Label {
    name: "call_end_sub_reason",
    shape: Shape::SmallInteger,
    limit: Limit::SubReasons,
};
/// `media_path_location`.
pub const MEDIA_PATH_LOCATION: Label = Label {
    name: "media_path_location",
    shape: Shape::DataCentre,
    limit: Limit::MediaLocations,
};

/// The limits of distinct values per label, per tenant and call log (`--labels.max-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelLimits {
    pub trunks: usize,
    pub call_types: usize,
    pub sip_codes: usize,
    pub sub_reasons: usize,
    pub media_locations: usize,
    pub other: usize,
}

impl Default for LabelLimits {
    /// Well above any real tenant: a tenant with thousands of SBCs is rare, Graph knows a
    /// dozen call types, SIP codes are at most 601 and Microsoft's sub-reasons a few
    /// hundred; data centres are tens.
    fn default() -> Self {
        LabelLimits {
            trunks: 5_000,
            call_types: 500,
            sip_codes: 601,
            sub_reasons: 5_000,
            media_locations: 500,
            other: 1_000,
        }
    }
}

static LIMITS: OnceLock<LabelLimits> = OnceLock::new();

impl LabelLimits {
    /// The limit of `limit`.
    pub fn max(&self, limit: Limit) -> usize {
        match limit {
            Limit::Trunks => self.trunks,
            Limit::CallTypes => self.call_types,
            Limit::SipCodes => self.sip_codes,
            Limit::SubReasons => self.sub_reasons,
            Limit::MediaLocations => self.media_locations,
            Limit::Other => self.other,
        }
    }

    /// Makes these the limits of the process; set once at start, before anything is
    /// counted (totals are created with `Default`, far from the flags). A second call keeps
    /// the first limits and says so.
    pub fn install(self) {
        if LIMITS.set(self).is_err() && LIMITS.get() != Some(&self) {
            tracing::warn!("label limits were set already; keeping the first ones");
        }
    }

    /// The limits in force: the installed ones, or the defaults.
    pub fn current() -> LabelLimits {
        LIMITS.get().copied().unwrap_or_default()
    }
}

/// `teams_voice_exporter_label_values_folded_total`: rows whose label value was counted
/// under `other`. Process-wide, as label values are checked deep in counting, far from
/// any registry; [`register`] adds it to the exporter's.
static FOLDED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "teams_voice_exporter_label_values_folded_total",
            "Rows counted with label `label` set to \"other\" because their value was out of shape or new once the label had --labels.max-* distinct values (the call is still counted).",
        ),
        &["endpoint", "label"],
    )
    .expect("a valid metric description")
});

/// Registers the folded-rows counter with `registry`.
pub fn register(registry: &Registry) -> prometheus::Result<()> {
    registry.register(Box::new(FOLDED.clone()))
}

/// How many rows of `endpoint` had `label` folded, since start (for tests and benches).
pub fn folded(endpoint: Function, label: &Label) -> u64 {
    FOLDED
        .with_label_values(&[endpoint.name(), label.name])
        .get()
}

/// Why a value was folded, for the log.
#[derive(Debug, Clone, Copy)]
enum Fold {
    Shape,
    Full(usize),
}

/// At most one log line per endpoint and label this often.
const LOG_EVERY: Duration = Duration::from_secs(600);

static LOGGED: LazyLock<Mutex<HashMap<(&'static str, &'static str), Instant>>> =
    LazyLock::new(Default::default);

fn record_fold(endpoint: Function, label: &Label, fold: Fold) {
    FOLDED
        .with_label_values(&[endpoint.name(), label.name])
        .inc();
    let now = Instant::now();
    let mut logged = LOGGED.lock();
    let key = (endpoint.name(), label.name);
    if logged
        .get(&key)
        .is_some_and(|at| now.duration_since(*at) < LOG_EVERY)
    {
        return;
    }
    logged.insert(key, now);
    drop(logged);
    // The value itself is never logged: it is whatever the upstream sent.
    match fold {
        Fold::Shape => tracing::warn!(
            endpoint = endpoint.name(),
            label = label.name,
            shape = ?label.shape,
            "a row's label value is not of the label's shape; the call is counted under \"other\" (teams_voice_exporter_label_values_folded_total); check what answers at --graph.endpoint"
        ),
        Fold::Full(max) => tracing::warn!(
            endpoint = endpoint.name(),
            label = label.name,
            limit = max,
            "a label has reached its limit of distinct values; calls with new values are counted under \"other\" (teams_voice_exporter_label_values_folded_total); raise the label's --labels.max-* flag if the tenant really has that many"
        ),
    }
}

/// The values one tenant's call log has shown so far, per label: those it may keep
/// using. Kept with the totals (and cloned with them), rebuilt from them at restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelValues {
    known: BTreeMap<&'static str, HashSet<Box<str>>>,
}

impl LabelValues {
    /// The value to count `value` under for `label`: [`UNKNOWN`] when absent, the value
    /// itself when it has the label's shape and is known or the label has room, else
    /// [`OTHER`] (counted in the folded-rows metric and logged, rate-limited).
    pub fn admit(&mut self, endpoint: Function, label: &Label, value: Option<String>) -> String {
        let Some(value) = value else {
            return UNKNOWN.to_owned();
        };
        if value == UNKNOWN || value == OTHER {
            return value;
        }
        let known = self.known.entry(label.name).or_default();
        // Nearly every row has known values, checked for shape when first seen.
        if known.contains(value.as_str()) {
            return value;
        }
        if !label.shape.accepts(&value) {
            record_fold(endpoint, label, Fold::Shape);
            return OTHER.to_owned();
        }
        let max = LabelLimits::current().max(label.limit);
        if known.len() >= max {
            record_fold(endpoint, label, Fold::Full(max));
            return OTHER.to_owned();
        }
        known.insert(value.as_str().into());
        value
    }

    /// Remembers `value` of `label` from restored totals, whatever the limit: series
    /// already served keep counting after a restart (even if the limit was lowered), and
    /// the same new values are folded as before it.
    pub fn relearn(&mut self, label: &Label, value: &str) {
        if value == UNKNOWN || value == OTHER {
            return;
        }
        let known = self.known.entry(label.name).or_default();
        if !known.contains(value) {
            known.insert(value.into());
        }
    }

    /// How many distinct values `label` has.
    pub fn distinct(&self, label: &Label) -> usize {
        self.known.get(label.name).map_or(0, HashSet::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        for ok in ["0", "100", "200", "487", "699"] {
            assert!(Shape::SipCode.accepts(ok), "{ok}");
        }
        for bad in ["", "00", "99", "700", "1000", "-1", "20a", "+200", " 200"] {
            assert!(!Shape::SipCode.accepts(bad), "{bad}");
        }
        assert!(Shape::SmallInteger.accepts("560503"));
        assert!(Shape::SmallInteger.accepts("0"));
        assert!(!Shape::SmallInteger.accepts("12345678"));
        assert!(!Shape::SmallInteger.accepts("-5"));
        assert!(!Shape::SmallInteger.accepts("007"));
        assert!(Shape::DataCentre.accepts("USWE"));
        assert!(!Shape::DataCentre.accepts("US WE"));
        assert!(!Shape::DataCentre.accepts(&"A".repeat(17)));
        assert!(Shape::Fqdn.accepts("sbc1.contoso.com"));
        assert!(Shape::Fqdn.accepts("tll-audiocodes01.adatum.biz"));
        for bad in ["", "a..b", ".a", "a b.com", "a/b", "x@y.z", &"a".repeat(64)] {
            assert!(!Shape::Fqdn.accepts(bad), "{bad}");
        }
        assert!(Shape::Identifier.accepts("ByotIn"));
        assert!(Shape::Identifier.accepts("user_out-2"));
        assert!(!Shape::Identifier.accepts("Byot In"));
        assert!(!Shape::Identifier.accepts("ä"));
        assert!(Shape::ShortName.accepts("BT Group plc (UK)"));
        assert!(!Shape::ShortName.accepts("a\nb"));
        assert!(!Shape::ShortName.accepts("a\"b"));
    }

    #[test]
    fn values_beyond_the_limit_or_out_of_shape_are_other() {
        // The limits of the test process are the defaults: 500 call types.
        let mut values = LabelValues::default();
        let f = Function::DirectRoutingCalls;
        let before = folded(f, &CALL_TYPE);
        for i in 0..500 {
            assert_eq!(
                values.admit(f, &CALL_TYPE, Some(format!("t{i}"))),
                format!("t{i}")
            );
        }
        assert_eq!(values.admit(f, &CALL_TYPE, Some("new".into())), OTHER);
        assert_eq!(values.admit(f, &CALL_TYPE, Some("t7".into())), "t7");
        assert_eq!(values.admit(f, &CALL_TYPE, Some("bad value".into())), OTHER);
        assert_eq!(values.admit(f, &CALL_TYPE, None), UNKNOWN);
        assert_eq!(values.distinct(&CALL_TYPE), 500);
        assert!(folded(f, &CALL_TYPE) >= before + 2);
    }

    /// A restart folds the same values as the run before it: the known values come back
    /// from the saved totals.
    #[test]
    fn a_restart_keeps_which_values_are_other() {
        use crate::source::direct_routing::saved::SavedTotals;
        use crate::source::direct_routing::{DirectRoutingRow, DirectRoutingTotals};
        let row = |id: usize, call_type: &str| {
            DirectRoutingRow::parse(&format!(
                r#"{{"id":"r{id}","startDateTime":"2026-11-27T10:00:00Z","callType":"{call_type}","successfulCall":false,"finalSipCode":503,"callEndSubReason":560503}}"#
            ))
            .unwrap()
        };
        let mut totals = DirectRoutingTotals::default();
        // Default limits: 500 call types; 510 arrive, the last 10 under `other`.
        for i in 0..510 {
            totals.count(&row(i, &format!("type{i}")));
        }
        let other = |totals: &DirectRoutingTotals| {
            totals
                .calls
                .iter()
                .filter(|(key, _)| key.call_type == OTHER)
                .map(|(_, count)| *count)
                .sum::<u64>()
        };
        assert_eq!(other(&totals), 10);
        let mut restored = SavedTotals::from(&totals).restore().unwrap();
        assert_eq!(
            restored, totals,
            "the known values are rebuilt as they were"
        );
        for totals in [&mut totals, &mut restored] {
            totals.count(&row(1_000, "type7"));
            totals.count(&row(1_001, "type505"));
        }
        assert_eq!(restored, totals);
        assert_eq!(other(&restored), 11);
    }

    #[test]
    fn relearned_values_are_kept_beyond_the_limit() {
        let mut values = LabelValues::default();
        for i in 0..700 {
            values.relearn(&CALL_TYPE, &format!("t{i}"));
        }
        values.relearn(&CALL_TYPE, OTHER);
        values.relearn(&CALL_TYPE, UNKNOWN);
        assert_eq!(values.distinct(&CALL_TYPE), 700);
        let f = Function::DirectRoutingCalls;
        assert_eq!(values.admit(f, &CALL_TYPE, Some("t650".into())), "t650");
        assert_eq!(values.admit(f, &CALL_TYPE, Some("t700".into())), OTHER);
    }
}
