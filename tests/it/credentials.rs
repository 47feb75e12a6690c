//! Every credential kind against the simulated Entra ID, which checks them as Entra ID
//! does: certificate assertions (signature against the registered certificate,
//! thumbprint header, `aud`, `iss`/`sub`, expiry, fresh `jti`), federated tokens (issuer,
//! subject, audience, signature, expiry; re-read after rotation) and the metadata
//! service's `Metadata: true` header. Each kind must get a token and the real binary must
//! poll with it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::pki::{self, shared_certificates, TestKey};
use crate::common::{
    markers, simulated_tenant, wait_for, Exporter, ExporterCommand, CLIENT, SECRET, TENANT,
};
use base64::Engine;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use teams_voice_exporter::source::auth::certificate::{CertificateError, ClientCertificate};
use teams_voice_exporter::source::auth::jws::Algorithm;
use teams_voice_exporter::source::auth::{AuthError, Credential, TokenCache, JWT_BEARER};
use teams_voice_exporter::source::metrics::SourceMetrics;
use tve_simulator::{
    Faults, FederatedCredential, ManagedIdentities, Scenario, SimHandle, SimIdentity,
    FEDERATED_AUDIENCE,
};

const ISSUER: &str = "https://oidc.test.invalid/cluster-1/";
const SUBJECT: &str = "system:serviceaccount:monitoring:teams-voice-exporter";
const MANAGED_CLIENT: &str = "77777777-0000-0000-0000-00000000aaaa";

fn scenario() -> Scenario {
    Scenario {
        preexisting_rows: 20,
        span: Duration::from_secs(1800),
        ..Scenario::default()
    }
}

/// Short-lived access tokens, so a run makes several token requests.
fn short_tokens() -> Faults {
    Faults {
        token_lifetime_secs: 2,
        ..Faults::default()
    }
}

