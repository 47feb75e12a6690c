//! Certificate credentials: the app registration's certificate and its private key, from a
//! PEM file (certificate and key) or a PKCS#12 file (with its password), and the client
//! assertion signed with them for every token request.
//!
//! Entra ID identifies the certificate by its thumbprint in the assertion's header
//! (`x5t#S256`, SHA-256 of the DER, with PS256; the older `x5t`, SHA-1, with RS256) and
//! checks the signature with the public key registered on the application. The key never
//! leaves this module: `Debug` shows the certificate's subject and thumbprint only, and
//! assertions are handed out as [`SecretString`].

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use rand::Rng;
use ring::digest;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::jws::{self, Algorithm};

/// How long a client assertion is valid: short, since it is made fresh for each request
/// and anyone who captured it could use it until then (Entra ID accepts 5–10 minutes).
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// Why a certificate credential could not be loaded. Names the file, never its contents.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("cannot read the certificate file {path}: {reason}. Check AZURE_CLIENT_CERTIFICATE_PATH and the file's permissions")]
    Read { path: String, reason: String },
    #[error("cannot open the PKCS#12 file {path}: {reason}. {hint}")]
    Pkcs12 {
        path: String,
        reason: String,
        hint: &'static str,
    },
    #[error("the certificate file {path} holds no certificate. A PEM file needs a '-----BEGIN CERTIFICATE-----' block next to the private key")]
    NoCertificate { path: String },
    #[error("the certificate file {path} holds no private key. A PEM file needs the key ('-----BEGIN PRIVATE KEY-----' or '-----BEGIN RSA PRIVATE KEY-----') next to the certificate; export the certificate with its private key")]
    NoKey { path: String },
    #[error("the private key in {path} is encrypted, which PEM files cannot be here. Decrypt it (openssl pkey -in key.pem -out plain.pem) and protect the file instead, or use a PKCS#12 (.pfx) file with AZURE_CLIENT_CERTIFICATE_PASSWORD")]
    EncryptedPem { path: String },
    #[error("the private key in {path} is not an RSA key of 2048 bits or more ({reason}); Entra ID accepts only RSA certificates for client assertions")]
    NotRsa { path: String, reason: String },
    #[error("no certificate in {path} belongs to its private key: the file must hold the certificate that was made with this key (the one uploaded to the app registration)")]
    KeyMismatch { path: String },
    #[error("the certificate in {path} cannot be parsed: {reason}")]
    BadCertificate { path: String, reason: String },
}

