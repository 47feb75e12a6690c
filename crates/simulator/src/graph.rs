//! The simulated Microsoft Graph: `getDirectRoutingCalls` (and an always-empty
//! `getPstnCalls`) with Graph's parameter checks, paging, headers and error bodies, and the
//! injected faults (throttling, unavailability, broken JSON, revoked tokens, 403).
//!
//! Every request to `/v1.0/...` is a data request: it counts towards the "every Nth"
//! faults and is checked against a pending Retry-After before anything else, because a
//! throttled client must send nothing to the tenant until the time it was given.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, DATE, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response};

use super::model::TICKS_PER_SEC;
use super::{render, Faults, Tenant};
use exporter_web::serve::{self, HttpResponse};

/// Graph's content type for OData payloads.
const ODATA_JSON: &str =
    "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8";
const ERROR_JSON: &str = "application/json";
const MAX_RANGE: chrono::TimeDelta = chrono::TimeDelta::days(90);
const BEARER_CHALLENGE: &str = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"";

/// An answer that is not a page.
#[derive(Debug)]
pub(super) struct GraphError {
    status: u16,
    code: &'static str,
    message: String,
    retry_after: Option<String>,
}

impl GraphError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        GraphError::new(400, "BadRequest", message)
    }

    fn unauthorized(message: &str) -> Self {
        GraphError::new(401, "InvalidAuthenticationToken", message)
    }
}

enum Reply {
    Page(String),
    /// A 200 whose body was cut short, as a broken proxy or connection would leave it.
    Truncated(String),
    Error(GraphError),
}

/// Ids Graph puts on every answer; users quote `request-id` to support.
struct RequestIds {
    request_id: String,
    client_request_id: HeaderValue,
}