fn identity(issuer_key: &TestKey) -> SimIdentity {
    SimIdentity {
        certificates: vec![shared_certificates().0.der.clone()],
        federated: vec![FederatedCredential {
            issuer: ISSUER.into(),
            subject: SUBJECT.into(),
            audience: FEDERATED_AUDIENCE.into(),
            issuer_key: issuer_key.public_der.clone(),
        }],
        managed_identity: Some(ManagedIdentities {
            system_assigned: Some(MANAGED_CLIENT.into()),
            user_assigned: vec!["88888888-0000-0000-0000-00000000bbbb".into()],
        }),
        graph_resource: None,
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A projected service-account token as the kubelet writes it.
fn federated_token(key: &TestKey, subject: &str, audience: &str, expires_in: i64) -> String {
    let now = unix_now();
    pki::sign_jwt(
        key,
        &json!({
            "iss": ISSUER, "sub": subject, "aud": [audience],
            "iat": now, "nbf": now, "exp": now + expires_in,
            "jti": format!("{}-{now}-{expires_in}", subject.len()),
        }),
    )
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

/// What the token requests must have carried.
#[derive(PartialEq)]
enum Assertions {
    /// None (client secret, managed identity).
    None,
    /// A new assertion, with its own `jti`, for every request (certificate).
    Fresh,
    /// The same federated token until the kubelet rotates it (workload identity).
    Reused,
}

/// Whether the exporter logged that it uses the credential of `kind`.
fn chose(exporter: &Exporter, kind: &str) -> bool {
    exporter.logged_where(markers::CREDENTIAL_CHOSEN, |line| {
        line["credential"]
            .as_str()
            .is_some_and(|credential| credential.contains(kind))
    })
}

/// Polls succeed with the credential and the simulator saw the expected assertions.
fn assert_polls(exporter: &Exporter, sim: &SimHandle, assertions: Assertions) {
    exporter.wait_ready(Duration::from_secs(30));
    // Tokens live two seconds: more polls mean more token requests, each a new assertion.
    wait_for(Duration::from_secs(20), "three token requests", || {
        sim.stats().tokens_issued >= 3
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", exporter.log()));
    let metrics = exporter.metrics();
    assert!(
        metrics.sum(
            "teams_voice_exporter_token_refreshes_total",
            &[("result", "success")]
        ) >= 3.0
    );
    assert!(
        metrics.sum(
            "teams_voice_exporter_last_success_timestamp_seconds",
            &[("endpoint", "getDirectRoutingCalls")]
        ) > 0.0
    );
    let stats = sim.stats();
    match assertions {
        Assertions::None => assert_eq!(stats.client_assertions_accepted, 0),
        Assertions::Fresh => {
            assert!(stats.client_assertions_accepted >= 3, "{stats:?}");
            assert_eq!(
                stats.repeated_assertion_ids, 0,
                "every assertion has a new jti"
            );
        }
        Assertions::Reused => {
            assert!(stats.client_assertions_accepted >= 3, "{stats:?}");
            assert_eq!(
                stats.repeated_assertion_ids,
                stats.client_assertions_accepted - 1
            );
        }
    }
    assert_eq!(stats.token_errors, 0, "{stats:?}");
}

#[test]
fn certificate_pem_with_ps256_gets_tokens_and_polls() {
    let issuer = pki::rsa_key();
    let (_runtime, sim) = simulated_tenant(scenario(), short_tokens(), identity(&issuer));
    let dir = tempfile::tempdir().unwrap();
    let cert = &shared_certificates().0;
    let path = write(dir.path(), "exporter.pem", cert.pem());
    let exporter = ExporterCommand::polling(&sim.base_url())
        .envs(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_CERTIFICATE_PATH", &path),
        ])
        .spawn();
    assert_polls(&exporter, &sim, Assertions::Fresh);
    let log = exporter.log();
    assert!(chose(&exporter, "certificate"), "{log}");
    let key_body = cert.key_pem.lines().nth(1).unwrap();
    assert!(!log.contains(key_body), "the key reached the log");
    assert!(
        !log.contains("client_assertion="),
        "an assertion reached the log"
    );
}

#[test]
fn certificate_pkcs12_with_rs256_gets_tokens_and_polls() {
    let issuer = pki::rsa_key();
    let (_runtime, sim) = simulated_tenant(scenario(), short_tokens(), identity(&issuer));
    let dir = tempfile::tempdir().unwrap();
    let password = "test-only pfx password";
    let path = write(
        dir.path(),
        "exporter.pfx",
        shared_certificates().0.pkcs12(password),
    );
    let exporter = ExporterCommand::polling(&sim.base_url())
        .arg("--azure.client-assertion-algorithm=RS256")
        .envs(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_CERTIFICATE_PATH", &path),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", password),
        ])
        .spawn();
    assert_polls(&exporter, &sim, Assertions::Fresh);
    assert!(!exporter.log().contains(password));
}

#[test]
fn workload_identity_gets_tokens_and_polls() {
    let issuer = pki::rsa_key();
    let (_runtime, sim) = simulated_tenant(scenario(), short_tokens(), identity(&issuer));
    let dir = tempfile::tempdir().unwrap();
    let token = federated_token(&issuer, SUBJECT, FEDERATED_AUDIENCE, 3600);
    let path = write(dir.path(), "azure-identity-token", &token);
    let exporter = ExporterCommand::polling(&sim.base_url())
        .envs(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_FEDERATED_TOKEN_FILE", &path),
        ])
        .spawn();
    assert_polls(&exporter, &sim, Assertions::Reused);
    assert!(!exporter.log().contains(&token));
}

#[test]
fn managed_identity_gets_tokens_and_polls() {
    let issuer = pki::rsa_key();
    let (_runtime, sim) = simulated_tenant(scenario(), short_tokens(), identity(&issuer));
    let endpoint = format!("--azure.managed-identity-endpoint={}", sim.base_url());
    let exporter = ExporterCommand::polling(&sim.base_url())
        .args(&["--azure.auth=managed-identity", &endpoint])
        .spawn();
    assert_polls(&exporter, &sim, Assertions::None);
    assert!(
        chose(&exporter, "managed identity (system-assigned)"),
        "{}",
        exporter.log()
    );
}

#[test]
fn user_assigned_managed_identity_is_chosen_by_client_id() {
    let issuer = pki::rsa_key();
    let (_runtime, sim) = simulated_tenant(scenario(), short_tokens(), identity(&issuer));
    let exporter = ExporterCommand::polling(&sim.base_url())
        .arg("--azure.auth=managed-identity")
        .envs(&[
            ("AZURE_CLIENT_ID", "88888888-0000-0000-0000-00000000bbbb"),
            // The variable the Azure SDKs read to move the metadata endpoint.
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", &sim.base_url()),
        ])
        .spawn();
    assert_polls(&exporter, &sim, Assertions::None);
    assert!(
        chose(&exporter, "managed identity (user-assigned)"),
        "{}",
        exporter.log()
    );
}

fn cache(sim: &SimHandle, credential: Credential) -> TokenCache {
    let base: reqwest::Url = sim.base_url().parse().unwrap();
    let metrics = SourceMetrics::register(&prometheus::Registry::new()).unwrap();
    TokenCache::new(reqwest::Client::new(), credential, &base, &base, metrics).unwrap()
}

fn aadsts(error: &AuthError) -> &str {
    error.code().unwrap_or("none")
}

#[test]
fn the_federated_token_file_is_read_again_for_each_request() {
    let issuer = pki::rsa_key();
    let (runtime, sim) = simulated_tenant(scenario(), Faults::default(), identity(&issuer));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(
        &file,
        federated_token(&issuer, SUBJECT, FEDERATED_AUDIENCE, 600),
    )
    .unwrap();
    let tokens = cache(
        &sim,
        Credential::WorkloadIdentity {
            tenant_id: TENANT.into(),
            client_id: CLIENT.into(),
            token_file: file.clone(),
        },
    );
    let first = runtime.block_on(tokens.token()).unwrap();
    // The kubelet swaps the file; a token for another service account must now be sent.
    std::fs::write(
        &file,
        federated_token(
            &issuer,
            "system:serviceaccount:other:sa",
            FEDERATED_AUDIENCE,
            600,
        ),
    )
    .unwrap();
    tokens.invalidate(&first);
    let error = runtime.block_on(tokens.token()).unwrap_err();
    assert_eq!(aadsts(&error), "AADSTS700213", "{error}");
    assert!(
        error.to_string().contains("system:serviceaccount"),
        "{error}"
    );
    // Rotated again to a good token: works without a restart.
    std::fs::write(
        &file,
        federated_token(&issuer, SUBJECT, FEDERATED_AUDIENCE, 900),
    )
    .unwrap();
    runtime.block_on(tokens.token()).unwrap();
    assert_eq!(sim.stats().client_assertions_accepted, 2);
}

#[test]
fn federated_tokens_are_checked_like_entra_id_does() {
    let issuer = pki::rsa_key();
    let stranger = pki::rsa_key();
    let (runtime, sim) = simulated_tenant(scenario(), Faults::default(), identity(&issuer));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let tokens = cache(
        &sim,
        Credential::WorkloadIdentity {
            tenant_id: TENANT.into(),
            client_id: CLIENT.into(),
            token_file: file.clone(),
        },
    );
    for (token, code) in [
        (
            federated_token(&issuer, SUBJECT, "api://somewhere-else", 600),
            "AADSTS700212",
        ),
        (
            federated_token(&issuer, SUBJECT, FEDERATED_AUDIENCE, -900),
            "AADSTS700024",
        ),
        (
            federated_token(&stranger, SUBJECT, FEDERATED_AUDIENCE, 600),
            "AADSTS700027",
        ),
        ("not a jwt".to_owned(), "AADSTS50027"),
    ] {
        std::fs::write(&file, token).unwrap();
        let error = runtime.block_on(tokens.token()).unwrap_err();
        assert_eq!(aadsts(&error), code, "{error}");
        assert!(!error.is_transient());
    }
    std::fs::remove_file(&file).unwrap();
    let error = runtime.block_on(tokens.token()).unwrap_err();
    assert!(
        matches!(&error, AuthError::Credential(text) if text.contains("AZURE_FEDERATED_TOKEN_FILE")),
        "{error}"
    );
}

fn certificate_credential(cert: &pki::TestCert, algorithm: Algorithm) -> Credential {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, cert.pem()).unwrap();
    Credential::Certificate {
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        certificate: std::sync::Arc::new(ClientCertificate::load(&path, None, algorithm).unwrap()),
    }
}

