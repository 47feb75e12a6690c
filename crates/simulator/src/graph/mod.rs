//! The simulated Microsoft Graph: the call-log functions of the tenant's logs
//! (`getDirectRoutingCalls`, `getPstnCalls`) with Graph's parameter
//! checks, paging, headers and error bodies, Graph's rate limits, and the injected faults
//! (throttling, unavailability, broken JSON, revoked tokens, 403).
//!
//! A request reads the logs of the tenant its bearer token was issued for (`handle` finds
//! it), never another's: a provider's tenants share this service, not their rows, limits
//! or faults. A token without `CallRecords.Read.All` (a tenant that consented without the
//! permission) gets 403 `Authorization_RequestDenied`.
//!
//! Every request to `/v1.0/...` is a data request: it counts towards the "every Nth"
//! faults and in the windows of Graph's rate limits (its function's, if its path names
//! one, the app's and the tenant's; see `gate`), and is checked against them and against
//! a pending Retry-After before anything else, because a throttled client must send
//! nothing to the tenant until the time it was given. Nothing here knows a row type:
//! pages come from the `CallLog` a request names.
//!
//! Call records (`/v1.0/communications/callRecords/{id}`, `call_record`) are data requests
//! too: the same token checks and "every Nth" faults, but their own rate limit.

mod call_record;
pub(crate) mod hostile;
mod reply;
mod request;
mod retry;

pub(crate) use request::{function_named, parse_request};

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request};

use crate::call_log::PageRequest;
use crate::faults::{is_every, Faults};
use crate::gate::{Admission, Scope};
use crate::issued::TokenStatus;
use crate::tenant::Tenant;
use exporter_web::serve::HttpResponse;
use hostile::SimResponse;
use reply::{build_response, GraphError, Reply, RequestIds};
use request::CallQuery;
use retry::{retry_after_value, start_retry_after};

