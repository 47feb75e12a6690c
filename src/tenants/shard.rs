//! Sharding tenants across exporter processes, in kube-state-metrics' model: every process
//! reads the same tenants file and keeps the tenants that a consistent hash of the tenant id
//! assigns to its shard, so shards need no coordination and never read a tenant twice.
//!
//! The hash is FNV-1a (64 bits) of the lower-cased tenant id, placed with Lamping and
//! Veach's jump consistent hash: growing from M to M+1 shards moves only the tenants the new
//! shard takes, about 1/(M+1) of them, and each of those keeps counting from its state on
//! the new shard's volume (or from nothing, when it had none there).
//!
//! With `--shard.auto` the shard is found from the StatefulSet the pod belongs to
//! ([`auto_sharding`]): the ordinal from the pod (`POD_INDEX`, else the `-N` of its name), the
//! total from `--total-shards` or else the StatefulSet's `spec.replicas`, read once through
//! the Kubernetes API with the pod's service account. Everything that decides is a pure
//! function of values passed in ([`PodEnvironment`], [`Cluster`]), so it is tested without
//! touching the process environment; the API read is tested against a loopback server.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{StatusCode, Url};

/// FNV-1a, 64 bits: the offset basis and prime of the FNV specification.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

/// Lamping and Veach's jump consistent hash ("A Fast, Minimal Memory, Consistent Hash
/// Algorithm", 2014), exactly their 64-bit linear congruential version: the bucket in
/// `0..buckets` of `key`. `buckets` of 0 is taken as 1.
pub fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    let buckets = i64::from(buckets.max(1));
    let (mut bucket, mut next): (i64, i64) = (-1, 0);
    while next < buckets {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // The float conversion is the paper's: (b + 1) * (2^31 / ((key >> 33) + 1)).
        next = ((bucket + 1) as f64 * ((1_i64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    // 0 <= bucket < buckets <= u32::MAX.
    bucket as u32
}

/// The hash key of a tenant id: ids are case-insensitive, so two spellings of one tenant
/// land on one shard.
pub fn tenant_key(tenant_id: &str) -> u64 {
    fnv1a64(tenant_id.to_ascii_lowercase().as_bytes())
}

/// This process's shard: `ordinal` of `total`, with `ordinal < total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharding {
    pub ordinal: u32,
    pub total: u32,
}

impl Sharding {
    /// One process reads every tenant.
    pub const SINGLE: Sharding = Sharding {
        ordinal: 0,
        total: 1,
    };

    /// `ordinal` of `total`; `None` unless `ordinal < total`.
    pub fn new(ordinal: u32, total: u32) -> Option<Sharding> {
        (ordinal < total).then_some(Sharding { ordinal, total })
    }

    /// The shard, of `total`, that reads `tenant_id`.
    pub fn shard_of(tenant_id: &str, total: u32) -> u32 {
        jump_hash(tenant_key(tenant_id), total)
    }

    /// Whether this shard reads `tenant_id`.
    pub fn owns(&self, tenant_id: &str) -> bool {
        Sharding::shard_of(tenant_id, self.total) == self.ordinal
    }
}

impl Default for Sharding {
    fn default() -> Self {
        Sharding::SINGLE
    }
}

/// Where a Kubernetes pod finds its service account's token, CA and namespace.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The environment variables automatic sharding reads; empty values count as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodEnvironment {
    /// `POD_INDEX`: the label `apps.kubernetes.io/pod-index`, through the downward API.
    pub pod_index: Option<String>,
    /// `POD_NAME`: `metadata.name`, through the downward API.
    pub pod_name: Option<String>,
    /// `HOSTNAME`: a StatefulSet pod's host name is its name.
    pub hostname: Option<String>,
    /// `POD_NAMESPACE`: `metadata.namespace`, through the downward API.
    pub pod_namespace: Option<String>,
    /// `KUBERNETES_SERVICE_HOST`, set by Kubernetes in every pod.
    pub service_host: Option<String>,
    /// `KUBERNETES_SERVICE_PORT`.
    pub service_port: Option<String>,
}

impl PodEnvironment {
    /// The process's environment.
    pub fn from_process() -> PodEnvironment {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        PodEnvironment {
            pod_index: var("POD_INDEX"),
            pod_name: var("POD_NAME"),
            hostname: var("HOSTNAME"),
            pod_namespace: var("POD_NAMESPACE"),
            service_host: var("KUBERNETES_SERVICE_HOST"),
            service_port: var("KUBERNETES_SERVICE_PORT"),
        }
    }

    /// The pod's ordinal in its StatefulSet, and the StatefulSet's name when the pod's
    /// name gives it.
    pub fn identity(&self) -> Result<PodIdentity, ShardError> {
        let named = self
            .pod_name
            .as_deref()
            .or(self.hostname.as_deref())
            .and_then(split_ordinal);
        let ordinal = match (self.pod_index.as_deref(), named) {
            (Some(index), _) => {
                index
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| ShardError::BadPodIndex {
                        value: index.to_owned(),
                    })?
            }
            (None, Some((_, ordinal))) => ordinal,
            (None, None) => {
                return Err(ShardError::NoOrdinal {
                    pod_name: shown(&self.pod_name),
                    hostname: shown(&self.hostname),
                })
            }
        };
        Ok(PodIdentity {
            ordinal,
            stateful_set: named.map(|(name, _)| name.to_owned()),
        })
    }
}

