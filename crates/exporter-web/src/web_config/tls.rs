//! `tls_server_config` into a rustls [`ServerConfig`]: the server's certificate and key,
//! the protocol versions, cipher suites and curves, and who may connect as a client.
//!
//! Where Go's `crypto/tls` and rustls differ, the file keeps Go's meaning, and what rustls
//! cannot do (TLS 1.0 and 1.1, P-521) is refused with a message rather than ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

use super::access::ClientAuth;
use super::error::{Fail, WebConfigError};
use super::verify::{AllowedSans, AnyClientCert};
use super::watch::Watched;

/// `tls_server_config` as the file writes it, read by [`server_config`].
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    pub(super) cert: Option<String>,
    pub(super) key: Option<String>,
    pub(super) client_ca: Option<String>,
    pub(super) cert_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
    pub(super) client_auth_type: Option<String>,
    pub(super) client_ca_file: Option<PathBuf>,
    pub(super) client_allowed_sans: Option<Vec<String>>,
    pub(super) min_version: Option<String>,
    pub(super) max_version: Option<String>,
    pub(super) cipher_suites: Option<Vec<String>>,
    pub(super) prefer_server_cipher_suites: Option<bool>,
    pub(super) curve_preferences: Option<Vec<String>>,
}

/// Builds the rustls configuration, or `None` when the section configures no TLS.
pub(super) fn server_config(
    t: &TlsFile,
    dir: &Path,
    http2: bool,
    fail: &Fail,
    watched: &mut Watched,
) -> Result<(Option<Arc<ServerConfig>>, ClientAuth), WebConfigError> {
    let client_auth = client_auth(t, fail)?;
    if !enabled(t) {
        return Ok((None, ClientAuth::NoClientCert));
    }

    let mut pems = PemReader { dir, fail, watched };
    let cert = pems.read("cert", &t.cert, &t.cert_file)?.ok_or_else(|| {
        fail.at(
            "tls_server_config.cert_file",
            "missing: TLS needs the server certificate (cert_file, or cert inline)",
        )
    })?;
    let key = pems.read("key", &t.key, &t.key_file)?.ok_or_else(|| {
        fail.at(
            "tls_server_config.key_file",
            "missing: TLS needs the server's private key (key_file, or key inline)",
        )
    })?;
    let client_ca = pems.read("client_ca", &t.client_ca, &t.client_ca_file)?;
    let chain = certificate_chain(&cert, fail)?;
    let private_key = private_key(&key, fail)?;
    let versions = versions(t, fail)?;
    let allowed_sans = allowed_sans(t, client_auth, fail)?;
    let provider = provider(t, fail)?;

    let verifier = client_verifier(client_auth, client_ca, &provider, fail)?;
    let verifier: Arc<dyn ClientCertVerifier> = if allowed_sans.is_empty() {
        verifier
    } else {
        Arc::new(AllowedSans::new(verifier, allowed_sans))
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| {
            fail.at(
                "tls_server_config.cipher_suites",
                format!("no cipher suite is left for the TLS versions allowed: {e}"),
            )
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            fail.at(
                &cert.field,
                format!("does not go with {}: {e}; give the certificate and the private key made together", key.field),
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

/// `client_auth_type`, named as in Go.
fn client_auth(t: &TlsFile, fail: &Fail) -> Result<ClientAuth, WebConfigError> {
    let text = t.client_auth_type.as_deref().unwrap_or_default();
    ClientAuth::parse(text).ok_or_else(|| {
        fail.at(
            "tls_server_config.client_auth_type",
            format!("'{text}' is not a policy; use NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"),
        )
    })
}

/// The toolkit's rule: any of these fields turns TLS on; the rest alone do not.
fn enabled(t: &TlsFile) -> bool {
    given(&t.cert)
        || given(&t.key)
        || given(&t.client_ca)
        || given_path(&t.cert_file)
        || given_path(&t.key_file)
        || given_path(&t.client_ca_file)
        || !t.client_auth_type.as_deref().unwrap_or_default().is_empty()
}

/// Whether an inline field is set; the toolkit treats an empty one as absent.
fn given(inline: &Option<String>) -> bool {
    inline.as_deref().is_some_and(|s| !s.is_empty())
}

fn given_path(file: &Option<PathBuf>) -> bool {
    file.as_ref().is_some_and(|p| !p.as_os_str().is_empty())
}

/// A PEM text and the field (with the file's path, if it came from one) its errors name.
struct Pem {
    bytes: Vec<u8>,
    field: String,
}

/// Reads the PEM fields that come inline (`cert`) or as a file (`cert_file`), watching the
/// files for changes.
struct PemReader<'a> {
    /// Relative paths are relative to the web configuration file.
    dir: &'a Path,
    fail: &'a Fail,
    watched: &'a mut Watched,
}

impl PemReader<'_> {
    /// `name` inline, or the file `{name}_file` names; `None` when neither is set.
    fn read(
        &mut self,
        name: &str,
        inline: &Option<String>,
        file: &Option<PathBuf>,
    ) -> Result<Option<Pem>, WebConfigError> {
        let field = format!("tls_server_config.{name}_file");
        match (given(inline), file.as_ref().filter(|_| given_path(file))) {
            (true, Some(_)) => Err(self.fail.at(
                &field,
                format!("set either {name} (inline PEM) or {name}_file, not both"),
            )),
            (true, None) => Ok(Some(Pem {
                bytes: inline.clone().unwrap_or_default().into_bytes(),
                field: format!("tls_server_config.{name}"),
            })),
            (false, Some(file)) => {
                let path = self.dir.join(file);
                self.watched.note(&path);
                let bytes = std::fs::read(&path).map_err(|e| {
                    self.fail
                        .at(&field, format!("cannot read {}: {e}", path.display()))
                })?;
                Ok(Some(Pem {
                    bytes,
                    field: format!("{field} ({})", path.display()),
                }))
            }
            (false, None) => Ok(None),
        }
    }
}

/// The server certificate, then any intermediates.
fn certificate_chain(
    cert: &Pem,
    fail: &Fail,
) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert.bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| fail.at(&cert.field, format!("not readable PEM: {e}")))?;
    if chain.is_empty() {
        return Err(fail.at(
            &cert.field,
            "holds no PEM CERTIFICATE block; give the server certificate (then any intermediates) in PEM",
        ));
    }
    Ok(chain)
}