/// A certificate credential ready to sign client assertions.
pub struct ClientCertificate {
    der: Vec<u8>,
    key: RsaKeyPair,
    algorithm: Algorithm,
    sha256: [u8; 32],
    sha1: [u8; 20],
    subject: String,
    not_after: i64,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.subject)
            .field("thumbprint_sha1", &self.thumbprint_hex())
            .field("algorithm", &self.algorithm)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl ClientCertificate {
    /// Loads a PEM file (certificate and key; a chain may follow) or, when the file is
    /// not PEM, a PKCS#12 file opened with `password` (none means the empty password).
    pub fn load(
        path: &Path,
        password: Option<&SecretString>,
        algorithm: Algorithm,
    ) -> Result<Self, CertificateError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| CertificateError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            if password.is_some() {
                tracing::warn!(path = %shown, "AZURE_CLIENT_CERTIFICATE_PASSWORD is ignored: it is for PKCS#12 files, and this is a PEM file");
            }
            Self::from_pem(&bytes, algorithm, &shown)
        } else {
            let password = password.map_or("", |p| p.expose_secret());
            // Key Vault hands out a PFX as base64 text, and so do Kubernetes Secrets made
            // from it: take that as well as the binary file.
            let decoded = base64_text(&bytes);
            Self::from_pkcs12(
                decoded.as_deref().unwrap_or(&bytes),
                password,
                algorithm,
                &shown,
            )
        }
    }

    fn from_pem(bytes: &[u8], algorithm: Algorithm, path: &str) -> Result<Self, CertificateError> {
        let path = path.to_owned();
        let certificates: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(bytes)
            .filter_map(Result::ok)
            .map(|c| c.as_ref().to_vec())
            .collect();
        if certificates.is_empty() {
            return Err(CertificateError::NoCertificate { path });
        }
        let key = match PrivateKeyDer::from_pem_slice(bytes) {
            Ok(key) => key,
            Err(_) if bytes.windows(9).any(|w| w == b"ENCRYPTED") => {
                return Err(CertificateError::EncryptedPem { path })
            }
            Err(_) => return Err(CertificateError::NoKey { path }),
        };
        let key = match &key {
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            _ => {
                return Err(CertificateError::NotRsa {
                    path,
                    reason: "an EC key".into(),
                })
            }
        }
        .map_err(|e| CertificateError::NotRsa {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Self::with_key(certificates, key, algorithm, path)
    }

    fn from_pkcs12(
        bytes: &[u8],
        password: &str,
        algorithm: Algorithm,
        path: &str,
    ) -> Result<Self, CertificateError> {
        let path = path.to_owned();
        let store = KeyStore::from_pkcs12(bytes, password, Pkcs12ImportPolicy::Relaxed).map_err(
            |e| {
                let reason = e.to_string();
                let hint = if matches!(e, p12_keystore::error::Error::MacError(_)) {
                    "The password is wrong or missing: set AZURE_CLIENT_CERTIFICATE_PASSWORD to the password the file was exported with"
                } else {
                    "AZURE_CLIENT_CERTIFICATE_PATH must name a PEM file (certificate and private key) or a PKCS#12 (.pfx/.p12) file with its private key"
                };
                CertificateError::Pkcs12 {
                    path: path.clone(),
                    reason,
                    hint,
                }
            },
        )?;
        let Some((_, chain)) = store.private_key_chain() else {
            return Err(CertificateError::NoKey { path });
        };
        let key =
            RsaKeyPair::from_pkcs8(chain.key().as_der()).map_err(|e| CertificateError::NotRsa {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let certificates = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
        Self::with_key(certificates, key, algorithm, path)
    }

    /// Picks the certificate that belongs to `key` among `certificates` (a file may hold a
    /// chain, in any order).
    fn with_key(
        certificates: Vec<Vec<u8>>,
        key: RsaKeyPair,
        algorithm: Algorithm,
        path: String,
    ) -> Result<Self, CertificateError> {
        let public_key = key.public().as_ref().to_vec();
        let mut parse_error = None;
        for der in certificates {
            match rsa_public_key(&der) {
                Ok(Some(certificate_key)) if certificate_key == public_key => {
                    let (_, parsed) = x509_parser::parse_x509_certificate(&der).map_err(|e| {
                        CertificateError::BadCertificate {
                            path: path.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                    let subject = parsed.subject().to_string();
                    let not_after = parsed.validity().not_after.timestamp();
                    let mut sha256 = [0; 32];
                    sha256.copy_from_slice(digest::digest(&digest::SHA256, &der).as_ref());
                    let mut sha1 = [0; 20];
                    sha1.copy_from_slice(
                        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref(),
                    );
                    return Ok(ClientCertificate {
                        der,
                        key,
                        algorithm,
                        sha256,
                        sha1,
                        subject,
                        not_after,
                    });
                }
                Ok(_) => {}
                Err(reason) => parse_error = Some(reason),
            }
        }
        Err(match parse_error {
            Some(reason) => CertificateError::BadCertificate { path, reason },
            None => CertificateError::KeyMismatch { path },
        })
    }

    /// A client assertion for `client_id` at the token endpoint `audience`, valid from
    /// `now` for [`ASSERTION_LIFETIME`], with a fresh `jti`.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<SecretString, jws::JwsError> {
        let header = match self.algorithm {
            Algorithm::Ps256 => {
                json!({"alg": "PS256", "typ": "JWT", "x5t#S256": jws::base64url(&self.sha256)})
            }
            Algorithm::Rs256 => {
                json!({"alg": "RS256", "typ": "JWT", "x5t": jws::base64url(&self.sha1)})
            }
        };
        let issued = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": random_uuid(),
            "nbf": issued,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME.as_secs(),
        });
        jws::sign(self.algorithm, &self.key, &header, &claims).map(SecretString::from)
    }

    /// The certificate's DER, as uploaded to the app registration.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The SHA-1 thumbprint in hex, as the Entra admin centre lists certificates.
    pub fn thumbprint_hex(&self) -> String {
        self.sha1.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// When the certificate expires (Unix seconds); Entra ID refuses it from then on.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }
}

/// The certificate's RSA public key (PKCS#1 DER), or `None` for another key type.
pub fn rsa_public_key(certificate_der: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(certificate_der).map_err(|e| e.to_string())?;
    let spki = parsed.public_key();
    if spki.algorithm.algorithm != x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
        return Ok(None);
    }
    Ok(Some(spki.subject_public_key.data.to_vec()))
}

/// The bytes a file of base64 text (line breaks allowed) stands for; `None` for any other
/// file, binary PKCS#12 included (its DER starts with 0x30, which is not base64 text).
fn base64_text(bytes: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let text: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if text.is_empty()
        || !text
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// A random (version 4) UUID, as Entra ID expects in `jti`.
fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::thread_rng().gen();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
