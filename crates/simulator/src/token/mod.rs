//! The simulated Microsoft Entra ID: the OAuth 2.0 client-credentials grant at
//! `POST /{tenant}/oauth2/v2.0/token`, with Entra's error answers (`AADSTS...` codes) for a
//! wrong tenant, application, secret or scope, and the Azure instance metadata service
//! that hands managed-identity tokens to the VM it runs on (`imds`).
//!
//! Clients authenticate with the client secret or a client assertion (a certificate's or a
//! federated token, checked in `client_assertion`). Issued tokens (`mint`) are JWT-shaped,
//! with the `roles` claim Graph authorises by, and are remembered with their expiry on the
//! tenant's clock; the Graph side accepts only those. The client secret is compared and
//! forgotten, never logged or echoed.
//!
//! The submodules never refer to this endpoint, and among themselves depend one way:
//! `client_assertion` on `assertion` and `error`, `imds` on `mint` and `error`, `mint` on
//! `assertion`.

mod assertion;
mod client_assertion;
mod error;
mod imds;
mod mint;

pub use assertion::JWT_BEARER;
pub(crate) use imds::imds;
pub use imds::IMDS_TOKEN_PATH;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};

use crate::faults::is_every;
use crate::http::{percent_decode, read_body};
use crate::tenant::Tenant;
use error::{error_response, json_response, TokenError};
use exporter_web::serve::HttpResponse;
use mint::mint_token;

const TOKEN_PATH_SUFFIX: &str = "/oauth2/v2.0/token";
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Whether `path` is `/{tenant}/oauth2/v2.0/token`.
pub(crate) fn is_token_path(path: &str) -> bool {
    path.strip_suffix(TOKEN_PATH_SUFFIX)
        .and_then(|head| head.strip_prefix('/'))
        .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'))
}

pub(crate) async fn handle(tenant: &Arc<Tenant>, request: Request<Incoming>) -> HttpResponse {
    let request_number = {
        let mut stats = tenant.stats();
        stats.token_requests += 1;
        stats.token_requests
    };
    let correlation_id = request
        .headers()
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| tenant.new_uuid());
    let every = tenant.gate.lock().faults.token_unavailable_every;
    let unavailable = is_every(request_number, every);
    let answer = if unavailable {
        Err(TokenError::new(
            503,
            "temporarily_unavailable",
            50196,
            "The server is temporarily unavailable. Try again later.".to_owned(),
        ))
    } else {
        issue(tenant, request).await
    };
    match answer {
        Ok(response) => {
            tenant.stats().tokens_issued += 1;
            response
        }
        Err(error) => {
            tenant.stats().token_errors += 1;
            tracing::debug!(
                code = error.code,
                error = error.error,
                "simulated token endpoint refused a request"
            );
            error_response(tenant, &error, &correlation_id)
        }
    }
}

async fn issue(tenant: &Tenant, request: Request<Incoming>) -> Result<HttpResponse, TokenError> {
    let requested_tenant = requested_tenant(tenant, &request)?;
    let body = read_body(request.into_body(), MAX_FORM_BYTES)
        .await
        .ok_or_else(|| {
            TokenError::new(
                400,
                "invalid_request",
                90015,
                "Requested query string is too long.".to_owned(),
            )
        })?;
    let form = Form::parse(&body);
    let client_id = registered_client(tenant, &form)?;
    authenticate(tenant, &form, client_id, &requested_tenant)?;

    let (access_token, lifetime_secs) = mint_token(tenant, client_id);
    let body = serde_json::json!({
        "token_type": "Bearer",
        "expires_in": lifetime_secs,
        "ext_expires_in": lifetime_secs,
        "access_token": access_token,
    })
    .to_string();
    Ok(json_response(200, body))
}

/// The tenant a POST is addressed to, if it is this one.
fn requested_tenant(tenant: &Tenant, request: &Request<Incoming>) -> Result<String, TokenError> {
    if request.method() != Method::POST {
        return Err(TokenError::new(
            400,
            "invalid_request",
            900561,
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
                request.method()
            ),
        ));
    }
    let path = percent_decode(request.uri().path()).unwrap_or_default();
    let requested_tenant = path
        .strip_prefix('/')
        .and_then(|rest| rest.strip_suffix(TOKEN_PATH_SUFFIX))
        .unwrap_or("");
    if !requested_tenant.eq_ignore_ascii_case(&tenant.tenant_id) {
        return Err(TokenError::new(
            400,
            "invalid_request",
            90002,
            format!(
                "Tenant '{requested_tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        ));
    }
    Ok(requested_tenant.to_owned())
}

/// The client id of a client-credentials request for Graph by the tenant's application.
fn registered_client<'f>(tenant: &Tenant, form: &'f Form) -> Result<&'f str, TokenError> {
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| TokenError::missing("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(TokenError::new(
            400,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_id = form
        .get("client_id")
        .ok_or_else(|| TokenError::missing("client_id"))?;
    if !client_id.eq_ignore_ascii_case(&tenant.client_id) {
        return Err(TokenError::new(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                tenant.tenant_id
            ),
        ));
    }
    let scope = form
        .get("scope")
        .ok_or_else(|| TokenError::missing("scope"))?;
    let expected_scope = format!("{}/.default", tenant.graph_resource);
    if !scope.trim().eq_ignore_ascii_case(&expected_scope) {
        return Err(TokenError::new(
            400,
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        ));
    }
    Ok(client_id)
}

/// Checks the client's one credential: the secret, or a client assertion.
fn authenticate(
    tenant: &Tenant,
    form: &Form,
    client_id: &str,
    requested_tenant: &str,
) -> Result<(), TokenError> {
    match (form.get("client_secret"), form.get("client_assertion")) {
        (Some(_), Some(_)) => Err(TokenError::new(
            400,
            "invalid_request",
            7000218,
            "Only one of 'client_assertion' and 'client_secret' may be sent.".to_owned(),
        )),
        (None, None) => Err(TokenError::new(
            400,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".to_owned(),
        )),
        (None, Some(assertion)) => client_assertion::verify_assertion(
            tenant,
            client_id,
            form.get("client_assertion_type"),
            assertion,
            requested_tenant,
        ),
        (Some(secret), None) => {
            if constant_time_eq(secret.as_bytes(), tenant.client_secret.as_bytes()) {
                Ok(())
            } else {
                Err(TokenError::invalid_client(
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                        tenant.client_id
                    ),
                ))
            }
        }
    }
}

/// Form fields; the first occurrence of a name wins.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0_u8, |diff, (l, r)| diff | (l ^ r))
            == 0
}