/// Answers one data request.
pub(crate) async fn handle(tenant: &Arc<Tenant>, request: Request<Incoming>) -> SimResponse {
    let ids = RequestIds::new(tenant, &request);
    let (reply, delay_ms) = answer(tenant, &request);
    if delay_ms > 0 {
        // A real-time delay: it stands for a slow network or service, not for call-log time.
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    if let Reply::Oversized(mib) = reply {
        return hostile::oversized(mib);
    }
    build_response(tenant, reply, &ids).map(http_body_util::Either::Left)
}

/// Answers a path outside Graph's API surface.
pub(crate) fn not_found(tenant: &Tenant, request: &Request<Incoming>) -> HttpResponse {
    let ids = RequestIds::new(tenant, request);
    let error = GraphError::not_found(request.uri().path());
    build_response(tenant, Reply::Error(error), &ids)
}

/// Decides the answer; returns it with the delay to apply before sending it.
fn answer(tenant: &Tenant, request: &Request<Incoming>) -> (Reply, u64) {
    let now_ms = tenant.now_ms();
    let function = function_named(request.uri().path(), &tenant.call_logs()).map(|f| f.name);
    if function.is_none() {
        if let Some(target) = call_record::target(request.uri().path()) {
            return call_record::answer(tenant, request, &target, now_ms);
        }
    }
    let admission = tenant.gate.lock().admit(now_ms, function);
    {
        let mut stats = tenant.stats();
        stats.data_requests += 1;
        if let Some(name) = function {
            match stats.data_requests_by_function.get_mut(name) {
                Some(count) => *count += 1,
                None => {
                    stats.data_requests_by_function.insert(name.to_owned(), 1);
                }
            }
        }
    }
    let delay_ms = admission.faults.slow_page_ms;
    if let Some(error) = throttled(tenant, &admission, now_ms) {
        return (Reply::Error(error), delay_ms);
    }
    let reply = match checked_answer(
        tenant,
        request,
        admission.request_number,
        &admission.faults,
        now_ms,
    ) {
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

/// The 429 for a request over a rate limit or during a pending Retry-After of a fault, if
/// it is one; counts violations of any pending Retry-After.
fn throttled(tenant: &Tenant, admission: &Admission, now_ms: i64) -> Option<GraphError> {
    let faults = &admission.faults;
    let request_number = admission.request_number;
    let mut stats = tenant.stats();
    if admission.violated {
        stats.retry_after_violations += 1;
    }
    if let Some(refusal) = admission.refused {
        stats.throttled_responses += 1;
        match refusal.scope {
            Scope::Function(_) => stats.throttled_per_function += 1,
            Scope::App => stats.throttled_per_app += 1,
            Scope::Tenant => stats.throttled_per_tenant += 1,
            // Counted by `call_record`, which sees its own throttling.
            Scope::CallRecords => {}
        }
        drop(stats);
        let category = refusal.scope.category();
        tracing::debug!(request_number, category, "data request over a rate limit");
        let retry_after = retry_after_value(faults, refusal.until_ms, now_ms);
        return Some(GraphError::over_limit(tenant, category).with_retry_after(Some(retry_after)));
    }
    let until_ms = admission.pending_until_ms?;
    stats.throttled_responses += 1;
    drop(stats);
    tracing::debug!(request_number, "data request ignored a pending Retry-After");
    let retry_after = retry_after_value(faults, until_ms, now_ms);
    Some(GraphError::too_many_requests().with_retry_after(Some(retry_after)))
}

/// The answer to a request that got past the throttling: an error of its own or of an
/// injected fault, or its page.
fn checked_answer(
    tenant: &Tenant,
    request: &Request<Incoming>,
    request_number: u64,
    faults: &Faults,
    now_ms: i64,
) -> Result<Reply, GraphError> {
    pass_faults(tenant, request, request_number, faults, now_ms)?;
    let logs = tenant.call_logs();
    let query = parse_request(request.uri().path(), request.uri().query(), &logs)?;
    let (body, rows, foreign) = render_page(tenant, &query, faults, now_ms);
    if faults.oversized_page_mib > 0 {
        tenant.stats().pages_served += 1;
        return Ok(Reply::Oversized(faults.oversized_page_mib));
    }
    let body = hostile::rewrite(body, faults);
    if let Some(truncated) = truncated(tenant, &body, request_number, faults) {
        return Ok(truncated);
    }
    let mut stats = tenant.stats();
    stats.pages_served += 1;
    stats.rows_served += rows as u64;
    if foreign {
        stats.foreign_next_links_served += 1;
    }
    Ok(Reply::Page(body))
}

/// The body cut in half, if the invalid-JSON fault falls on this request.
fn truncated(tenant: &Tenant, body: &str, request_number: u64, faults: &Faults) -> Option<Reply> {
    if !is_every(request_number, faults.invalid_json_every) {
        return None;
    }
    tenant.stats().invalid_json_responses += 1;
    let mut cut = body.len() / 2;
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    Some(Reply::Truncated(body[..cut].to_owned()))
}

/// The checks every data request passes after the throttling, whatever it asks for: the
/// method, the token and its permission, and the injected faults that answer instead.
fn pass_faults(
    tenant: &Tenant,
    request: &Request<Incoming>,
    request_number: u64,
    faults: &Faults,
    now_ms: i64,
) -> Result<(), GraphError> {
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
        return Err(GraphError::forbidden());
    }
    if is_every(request_number, faults.revoke_token_every) {
        tenant.tokens.revoke(&token, now_ms);
        return Err(GraphError::unauthorized(
            "Access token has expired or is not yet valid.",
        ));
    }
    if is_every(request_number, faults.throttle_every) {
        let retry_after = (!faults.throttle_without_retry_after)
            .then(|| start_retry_after(tenant, faults, now_ms));
        return Err(GraphError::too_many_requests().with_retry_after(retry_after));
    }
    if is_every(request_number, faults.unavailable_every) {
        let retry_after = faults
            .unavailable_retry_after
            .then(|| start_retry_after(tenant, faults, now_ms));
        return Err(GraphError::new(
            503,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        )
        .with_retry_after(retry_after));
    }
    Ok(())
}

/// The bearer token of a request if it is one this tenant issued and it has not expired.
fn authorized_token(
    tenant: &Tenant,
    request: &Request<Incoming>,
    now_ms: i64,
) -> Result<String, GraphError> {
    let token = bearer_token(request);
    if token.is_empty() {
        return Err(GraphError::unauthorized("Access token is empty."));
    }
    match tenant.tokens.status(token, now_ms) {
        // Graph authorises by the token's roles: without the application permission the
        // answer is 403, however valid the token.
        TokenStatus::WithoutCallRecords => Err(GraphError::request_denied()),
        TokenStatus::Valid => Ok(token.to_owned()),
        TokenStatus::Expired => Err(GraphError::unauthorized(
            "Access token has expired or is not yet valid.",
        )),
        TokenStatus::Unknown => Err(GraphError::unauthorized(
            "IDX14100: JWT is not well formed, there are no dots (.).",
        )),
    }
}

/// The bearer token of a request; empty if it has none. It says which tenant's logs the
/// request reads (`Provider::by_token`).
pub(crate) fn bearer_token(request: &Request<Incoming>) -> &str {
    request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|header| header.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim())
}

/// Renders the page; returns it with its row count and whether its nextLink is foreign.
fn render_page(
    tenant: &Tenant,
    query: &CallQuery<'_>,
    faults: &Faults,
    now_ms: i64,
) -> (String, usize, bool) {
    let context = format!(
        "{}/v1.0/$metadata#Collection(microsoft.graph.callRecords.{})",
        tenant.base_url,
        query.log.function().row_type
    );
    let link_base = faults
        .foreign_next_link
        .as_deref()
        .map(|base| base.trim_end_matches('/'))
        .filter(|base| !base.is_empty());
    let next_link = |skip: usize| query.next_link(link_base.unwrap_or(&tenant.base_url), skip);
    let mut body = String::new();
    let served = query.log.write_page(
        &mut body,
        &PageRequest {
            context: &context,
            from: query.from,
            to: query.to,
            skip: query.skip,
            page_size: tenant.page_size,
            now_ms,
            next_link: &next_link,
        },
    );
    let foreign = served.next_link && link_base.is_some();
    (body, served.rows, foreign)
}

#[cfg(test)]
pub(crate) fn window_ticks(query: &CallQuery<'_>) -> (i64, i64, usize) {
    (query.from, query.to, query.skip)
}

#[cfg(test)]
pub(crate) fn error_status(error: &GraphError) -> (u16, &'static str, &str) {
    (error.status, error.code, &error.message)
}
