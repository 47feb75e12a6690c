//! `--web.config.file`: TLS, mutual TLS, basic authentication, security headers and a
//! request rate limit for the HTTP interface, in the Prometheus exporter-toolkit's file format, so that one file
//! works for this exporter and for node_exporter alike.
//!
//! The file is checked completely at start, and every problem names the file and the field.
//! Afterwards it is watched, together with the certificate, key and CA files it names: each
//! new TLS connection and each request looks at their metadata (a `stat` each, no reading),
//! and when anything changed the whole file is loaded again. A change that does not load
//! (a key written before its certificate, a typo) is logged and the previous configuration
//! stays in force, so a half-finished rotation never opens the door or stops the scrapes.
//! Whether the listener speaks TLS at all is fixed at start, as in the toolkit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use parking_lot::Mutex;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use serde::Deserialize;

/// A problem with the web configuration file, naming the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("--web.config.file {file}: {field}: {problem}")]
pub struct WebConfigError {
    pub file: String,
    pub field: String,
    pub problem: String,
}

/// The file as written; field names and meanings are the exporter-toolkit's.
///
/// No `Debug`: the inline key and the password hashes must not reach a log by accident.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rate_limit: Option<RateLimitFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    interval: Option<String>,
    burst: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The headers the toolkit lets a user add, with the values it accepts (none listed: any).