fn shown(value: &Option<String>) -> String {
    value
        .as_deref()
        .map_or("unset".to_owned(), |v| format!("'{v}'"))
}

/// `name-N` as (`name`, N).
fn split_ordinal(pod_name: &str) -> Option<(&str, u32)> {
    let (name, ordinal) = pod_name.trim().rsplit_once('-')?;
    if name.is_empty() || ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((name, ordinal.parse().ok()?))
}

/// What a pod knows of its place in its StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodIdentity {
    /// The pod's index in the StatefulSet (`apps.kubernetes.io/pod-index`).
    pub ordinal: u32,
    /// The StatefulSet's name: the pod's name without `-N`.
    pub stateful_set: Option<String>,
}

/// Where automatic sharding looks: the pod's environment, its service account's files and
/// the Kubernetes API.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub env: PodEnvironment,
    /// The directory of `token`, `ca.crt` and `namespace` ([`SERVICE_ACCOUNT_DIR`]).
    pub service_account_dir: PathBuf,
    /// The API's root; `None`: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
    /// `http://` is accepted only to a loopback address (a test's fake API).
    pub api_base: Option<Url>,
}

impl Cluster {
    /// The pod this process runs in.
    pub fn in_cluster() -> Cluster {
        Cluster {
            env: PodEnvironment::from_process(),
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
            api_base: None,
        }
    }
}

/// The parts of a StatefulSet's spec that place its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatefulSetShape {
    /// `spec.replicas` (Kubernetes' default, 1, when absent).
    pub replicas: u32,
    /// `spec.ordinals.start` (0 when absent): the index of the first pod.
    pub first_ordinal: u32,
}

