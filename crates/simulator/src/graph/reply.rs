//! How the simulated Graph answers: pages with OData's content type, and errors with
//! Graph's body (`error.code`, `message`, `innerError` with the request id users quote to
//! support), its headers and the Bearer challenge on 401.

use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, DATE, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Request, Response};

use crate::tenant::Tenant;
use exporter_web::serve::{self, HttpResponse};

/// Graph's content type for OData payloads.
const ODATA_JSON: &str =
    "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8";
const ERROR_JSON: &str = "application/json";
const BEARER_CHALLENGE: &str = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"";

/// An answer that is not a page.
#[derive(Debug)]
pub(crate) struct GraphError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<String>,
}

impl GraphError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        GraphError::new(400, "BadRequest", message)
    }

    pub fn unauthorized(message: &str) -> Self {
        GraphError::new(401, "InvalidAuthenticationToken", message)
    }

    /// The app lacks `CallRecords.Read.All`.
    pub fn forbidden() -> Self {
        GraphError::new(
            403,
            "Forbidden",
            "Insufficient privileges to complete the operation.",
        )
    }

    /// A token without the application permission the function needs, as Graph answers
    /// an app whose consent lacks `CallRecords.Read.All`.
    pub fn request_denied() -> Self {
        GraphError::new(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    pub fn not_found(segment: &str) -> Self {
        GraphError::new(
            404,
            "ResourceNotFound",
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    /// The 429 of an "every Nth" throttling fault, or of a request during its Retry-After.
    pub fn too_many_requests() -> Self {
        GraphError::new(
            429,
            "TooManyRequests",
            "Too many requests from Identifier:tenant+app under category:CallRecords. Please try again later.",
        )
    }

    /// The 429 of a request over one of Graph's rate limits, naming the limit as Graph
    /// does: the function's name, `CallRecords` for the app's, `Tenant` for the tenant's.
    pub fn over_limit(tenant: &Tenant, category: &str) -> Self {
        GraphError::new(
            429,
            "TooManyRequests",
            format!(
                "Too many requests from Identifier:{}+{} under category:{category}. Please try again later.",
                tenant.tenant_id, tenant.client_id
            ),
        )
    }

    pub fn with_retry_after(self, retry_after: Option<String>) -> Self {
        GraphError {
            retry_after,
            ..self
        }
    }
}

pub(crate) enum Reply {
    Page(String),
    /// A 200 whose body was cut short, as a broken proxy or connection would leave it.
    Truncated(String),
    /// A 200 whose body is a page of this many MiB, streamed (`Faults::oversized_page_mib`).
    Oversized(u32),
    Error(GraphError),
}

/// Ids Graph puts on every answer; users quote `request-id` to support.
pub(crate) struct RequestIds {
    request_id: String,
    client_request_id: HeaderValue,
}

impl RequestIds {
    pub fn new(tenant: &Tenant, request: &Request<Incoming>) -> Self {
        let request_id = tenant.new_uuid();
        let client_request_id = request
            .headers()
            .get("client-request-id")
            .cloned()
            .or_else(|| HeaderValue::from_str(&request_id).ok())
            .unwrap_or_else(|| HeaderValue::from_static(""));
        RequestIds {
            request_id,
            client_request_id,
        }
    }
}

pub(crate) fn build_response(tenant: &Tenant, reply: Reply, ids: &RequestIds) -> HttpResponse {
    let now = tenant.now();
    let (status, content_type, body, retry_after, challenge) = match reply {
        Reply::Page(body) | Reply::Truncated(body) => (200, ODATA_JSON, body, None, false),
        // Answered by `hostile::oversized` before this; an empty page if it ever got here.
        Reply::Oversized(_) => (200, ODATA_JSON, r#"{"value":[]}"#.to_owned(), None, false),
        Reply::Error(error) => {
            let body = serde_json::json!({
                "error": {
                    "code": error.code,
                    "message": error.message,
                    "innerError": {
                        "date": now.format("%Y-%m-%dT%H:%M:%S").to_string(),
                        "request-id": ids.request_id,
                        "client-request-id": ids.client_request_id.to_str().unwrap_or(""),
                    }
                }
            })
            .to_string();
            let challenge = error.status == 401;
            (error.status, ERROR_JSON, body, error.retry_after, challenge)
        }
    };
    let mut builder = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header("request-id", ids.request_id.as_str())
        .header("client-request-id", ids.client_request_id.clone())
        .header(DATE, httpdate::fmt_http_date(SystemTime::from(now)));
    if let Some(retry_after) = retry_after {
        builder = builder.header(RETRY_AFTER, retry_after);
    }
    if challenge {
        builder = builder.header(WWW_AUTHENTICATE, BEARER_CHALLENGE);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "simulated Graph built an invalid response");
            serve::response(500, "text/plain", "internal error")
        })
}