fn private_key(key: &Pem, fail: &Fail) -> Result<PrivateKeyDer<'static>, WebConfigError> {
    // The parser's error is dropped: it could quote the key's content.
    PrivateKeyDer::from_pem_slice(&key.bytes).map_err(|_| {
        fail.at(
            &key.field,
            "holds no readable private key; give a PEM PRIVATE KEY (PKCS#8), RSA PRIVATE KEY or EC PRIVATE KEY block",
        )
    })
}

/// `min_version` to `max_version`, TLS 1.2 and 1.3 by default.
fn versions(
    t: &TlsFile,
    fail: &Fail,
) -> Result<Vec<&'static SupportedProtocolVersion>, WebConfigError> {
    let version = |field: &str, value: &Option<String>, default| -> Result<u8, WebConfigError> {
        match value.as_deref().unwrap_or_default() {
            "" => Ok(default),
            "TLS12" => Ok(12),
            "TLS13" => Ok(13),
            "TLS10" | "TLS11" => Err(fail.at(
                &format!("tls_server_config.{field}"),
                "TLS 1.0 and 1.1 are not offered (deprecated by RFC 8996, and not implemented by rustls); use TLS12 or TLS13",
            )),
            other => Err(fail.at(
                &format!("tls_server_config.{field}"),
                format!("'{other}' is not a TLS version; use TLS12 or TLS13"),
            )),
        }
    };
    let min = version("min_version", &t.min_version, 12)?;
    let max = version("max_version", &t.max_version, 13)?;
    if min > max {
        return Err(fail.at("tls_server_config.min_version", "is above max_version"));
    }
    Ok(
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect(),
    )
}

/// `client_allowed_sans`, refused where it would not be access control.
fn allowed_sans(
    t: &TlsFile,
    client_auth: ClientAuth,
    fail: &Fail,
) -> Result<Vec<String>, WebConfigError> {
    let allowed_sans = t.client_allowed_sans.clone().unwrap_or_default();
    if allowed_sans.is_empty() {
        return Ok(allowed_sans);
    }
    let field = "tls_server_config.client_allowed_sans";
    // Stricter than the toolkit, which also takes RequireAnyClientCert: a SAN read from a
    // certificate no CA vouched for is whatever the client chose to write into it, so
    // that combination would look like access control without being any.
    if client_auth != ClientAuth::RequireAndVerifyClientCert {
        return Err(fail.at(
            field,
            format!("needs client_auth_type RequireAndVerifyClientCert, not {client_auth:?}: without a verified certificate a client may send none, or a self-made one carrying any name"),
        ));
    }
    if let Some(email) = allowed_sans
        .iter()
        .find(|s| s.contains('@') && !s.contains(':'))
    {
        return Err(fail.at(
            field,
            format!("'{email}': e-mail SANs are not matched by this exporter; allow a DNS name, IP address or URI SAN of the client certificate"),
        ));
    }
    Ok(allowed_sans)
}

