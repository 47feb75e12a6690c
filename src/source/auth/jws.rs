//! Compact JSON Web Signatures (RFC 7515) with RSA, the only kind Entra ID accepts for
//! client assertions: signing for the exporter's certificate credential, verifying for the
//! simulated token endpoint, and reading a token's claims for `check`.
//!
//! Only `RS256` and `PS256` exist here on purpose: a verifier that accepts whatever `alg`
//! the header names (`none`, `HS256` keyed with a public key) is the classic JWT mistake.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use serde::Serialize;
use serde_json::{Map, Value};

/// The signature algorithms Entra ID accepts on client assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256 (Microsoft's recommendation).
    Ps256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Rs256 => "RS256",
            Algorithm::Ps256 => "PS256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Algorithm::Rs256),
            "PS256" => Some(Algorithm::Ps256),
            _ => None,
        }
    }
}

/// Why a JWS could not be made or checked. Never carries the token or key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwsError {
    #[error("not a compact JWS (three base64url parts separated by dots)")]
    Malformed,
    #[error("the signature algorithm {0:?} is not accepted; use RS256 or PS256")]
    Algorithm(String),
    #[error("the signature does not verify against the key")]
    BadSignature,
    #[error("signing failed (the RSA key is unusable)")]
    Signing,
}

/// `header.claims.signature`, each part base64url without padding.
pub fn sign(
    algorithm: Algorithm,
    key: &RsaKeyPair,
    header: &impl Serialize,
    claims: &impl Serialize,
) -> Result<String, JwsError> {
    let signing_input = format!("{}.{}", json_part(header)?, json_part(claims)?);
    let mut signature = vec![0; key.public().modulus_len()];
    let padding: &dyn signature::RsaEncoding = match algorithm {
        Algorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
        Algorithm::Ps256 => &signature::RSA_PSS_SHA256,
    };
    key.sign(
        padding,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| JwsError::Signing)?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// A JWS split into its decoded parts; nothing is verified yet.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Parsed {
    pub fn parse(token: &str) -> Result<Parsed, JwsError> {
        let mut parts = token.trim().split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::Malformed);
        };
        let object = |part: &str| -> Result<Map<String, Value>, JwsError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| JwsError::Malformed)?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(JwsError::Malformed),
            }
        };
        Ok(Parsed {
            header: object(header)?,
            claims: object(claims)?,
            signing_input: format!("{header}.{claims}"),
            signature: URL_SAFE_NO_PAD
                .decode(signature)
                .map_err(|_| JwsError::Malformed)?,
        })
    }

    /// The header's `alg`, if it is one Entra ID accepts.
    pub fn algorithm(&self) -> Result<Algorithm, JwsError> {
        let name = self.header_str("alg").unwrap_or_default();
        Algorithm::from_name(name).ok_or_else(|| JwsError::Algorithm(name.to_owned()))
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim (seconds since the epoch); fractions are allowed by RFC 7519.
    pub fn claim_time(&self, name: &str) -> Option<f64> {
        self.claims.get(name).and_then(Value::as_f64)
    }

    /// Checks the signature with an RSA public key (PKCS#1 `RSAPublicKey` DER), using the
    /// algorithm the header names, which must be RS256 or PS256.
    pub fn verify(&self, rsa_public_key: &[u8]) -> Result<(), JwsError> {
        let algorithm: &dyn signature::VerificationAlgorithm = match self.algorithm()? {
            Algorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(algorithm, rsa_public_key)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JwsError::BadSignature)
    }
}

/// base64url without padding, as JOSE writes binary values such as thumbprints.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn json_part(value: &impl Serialize) -> Result<String, JwsError> {
    let json = serde_json::to_vec(value).map_err(|_| JwsError::Signing)?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::EncodePrivateKey;
    use serde_json::json;

    #[test]
    fn signatures_verify_only_with_the_right_key_algorithm_and_content() {
        let mut rng = rand::thread_rng();
        let private = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let other = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let public = private.to_public_key().to_pkcs1_der().unwrap();
        let other_public = other.to_public_key().to_pkcs1_der().unwrap();
        let key = RsaKeyPair::from_pkcs8(private.to_pkcs8_der().unwrap().as_bytes()).unwrap();
        let claims = json!({"iss": "me", "exp": 1.5e9});
        for (algorithm, name) in [(Algorithm::Ps256, "PS256"), (Algorithm::Rs256, "RS256")] {
            let header = json!({"alg": name, "typ": "JWT"});
            let token = sign(algorithm, &key, &header, &claims).unwrap();
            let parsed = Parsed::parse(&token).unwrap();
            assert_eq!(parsed.algorithm(), Ok(algorithm));
            assert_eq!(parsed.claim_str("iss"), Some("me"));
            assert_eq!(parsed.claim_time("exp"), Some(1.5e9));
            assert_eq!(parsed.verify(public.as_bytes()), Ok(()));
            assert_eq!(
                parsed.verify(other_public.as_bytes()),
                Err(JwsError::BadSignature)
            );
            // Other claims under the same signature.
            let (head, rest) = token.split_once('.').unwrap();
            let (_, signature) = rest.split_once('.').unwrap();
            let forged = format!("{head}.{}.{signature}", base64url(br#"{"iss":"you"}"#));
            assert_eq!(
                Parsed::parse(&forged).unwrap().verify(public.as_bytes()),
                Err(JwsError::BadSignature)
            );
        }
        // The header may not choose an algorithm outside RS256 and PS256.
        for alg in ["none", "HS256", "ES256", ""] {
            let header = base64url(json!({"alg": alg}).to_string().as_bytes());
            let token = format!("{header}.{}.", base64url(b"{}"));
            let parsed = Parsed::parse(&token).unwrap();
            assert!(matches!(
                parsed.verify(public.as_bytes()),
                Err(JwsError::Algorithm(_))
            ));
        }
        for malformed in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.e30.",
            "e30.W10.",
            "bm90IGpzb24.e30.",
        ] {
            assert!(Parsed::parse(malformed).is_err(), "{malformed}");
        }
    }
}
