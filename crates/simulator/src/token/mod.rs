//! The simulated Microsoft Entra ID: the OAuth 2.0 client-credentials grant at
//! `POST /{tenant}/oauth2/v2.0/token`, with Entra's error answers (`AADSTS...` codes) for a
//! wrong tenant, application, secret or scope, and the Azure instance metadata service
//! that hands managed-identity tokens to the VM it runs on (`imds`).
//!
//! The tenant segment of the path selects one of a provider's tenants (`handle` routes
//! it; a tenant it does not know answers `AADSTS90002`). There the provider's multi-tenant
//! application gets tokens if the tenant consented (`AADSTS700016` otherwise, as for any
//! client id the tenant does not know), without `CallRecords.Read.All` if the consent
//! lacks it; an application registered in that tenant alone gets them with its secret.
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

use crate::config::Consent;
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

/// The tenant segment of a token path, decoded; `None` if the path is not one.
pub(crate) fn tenant_segment(path: &str) -> Option<String> {
    percent_decode(path)?
        .strip_prefix('/')?
        .strip_suffix(TOKEN_PATH_SUFFIX)
        .map(str::to_owned)
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
    let (client_id, app) = registered_client(tenant, &form)?;
    authenticate(tenant, &form, client_id, app, &requested_tenant)?;

    let (access_token, lifetime_secs) = mint_token(tenant, client_id, app.permitted(tenant));
    let body = serde_json::json!({
        "token_type": "Bearer",
        "expires_in": lifetime_secs,
        "ext_expires_in": lifetime_secs,
        "access_token": access_token,
    })
    .to_string();
    Ok(json_response(200, body))
}

/// Which application of a tenant a client id names.
#[derive(Clone, Copy)]
enum App<'t> {
    /// The provider's multi-tenant application, consented to here: its secret, its
    /// certificates and its federated credentials.
    MultiTenant,
    /// An application registered in this tenant alone, with this secret.
    Own(&'t str),
}

impl App<'_> {
    /// Whether its tokens carry `CallRecords.Read.All`: the tenant's own applications are
    /// granted it; the multi-tenant one as the tenant consented.
    fn permitted(self, tenant: &Tenant) -> bool {
        matches!(self, App::Own(_)) || tenant.consent == Consent::Granted
    }
}

/// The application of `tenant` that `client_id` names, if it may get tokens there.
fn application<'t>(tenant: &'t Tenant, client_id: &str) -> Option<App<'t>> {
    if client_id.eq_ignore_ascii_case(&tenant.client_id) {
        return (tenant.consent != Consent::NotConsented).then_some(App::MultiTenant);
    }
    tenant
        .own_app
        .as_ref()
        .filter(|own| client_id.eq_ignore_ascii_case(&own.client_id))
        .map(|own| App::Own(&own.client_secret))
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
    let requested_tenant = tenant_segment(request.uri().path()).unwrap_or_default();
    let requested_tenant = requested_tenant.as_str();
    if !tenant.answers_to(requested_tenant) {
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

/// The client id of a client-credentials request for Graph by an application the tenant
/// knows, with that application.
fn registered_client<'f, 't>(
    tenant: &'t Tenant,
    form: &'f Form,
) -> Result<(&'f str, App<'t>), TokenError> {
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
    let Some(app) = application(tenant, client_id) else {
        return Err(TokenError::new(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                tenant.tenant_id
            ),
        ));
    };
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
    Ok((client_id, app))
}

/// Checks the client's one credential: the secret, or a client assertion.
fn authenticate(
    tenant: &Tenant,
    form: &Form,
    client_id: &str,
    app: App<'_>,
    requested_tenant: &str,
) -> Result<(), TokenError> {
    let secret = match app {
        App::MultiTenant => tenant.client_secret.as_str(),
        App::Own(secret) => secret,
    };
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
        // A tenant's own application has a secret and no other credential.
        (None, Some(_)) if matches!(app, App::Own(_)) => Err(TokenError::invalid_client(
            700027,
            format!("Client assertion failed signature validation. [Reason - The key was not found., Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"),
        )),
        (None, Some(assertion)) => client_assertion::verify_assertion(
            tenant,
            client_id,
            form.get("client_assertion_type"),
            assertion,
            requested_tenant,
        ),
        (Some(presented), None) => {
            if constant_time_eq(presented.as_bytes(), secret.as_bytes()) {
                Ok(())
            } else {
                Err(TokenError::invalid_client(
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
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
