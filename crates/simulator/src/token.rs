//! The simulated Microsoft Entra ID token endpoint: the OAuth 2.0 client-credentials grant
//! at `POST /{tenant}/oauth2/v2.0/token`, with Entra's error answers (`AADSTS...` codes)
//! for a wrong tenant, application, secret or scope.
//!
//! Clients authenticate with the client secret or a client assertion (a certificate's or a
//! federated token, checked in `identity`). Issued tokens are JWT-shaped, with the
//! `roles` claim Graph authorises by, and are remembered with their expiry on the
//! tenant's clock; the Graph side accepts only those. The client secret is compared and
//! forgotten, never logged or echoed.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use hyper::{Method, Request, Response};
use rand::Rng;

use super::{graph, identity, read_body, Tenant};
use exporter_web::serve::{self, HttpResponse};

const TOKEN_PATH_SUFFIX: &str = "/oauth2/v2.0/token";
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Expired tokens are forgotten once this many are held, keeping memory bounded.
const MAX_REMEMBERED_TOKENS: usize = 10_000;

/// Whether `path` is `/{tenant}/oauth2/v2.0/token`.
pub(super) fn is_token_path(path: &str) -> bool {
    path.strip_suffix(TOKEN_PATH_SUFFIX)
        .and_then(|head| head.strip_prefix('/'))
        .is_some_and(|tenant| !tenant.is_empty() && !tenant.contains('/'))
}

/// An Entra error answer.
pub(super) struct TokenError {
    status: u16,
    error: &'static str,
    code: u32,
    description: String,
}

impl TokenError {
    pub(super) fn new(status: u16, error: &'static str, code: u32, description: String) -> Self {
        TokenError {
            status,
            error,
            code,
            description,
        }
    }

    pub(super) fn missing(parameter: &str) -> Self {
        TokenError::new(
            400,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }
}

pub(super) async fn handle(tenant: &Arc<Tenant>, request: Request<Incoming>) -> HttpResponse {
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
    let unavailable = graph::is_every(request_number, every);
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
    let path = graph::percent_decode(request.uri().path()).unwrap_or_default();
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
    match (form.get("client_secret"), form.get("client_assertion")) {
        (Some(_), Some(_)) => {
            return Err(TokenError::new(
                400,
                "invalid_request",
                7000218,
                "Only one of 'client_assertion' and 'client_secret' may be sent.".to_owned(),
            ))
        }
        (None, None) => {
            return Err(TokenError::new(
                400,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".to_owned(),
            ))
        }
        (None, Some(assertion)) => identity::verify_assertion(
            tenant,
            client_id,
            form.get("client_assertion_type"),
            assertion,
            requested_tenant,
        )?,
        (Some(secret), None) => {
            if !constant_time_eq(secret.as_bytes(), tenant.client_secret.as_bytes()) {
                return Err(TokenError::new(
                    401,
                    "invalid_client",
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                        tenant.client_id
                    ),
                ));
            }
        }
    }

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

/// Issues an access token for Graph to `app_id` and remembers it; returns it with its
/// lifetime in seconds.
///
/// Tokens are shaped like Entra ID's (a JWT with `aud`, `tid`, `appid`, `roles`, ...), so
/// that clients can read their claims as they would a real one. The signature part is
/// random: the simulated Graph accepts exactly the tokens remembered here, which is what
/// checking Entra ID's signature amounts to.
pub(super) fn mint_token(tenant: &Tenant, app_id: &str) -> (String, u64) {
    let faults = tenant.gate.lock().faults.clone();
    let lifetime_secs = faults.token_lifetime_secs();
    let call_records = !faults.missing_call_records_role;
    let now_ms = tenant.now_ms();
    let now = now_ms.div_euclid(1000);
    let lifetime = i64::try_from(lifetime_secs).unwrap_or(i64::MAX);
    let object_id = tenant.new_uuid();
    let roles: &[&str] = if call_records {
        &["CallRecords.Read.All"]
    } else {
        // Consented, but not the permission that matters: what a half-done setup looks like.
        &["User.Read.All"]
    };
    let claims = serde_json::json!({
        "aud": tenant.graph_resource,
        "iss": format!("https://sts.windows.net/{}/", tenant.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(lifetime),
        "appid": app_id,
        "idtyp": "app",
        "oid": object_id,
        "sub": object_id,
        "roles": roles,
        "tid": tenant.tenant_id,
        "uti": tenant.new_uuid(),
        "ver": "1.0",
    });
    let signature: [u8; 32] = tenant.service_rng.lock().gen();
    let part =
        |value: &serde_json::Value| super::assertion::base64url(value.to_string().as_bytes());
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "simulated"});
    let access_token = format!(
        "{}.{}.{}",
        part(&header),
        part(&claims),
        super::assertion::base64url(&signature)
    );
    let expires_ms = now_ms.saturating_add(lifetime.saturating_mul(1000));
    let mut tokens = tenant.tokens.lock();
    if tokens.len() >= MAX_REMEMBERED_TOKENS {
        tokens.retain(|_, issued| issued.expires_ms > now_ms);
    }
    tokens.insert(
        access_token.clone(),
        IssuedToken {
            expires_ms,
            call_records,
        },
    );
    (access_token, lifetime_secs)
}

/// What the simulated Graph needs to know about a token it is shown.
pub(super) struct IssuedToken {
    /// Clock ms; revoking a token sets it to the revocation time.
    pub(super) expires_ms: i64,
    /// Whether the token carries `CallRecords.Read.All`.
    pub(super) call_records: bool,
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

fn error_response(tenant: &Tenant, error: &TokenError, correlation_id: &str) -> HttpResponse {
    let timestamp = tenant.now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let trace_id = tenant.new_uuid();
    let body = serde_json::json!({
        "error": error.error,
        "error_description": format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            error.code, error.description
        ),
        "error_codes": [error.code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("{}/error?code={}", tenant.base_url, error.code),
    })
    .to_string();
    json_response(error.status, body)
}

pub(super) fn json_response(status: u16, body: String) -> HttpResponse {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .header(CACHE_CONTROL, "no-store, no-cache")
        .header(PRAGMA, "no-cache")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| serve::response(500, "text/plain", "internal error"))
}