/// Automatic sharding could not find this pod's shard.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("--shard.auto: this pod's ordinal is unknown: POD_INDEX is not set, and neither POD_NAME ({pod_name}) nor HOSTNAME ({hostname}) ends in -N as a StatefulSet pod's name does; run the exporter in a StatefulSet and set POD_NAME from the downward API (fieldRef metadata.name), or POD_INDEX from the label apps.kubernetes.io/pod-index")]
    NoOrdinal { pod_name: String, hostname: String },
    #[error("--shard.auto: POD_INDEX '{value}' is not a pod ordinal (a whole number from 0); set it from the downward API: fieldRef metadata.labels['apps.kubernetes.io/pod-index']")]
    BadPodIndex { value: String },
    #[error("--shard.auto: the StatefulSet's name is the pod's name without -N, but neither POD_NAME ({pod_name}) nor HOSTNAME ({hostname}) has that form; set POD_NAME from the downward API (fieldRef metadata.name), or give --total-shards")]
    NoStatefulSetName { pod_name: String, hostname: String },
    #[error("--shard.auto: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set, so the StatefulSet's replicas cannot be read; outside Kubernetes give --shard and --total-shards instead of --shard.auto, or add --total-shards")]
    NotInCluster,
    #[error("--shard.auto: the Kubernetes API address {base} is not usable: {reason}")]
    ApiAddress { base: String, reason: String },
    #[error("--shard.auto: cannot read the service account's {what} {path}: {reason}; mount the service account token (automountServiceAccountToken: true), or give --total-shards")]
    ServiceAccount {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("--shard.auto: the namespace is unknown: POD_NAMESPACE is not set and {path} cannot be read ({reason}); set POD_NAMESPACE from the downward API (fieldRef metadata.namespace)")]
    Namespace { path: PathBuf, reason: String },
    #[error("--shard.auto: the Kubernetes API at {base} did not answer: {reason}; check that the pod can reach the API server (network policies, HTTPS_PROXY and NO_PROXY), or give --total-shards")]
    Unreachable { base: String, reason: String },
    #[error("--shard.auto: the Kubernetes API refused the service account's token (401 Unauthorized); check that the pod's service account token is mounted and current")]
    Unauthorized,
    #[error("--shard.auto: the service account may not read StatefulSet {name} in namespace {namespace} (403 Forbidden); grant get on statefulsets in that namespace (the chart's Role does this), or give --total-shards")]
    Forbidden { namespace: String, name: String },
    #[error("--shard.auto: there is no StatefulSet {name} in namespace {namespace} (404 Not Found); the name is the pod's name without -N, so run the exporter in a StatefulSet, or give --total-shards")]
    NotFound { namespace: String, name: String },
    #[error("--shard.auto: reading StatefulSet {name} in namespace {namespace} answered HTTP {status}; the API server may be unwell: the pod restarts and tries again, or give --total-shards")]
    Status {
        namespace: String,
        name: String,
        status: u16,
    },
    #[error("--shard.auto: StatefulSet {name} in namespace {namespace} could not be read: {reason}; give --total-shards")]
    Unreadable {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("--shard.auto: this pod's ordinal {ordinal} is not below --total-shards={total}; give --total-shards the StatefulSet's replicas, or leave it out to read them from the StatefulSet")]
    OrdinalNotBelowFlag { ordinal: u32, total: u32 },
    #[error("--shard.auto: this pod's index {index} is outside StatefulSet {name}'s pods ({first} to {last}); the StatefulSet is being scaled down and this pod is about to go, or --shard.auto read the wrong StatefulSet (POD_NAME, POD_INDEX)", last = i64::from(*first) + i64::from(*replicas) - 1)]
    OrdinalOutsideStatefulSet {
        index: u32,
        name: String,
        first: u32,
        replicas: u32,
    },
}

/// This pod's shard: the ordinal from the pod, the total from `total` (`--total-shards`)
/// or else from the StatefulSet, read once.
pub async fn auto_sharding(total: Option<u32>, cluster: &Cluster) -> Result<Sharding, ShardError> {
    let pod = cluster.env.identity()?;
    if let Some(total) = total {
        return Sharding::new(pod.ordinal, total).ok_or(ShardError::OrdinalNotBelowFlag {
            ordinal: pod.ordinal,
            total,
        });
    }
    let name = pod
        .stateful_set
        .ok_or_else(|| ShardError::NoStatefulSetName {
            pod_name: shown(&cluster.env.pod_name),
            hostname: shown(&cluster.env.hostname),
        })?;
    let api = KubernetesApi::new(cluster)?;
    let namespace = namespace(&cluster.env, &cluster.service_account_dir)?;
    let shape = api.stateful_set(&namespace, &name).await?;
    // Shards count from 0 whatever the StatefulSet's first ordinal.
    pod.ordinal
        .checked_sub(shape.first_ordinal)
        .and_then(|ordinal| Sharding::new(ordinal, shape.replicas))
        .ok_or(ShardError::OrdinalOutsideStatefulSet {
            index: pod.ordinal,
            name,
            first: shape.first_ordinal,
            replicas: shape.replicas,
        })
}