/// Who may connect under `client_auth`, given the client CA (if any).
fn client_verifier(
    client_auth: ClientAuth,
    client_ca: Option<Pem>,
    provider: &Arc<CryptoProvider>,
    fail: &Fail,
) -> Result<Arc<dyn ClientCertVerifier>, WebConfigError> {
    if client_auth == ClientAuth::NoClientCert {
        if let Some(ca) = client_ca {
            return Err(fail.at(
                &ca.field,
                "a client CA is set but client_auth_type is NoClientCert; set client_auth_type: RequireAndVerifyClientCert to require client certificates",
            ));
        }
        return Ok(Arc::new(rustls::server::NoClientAuth));
    }
    if !client_auth.verifies() {
        if let Some(ca) = client_ca {
            tracing::warn!(field = ca.field.as_str(), "client certificates are requested but not verified ({client_auth:?}), so the client CA is not used; RequireAndVerifyClientCert verifies them");
        }
        return Ok(Arc::new(AnyClientCert::new(
            client_auth == ClientAuth::RequireAnyClientCert,
            provider.clone(),
        )));
    }
    let Some(ca) = client_ca else {
        return Err(fail.at(
            "tls_server_config.client_ca_file",
            format!("missing: client_auth_type {client_auth:?} verifies client certificates against the CA certificates in it"),
        ));
    };
    let builder = WebPkiClientVerifier::builder_with_provider(
        Arc::new(client_roots(&ca, fail)?),
        provider.clone(),
    );
    let builder = if client_auth == ClientAuth::VerifyClientCertIfGiven {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder
        .build()
        .map_err(|e| fail.at(&ca.field, format!("cannot verify clients with it: {e}")))
}

/// The CA certificates client certificates must chain to.
fn client_roots(ca: &Pem, fail: &Fail) -> Result<RootCertStore, WebConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca.bytes) {
        let cert = cert.map_err(|e| fail.at(&ca.field, format!("not readable PEM: {e}")))?;
        roots.add(cert).map_err(|e| {
            fail.at(
                &ca.field,
                format!("holds a certificate that is not a usable CA: {e}"),
            )
        })?;
    }
    if roots.is_empty() {
        return Err(fail.at(&ca.field, "holds no PEM CERTIFICATE block"));
    }
    Ok(roots)
}

/// The ring provider, narrowed to the cipher suites and curves the file asks for.
fn provider(t: &TlsFile, fail: &Fail) -> Result<Arc<CryptoProvider>, WebConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = t.cipher_suites.as_ref().filter(|n| !n.is_empty()) {
        provider.cipher_suites = cipher_suites(&provider, names, fail)?;
    }
    if let Some(names) = t.curve_preferences.as_ref().filter(|n| !n.is_empty()) {
        provider.kx_groups = curves(&provider, names, fail)?;
    }
    Ok(Arc::new(provider))
}

/// `cipher_suites`: as in Go, the list governs TLS 1.2; TLS 1.3 suites are always offered.
fn cipher_suites(
    provider: &CryptoProvider,
    names: &[String],
    fail: &Fail,
) -> Result<Vec<SupportedCipherSuite>, WebConfigError> {
    let name = |s: &SupportedCipherSuite| format!("{:?}", s.suite());
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    for wanted in names {
        match provider.cipher_suites.iter().find(|s| name(s) == *wanted) {
            Some(suite) if suite.tls13().is_none() => chosen.push(*suite),
            Some(_) => {}
            None => {
                let known: Vec<String> = provider
                    .cipher_suites
                    .iter()
                    .filter(|s| s.tls13().is_none())
                    .map(name)
                    .collect();
                return Err(fail.at(
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
    Ok(chosen)
}

/// `curve_preferences`, in Go's names, in the order given.
fn curves(
    provider: &CryptoProvider,
    names: &[String],
    fail: &Fail,
) -> Result<Vec<&'static dyn rustls::crypto::SupportedKxGroup>, WebConfigError> {
    let field = "tls_server_config.curve_preferences";
    let mut chosen = Vec::new();
    for wanted in names {
        let group = match wanted.as_str() {
            "X25519" => rustls::NamedGroup::X25519,
            "CurveP256" => rustls::NamedGroup::secp256r1,
            "CurveP384" => rustls::NamedGroup::secp384r1,
            "CurveP521" => {
                return Err(fail.at(
                    field,
                    "CurveP521 is not implemented by this build (rustls with ring); use X25519, CurveP256 or CurveP384",
                ))
            }
            other => {
                return Err(fail.at(
                    field,
                    format!("'{other}' is not a curve; use X25519, CurveP256 or CurveP384"),
                ))
            }
        };
        if let Some(kx) = provider.kx_groups.iter().find(|k| k.name() == group) {
            chosen.push(*kx);
        }
    }
    Ok(chosen)
}