const EXTRA_HEADERS: [(&str, &[&str]); 5] = [
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// The TLS client-authentication policies, named as in Go's `crypto/tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn parse(text: &str) -> Option<ClientAuth> {
        Some(match text {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // The toolkit keeps the old name working.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// One loaded, checked web configuration: what every connection and request obeys.
pub struct WebAccess {
    /// `None` serves plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    pub client_auth: ClientAuth,
    /// Whether `client_allowed_sans` narrows the accepted client certificates.
    pub client_sans: bool,
    /// User name → bcrypt hash; empty means no basic authentication.
    pub users: BTreeMap<String, String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub http2: bool,
    pub rate_limit: Option<RateLimit>,
}

/// `rate_limit`: a token bucket over all requests, refilled by one every `interval`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub interval: std::time::Duration,
    pub burst: u32,
}

impl std::fmt::Debug for WebAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebAccess")
            .field("tls", &self.tls.is_some())
            .field("client_auth", &self.client_auth)
            .field("basic_auth_users", &self.users.len())
            .field("headers", &self.headers.len())
            .field("http2", &self.http2)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

impl WebAccess {
    /// No file given: plain HTTP, no authentication, as before the flag existed.
    pub fn open() -> WebAccess {
        WebAccess {
            tls: None,
            client_auth: ClientAuth::NoClientCert,
            client_sans: false,
            users: BTreeMap::new(),
            headers: Vec::new(),
            http2: true,
            rate_limit: None,
        }
    }
}

/// What a file's identity and content were when it was last loaded; any difference
/// means it was replaced or rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stamp {
    Missing,
    Seen {
        len: u64,
        modified: Option<std::time::SystemTime>,
        // inode, device and ctime catch a Kubernetes secret's symlink swap and a rewrite
        // that kept the length and mtime (`cp -p`, `touch -r`).
        #[cfg(unix)]
        unix: (u64, u64, i64, i64),
    },
}

fn stamp(path: &Path) -> Stamp {
    match std::fs::metadata(path) {
        Err(_) => Stamp::Missing,
        Ok(m) => Stamp::Seen {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            unix: {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
            },
        },
    }
}

struct Loaded {
    access: Arc<WebAccess>,
    /// The web config file first, then the files it names.
    watched: Vec<(PathBuf, Stamp)>,
    /// The files of a change that failed to load, as they were then: it is reported once,
    /// and tried again when one of them (a file it names that did not exist, say) changes.
    rejected: Option<Vec<(PathBuf, Stamp)>>,
}

/// The web configuration file, reloaded when it or a file it names changes.
pub struct WebConfig {
    path: Option<PathBuf>,
    loaded: Mutex<Loaded>,
    /// The bucket's tokens and when they were counted, for the limit they were counted under.
    bucket: Mutex<Option<(RateLimit, f64, std::time::Instant)>>,
}

impl WebConfig {
    /// Loads and checks `path`; `None` means no file: plain HTTP, no authentication.
    pub fn load(path: Option<&Path>) -> Result<WebConfig, WebConfigError> {
        let Some(path) = path else {
            return Ok(WebConfig {
                path: None,
                loaded: Mutex::new(Loaded {
                    access: Arc::new(WebAccess::open()),
                    watched: Vec::new(),
                    rejected: None,
                }),
                bucket: Mutex::new(None),
            });
        };
        let mut watched = Vec::new();
        let access = compile(path, &mut watched)?;
        tracing::info!(
            file = %path.display(),
            tls = access.tls.is_some(),
            client_auth = ?access.client_auth,
            basic_auth_users = access.users.len(),
            "web configuration loaded"
        );
        Ok(WebConfig {
            path: Some(path.to_owned()),
            loaded: Mutex::new(Loaded {
                access: Arc::new(access),
                watched,
                rejected: None,
            }),
            bucket: Mutex::new(None),
        })
    }

    /// The configuration in force now, reloaded first if any watched file changed.
    pub fn current(&self) -> Arc<WebAccess> {
        let mut loaded = self.loaded.lock();
        let Some(path) = &self.path else {
            return loaded.access.clone();
        };
        let unchanged = |files: &[(PathBuf, Stamp)]| files.iter().all(|(p, s)| stamp(p) == *s);
        if unchanged(&loaded.watched) || loaded.rejected.as_deref().is_some_and(unchanged) {
            return loaded.access.clone();
        }
        let mut watched = Vec::new();
        let outcome = compile(path, &mut watched).and_then(|access| {
            match weakening(&loaded.access, &access) {
                Some((field, change)) => Err(WebConfigError {
                    file: path.display().to_string(),
                    field: field.into(),
                    problem: format!("{change} needs a restart, so that a file read while half-written never opens access"),
                }),
                None => Ok(access),
            }
        });
        match outcome {
            Ok(access) => {
                tracing::info!(file = %path.display(), "web configuration reloaded");
                loaded.access = Arc::new(access);
                loaded.watched = watched;
                loaded.rejected = None;
            }
            Err(error) => {
                tracing::error!(%error, "the changed web configuration does not load; the previous one stays in force");
                loaded.rejected = Some(watched);
            }
        }
        loaded.access.clone()
    }

    /// Whether `access`'s rate limit lets one more request through now. A changed limit
    /// starts with a full bucket.
    pub fn admits(&self, access: &WebAccess) -> bool {
        let Some(limit) = access.rate_limit else {
            return true;
        };
        let now = std::time::Instant::now();
        let mut bucket = self.bucket.lock();
        let (_, tokens, counted) = match &mut *bucket {
            Some(state) if state.0 == limit => state,
            other => other.insert((limit, f64::from(limit.burst), now)),
        };
        let refill = now.duration_since(*counted).as_secs_f64() / limit.interval.as_secs_f64();
        *tokens = (*tokens + refill).min(f64::from(limit.burst));
        *counted = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the listener speaks TLS (fixed at start).
    pub fn tls(&self) -> bool {
        self.loaded.lock().access.tls.is_some()
    }
}

/// The protection that `new` would drop compared with `old`, if any: such a change is
/// refused on reload (a restart applies it), since a file caught half-written (truncated
/// before `basic_auth_users` or `client_auth_type`) looks exactly like one.
fn weakening(old: &WebAccess, new: &WebAccess) -> Option<(&'static str, &'static str)> {
    let verified = |a: &WebAccess| a.client_auth == ClientAuth::RequireAndVerifyClientCert;
    if old.tls.is_some() != new.tls.is_some() {
        Some(("tls_server_config", "switching between TLS and plain HTTP"))
    } else if verified(old) && !verified(new) {
        Some((
            "tls_server_config.client_auth_type",
            "no longer requiring verified client certificates",
        ))
    } else if old.client_sans && !new.client_sans {
        Some((
            "tls_server_config.client_allowed_sans",
            "removing client_allowed_sans",
        ))
    } else if !old.users.is_empty() && new.users.is_empty() {
        Some(("basic_auth_users", "turning basic authentication off"))
    } else {
        None
    }
}

/// Reads and checks the file and everything it names, noting each file in `watched` as it
/// was just before it was read.
fn compile(path: &Path, watched: &mut Vec<(PathBuf, Stamp)>) -> Result<WebAccess, WebConfigError> {
    let file = path.display().to_string();
    let fail = |field: &str, problem: String| WebConfigError {
        file: file.clone(),
        field: field.to_owned(),
        problem,
    };
    // Stamped before reading, so a change during the read is seen at the next look.
    watched.push((path.to_owned(), stamp(path)));
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            "(file)",
            format!("cannot read it: {e}; check --web.config.file and the file's permissions"),
        )
    })?;
    let parsed: Option<FileFormat> = serde_norway::from_str(&text).map_err(|e| {
        fail(
            "(syntax)",
            format!("{e} (the format is the Prometheus exporter-toolkit's web configuration)"),
        )
    })?;
    let parsed = parsed.unwrap_or_default();
    let rate_limit = match parsed.rate_limit {
        None => None,
        Some(r) => {
            let text = r.interval.unwrap_or_default();
            let interval = match text.trim() {
                "" | "0" => std::time::Duration::ZERO,
                t => humantime::parse_duration(t).map_err(|_| {
                    fail(
                        "rate_limit.interval",
                        format!("'{text}' is not a duration; write e.g. 100ms or 1s (0 turns the limit off)"),
                    )
                })?,
            };
            let burst = r.burst.unwrap_or_default();
            if !interval.is_zero() && burst == 0 {
                return Err(fail(
                    "rate_limit.burst",
                    "must be at least 1: with 0 no request would ever be answered".into(),
                ));
            }
            (!interval.is_zero()).then_some(RateLimit { interval, burst })
        }
    };
    // Relative paths are relative to the file, as in the toolkit.
    let dir = path.parent().unwrap_or(Path::new("."));

    let mut users = BTreeMap::new();
    for (user, hash) in parsed.basic_auth_users.unwrap_or_default() {
        let field = format!("basic_auth_users.{user}");
        match hash.parse::<bcrypt::HashParts>() {
            Ok(parts) if (4..=31).contains(&parts.get_cost()) => {}
            _ => {
                return Err(fail(
                    &field,
                    "is not a bcrypt hash; make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'"
                        .into(),
                ))
            }
        }
        users.insert(user, hash);
    }

    let http = parsed.http_server_config.unwrap_or_default();
    let mut headers = Vec::new();
    for (name, value) in http.headers.unwrap_or_default() {
        let field = format!("http_server_config.headers.{name}");
        let Some((canonical, allowed)) = EXTRA_HEADERS.iter().find(|(h, _)| *h == name) else {
            let names: Vec<&str> = EXTRA_HEADERS.iter().map(|(h, _)| *h).collect();
            return Err(fail(
                &field,
                format!(
                    "this header cannot be configured; allowed: {}",
                    names.join(", ")
                ),
            ));
        };
        if value.is_empty() {
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(fail(
                &field,
                format!(
                    "'{value}' is not allowed; use one of: {}",
                    allowed.join(", ")
                ),
            ));
        }
        let value = HeaderValue::from_str(&value).map_err(|_| {
            fail(
                &field,
                "the value has characters a header cannot carry".into(),
            )
        })?;
        headers.push((HeaderName::from_static(lowercase(canonical)), value));
    }
    let http2 = http.http2.unwrap_or(true);

    let tls_file = parsed.tls_server_config.unwrap_or_default();
    let (tls, client_auth) = tls_config(&tls_file, dir, http2, &fail, watched)?;
    let client_sans = tls.is_some() && tls_file.client_allowed_sans.is_some_and(|s| !s.is_empty());
    Ok(WebAccess {
        tls,
        client_auth,
        client_sans,
        users,
        headers,
        http2,
        rate_limit,
    })
}