/// `POD_NAMESPACE`, else the service account's namespace file.
fn namespace(env: &PodEnvironment, service_account_dir: &Path) -> Result<String, ShardError> {
    if let Some(namespace) = &env.pod_namespace {
        return Ok(namespace.trim().to_owned());
    }
    let path = service_account_dir.join("namespace");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => Err(ShardError::Namespace {
            path,
            reason: "it is empty".to_owned(),
        }),
        Err(e) => Err(ShardError::Namespace {
            path,
            reason: e.to_string(),
        }),
    }
}

/// The Kubernetes API, as this pod's service account. The bearer token is read once and
/// kept here only for the one request; it is never shown.
struct KubernetesApi {
    base: Url,
    token: String,
    http: reqwest::Client,
}

impl KubernetesApi {
    fn new(cluster: &Cluster) -> Result<KubernetesApi, ShardError> {
        let base = match &cluster.api_base {
            Some(base) => base.clone(),
            None => in_cluster_base(&cluster.env)?,
        };
        let address_error = |reason: &str| ShardError::ApiAddress {
            base: base.to_string(),
            reason: reason.to_owned(),
        };
        let dir = &cluster.service_account_dir;
        let token = read_service_account(dir, "token")?;
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(ShardError::ServiceAccount {
                what: "token",
                path: dir.join("token"),
                reason: "it is empty".to_owned(),
            });
        }
        // Only the cluster's own CA is trusted for the API server.
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("teams-voice-exporter/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15));
        match base.scheme() {
            "https" => {
                let pem = read_service_account(dir, "ca.crt")?;
                let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                    .ok()
                    .filter(|certificates| !certificates.is_empty())
                    .ok_or_else(|| ShardError::ServiceAccount {
                        what: "CA certificate",
                        path: dir.join("ca.crt"),
                        reason: "it holds no PEM certificate".to_owned(),
                    })?;
                builder = builder.tls_built_in_root_certs(false);
                for certificate in certificates {
                    builder = builder.add_root_certificate(certificate);
                }
            }
            // The token must not cross a network in the clear: plain HTTP is for a test's
            // fake API on this machine only.
            "http" if is_loopback(&base) => {}
            "http" => {
                return Err(address_error(
                    "plain http is accepted only to a loopback address; use https",
                ))
            }
            _ => return Err(address_error("use https")),
        }
        let http = builder
            .build()
            .map_err(|e| address_error(&format!("no HTTP client for it: {e}")))?;
        Ok(KubernetesApi { base, token, http })
    }

    /// GET `apis/apps/v1/namespaces/{namespace}/statefulsets/{name}`.
    async fn stateful_set(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<StatefulSetShape, ShardError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ShardError::ApiAddress {
                base: self.base.to_string(),
                reason: "it cannot have a path".to_owned(),
            })?
            .pop_if_empty()
            .extend([
                "apis",
                "apps",
                "v1",
                "namespaces",
                namespace,
                "statefulsets",
                name,
            ]);
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| ShardError::Unreachable {
                base: self.base.to_string(),
                reason: error_chain(&e),
            })?;
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Err(ShardError::Unauthorized),
            StatusCode::FORBIDDEN => return Err(ShardError::Forbidden { namespace, name }),
            StatusCode::NOT_FOUND => return Err(ShardError::NotFound { namespace, name }),
            status => {
                return Err(ShardError::Status {
                    namespace,
                    name,
                    status: status.as_u16(),
                })
            }
        }
        let body = response.bytes().await.map_err(|e| ShardError::Unreadable {
            namespace: namespace.clone(),
            name: name.clone(),
            reason: error_chain(&e),
        })?;
        parse_stateful_set(&body).map_err(|reason| ShardError::Unreadable {
            namespace,
            name,
            reason,
        })
    }
}

/// `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, as client-go builds it.
fn in_cluster_base(env: &PodEnvironment) -> Result<Url, ShardError> {
    let (Some(host), Some(port)) = (&env.service_host, &env.service_port) else {
        return Err(ShardError::NotInCluster);
    };
    let (host, port) = (host.trim(), port.trim());
    let host = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{host}]"),
        _ => host.to_owned(),
    };
    let text = format!("https://{host}:{port}/");
    Url::parse(&text).map_err(|e| ShardError::ApiAddress {
        base: text,
        reason: format!("{e} (from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT)"),
    })
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain == "localhost",
        None => false,
    }
}

