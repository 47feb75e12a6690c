//! Client assertions checked as Entra ID checks them: JWTs signed with a certificate
//! registered on the application, and federated tokens (Kubernetes workload identity)
//! matched against the application's federated identity credentials.
//!
//! An assertion whose `iss` is the client id is a certificate assertion; any other is a
//! federated token, as Entra ID tells them apart. Every refusal carries the AADSTS code
//! Entra ID uses for it.

use ring::digest;
use serde_json::Value;

use super::assertion::{base64url, rsa_public_key, Assertion, JWT_BEARER};
use super::error::TokenError;
use crate::tenant::Tenant;

/// Clock skew Entra ID tolerates on `nbf` and `exp`.
const LEEWAY_SECS: f64 = 300.0;
/// Assertion ids remembered to spot a reused `jti`; forgotten in bulk beyond this.
const MAX_REMEMBERED_ASSERTIONS: usize = 10_000;

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
        return Err(TokenError::invalid_client(
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
        return Err(TokenError::invalid_client(
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
                return Err(TokenError::invalid_client(
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
        return Err(TokenError::invalid_client(
            700027,
            format!("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{presented}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"),
        ));
    };
    let key = rsa_public_key(certificate).unwrap_or_default();
    if !parsed.verify(&key) {
        return Err(TokenError::invalid_client(
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
        return Err(TokenError::invalid_client(
            700211,
            format!("No matching federated identity record found for presented assertion issuer '{issuer}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."),
        ));
    }
    let by_subject: Vec<_> = by_issuer.iter().filter(|f| f.subject == subject).collect();
    if by_subject.is_empty() {
        return Err(TokenError::invalid_client(
            700213,
            format!("No matching federated identity record found for presented assertion subject '{subject}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."),
        ));
    }
    let Some(credential) = by_subject
        .iter()
        .find(|f| audiences.contains(&f.audience.as_str()))
    else {
        return Err(TokenError::invalid_client(
            700212,
            format!("No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", audiences.join(", ")),
        ));
    };
    if !parsed.verify(&credential.issuer_key) {
        return Err(TokenError::invalid_client(
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
        return Err(TokenError::invalid_client(
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
        return Err(TokenError::invalid_client(
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