impl RequestIds {
    fn new(tenant: &Tenant, request: &Request<Incoming>) -> Self {
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

/// Answers one data request.
pub(super) async fn handle(tenant: &Arc<Tenant>, request: Request<Incoming>) -> HttpResponse {
    let ids = RequestIds::new(tenant, &request);
    let (reply, delay_ms) = answer(tenant, &request);
    if delay_ms > 0 {
        // A real-time delay: it stands for a slow network or service, not for call-log time.
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    build_response(tenant, reply, &ids)
}

/// Answers a path outside Graph's API surface.
pub(super) fn not_found(tenant: &Tenant, request: &Request<Incoming>) -> HttpResponse {
    let ids = RequestIds::new(tenant, request);
    let error = GraphError::new(
        404,
        "ResourceNotFound",
        format!(
            "Resource not found for the segment '{}'.",
            request.uri().path()
        ),
    );
    build_response(tenant, Reply::Error(error), &ids)
}

/// Decides the answer; returns it with the delay to apply before sending it.
fn answer(tenant: &Tenant, request: &Request<Incoming>) -> (Reply, u64) {
    let now_ms = tenant.now_ms();
    let (request_number, faults, pending_until, rate) = {
        let mut gate = tenant.gate.lock();
        gate.data_requests += 1;
        let pending = gate.throttled_until_ms.filter(|until| now_ms < *until);
        if pending.is_none() {
            gate.throttled_until_ms = None;
        }
        let rate = gate
            .faults
            .rate_limit
            .map(|limit| gate.rate.admit(limit, std::time::Instant::now()));
        (gate.data_requests, gate.faults.clone(), pending, rate)
    };
    tenant.stats().data_requests += 1;
    let delay_ms = faults.slow_page_ms;

    if let Some(rate) = rate {
        if rate.violated {
            tenant.stats().retry_after_violations += 1;
        }
        if let Some(secs) = rate.retry_after_secs {
            tenant.stats().throttled_responses += 1;
            tracing::debug!(request_number, secs, "data request over the rate limit");
            let error = GraphError {
                retry_after: Some(if faults.retry_after_http_date {
                    http_date(now_ms.saturating_add(secs.saturating_mul(1000) as i64))
                } else {
                    secs.to_string()
                }),
                ..too_many_requests()
            };
            return (Reply::Error(error), delay_ms);
        }
    }

    if let Some(until_ms) = pending_until {
        let mut stats = tenant.stats();
        stats.retry_after_violations += 1;
        stats.throttled_responses += 1;
        drop(stats);
        tracing::debug!(request_number, "data request ignored a pending Retry-After");
        let error = GraphError {
            retry_after: Some(retry_after_value(&faults, until_ms, now_ms)),
            ..too_many_requests()
        };
        return (Reply::Error(error), delay_ms);
    }

    let reply = match checked_answer(tenant, request, request_number, &faults, now_ms) {
        Ok(reply) => reply,
        Err(error) => {
            let mut stats = tenant.stats();
            match error.status {
                401 => stats.unauthorized_responses += 1,
                403 => stats.forbidden_responses += 1,
                429 => stats.throttled_responses += 1,
                503 => stats.unavailable_responses += 1,
                _ => stats.bad_requests += 1,
            }
            Reply::Error(error)
        }
    };
    (reply, delay_ms)
}

pub(super) fn is_every(request_number: u64, every: u32) -> bool {
    every > 0 && request_number.is_multiple_of(u64::from(every))
}

fn too_many_requests() -> GraphError {
    GraphError::new(
        429,
        "TooManyRequests",
        "Too many requests from Identifier:tenant+app under category:CallRecords. Please try again later.",
    )
}

fn checked_answer(
    tenant: &Tenant,
    request: &Request<Incoming>,
    request_number: u64,
    faults: &Faults,
    now_ms: i64,
) -> Result<Reply, GraphError> {
    if request.method() != Method::GET {
        return Err(GraphError::new(
            405,
            "Request_BadRequest",
            format!(
                "The HTTP method '{}' is not allowed for this resource.",
                request.method()
            ),
        ));
    }
    let token = authorized_token(tenant, request, now_ms)?;
    if faults.forbidden {
        return Err(GraphError::new(
            403,
            "Forbidden",
            "Insufficient privileges to complete the operation.",
        ));
    }
    if is_every(request_number, faults.revoke_token_every) {
        // From now on the token is as good as expired.
        if let Some(issued) = tenant.tokens.lock().get_mut(&token) {
            issued.expires_ms = now_ms;
        }
        return Err(GraphError::unauthorized(
            "Access token has expired or is not yet valid.",
        ));
    }
    if is_every(request_number, faults.throttle_every) {
        let retry_after = (!faults.throttle_without_retry_after)
            .then(|| start_retry_after(tenant, faults, now_ms));
        return Err(GraphError {
            retry_after,
            ..too_many_requests()
        });
    }
    if is_every(request_number, faults.unavailable_every) {
        let retry_after = faults
            .unavailable_retry_after
            .then(|| start_retry_after(tenant, faults, now_ms));
        return Err(GraphError {
            retry_after,
            ..GraphError::new(
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            )
        });
    }

    let query = parse_request(request.uri().path(), request.uri().query())?;
    let (body, rows, foreign) = render_page(tenant, &query, faults, now_ms);
    if is_every(request_number, faults.invalid_json_every) {
        tenant.stats().invalid_json_responses += 1;
        let mut cut = body.len() / 2;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        return Ok(Reply::Truncated(body[..cut].to_owned()));
    }
    let mut stats = tenant.stats();
    stats.pages_served += 1;
    stats.rows_served += rows as u64;
    if foreign {
        stats.foreign_next_links_served += 1;
    }
    Ok(Reply::Page(body))
}

/// The bearer token of a request if it is one this tenant issued and it has not expired.
fn authorized_token(
    tenant: &Tenant,
    request: &Request<Incoming>,
    now_ms: i64,
) -> Result<String, GraphError> {
    let header = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or("");
    if token.is_empty() {
        return Err(GraphError::unauthorized("Access token is empty."));
    }
    match tenant.tokens.lock().get(token) {
        Some(issued) if now_ms < issued.expires_ms && !issued.call_records => {
            // Graph authorises by the token's roles: without the application permission
            // the answer is 403, however valid the token.
            Err(GraphError::new(
                403,
                "Forbidden",
                "Insufficient privileges to complete the operation.",
            ))
        }
        Some(issued) if now_ms < issued.expires_ms => Ok(token.to_owned()),
        Some(_) => Err(GraphError::unauthorized(
            "Access token has expired or is not yet valid.",
        )),
        None => Err(GraphError::unauthorized(
            "IDX14100: JWT is not well formed, there are no dots (.).",
        )),
    }
}

/// Records that the client must wait and returns the Retry-After value telling it so.
fn start_retry_after(tenant: &Tenant, faults: &Faults, now_ms: i64) -> String {
    let wait_ms = i64::try_from(faults.retry_after_secs())
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let mut until_ms = now_ms.saturating_add(wait_ms);
    if faults.retry_after_http_date {
        // HTTP dates have whole seconds; rounding up keeps the promise "not before".
        until_ms = until_ms
            .div_euclid(1000)
            .saturating_add(i64::from(until_ms % 1000 != 0))
            * 1000;
    }
    let mut gate = tenant.gate.lock();
    gate.throttled_until_ms = Some(
        gate.throttled_until_ms
            .map_or(until_ms, |t| t.max(until_ms)),
    );
    drop(gate);
    retry_after_value(faults, until_ms, now_ms)
}

/// Retry-After telling a client at `now_ms` to come back at `until_ms`.
fn retry_after_value(faults: &Faults, until_ms: i64, now_ms: i64) -> String {
    if faults.retry_after_http_date {
        http_date(until_ms)
    } else {
        let remaining_ms = until_ms.saturating_sub(now_ms).max(1);
        remaining_ms
            .div_euclid(1000)
            .saturating_add(i64::from(remaining_ms % 1000 != 0))
            .to_string()
    }
}

fn http_date(ms: i64) -> String {
    let time = u64::try_from(ms)
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH);
    httpdate::fmt_http_date(time)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Function {
    DirectRoutingCalls,
    PstnCalls,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Function::DirectRoutingCalls => "getDirectRoutingCalls",
            Function::PstnCalls => "getPstnCalls",
        }
    }

    fn row_type(self) -> &'static str {
        match self {
            Function::DirectRoutingCalls => "directRoutingLogRow",
            Function::PstnCalls => "pstnCallLogRow",
        }
    }
}