fn read_service_account(dir: &Path, file: &'static str) -> Result<String, ShardError> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|e| ShardError::ServiceAccount {
        what: if file == "ca.crt" {
            "CA certificate"
        } else {
            file
        },
        path,
        reason: e.to_string(),
    })
}

/// A reqwest error with its causes, which say what failed (refused, TLS, timeout).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The StatefulSet's replicas and first ordinal, from the API's JSON.
fn parse_stateful_set(body: &[u8]) -> Result<StatefulSetShape, String> {
    #[derive(serde::Deserialize)]
    struct StatefulSet {
        #[serde(default)]
        spec: Spec,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        replicas: Option<u32>,
        #[serde(default)]
        ordinals: Ordinals,
    }
    #[derive(serde::Deserialize, Default)]
    struct Ordinals {
        #[serde(default)]
        start: u32,
    }
    let parsed: StatefulSet = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not a StatefulSet: {e}"))?;
    Ok(StatefulSetShape {
        replicas: parsed.spec.replicas.unwrap_or(1),
        first_ordinal: parsed.spec.ordinals.start,
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn fnv1a64_matches_the_specifications_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn jump_hash_matches_the_reference_implementation() {
        // Values of the paper's C++ code, as other implementations test against them
        // (dgryski/go-jump, ClickHouse's jumpConsistentHash).
        assert_eq!(jump_hash(1, 1), 0);
        assert_eq!(jump_hash(42, 57), 43);
        assert_eq!(jump_hash(256, 1024), 520);
        assert_eq!(jump_hash(0xdead_10cc, 1), 0);
        assert_eq!(jump_hash(0xdead_10cc, 666), 361);
        assert_eq!(jump_hash(16_045_690_984_833_335_023, 255), 237);
        let tables: [(u64, &[u32]); 4] = [
            (0, &[0; 20]),
            (
                1,
                &[0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17],
            ),
            (
                0xdead_beef,
                &[0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16],
            ),
            (
                0x0ddc_0ffe_ebad_f00d,
                &[0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15],
            ),
        ];
        for (key, buckets) in tables {
            for (i, &expected) in buckets.iter().enumerate() {
                assert_eq!(
                    jump_hash(key, i as u32 + 1),
                    expected,
                    "key {key:#x}, {} buckets",
                    i + 1
                );
            }
        }
        assert_eq!(jump_hash(12345, 0), 0);
    }

    fn tenant_ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{i:08x}-0000-4000-8000-{:012x}", i * 7919))
            .collect()
    }

    #[test]
    fn every_tenant_has_exactly_one_shard() {
        let ids = tenant_ids(2000);
        for total in 1..=7 {
            let shards: Vec<Sharding> = (0..total)
                .map(|o| Sharding::new(o, total).unwrap())
                .collect();
            let mut per_shard = vec![0usize; total as usize];
            for id in &ids {
                let owners: Vec<u32> = shards
                    .iter()
                    .filter(|s| s.owns(id))
                    .map(|s| s.ordinal)
                    .collect();
                assert_eq!(owners.len(), 1, "{id} of {total}: {owners:?}");
                per_shard[owners[0] as usize] += 1;
            }
            // Balanced within a generous margin of the even share.
            let even = ids.len() / total as usize;
            assert!(
                per_shard
                    .iter()
                    .all(|&n| n > even * 3 / 4 && n < even * 5 / 4),
                "{total}: {per_shard:?}"
            );
        }
    }

    #[test]
    fn growing_by_one_shard_moves_only_what_the_new_shard_takes() {
        let ids = tenant_ids(10_000);
        for total in 1..=8u32 {
            let mut moved = 0;
            for id in &ids {
                let (before, after) = (
                    Sharding::shard_of(id, total),
                    Sharding::shard_of(id, total + 1),
                );
                if before != after {
                    assert_eq!(
                        after, total,
                        "{id} moved from {before} to {after}, not to the new shard"
                    );
                    moved += 1;
                }
            }
            let expected = ids.len() as f64 / f64::from(total + 1);
            assert!(
                (moved as f64 - expected).abs() < expected * 0.1,
                "{total} -> {}: {moved} moved, about {expected} expected",
                total + 1
            );
        }
    }

    #[test]
    fn a_tenant_ids_case_does_not_change_its_shard() {
        let upper = "6F1E0000-0000-0000-0000-00000000000A";
        let lower = upper.to_ascii_lowercase();
        assert_eq!(tenant_key(upper), tenant_key(&lower));
        assert_eq!(tenant_key(&lower), fnv1a64(lower.as_bytes()));
        for total in 1..50 {
            assert_eq!(
                Sharding::shard_of(upper, total),
                Sharding::shard_of(&lower, total)
            );
        }
        assert!(Sharding::SINGLE.owns(upper));
        assert_eq!(Sharding::new(3, 3), None);
        assert_eq!(Sharding::default(), Sharding::SINGLE);
    }

    fn env(pairs: &[(&str, &str)]) -> PodEnvironment {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        PodEnvironment {
            pod_index: get("POD_INDEX"),
            pod_name: get("POD_NAME"),
            hostname: get("HOSTNAME"),
            pod_namespace: get("POD_NAMESPACE"),
            service_host: get("KUBERNETES_SERVICE_HOST"),
            service_port: get("KUBERNETES_SERVICE_PORT"),
        }
    }

    #[test]
    fn the_ordinal_comes_from_pod_index_then_the_pod_name_then_the_host_name() {
        let identity = |pairs: &[(&str, &str)]| env(pairs).identity();
        assert_eq!(
            identity(&[
                ("POD_INDEX", "2"),
                ("POD_NAME", "tve-shard-2"),
                ("HOSTNAME", "other-9")
            ])
            .unwrap(),
            PodIdentity {
                ordinal: 2,
                stateful_set: Some("tve-shard".into())
            }
        );
        assert_eq!(
            identity(&[("POD_NAME", "tve-shard-11"), ("HOSTNAME", "other-9")]).unwrap(),
            PodIdentity {
                ordinal: 11,
                stateful_set: Some("tve-shard".into())
            }
        );
        assert_eq!(
            identity(&[("HOSTNAME", "teams-voice-exporter-0")]).unwrap(),
            PodIdentity {
                ordinal: 0,
                stateful_set: Some("teams-voice-exporter".into())
            }
        );
        // A Deployment's pod: an index from the label but no StatefulSet name.
        assert_eq!(
            identity(&[("POD_INDEX", "1"), ("POD_NAME", "tve-7d9f8b-x2x4q")]).unwrap(),
            PodIdentity {
                ordinal: 1,
                stateful_set: None
            }
        );
        let error = identity(&[("POD_NAME", "tve-7d9f8b-x2x4q")]).unwrap_err();
        assert!(matches!(error, ShardError::NoOrdinal { .. }));
        assert!(
            error
                .to_string()
                .contains("set POD_NAME from the downward API (fieldRef metadata.name)"),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("POD_NAME ('tve-7d9f8b-x2x4q') nor HOSTNAME (unset)"),
            "{error}"
        );
        for bad in ["-1", "two", ""] {
            assert!(
                matches!(
                    identity(&[("POD_INDEX", bad)]),
                    Err(ShardError::BadPodIndex { .. })
                ),
                "{bad}"
            );
        }
        for name in ["tve", "tve-", "-3", "tve-3a", "tve-+3"] {
            assert_eq!(split_ordinal(name), None, "{name}");
        }
    }

    #[tokio::test]
    async fn a_given_total_needs_no_api() {
        let cluster = Cluster {
            env: env(&[("POD_NAME", "tve-2")]),
            service_account_dir: PathBuf::from("/nonexistent"),
            api_base: None,
        };
        assert_eq!(
            auto_sharding(Some(3), &cluster).await.unwrap(),
            Sharding {
                ordinal: 2,
                total: 3
            }
        );
        let error = auto_sharding(Some(2), &cluster).await.unwrap_err();
        assert!(
            matches!(
                error,
                ShardError::OrdinalNotBelowFlag {
                    ordinal: 2,
                    total: 2
                }
            ),
            "{error}"
        );
        // Without it, the StatefulSet must be read, and this is not a cluster.
        let error = auto_sharding(None, &cluster).await.unwrap_err();
        assert!(matches!(error, ShardError::NotInCluster), "{error}");
    }

    #[test]
    fn the_api_address_is_built_as_client_go_does() {
        let base = |host, port| {
            in_cluster_base(&env(&[
                ("KUBERNETES_SERVICE_HOST", host),
                ("KUBERNETES_SERVICE_PORT", port),
            ]))
        };
        assert_eq!(
            base("10.96.0.1", "443").unwrap().as_str(),
            "https://10.96.0.1/"
        );
        assert_eq!(
            base("10.96.0.1", "6443").unwrap().as_str(),
            "https://10.96.0.1:6443/"
        );
        assert_eq!(
            base("fd00::1", "443").unwrap().as_str(),
            "https://[fd00::1]/"
        );
        assert!(base("10.96.0.1", "port").is_err());
    }

    /// A Kubernetes API on a loopback port that answers one request with `status` and
    /// `body`, and hands back the request's head.
    async fn fake_api(
        status: &'static str,
        body: &'static str,
    ) -> (Url, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let served = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buffer).await.unwrap();
                assert!(n > 0, "the request ended early");
                head.extend_from_slice(&buffer[..n]);
            }
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
            String::from_utf8(head).unwrap()
        });
        (url, served)
    }

    fn service_account(namespace: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "sa-token-value\n").unwrap();
        if let Some(namespace) = namespace {
            std::fs::write(dir.path().join("namespace"), namespace).unwrap();
        }
        dir
    }

    fn cluster(pairs: &[(&str, &str)], dir: &Path, api: Url) -> Cluster {
        Cluster {
            env: env(pairs),
            service_account_dir: dir.to_owned(),
            api_base: Some(api),
        }
    }

    #[tokio::test]
    async fn the_total_is_read_from_the_stateful_sets_replicas() {
        let dir = service_account(Some("monitoring\n"));
        let (api, served) = fake_api(
            "200 OK",
            r#"{"kind":"StatefulSet","spec":{"replicas":3,"serviceName":"tve"}}"#,
        )
        .await;
        let sharding = auto_sharding(None, &cluster(&[("POD_NAME", "tve-1")], dir.path(), api))
            .await
            .unwrap();
        assert_eq!(
            sharding,
            Sharding {
                ordinal: 1,
                total: 3
            }
        );
        let head = served.await.unwrap();
        assert!(
            head.starts_with(
                "GET /apis/apps/v1/namespaces/monitoring/statefulsets/tve HTTP/1.1\r\n"
            ),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("authorization: bearer sa-token-value\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn pod_namespace_wins_and_a_first_ordinal_is_counted_from() {
        let dir = service_account(Some("from-file"));
        let (api, served) = fake_api(
            "200 OK",
            r#"{"spec":{"replicas":2,"ordinals":{"start":1}}}"#,
        )
        .await;
        let pairs = [
            ("POD_INDEX", "2"),
            ("POD_NAME", "tve-2"),
            ("POD_NAMESPACE", "from-env"),
        ];
        let sharding = auto_sharding(None, &cluster(&pairs, dir.path(), api))
            .await
            .unwrap();
        assert_eq!(
            sharding,
            Sharding {
                ordinal: 1,
                total: 2
            }
        );
        assert!(served
            .await
            .unwrap()
            .starts_with("GET /apis/apps/v1/namespaces/from-env/statefulsets/tve "));
    }

    #[tokio::test]
    async fn a_pod_beyond_the_replicas_is_refused() {
        let dir = service_account(Some("ns"));
        let (api, _served) = fake_api("200 OK", r#"{"spec":{"replicas":2}}"#).await;
        let error = auto_sharding(None, &cluster(&[("POD_NAME", "tve-2")], dir.path(), api))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ShardError::OrdinalOutsideStatefulSet {
                    index: 2,
                    first: 0,
                    replicas: 2,
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("pods (0 to 1)"), "{error}");
    }

    #[tokio::test]
    async fn api_refusals_say_what_to_fix() {
        type Expected = fn(&ShardError) -> bool;
        let cases: [(&str, Expected, &str); 4] = [
            (
                "403 Forbidden",
                |e| matches!(e, ShardError::Forbidden { .. }),
                "grant get on statefulsets in that namespace (the chart's Role does this)",
            ),
            (
                "404 Not Found",
                |e| matches!(e, ShardError::NotFound { .. }),
                "run the exporter in a StatefulSet",
            ),
            (
                "401 Unauthorized",
                |e| matches!(e, ShardError::Unauthorized),
                "token is mounted",
            ),
            (
                "503 Service Unavailable",
                |e| matches!(e, ShardError::Status { status: 503, .. }),
                "HTTP 503",
            ),
        ];
        for (status, expected, fix) in cases {
            let dir = service_account(Some("ns"));
            let (api, _served) = fake_api(status, "{}").await;
            let error = auto_sharding(None, &cluster(&[("POD_NAME", "tve-0")], dir.path(), api))
                .await
                .unwrap_err();
            assert!(expected(&error), "{status}: {error}");
            let message = error.to_string();
            assert!(message.contains(fix), "{status}: {message}");
            assert!(!message.contains("sa-token-value"), "{message}");
        }
        let dir = service_account(Some("ns"));
        let (api, _served) = fake_api("200 OK", "not json").await;
        let error = auto_sharding(None, &cluster(&[("POD_NAME", "tve-0")], dir.path(), api))
            .await
            .unwrap_err();
        assert!(matches!(error, ShardError::Unreadable { .. }), "{error}");
    }

    #[tokio::test]
    async fn missing_pieces_of_the_pod_are_named() {
        let api = Url::parse("http://127.0.0.1:9/").unwrap();
        let no_namespace = service_account(None);
        let error = auto_sharding(
            None,
            &cluster(&[("POD_NAME", "tve-0")], no_namespace.path(), api.clone()),
        )
        .await
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("set POD_NAMESPACE from the downward API (fieldRef metadata.namespace)"),
            "{error}"
        );

        let empty = tempfile::tempdir().unwrap();
        let error = auto_sharding(
            None,
            &cluster(
                &[("POD_NAME", "tve-0"), ("POD_NAMESPACE", "ns")],
                empty.path(),
                api.clone(),
            ),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(error, ShardError::ServiceAccount { what: "token", .. }),
            "{error}"
        );

        let error = auto_sharding(None, &cluster(&[("POD_INDEX", "0")], empty.path(), api))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ShardError::NoStatefulSetName { .. }),
            "{error}"
        );

        // The token never goes to another machine in the clear.
        let dir = service_account(Some("ns"));
        let remote = Url::parse("http://10.96.0.1/").unwrap();
        let error = auto_sharding(None, &cluster(&[("POD_NAME", "tve-0")], dir.path(), remote))
            .await
            .unwrap_err();
        assert!(matches!(error, ShardError::ApiAddress { .. }), "{error}");
        // https needs the cluster's CA.
        let https = Url::parse("https://10.96.0.1/").unwrap();
        let error = auto_sharding(
            None,
            &cluster(&[("POD_NAME", "tve-0")], dir.path(), https.clone()),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                error,
                ShardError::ServiceAccount {
                    what: "CA certificate",
                    ..
                }
            ),
            "{error}"
        );
        std::fs::write(dir.path().join("ca.crt"), "not a certificate").unwrap();
        let error = auto_sharding(None, &cluster(&[("POD_NAME", "tve-0")], dir.path(), https))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("holds no PEM certificate"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_api_that_does_not_answer_is_reported() {
        // Bound and dropped: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = service_account(Some("ns"));
        let api = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let error = auto_sharding(None, &cluster(&[("POD_NAME", "tve-0")], dir.path(), api))
            .await
            .unwrap_err();
        assert!(matches!(error, ShardError::Unreachable { .. }), "{error}");
    }

    #[test]
    fn a_stateful_set_without_replicas_has_kubernetes_default_of_one() {
        assert_eq!(
            parse_stateful_set(b"{\"spec\":{}}").unwrap(),
            StatefulSetShape {
                replicas: 1,
                first_ordinal: 0
            }
        );
        assert!(parse_stateful_set(b"{\"spec\":{\"replicas\":-1}}").is_err());
    }
}