fn lowercase(name: &'static str) -> &'static str {
    match name {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

type Fail<'a> = dyn Fn(&str, String) -> WebConfigError + 'a;

/// Builds the rustls configuration, or `None` when the section configures no TLS.
fn tls_config(
    t: &TlsFile,
    dir: &Path,
    http2: bool,
    fail: &Fail<'_>,
    watched: &mut Vec<(PathBuf, Stamp)>,
) -> Result<(Option<Arc<ServerConfig>>, ClientAuth), WebConfigError> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    let set_path = |v: &Option<PathBuf>| v.as_ref().is_some_and(|p| !p.as_os_str().is_empty());
    let client_auth_text = t.client_auth_type.as_deref().unwrap_or_default();
    let client_auth = ClientAuth::parse(client_auth_text).ok_or_else(|| {
        fail(
            "tls_server_config.client_auth_type",
            format!("'{client_auth_text}' is not a policy; use NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"),
        )
    })?;
    // The toolkit's rule: any of these turns TLS on; the rest alone do not.
    let enabled = set(&t.cert)
        || set(&t.key)
        || set(&t.client_ca)
        || set_path(&t.cert_file)
        || set_path(&t.key_file)
        || set_path(&t.client_ca_file)
        || !client_auth_text.is_empty();
    if !enabled {
        return Ok((None, ClientAuth::NoClientCert));
    }

    // Reads a PEM text given inline or as a file; files are watched for changes.
    let mut pem = |inline: &Option<String>,
                   file: &Option<PathBuf>,
                   inline_name: &str,
                   file_name: &str|
     -> Result<Option<(Vec<u8>, String)>, WebConfigError> {
        let field = format!("tls_server_config.{file_name}");
        match (set(inline), set_path(file)) {
            (true, true) => Err(fail(
                &field,
                format!("set either {inline_name} (inline PEM) or {file_name}, not both"),
            )),
            (true, false) => Ok(Some((
                inline.clone().unwrap_or_default().into_bytes(),
                format!("tls_server_config.{inline_name}"),
            ))),
            (false, true) => {
                let path = dir.join(file.as_ref().expect("checked above"));
                watched.push((path.clone(), stamp(&path)));
                let bytes = std::fs::read(&path)
                    .map_err(|e| fail(&field, format!("cannot read {}: {e}", path.display())))?;
                Ok(Some((bytes, format!("{field} ({})", path.display()))))
            }
            (false, false) => Ok(None),
        }
    };
    let (cert_pem, cert_field) =
        pem(&t.cert, &t.cert_file, "cert", "cert_file")?.ok_or_else(|| {
            fail(
                "tls_server_config.cert_file",
                "missing: TLS needs the server certificate (cert_file, or cert inline)".into(),
            )
        })?;
    let (key_pem, key_field) = pem(&t.key, &t.key_file, "key", "key_file")?.ok_or_else(|| {
        fail(
            "tls_server_config.key_file",
            "missing: TLS needs the server's private key (key_file, or key inline)".into(),
        )
    })?;
    let client_ca = pem(
        &t.client_ca,
        &t.client_ca_file,
        "client_ca",
        "client_ca_file",
    )?;

    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&cert_field, format!("not readable PEM: {e}")))?;
    if chain.is_empty() {
        return Err(fail(
            &cert_field,
            "holds no PEM CERTIFICATE block; give the server certificate (then any intermediates) in PEM".into(),
        ));
    }
    // The error never quotes the key's content.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        fail(
            &key_field,
            "holds no readable private key; give a PEM PRIVATE KEY (PKCS#8), RSA PRIVATE KEY or EC PRIVATE KEY block".into(),
        )
    })?;

    let version = |field: &str, value: &Option<String>, default| -> Result<u8, WebConfigError> {
        match value.as_deref().unwrap_or_default() {
            "" => Ok(default),
            "TLS12" => Ok(12),
            "TLS13" => Ok(13),
            "TLS10" | "TLS11" => Err(fail(
                &format!("tls_server_config.{field}"),
                "TLS 1.0 and 1.1 are not offered (deprecated by RFC 8996, and not implemented by rustls); use TLS12 or TLS13".into(),
            )),
            other => Err(fail(
                &format!("tls_server_config.{field}"),
                format!("'{other}' is not a TLS version; use TLS12 or TLS13"),
            )),
        }
    };
    let min = version("min_version", &t.min_version, 12)?;
    let max = version("max_version", &t.max_version, 13)?;
    if min > max {
        return Err(fail(
            "tls_server_config.min_version",
            "is above max_version".into(),
        ));
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();

    let allowed_sans = t.client_allowed_sans.clone().unwrap_or_default();
    if !allowed_sans.is_empty() {
        let field = "tls_server_config.client_allowed_sans";
        // Stricter than the toolkit, which also takes RequireAnyClientCert: a SAN read from a
        // certificate no CA vouched for is whatever the client chose to write into it, so
        // that combination would look like access control without being any.
        if client_auth != ClientAuth::RequireAndVerifyClientCert {
            return Err(fail(
                field,
                format!("needs client_auth_type RequireAndVerifyClientCert, not {client_auth:?}: without a verified certificate a client may send none, or a self-made one carrying any name"),
            ));
        }
        if let Some(email) = allowed_sans
            .iter()
            .find(|s| s.contains('@') && !s.contains(':'))
        {
            return Err(fail(
                field,
                format!("'{email}': e-mail SANs are not matched by this exporter; allow a DNS name, IP address or URI SAN of the client certificate"),
            ));
        }
    }

    let provider = provider(t, fail)?;
    let verifier: Arc<dyn ClientCertVerifier> = if client_auth == ClientAuth::NoClientCert {
        if let Some((_, field)) = client_ca {
            return Err(fail(
                &field,
                "a client CA is set but client_auth_type is NoClientCert; set client_auth_type: RequireAndVerifyClientCert to require client certificates".into(),
            ));
        }
        Arc::new(rustls::server::NoClientAuth)
    } else if !client_auth.verifies() {
        if let Some((_, field)) = client_ca {
            tracing::warn!(field, "client certificates are requested but not verified ({client_auth:?}), so the client CA is not used; RequireAndVerifyClientCert verifies them");
        }
        Arc::new(AnyClientCert {
            mandatory: client_auth == ClientAuth::RequireAnyClientCert,
            provider: provider.clone(),
        })
    } else {
        let Some((bytes, field)) = client_ca else {
            return Err(fail(
                "tls_server_config.client_ca_file",
                format!("missing: client_auth_type {client_auth:?} verifies client certificates against the CA certificates in it"),
            ));
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&bytes) {
            let cert = cert.map_err(|e| fail(&field, format!("not readable PEM: {e}")))?;
            roots.add(cert).map_err(|e| {
                fail(
                    &field,
                    format!("holds a certificate that is not a usable CA: {e}"),
                )
            })?;
        }
        if roots.is_empty() {
            return Err(fail(&field, "holds no PEM CERTIFICATE block".into()));
        }
        let builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        let builder = if client_auth == ClientAuth::VerifyClientCertIfGiven {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder
            .build()
            .map_err(|e| fail(&field, format!("cannot verify clients with it: {e}")))?
    };
    let verifier: Arc<dyn ClientCertVerifier> = if allowed_sans.is_empty() {
        verifier
    } else {
        Arc::new(AllowedSans {
            inner: verifier,
            allowed: allowed_sans,
        })
    };

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| {
            fail(
                "tls_server_config.cipher_suites",
                format!("no cipher suite is left for the TLS versions allowed: {e}"),
            )
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            fail(
                &cert_field,
                format!("does not go with {key_field}: {e}; give the certificate and the private key made together"),
            )
        })?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok((Some(Arc::new(config)), client_auth))
}

