//! The simulated tenant's credentials beyond the client secret, checked as Entra ID checks
//! them: client assertions signed with a certificate registered on the application,
//! federated tokens (Kubernetes workload identity) matched against the application's
//! federated identity credentials, and the Azure instance metadata service (IMDS) that
//! hands managed-identity tokens to the VM it runs on.
//!
//! An assertion whose `iss` is the client id is a certificate assertion; any other is a
//! federated token, as Entra ID tells them apart. Every refusal carries the AADSTS code
//! Entra ID uses for it.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use ring::digest;
use serde_json::{json, Value};

use super::assertion::{base64url, rsa_public_key, Assertion, JWT_BEARER};
use super::token::{json_response, mint_token, TokenError};
use super::Tenant;
use exporter_web::serve::HttpResponse;

/// Clock skew Entra ID tolerates on `nbf` and `exp`.
const LEEWAY_SECS: f64 = 300.0;
/// Assertion ids remembered to spot a reused `jti`; forgotten in bulk beyond this.
const MAX_REMEMBERED_ASSERTIONS: usize = 10_000;
/// The audience Azure Workload Identity puts in federated tokens.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A federated identity credential of the application: which external tokens it trusts.
#[derive(Clone, Debug)]
pub struct FederatedCredential {
    /// The cluster's OIDC issuer URL.
    pub issuer: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub subject: String,
    /// Usually [`FEDERATED_AUDIENCE`].
    pub audience: String,
    /// The issuer's signing key (PKCS#1 `RSAPublicKey` DER), which Entra ID would fetch
    /// from the issuer's JWKS.
    pub issuer_key: Vec<u8>,
}

/// The identities the simulated VM has, as its metadata service hands them out.
#[derive(Clone, Debug, Default)]
pub struct ManagedIdentities {
    /// Client id of the system-assigned identity, when it is switched on.
    pub system_assigned: Option<String>,
    /// Client ids of the user-assigned identities.
    pub user_assigned: Vec<String>,
}

/// Checks a client assertion for `client_id`, sent to the token endpoint of
/// `requested_tenant`.
pub(super) fn verify_assertion(
    tenant: &Tenant,
    client_id: &str,
    assertion_type: Option<&str>,
    assertion: &str,
    requested_tenant: &str,
) -> Result<(), TokenError> {
    match assertion_type {
        None => return Err(TokenError::missing("client_assertion_type")),
        Some(JWT_BEARER) => {}
        Some(other) => {
            return Err(TokenError::new(
                400,
                "invalid_request",
                700027,
                format!("Client assertion type '{other}' is not supported; use '{JWT_BEARER}'."),
            ))
        }
    }
    let parsed = Assertion::parse(assertion).map_err(|_| {
        TokenError::new(
            400,
            "invalid_client",
            50027,
            "JWT token is invalid or malformed.".to_owned(),
        )
    })?;
    let issuer = parsed.claim_str("iss").unwrap_or_default();
    if issuer.eq_ignore_ascii_case(client_id) {
        verify_certificate_assertion(tenant, client_id, &parsed, requested_tenant)?;
    } else {
        verify_federated_token(tenant, &parsed)?;
    }
    remember_assertion(tenant, &parsed);
    Ok(())
}

fn invalid_client(code: u32, description: String) -> TokenError {
    TokenError::new(401, "invalid_client", code, description)
}

fn verify_certificate_assertion(
    tenant: &Tenant,
    client_id: &str,
    parsed: &Assertion,
    requested_tenant: &str,
) -> Result<(), TokenError> {
    if !parsed
        .claim_str("sub")
        .is_some_and(|sub| sub.eq_ignore_ascii_case(client_id))
    {
        return Err(invalid_client(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter."
                .to_owned(),
        ));
    }
    let audience = parsed.claim_str("aud").unwrap_or_default();
    let endpoint = |path: &str| format!("{}/{requested_tenant}{path}", tenant.base_url);
    if ![endpoint("/oauth2/v2.0/token"), endpoint("/oauth2/token")]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(audience.trim_end_matches('/')))
    {
        return Err(invalid_client(
            700023,
            "Client assertion audience claim does not match Realm issuer.".to_owned(),
        ));
    }
    // The header names the certificate by thumbprint; only registered ones count.
    let (presented, algorithm): (&str, &'static digest::Algorithm) =
        match (parsed.thumbprint_sha256(), parsed.thumbprint_sha1()) {
            (Some(sha256), _) => (sha256, &digest::SHA256),
            (None, Some(sha1)) => (sha1, &digest::SHA1_FOR_LEGACY_USE_ONLY),
            (None, None) => {
                return Err(invalid_client(
                    700027,
                    "Client assertion failed signature validation. [Reason - The key was not found: the header names no certificate thumbprint (x5t#S256 or x5t).]".to_owned(),
                ))
            }
        };
    let certificate = tenant
        .identity
        .certificates
        .iter()
        .find(|der| base64url(digest::digest(algorithm, der).as_ref()) == presented);
    let Some(certificate) = certificate else {
        return Err(invalid_client(
            700027,
            format!("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{presented}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"),
        ));
    };
    let key = rsa_public_key(certificate).unwrap_or_default();
    if !parsed.verify(&key) {
        return Err(invalid_client(
            700027,
            "Client assertion failed signature validation.".to_owned(),
        ));
    }
    check_time(tenant, parsed)
}

