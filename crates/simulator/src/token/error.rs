//! How the simulated Entra ID answers: JSON that must not be cached, and its error bodies
//! with an `AADSTS` code, trace and correlation ids, as clients log and users quote them.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use hyper::Response;

use crate::tenant::Tenant;
use exporter_web::serve::{self, HttpResponse};

/// An Entra error answer.
pub(crate) struct TokenError {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

impl TokenError {
    pub fn new(status: u16, error: &'static str, code: u32, description: String) -> Self {
        TokenError {
            status,
            error,
            code,
            description,
        }
    }

    pub fn missing(parameter: &str) -> Self {
        TokenError::new(
            400,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }

    /// A client that failed to authenticate.
    pub fn invalid_client(code: u32, description: String) -> Self {
        TokenError::new(401, "invalid_client", code, description)
    }
}

pub(crate) fn error_response(
    tenant: &Tenant,
    error: &TokenError,
    correlation_id: &str,
) -> HttpResponse {
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

pub(crate) fn json_response(status: u16, body: String) -> HttpResponse {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .header(CACHE_CONTROL, "no-store, no-cache")
        .header(PRAGMA, "no-cache")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| serve::response(500, "text/plain", "internal error"))
}
