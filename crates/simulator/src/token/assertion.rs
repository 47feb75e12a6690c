//! JSON Web Tokens as the simulated Entra ID reads them: client assertions signed with a
//! registered certificate, and federated tokens from a Kubernetes issuer.
//!
//! Reading and verifying go through the `jsonwebtoken` crate, never the exporter's own JWS
//! code: the exporter signs what this module checks, so sharing one implementation would
//! let a framing mistake made by both pass every test.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A token split into its header and claims; nothing is verified yet.
pub(crate) struct Assertion {
    token: String,
    header: Header,
    pub claims: Map<String, Value>,
}

impl Assertion {
    /// Reads `token` without checking its signature or times: which key and which checks
    /// apply depend on its claims.
    pub fn parse(token: &str) -> Result<Assertion, jsonwebtoken::errors::Error> {
        let token = token.trim();
        let header = jsonwebtoken::decode_header(token)?;
        let mut unchecked = bare_validation(header.alg);
        unchecked.insecure_disable_signature_validation();
        let claims = jsonwebtoken::decode::<Map<String, Value>>(
            token,
            &DecodingKey::from_secret(&[]),
            &unchecked,
        )?
        .claims;
        Ok(Assertion {
            token: token.to_owned(),
            header,
            claims,
        })
    }

    /// The certificate thumbprint the header names: `x5t#S256` (SHA-256) or `x5t` (SHA-1).
    pub fn thumbprint_sha256(&self) -> Option<&str> {
        self.header.x5t_s256.as_deref()
    }

    pub fn thumbprint_sha1(&self) -> Option<&str> {
        self.header.x5t.as_deref()
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim (seconds since the epoch); fractions are allowed by RFC 7519.
    pub fn claim_time(&self, name: &str) -> Option<f64> {
        self.claims.get(name).and_then(Value::as_f64)
    }

    /// Checks the signature with an RSA public key (PKCS#1 `RSAPublicKey` DER) by the
    /// algorithm the header names, which Entra ID accepts as RS256 or PS256 only.
    pub fn verify(&self, rsa_public_key: &[u8]) -> bool {
        if !matches!(self.header.alg, Algorithm::RS256 | Algorithm::PS256) {
            return false;
        }
        jsonwebtoken::decode::<serde::de::IgnoredAny>(
            &self.token,
            &DecodingKey::from_rsa_der(rsa_public_key),
            &bare_validation(self.header.alg),
        )
        .is_ok()
    }
}

/// A validation of the signature alone: the simulated Entra ID checks audience, subject and
/// times itself, to answer each with the AADSTS code Entra ID uses.
fn bare_validation(algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation
}

/// base64url without padding, as JOSE writes thumbprints and token parts.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The RSA public key (PKCS#1 DER) of a DER certificate; `None` for another kind of key.
pub fn rsa_public_key(certificate_der: &[u8]) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate_der).ok()?;
    let spki = parsed.public_key();
    (spki.algorithm.algorithm == x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION)
        .then(|| spki.subject_public_key.data.to_vec())
}