/// The ring provider, narrowed to the cipher suites and curves the file asks for.
fn provider(t: &TlsFile, fail: &Fail<'_>) -> Result<Arc<CryptoProvider>, WebConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = t.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
        let name = |s: &rustls::SupportedCipherSuite| format!("{:?}", s.suite());
        let mut chosen: Vec<rustls::SupportedCipherSuite> = Vec::new();
        for wanted in names {
            match provider.cipher_suites.iter().find(|s| name(s) == *wanted) {
                // As in Go, the list governs TLS 1.2; TLS 1.3 suites are always offered.
                Some(suite) if suite.tls13().is_none() => chosen.push(*suite),
                Some(_) => {}
                None => {
                    let known: Vec<String> = provider
                        .cipher_suites
                        .iter()
                        .filter(|s| s.tls13().is_none())
                        .map(name)
                        .collect();
                    return Err(fail(
                        "tls_server_config.cipher_suites",
                        format!(
                            "'{wanted}' is not available; the TLS 1.2 suites offered are {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        chosen.extend(
            provider
                .cipher_suites
                .iter()
                .filter(|s| s.tls13().is_some()),
        );
        provider.cipher_suites = chosen;
    }
    if let Some(names) = t.curve_preferences.as_ref().filter(|n| !n.is_empty()) {
        let mut chosen = Vec::new();
        for wanted in names {
            let group = match wanted.as_str() {
                "X25519" => rustls::NamedGroup::X25519,
                "CurveP256" => rustls::NamedGroup::secp256r1,
                "CurveP384" => rustls::NamedGroup::secp384r1,
                "CurveP521" => {
                    return Err(fail(
                        "tls_server_config.curve_preferences",
                        "CurveP521 is not implemented by this build (rustls with ring); use X25519, CurveP256 or CurveP384".into(),
                    ))
                }
                other => {
                    return Err(fail(
                        "tls_server_config.curve_preferences",
                        format!("'{other}' is not a curve; use X25519, CurveP256 or CurveP384"),
                    ))
                }
            };
            if let Some(kx) = provider.kx_groups.iter().find(|k| k.name() == group) {
                chosen.push(*kx);
            }
        }
        provider.kx_groups = chosen;
    }
    Ok(Arc::new(provider))
}

/// `client_allowed_sans`: after `inner` accepted the client certificate, one of its DNS,
/// IP address or URI subject alternative names must equal an allowed entry exactly.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl AllowedSans {
    fn matches(&self, end_entity: &CertificateDer<'_>) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else {
            return false;
        };
        let named = |name: &str| self.allowed.iter().any(|a| a == name);
        if cert.valid_dns_names().any(named) || cert.valid_uri_names().any(named) {
            return true;
        }
        self.allowed.iter().any(|allowed| {
            allowed.parse::<std::net::IpAddr>().is_ok_and(|ip| {
                let name = rustls_pki_types::ServerName::IpAddress(ip.into());
                cert.verify_is_valid_for_subject_name(&name).is_ok()
            })
        })
    }
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.matches(end_entity) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: a client certificate is asked for
/// (and, for the latter, required) but not checked against any CA; the client must still
/// prove it holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn load(dir: &Path, text: &str) -> Result<WebConfig, WebConfigError> {
        let path = dir.join("web.yml");
        std::fs::write(&path, text).unwrap();
        WebConfig::load(Some(&path))
    }

    #[test]
    fn empty_files_and_empty_sections_mean_plain_http_without_authentication() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "",
            "# comment only\n",
            "tls_server_config: {}\n",
            "basic_auth_users:\n",
        ] {
            let access = load(dir.path(), text).unwrap().current();
            assert!(access.tls.is_none() && access.users.is_empty(), "{text:?}");
        }
        assert!(WebConfig::load(None).unwrap().current().tls.is_none());
    }

    #[test]
    fn inline_and_file_forms_of_one_field_are_not_both_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = server_pair();
        std::fs::write(dir.path().join("c.pem"), &cert).unwrap();
        let inline = |name: &str, pem: &str| {
            let body: String = pem.lines().map(|l| format!("    {l}\n")).collect();
            format!("  {name}: |\n{body}")
        };
        let both = format!(
            "tls_server_config:\n{}  cert_file: c.pem\n{}",
            inline("cert", &cert),
            inline("key", &key)
        );
        let error = load(dir.path(), &both).err().unwrap();
        assert_eq!(error.field, "tls_server_config.cert_file");
        let inline_only = format!(
            "tls_server_config:\n{}{}",
            inline("cert", &cert),
            inline("key", &key)
        );
        let config = load(dir.path(), &inline_only).unwrap();
        assert!(config.tls());
        assert!(!format!("{:?}", config.current()).contains("PRIVATE"));
    }

    #[test]
    fn a_rewrite_is_picked_up_but_switching_tls_on_needs_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let hash = bcrypt::hash("pw", 4).unwrap();
        let config = load(dir.path(), &format!("basic_auth_users:\n  a: '{hash}'\n")).unwrap();
        assert_eq!(config.current().users.len(), 1);
        // Same length as before: the stamp's ctime and inode still tell the change.
        std::fs::write(
            dir.path().join("web.yml"),
            format!("basic_auth_users:\n  b: '{hash}'\n"),
        )
        .unwrap();
        assert!(config.current().users.contains_key("b"));

        let (cert, key) = server_pair();
        std::fs::write(dir.path().join("c.pem"), cert).unwrap();
        std::fs::write(dir.path().join("k.pem"), key).unwrap();
        std::fs::write(
            dir.path().join("web.yml"),
            "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n",
        )
        .unwrap();
        let access = config.current();
        assert!(access.tls.is_none(), "TLS cannot start on a plain listener");
        assert!(access.users.contains_key("b"));
        // Truncated, or emptied: basic authentication does not go away on a reload.
        std::fs::write(dir.path().join("web.yml"), "").unwrap();
        let access = config.current();
        assert!(
            access.users.contains_key("b"),
            "the last good file stays in force"
        );
    }

    #[test]
    fn a_reload_never_drops_client_certificates_but_a_restart_does() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = server_pair();
        std::fs::write(dir.path().join("c.pem"), &cert).unwrap();
        std::fs::write(dir.path().join("k.pem"), &key).unwrap();
        let tls = "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n";
        let mtls = format!(
            "{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: c.pem\n  client_allowed_sans: [prometheus]\n"
        );
        let config = load(dir.path(), &mtls).unwrap();
        // What a reader sees of the file cut short after key_file.
        std::fs::write(dir.path().join("web.yml"), tls).unwrap();
        let access = config.current();
        assert_eq!(access.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert!(access.client_sans);
        assert_eq!(
            load(dir.path(), tls).unwrap().current().client_auth,
            ClientAuth::NoClientCert,
            "a fresh start applies it"
        );
    }

    #[test]
    fn a_file_named_before_it_exists_is_picked_up_when_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = server_pair();
        std::fs::write(dir.path().join("c.pem"), &cert).unwrap();
        std::fs::write(dir.path().join("k.pem"), &key).unwrap();
        let tls = |c: &str| format!("tls_server_config:\n  cert_file: {c}\n  key_file: k.pem\n");
        let config = load(dir.path(), &tls("c.pem")).unwrap();
        let first = config.current();
        std::fs::write(dir.path().join("web.yml"), tls("renewed.pem")).unwrap();
        assert!(
            Arc::ptr_eq(&first, &config.current()),
            "renewed.pem does not exist yet"
        );
        assert!(Arc::ptr_eq(&first, &config.current()));
        std::fs::write(dir.path().join("renewed.pem"), &cert).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &config.current()),
            "loaded once it appeared"
        );
    }

    #[test]
    fn the_rate_limit_admits_a_burst_then_one_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let config = load(dir.path(), "rate_limit:\n  interval: 1h\n  burst: 2\n").unwrap();
        let access = config.current();
        assert!(config.admits(&access) && config.admits(&access));
        assert!(
            !config.admits(&access),
            "the burst is spent; the next token comes in an hour"
        );
        let off = load(dir.path(), "rate_limit:\n  interval: 0\n  burst: 0\n").unwrap();
        assert!((0..100).all(|_| off.admits(&off.current())));
    }

    #[test]
    fn the_readme_sample_loads() {
        let readme = include_str!("../../../README.md");
        let section = &readme[readme.find("## Protecting /metrics").unwrap()..];
        let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
        let sample = &section[start..start + section[start..].find("```").unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = server_pair();
        std::fs::write(dir.path().join("server.crt"), &cert).unwrap();
        std::fs::write(dir.path().join("server.key"), key).unwrap();
        std::fs::write(dir.path().join("clients-ca.crt"), cert).unwrap();
        let access = load(dir.path(), sample).unwrap().current();
        assert!(access.tls.is_some());
        assert_eq!(access.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert!(access.users.contains_key("prometheus"));
        assert_eq!(access.headers.len(), 1);
    }
}