/// Posts a client assertion to the simulated token endpoint; returns status and AADSTS code.
fn post_assertion(
    runtime: &tokio::runtime::Runtime,
    sim: &SimHandle,
    assertion: &str,
) -> (u16, String) {
    let url = format!("{}/{TENANT}/oauth2/v2.0/token", sim.base_url());
    let scope = format!("{}/.default", sim.base_url());
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
                ("scope", &scope),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        let code = body["error_codes"][0]
            .as_u64()
            .map_or_else(|| "none".to_owned(), |c| format!("AADSTS{c}"));
        (status, code)
    })
}

#[test]
fn certificate_assertions_are_checked_like_entra_id_does() {
    let issuer = pki::rsa_key();
    let (runtime, sim) = simulated_tenant(scenario(), Faults::default(), identity(&issuer));
    let (registered, unregistered) = shared_certificates();
    let audience = format!("{}/{TENANT}/oauth2/v2.0/token", sim.base_url());
    let load = |cert: &pki::TestCert, algorithm| {
        let Credential::Certificate { certificate, .. } = certificate_credential(cert, algorithm)
        else {
            unreachable!()
        };
        certificate
    };
    let good = load(registered, Algorithm::Ps256);
    let sign = |certificate: &ClientCertificate, client: &str, aud: &str, at: SystemTime| {
        certificate
            .assertion(client, aud, at)
            .unwrap()
            .expose_secret()
            .to_owned()
    };
    let now = SystemTime::now();

    // What a correct assertion looks like: PS256, x5t#S256, iss = sub = client id.
    let assertion = sign(&good, CLIENT, &audience, now);
    let parsed = teams_voice_exporter::source::auth::jws::Parsed::parse(&assertion).unwrap();
    assert_eq!(parsed.header_str("alg"), Some("PS256"));
    assert!(parsed.header_str("x5t#S256").is_some());
    assert_eq!(parsed.claim_str("iss"), Some(CLIENT));
    assert_eq!(parsed.claim_str("sub"), Some(CLIENT));
    assert_eq!(parsed.claim_str("aud"), Some(audience.as_str()));
    let lifetime = parsed.claim_time("exp").unwrap() - parsed.claim_time("nbf").unwrap();
    assert!((60.0..=600.0).contains(&lifetime), "{lifetime}");
    assert_eq!(post_assertion(&runtime, &sim, &assertion).0, 200);
    let rs256 = load(registered, Algorithm::Rs256);
    assert_eq!(
        post_assertion(&runtime, &sim, &sign(&rs256, CLIENT, &audience, now)).0,
        200
    );

    // A certificate the application does not know.
    let stranger = sign(
        &load(unregistered, Algorithm::Ps256),
        CLIENT,
        &audience,
        now,
    );
    assert_eq!(
        post_assertion(&runtime, &sim, &stranger),
        (401, "AADSTS700027".into())
    );
    // The registered certificate's thumbprint over a signature made with another key.
    let (header, _) = assertion.split_once('.').unwrap();
    let (_, forged_rest) = stranger.split_once('.').unwrap();
    let forged = format!("{header}.{forged_rest}");
    assert_eq!(
        post_assertion(&runtime, &sim, &forged),
        (401, "AADSTS700027".into())
    );
    // Expired an hour ago.
    let expired = sign(&good, CLIENT, &audience, now - Duration::from_secs(3600));
    assert_eq!(
        post_assertion(&runtime, &sim, &expired),
        (401, "AADSTS700024".into())
    );
    // Made for another tenant's token endpoint.
    let elsewhere = format!("{}/other-tenant/oauth2/v2.0/token", sim.base_url());
    let misaddressed = sign(&good, CLIENT, &elsewhere, now);
    assert_eq!(
        post_assertion(&runtime, &sim, &misaddressed),
        (401, "AADSTS700023".into())
    );
    // Issued by another application: no federated credential trusts it either.
    let other_app = sign(
        &good,
        "99999999-0000-0000-0000-000000000000",
        &audience,
        now,
    );
    assert_eq!(
        post_assertion(&runtime, &sim, &other_app),
        (401, "AADSTS700211".into())
    );
    // No thumbprint header at all.
    let (_, rest) = assertion.split_once('.').unwrap();
    let bare_header =
        teams_voice_exporter::source::auth::jws::base64url(br#"{"alg":"PS256","typ":"JWT"}"#);
    assert_eq!(
        post_assertion(&runtime, &sim, &format!("{bare_header}.{rest}")),
        (401, "AADSTS700027".into())
    );

    // Through the token cache, an unregistered certificate is reported with advice.
    let tokens = cache(&sim, certificate_credential(unregistered, Algorithm::Ps256));
    let error = runtime.block_on(tokens.token()).unwrap_err();
    assert_eq!(aadsts(&error), "AADSTS700027");
    assert!(
        error.to_string().contains("Certificates & secrets"),
        "{error}"
    );
}

#[test]
fn the_metadata_service_requires_its_header_and_a_known_identity() {
    let issuer = pki::rsa_key();
    let (runtime, sim) = simulated_tenant(scenario(), Faults::default(), identity(&issuer));
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}",
        sim.base_url(),
        sim.base_url()
    );
    let get = |url: String, header: bool| {
        runtime.block_on(async {
            let mut request = reqwest::Client::new().get(url);
            if header {
                request = request.header("Metadata", "true");
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        })
    };
    let (status, body) = get(url.clone(), false);
    assert_eq!(status, 400);
    assert_eq!(
        body["error_description"],
        "Required metadata header not specified"
    );
    let (status, body) = get(url.clone(), true);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_id"], MANAGED_CLIENT);
    assert!(
        body["expires_in"].is_string(),
        "IMDS writes numbers as strings"
    );
    let (status, body) = get(
        format!("{url}&client_id=00000000-0000-0000-0000-00000000dead"),
        true,
    );
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("Identity not found"))
    );

    // The exporter's side: an unassigned identity is explained, and not retried as an outage.
    let tokens = cache(
        &sim,
        Credential::ManagedIdentity {
            client_id: Some("00000000-0000-0000-0000-00000000dead".into()),
            endpoint: sim.base_url().parse().unwrap(),
        },
    );
    let error = runtime.block_on(tokens.token()).unwrap_err();
    assert!(!error.is_transient());
    assert!(error.to_string().contains("assign"), "{error}");
}