/// A parsed call-log request.
#[derive(Debug)]
pub(super) struct CallQuery {
    function: Function,
    /// Window `[from, to)` in ticks, rounded up so that `start >= from` compares exactly.
    from: i64,
    to: i64,
    /// The parameter values as the client wrote them, echoed in nextLink like Graph does.
    raw_from: String,
    raw_to: String,
    skip: usize,
}

/// Parses `/v1.0/communications/callRecords/{function}(fromDateTime=..,toDateTime=..)` and
/// its `$skip`.
pub(super) fn parse_request(path: &str, query: Option<&str>) -> Result<CallQuery, GraphError> {
    let decoded = percent_decode(path)
        .ok_or_else(|| GraphError::bad_request("The request URI is not valid."))?;
    let not_found = || {
        GraphError::new(
            404,
            "ResourceNotFound",
            format!("Resource not found for the segment '{decoded}'."),
        )
    };
    let rest = strip_prefix_ignore_case(&decoded, "/v1.0/communications/callRecords/")
        .ok_or_else(not_found)?;
    // SDKs call the namespace-qualified form of the function.
    let rest = strip_prefix_ignore_case(rest, "microsoft.graph.callRecords.").unwrap_or(rest);
    let (name, arguments) = match rest.split_once('(') {
        Some((name, arguments)) => (name, Some(arguments)),
        None => (rest, None),
    };
    let function = if name.eq_ignore_ascii_case("getDirectRoutingCalls") {
        Function::DirectRoutingCalls
    } else if name.eq_ignore_ascii_case("getPstnCalls") {
        Function::PstnCalls
    } else {
        return Err(not_found());
    };
    let arguments = arguments
        .and_then(|arguments| arguments.strip_suffix(')'))
        .ok_or_else(|| {
            GraphError::bad_request(format!(
                "The function '{}' requires the parameters 'fromDateTime' and 'toDateTime'.",
                function.name()
            ))
        })?;

    let mut from = None;
    let mut to = None;
    let mut position = 0;
    for argument in arguments.split(',') {
        let Some((name, value)) = argument.split_once('=') else {
            return Err(GraphError::bad_request(format!(
                "Syntax error at position {} in '{arguments}'.",
                position + argument.len()
            )));
        };
        let value_position = position + name.len() + 1;
        position += argument.len() + 1;
        let slot = match name.trim() {
            n if n.eq_ignore_ascii_case("fromDateTime") => &mut from,
            n if n.eq_ignore_ascii_case("toDateTime") => &mut to,
            n => {
                return Err(GraphError::bad_request(format!(
                    "The parameter '{n}' is not in scope of the function '{}'.",
                    function.name()
                )))
            }
        };
        if slot.is_some() {
            return Err(GraphError::bad_request(format!(
                "The parameter '{}' is given more than once.",
                name.trim()
            )));
        }
        *slot = Some(parse_time(value, value_position, arguments)?);
    }
    let missing = |name: &str| {
        GraphError::bad_request(format!(
            "The function '{}' requires the parameter '{name}'.",
            function.name()
        ))
    };
    let (from_time, raw_from) = from.ok_or_else(|| missing("fromDateTime"))?;
    let (to_time, raw_to) = to.ok_or_else(|| missing("toDateTime"))?;
    if from_time >= to_time {
        return Err(GraphError::bad_request(
            "fromDateTime must be earlier than toDateTime.",
        ));
    }
    if to_time - from_time > MAX_RANGE {
        return Err(GraphError::new(
            406,
            "NotAcceptable",
            "The requested time range exceeds the maximum of 90 days.",
        ));
    }
    let ticks = |time: DateTime<Utc>| {
        ceil_ticks(time).ok_or_else(|| GraphError::bad_request("The date is out of range."))
    };
    Ok(CallQuery {
        function,
        from: ticks(from_time)?,
        to: ticks(to_time)?,
        raw_from,
        raw_to,
        skip: parse_skip(query)?,
    })
}

