//! Why a call window could not be read completely, what the user can do about it, and the
//! bounded reason each failure is counted under.

use serde::Deserialize;

use crate::source::auth::AuthError;

/// Why a call window could not be read completely.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{0}")]
    Auth(#[from] AuthError),
    #[error("Graph refused the request: HTTP {status} {code}: {message} (request-id {request_id}). {hint}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        request_id: String,
        hint: &'static str,
    },
    #[error("Graph kept failing after {attempts} attempts; last: {last}")]
    RetriesExhausted { attempts: u32, last: String },
    #[error("refusing to follow @odata.nextLink to {host}: it is not the configured Graph endpoint {expected}, and the bearer token must not leave it")]
    ForeignNextLink { host: String, expected: String },
    #[error("Graph returned a nextLink that cannot be followed: {0}")]
    BadNextLink(String),
    /// A response beyond `--graph.max-response-size` (issue #18); refused unread or given
    /// up part-way, never held whole.
    #[error("the response from {host} is {size}, above --graph.max-response-size ({limit}): a page of Graph's 1,000 rows is 1-2 MB, so check what answers at --graph.endpoint (a proxy or test endpoint?), or raise the flag if it really is Graph")]
    ResponseTooLarge {
        host: String,
        size: String,
        limit: String,
    },
    /// A page with more rows than `--graph.max-page-rows`: Graph's have at most 1,000.
    #[error("a page from {host} has {rows} rows, above --graph.max-page-rows ({limit}): Graph's pages have at most 1,000, so check what answers at --graph.endpoint, or raise the flag if Graph's pages grew")]
    TooManyRows {
        host: String,
        /// How many, or "more than N" when the page was given up while it was parsed.
        rows: String,
        limit: usize,
    },
}

/// Why a poll failed (`poll_errors_total{reason}`): a short, bounded set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollErrorReason {
    TokenUnavailable,
    TokenRefused,
    Unauthorized,
    Forbidden,
    BadRequest,
    NotFound,
    NotAcceptable,
    Refused,
    RetriesExhausted,
    BadNextLink,
    /// A response beyond `--graph.max-response-size` or `--graph.max-page-rows`.
    ResponseTooLarge,
}

impl PollErrorReason {
    /// Every reason, so the series exist at 0 from the start and `increase()` sees the
    /// first failure.
    pub const ALL: [PollErrorReason; 11] = [
        PollErrorReason::TokenUnavailable,
        PollErrorReason::TokenRefused,
        PollErrorReason::Unauthorized,
        PollErrorReason::Forbidden,
        PollErrorReason::BadRequest,
        PollErrorReason::NotFound,
        PollErrorReason::NotAcceptable,
        PollErrorReason::Refused,
        PollErrorReason::RetriesExhausted,
        PollErrorReason::BadNextLink,
        PollErrorReason::ResponseTooLarge,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            PollErrorReason::TokenUnavailable => "token_unavailable",
            PollErrorReason::TokenRefused => "token_refused",
            PollErrorReason::Unauthorized => "unauthorized",
            PollErrorReason::Forbidden => "forbidden",
            PollErrorReason::BadRequest => "bad_request",
            PollErrorReason::NotFound => "not_found",
            PollErrorReason::NotAcceptable => "not_acceptable",
            PollErrorReason::Refused => "refused",
            PollErrorReason::RetriesExhausted => "retries_exhausted",
            PollErrorReason::BadNextLink => "bad_next_link",
            PollErrorReason::ResponseTooLarge => "response_too_large",
        }
    }
}

impl GraphError {
    /// A refusal of the tenant as a whole (its token, or a 401 or 403 from Graph): every
    /// other window of the poll would be refused the same way until the user fixes it.
    pub fn refuses_tenant(&self) -> bool {
        match self {
            GraphError::Auth(error) => !error.is_transient(),
            GraphError::Refused { status, .. } => matches!(status, 401 | 403),
            _ => false,
        }
    }

    /// Why the poll failed, for `poll_errors_total{reason}`.
    pub fn reason(&self) -> PollErrorReason {
        match self {
            GraphError::Auth(error) if error.is_transient() => PollErrorReason::TokenUnavailable,
            GraphError::Auth(_) => PollErrorReason::TokenRefused,
            GraphError::Refused { status: 401, .. } => PollErrorReason::Unauthorized,
            GraphError::Refused { status: 403, .. } => PollErrorReason::Forbidden,
            GraphError::Refused { status: 400, .. } => PollErrorReason::BadRequest,
            GraphError::Refused { status: 404, .. } => PollErrorReason::NotFound,
            GraphError::Refused { status: 406, .. } => PollErrorReason::NotAcceptable,
            GraphError::Refused { .. } => PollErrorReason::Refused,
            GraphError::RetriesExhausted { .. } => PollErrorReason::RetriesExhausted,
            GraphError::ForeignNextLink { .. } | GraphError::BadNextLink(_) => {
                PollErrorReason::BadNextLink
            }
            GraphError::ResponseTooLarge { .. } | GraphError::TooManyRows { .. } => {
                PollErrorReason::ResponseTooLarge
            }
        }
    }
}

pub fn refusal_hint(status: u16) -> &'static str {
    match status {
        401 => "Graph rejected a freshly issued token: check the token was issued for this Graph endpoint (--graph.endpoint and --azure.authority-host must belong to the same cloud)",
        403 => "Grant the application permission CallRecords.Read.All (Microsoft Graph, Application type, not Delegated) to the app registration and have an administrator grant admin consent; it can take a few minutes to apply",
        400 => "Graph did not accept the request's parameters; please report this with the request-id",
        404 => "The function was not found: check --graph.endpoint is the Graph root (e.g. https://graph.microsoft.com) and that call records exist in this cloud",
        406 => "The call window is longer than Graph accepts (90 days); lower --poll.lookback",
        _ => "Graph refused the request for a reason the exporter does not know; the code, message and request-id above say more",
    }
}

/// Graph's error body.
#[derive(Deserialize, Default)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub(super) error: ErrorDetail,
}

#[derive(Deserialize, Default)]
pub(super) struct ErrorDetail {
    #[serde(default)]
    pub(super) code: Option<String>,
    #[serde(default)]
    pub(super) message: Option<String>,
    #[serde(default, rename = "innerError")]
    pub(super) inner_error: Option<InnerError>,
}

#[derive(Deserialize, Default)]
pub(super) struct InnerError {
    #[serde(default, rename = "request-id")]
    pub(super) request_id: Option<String>,
}