#[test]
fn certificate_files_are_checked_when_loaded() {
    let (registered, unregistered) = shared_certificates();
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str, contents: &[u8], password: Option<&str>| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let password = password.map(|p| secrecy::SecretString::from(p.to_owned()));
        ClientCertificate::load(&path, password.as_ref(), Algorithm::Ps256)
    };
    // The chain may come first; the certificate that matches the key is used.
    let chain = format!(
        "{}{}{}",
        unregistered.cert_pem, registered.cert_pem, registered.key_pem
    );
    let certificate = load("chain.pem", chain.as_bytes(), None).unwrap();
    assert_eq!(certificate.der(), registered.der.as_slice());
    let shown = format!("{certificate:?}");
    assert!(shown.contains("REDACTED") && shown.contains(&certificate.thumbprint_hex()));
    assert!(!shown.contains(registered.key_pem.lines().nth(1).unwrap()));

    let mismatched = format!("{}{}", unregistered.cert_pem, registered.key_pem);
    assert!(matches!(
        load("mismatch.pem", mismatched.as_bytes(), None),
        Err(CertificateError::KeyMismatch { .. })
    ));
    assert!(matches!(
        load("cert-only.pem", registered.cert_pem.as_bytes(), None),
        Err(CertificateError::NoKey { .. })
    ));
    let pfx = registered.pkcs12("right");
    assert!(load("good.pfx", &pfx, Some("right")).is_ok());
    // As Key Vault and Kubernetes Secrets made from it hand it out: base64 text.
    let text = base64::engine::general_purpose::STANDARD.encode(&pfx);
    let wrapped: Vec<u8> = text
        .as_bytes()
        .chunks(64)
        .flat_map(|line| line.iter().copied().chain(*b"\n"))
        .collect();
    assert!(load("base64.pfx", &wrapped, Some("right")).is_ok());
    let error = load("bad.pfx", &pfx, Some("Tr0ub4dor&3")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
        "{error}"
    );
    assert!(!error.to_string().contains("Tr0ub4dor"), "{error}");
    let error = load("missing.pem", b"", None).unwrap_err();
    assert!(error.to_string().contains("PKCS#12"), "{error}");
}

#[test]
fn none_or_two_credentials_stop_the_start_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "cert.pem", shared_certificates().0.pem());
    let run = |env: &[(&str, &str)]| {
        let ran = ExporterCommand::new(&["--web.listen-address=127.0.0.1:0"])
            .envs(env)
            .run();
        (ran.code, ran.stderr)
    };
    let (code, text) = run(&[("AZURE_TENANT_ID", TENANT), ("AZURE_CLIENT_ID", CLIENT)]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("AZURE_CLIENT_CERTIFICATE_PATH") && text.contains("managed-identity"));
    let (code, text) = run(&[
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", SECRET),
        ("AZURE_CLIENT_CERTIFICATE_PATH", &path),
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("several credentials") && text.contains("--azure.auth"),
        "{text}"
    );
    assert!(!text.contains(SECRET));
}
