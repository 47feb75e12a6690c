//! The Azure instance metadata service (IMDS) of the simulated VM: it hands tokens for
//! Graph to the managed identities the VM has, as `GET /metadata/identity/oauth2/token`
//! does on Azure.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::{json, Value};

use super::error::json_response;
use super::mint::mint_token;
use crate::tenant::Tenant;
use exporter_web::serve::HttpResponse;

/// Where the Azure instance metadata service hands out managed-identity tokens.
pub const IMDS_TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

/// Answers `GET /metadata/identity/oauth2/token` as the metadata service of a VM with
/// the configured managed identities.
pub(crate) fn imds(tenant: &Arc<Tenant>, request: &Request<Incoming>) -> HttpResponse {
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
    let (access_token, lifetime_secs) = mint_token(tenant, &client_id, true);
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