fn verify_federated_token(tenant: &Tenant, parsed: &Assertion) -> Result<(), TokenError> {
    let issuer = parsed.claim_str("iss").unwrap_or_default();
    let subject = parsed.claim_str("sub").unwrap_or_default();
    let audiences: Vec<&str> = match parsed.claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let by_issuer: Vec<_> = tenant
        .identity
        .federated
        .iter()
        .filter(|f| f.issuer == issuer)
        .collect();
    if by_issuer.is_empty() {
        return Err(invalid_client(
            700211,
            format!("No matching federated identity record found for presented assertion issuer '{issuer}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."),
        ));
    }
    let by_subject: Vec<_> = by_issuer.iter().filter(|f| f.subject == subject).collect();
    if by_subject.is_empty() {
        return Err(invalid_client(
            700213,
            format!("No matching federated identity record found for presented assertion subject '{subject}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."),
        ));
    }
    let Some(credential) = by_subject
        .iter()
        .find(|f| audiences.contains(&f.audience.as_str()))
    else {
        return Err(invalid_client(
            700212,
            format!("No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", audiences.join(", ")),
        ));
    };
    if !parsed.verify(&credential.issuer_key) {
        return Err(invalid_client(
            700027,
            "Client assertion failed signature validation. [Reason - The key was not found in the issuer's signing keys.]".to_owned(),
        ));
    }
    check_time(tenant, parsed)
}

fn check_time(tenant: &Tenant, parsed: &Assertion) -> Result<(), TokenError> {
    let now = tenant.now_ms() as f64 / 1000.0;
    let not_before = parsed.claim_time("nbf").unwrap_or(f64::NEG_INFINITY);
    let Some(expires) = parsed.claim_time("exp") else {
        return Err(invalid_client(
            700024,
            "Client assertion contains no expiry time (exp).".to_owned(),
        ));
    };
    if now + LEEWAY_SECS < not_before || now - LEEWAY_SECS >= expires {
        let show = |t: f64| {
            chrono::DateTime::from_timestamp(t.max(0.0) as i64, 0).map_or_else(
                || "?".to_owned(),
                |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )
        };
        return Err(invalid_client(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                show(now),
                show(not_before),
                show(expires)
            ),
        ));
    }
    Ok(())
}

/// Counts accepted assertions and those that reused a `jti`, so tests can see that every
/// request carried a fresh one.
fn remember_assertion(tenant: &Tenant, parsed: &Assertion) {
    let id = parsed.claim_str("jti").unwrap_or_default().to_owned();
    let repeated = {
        let mut seen = tenant.assertion_ids.lock();
        if seen.len() >= MAX_REMEMBERED_ASSERTIONS {
            seen.clear();
        }
        !id.is_empty() && !seen.insert(id)
    };
    let mut stats = tenant.stats();
    stats.client_assertions_accepted += 1;
    if repeated {
        stats.repeated_assertion_ids += 1;
    }
}

/// Answers `GET /metadata/identity/oauth2/token` as the metadata service of a VM with
/// the configured managed identities.
pub(super) fn imds(tenant: &Arc<Tenant>, request: &Request<Incoming>) -> HttpResponse {
    tenant.stats().token_requests += 1;
    let answer = imds_answer(tenant, request);
    match answer {
        Ok(body) => {
            tenant.stats().tokens_issued += 1;
            json_response(200, body.to_string())
        }
        Err((status, error, description)) => {
            tenant.stats().token_errors += 1;
            tracing::debug!(
                error,
                description,
                "simulated metadata service refused a request"
            );
            json_response(
                status,
                json!({"error": error, "error_description": description}).to_string(),
            )
        }
    }
}

type ImdsError = (u16, &'static str, String);

fn imds_answer(tenant: &Tenant, request: &Request<Incoming>) -> Result<Value, ImdsError> {
    let bad = |description: &str| (400, "invalid_request", description.to_owned());
    if request.method() != Method::GET {
        return Err((
            405,
            "invalid_request",
            format!("The method {} is not allowed.", request.method()),
        ));
    }
    // The header keeps web pages and server-side request forgery from fetching tokens.
    let metadata = request
        .headers()
        .get("metadata")
        .and_then(|v| v.to_str().ok());
    if !metadata.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(bad("Required metadata header not specified"));
    }
    if request.headers().contains_key("x-forwarded-for") {
        return Err(bad("Request is not allowed through a proxy"));
    }
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if param("api-version").is_none() {
        return Err(bad("Required query variable 'api-version' is missing"));
    }
    let Some(resource) = param("resource") else {
        return Err(bad("Required query variable 'resource' is missing"));
    };
    if !resource
        .trim_end_matches('/')
        .eq_ignore_ascii_case(&tenant.graph_resource)
    {
        return Err((
            400,
            "invalid_resource",
            format!("AADSTS500011: The resource principal named {resource} was not found in the tenant named {}.", tenant.tenant_id),
        ));
    }
    let identities = tenant.identity.managed_identity.clone().unwrap_or_default();
    let client_id = match param("client_id") {
        Some(wanted) => identities
            .user_assigned
            .iter()
            .chain(identities.system_assigned.iter())
            .find(|id| id.eq_ignore_ascii_case(wanted))
            .cloned(),
        None => match (&identities.system_assigned, identities.user_assigned.as_slice()) {
            (Some(system), _) => Some(system.clone()),
            (None, [only]) => Some(only.clone()),
            (None, []) => None,
            (None, _) => return Err(bad("Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request")),
        },
    };
    let Some(client_id) = client_id else {
        return Err(bad("Identity not found"));
    };
    let (access_token, lifetime_secs) = mint_token(tenant, &client_id);
    let now = tenant.now().timestamp();
    let lifetime = i64::try_from(lifetime_secs).unwrap_or(i64::MAX);
    // The metadata service writes every number as a string.
    Ok(json!({
        "access_token": access_token,
        "client_id": client_id,
        "expires_in": lifetime_secs.to_string(),
        "expires_on": now.saturating_add(lifetime).to_string(),
        "ext_expires_in": lifetime_secs.to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
}
