//! Test-only keys and certificates, made at run time so that no private key is committed:
//! RSA keys, self-signed certificates as PEM and PKCS#12, and JWTs signed with them (the
//! federated tokens a Kubernetes issuer would sign). The issuer signs with `jsonwebtoken`,
//! not the exporter's own JWS code, so that a fault there cannot hide on both sides.

use std::sync::OnceLock;

use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::EncodePrivateKey;

/// An RSA key pair.
pub struct TestKey {
    pub pkcs8_der: Vec<u8>,
    /// PKCS#1 `RSAPrivateKey` DER, as `jsonwebtoken` takes it.
    pkcs1_der: Vec<u8>,
    /// PKCS#1 `RSAPublicKey` DER, as a JWKS or certificate carries it.
    pub public_der: Vec<u8>,
}

/// A self-signed certificate with its key.
pub struct TestCert {
    pub key: TestKey,
    pub der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCert {
    /// Certificate and key in one PEM file, as AZURE_CLIENT_CERTIFICATE_PATH expects.
    pub fn pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }

    /// A PKCS#12 file holding the key and certificate.
    pub fn pkcs12(&self, password: &str) -> Vec<u8> {
        let key = p12_keystore::PrivateKey::from_der(&self.key.pkcs8_der).unwrap();
        let certificate = p12_keystore::Certificate::from_der(&self.der).unwrap();
        let chain = p12_keystore::PrivateKeyChain::new(&b"test-key"[..], key, [certificate]);
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry(
            "exporter",
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
        );
        store.writer(password).write().unwrap()
    }
}

/// A fresh 2048-bit RSA key (about a second: the big-number crates are optimised even in
/// test builds, see Cargo.toml).
pub fn rsa_key() -> TestKey {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    TestKey {
        pkcs8_der: key.to_pkcs8_der().unwrap().as_bytes().to_vec(),
        pkcs1_der: key.to_pkcs1_der().unwrap().as_bytes().to_vec(),
        public_der: key
            .to_public_key()
            .to_pkcs1_der()
            .unwrap()
            .as_bytes()
            .to_vec(),
    }
}

/// A self-signed certificate for `common_name` with a new key.
pub fn certificate(common_name: &str) -> TestCert {
    let key = rsa_key();
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(key.pkcs8_der.clone());
    let key_pair =
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let certificate = params.self_signed(&key_pair).unwrap();
    TestCert {
        der: certificate.der().to_vec(),
        cert_pem: certificate.pem(),
        key_pem: key_pair.serialize_pem(),
        key,
    }
}

/// Two certificates shared by every test: key generation is the slow part.
pub fn shared_certificates() -> &'static (TestCert, TestCert) {
    static CERTS: OnceLock<(TestCert, TestCert)> = OnceLock::new();
    CERTS.get_or_init(|| {
        (
            certificate("teams-voice-exporter test"),
            certificate("unregistered"),
        )
    })
}

/// A JWT signed RS256 with `key`, as a Kubernetes service-account issuer signs tokens.
pub fn sign_jwt(key: &TestKey, claims: &serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("test-issuer-key".into());
    let key = jsonwebtoken::EncodingKey::from_rsa_der(&key.pkcs1_der);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}