/// Parses one `fromDateTime`/`toDateTime` value: an unquoted UTC timestamp or a bare date.
fn parse_time(
    value: &str,
    position: usize,
    arguments: &str,
) -> Result<(DateTime<Utc>, String), GraphError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(GraphError::bad_request(format!(
            "Expression expected at position {position} in '{arguments}'."
        )));
    }
    if value.starts_with('\'') || value.starts_with('"') {
        return Err(GraphError::bad_request(
            "The types 'Edm.DateTimeOffset' and 'Edm.String' are not compatible.",
        ));
    }
    let parsed = if value.len() == 10 {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .and_then(|date| date.and_hms_opt(0, 0, 0))
            .map(|time| time.and_utc())
    } else {
        DateTime::parse_from_rfc3339(value)
            .ok()
            .filter(|_| value.contains('T') || value.contains('t'))
            .map(|time| time.with_timezone(&Utc))
    };
    parsed.map(|time| (time, value.to_owned())).ok_or_else(|| {
        GraphError::bad_request(format!(
            "Unrecognized 'Edm.DateTimeOffset' literal '{value}' at '{position}' in '{arguments}'."
        ))
    })
}

fn parse_skip(query: Option<&str>) -> Result<usize, GraphError> {
    let Some(query) = query else { return Ok(0) };
    // `$` may arrive as `%24`; form decoding handles both.
    let mut skip = 0;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key.eq_ignore_ascii_case("$skip") {
            skip = value.trim().parse().map_err(|_| {
                GraphError::bad_request(format!(
                    "Invalid value '{value}' for query option '$skip'."
                ))
            })?;
        }
    }
    Ok(skip)
}

/// Ticks of `time`, rounded up: with stored starts in whole ticks, `start >= ceil(t)` holds
/// exactly when `start >= t`.
fn ceil_ticks(time: DateTime<Utc>) -> Option<i64> {
    let nanos = i64::from(time.timestamp_subsec_nanos());
    time.timestamp()
        .checked_mul(TICKS_PER_SEC)?
        .checked_add((nanos + 99) / 100)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Decodes `%XX` escapes of a path; `None` if the result is not UTF-8 or an escape is cut.
pub(super) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Renders the page; returns it with its row count and whether its nextLink is foreign.
fn render_page(
    tenant: &Tenant,
    query: &CallQuery,
    faults: &Faults,
    now_ms: i64,
) -> (String, usize, bool) {
    let context = format!(
        "{}/v1.0/$metadata#Collection(microsoft.graph.callRecords.{})",
        tenant.base_url,
        query.function.row_type()
    );
    let link_base = faults
        .foreign_next_link
        .as_deref()
        .map(|base| base.trim_end_matches('/'))
        .filter(|base| !base.is_empty());
    let next_link = |skip: usize| {
        let mut link = String::new();
        let _ = write!(
            link,
            "{}/v1.0/communications/callRecords/{}(fromDateTime={},toDateTime={})?$skip={skip}",
            link_base.unwrap_or(&tenant.base_url),
            query.function.name(),
            query.raw_from,
            query.raw_to
        );
        link
    };
    let mut body = String::new();
    if query.function == Function::PstnCalls {
        // The tenant has no Calling Plan or Operator Connect numbers.
        render::write_page(&mut body, &context, &[], None);
        return (body, 0, false);
    }
    let store = tenant.store.read();
    let page = store.page(query.from, query.to, now_ms, query.skip, tenant.page_size);
    let link = page
        .more
        .then(|| next_link(query.skip.saturating_add(page.rows.len())));
    body.reserve(page.rows.len() * 1100 + 512);
    render::write_page(&mut body, &context, &page.rows, link.as_deref());
    let foreign = link.is_some() && link_base.is_some();
    (body, page.rows.len(), foreign)
}

fn build_response(tenant: &Tenant, reply: Reply, ids: &RequestIds) -> HttpResponse {
    let now = tenant.now();
    let (status, content_type, body, retry_after, challenge) = match reply {
        Reply::Page(body) | Reply::Truncated(body) => (200, ODATA_JSON, body, None, false),
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

#[cfg(test)]
pub(super) fn window_ticks(query: &CallQuery) -> (i64, i64, usize) {
    (query.from, query.to, query.skip)
}

#[cfg(test)]
pub(super) fn error_status(error: &GraphError) -> (u16, &'static str, &str) {
    (error.status, error.code, &error.message)
}
