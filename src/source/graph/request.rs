//! The loop every Graph request goes through: a place in the budget and in flight, a
//! token, one attempt sorted into a body, a transient failure (with its Retry-After) or a
//! refusal that tells the user what to fix, and another try while one can help (backoff,
//! a token Entra ID could not issue for now, one fresh token after a 401). What a body or
//! a refusal means is the caller's: a call-log page, or a call record whose 404 is an
//! answer.

use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::{StatusCode, Url};

use super::error::ErrorBody;
use super::{body, host_of, parse_retry_after, refusal_hint, GraphClient, GraphError, Priority};
use crate::source::auth::{error_chain, AccessToken, AuthError};
use crate::source::metrics::{Endpoint, RetryReason};

/// What [`GraphClient::request`]'s caller makes of an answer: its result, or a reason to
/// ask again (a body that is not what it should be).
pub(super) enum Answer<T> {
    Done(T),
    Again(RetryReason, String),
}

impl GraphClient {
    /// Gets `url` from `endpoint`'s budget, retried while retrying can help: transient
    /// failures (Retry-After honoured), a token Entra ID could not issue for now, and one
    /// fresh token after a 401. `read` makes the result of a body or of a refusal, or asks
    /// again.
    pub(super) async fn request<T>(
        &self,
        endpoint: Endpoint,
        priority: Priority,
        url: &Url,
        mut read: impl FnMut(Result<bytes::Bytes, GraphError>) -> Result<Answer<T>, GraphError>,
    ) -> Result<T, GraphError> {
        let mut retries = 0;
        let mut refreshed_after_401 = false;
        loop {
            let (token, in_flight) = match self.ready_to_send(endpoint, priority).await {
                Ok(ready) => ready,
                // Entra ID hiccups like any service: retry it within the request's budget.
                Err(GraphError::Auth(error)) if error.is_transient() => {
                    let description = error.to_string();
                    if !self
                        .pause_before_retry(
                            endpoint,
                            &mut retries,
                            RetryReason::TokenUnavailable,
                            &description,
                            None,
                        )
                        .await
                    {
                        return Err(GraphError::Auth(error));
                    }
                    continue;
                }
                Err(error) => return Err(error),
            };
            let attempt = self.attempt(endpoint, url, &token).await;
            drop(in_flight);
            let (reason, description, wait) = match attempt {
                Ok(Attempt::Page(body)) => match read(Ok(body))? {
                    Answer::Done(result) => return Ok(result),
                    Answer::Again(reason, description) => (reason, description, None),
                },
                Err(error) => match read(Err(error))? {
                    Answer::Done(result) => return Ok(result),
                    Answer::Again(reason, description) => (reason, description, None),
                },
                Ok(Attempt::Unauthorized(refusal)) => {
                    if refreshed_after_401 {
                        return Err(refusal);
                    }
                    // The token expired early or was revoked: one fresh token, then retry.
                    refreshed_after_401 = true;
                    self.tokens.invalidate(&token);
                    continue;
                }
                Ok(Attempt::Transient {
                    reason,
                    description,
                    wait,
                }) => (reason, description, wait),
            };
            // A 401 after this is a new problem, not the same token failing twice.
            refreshed_after_401 = false;
            if !self
                .pause_before_retry(endpoint, &mut retries, reason, &description, wait)
                .await
            {
                return Err(GraphError::RetriesExhausted {
                    attempts: retries + 1,
                    last: description,
                });
            }
        }
    }

    /// Counts a retry and waits before it; false when the retry budget is spent.
    async fn pause_before_retry(
        &self,
        endpoint: Endpoint,
        retries: &mut u32,
        reason: RetryReason,
        description: &str,
        retry_after: Option<Duration>,
    ) -> bool {
        if *retries >= self.retry.max_retries {
            return false;
        }
        *retries += 1;
        self.metrics.record_retry(endpoint, reason);
        let backoff = self.backoff(*retries);
        tracing::warn!(
            endpoint = endpoint.as_str(),
            attempt = *retries,
            retry_after = ?retry_after,
            backoff = ?backoff,
            reason = %description,
            "Graph request failed; retrying"
        );
        // With a Retry-After the gate holds every request to the tenant back; without one
        // (or with zero) the jittered backoff keeps retries apart.
        if retry_after.is_none() {
            tokio::time::sleep(backoff).await;
        }
        true
    }

    /// Waits until no Retry-After is pending and the budget has room, and returns a usable
    /// token. Getting a token and a place in the budget can take a while, so the gate is
    /// checked again afterwards (a place taken but not used only makes the exporter gentler).
    ///
    /// The returned permit is one of `--graph.concurrency` places for a request in flight,
    /// shared by every reader of the tenant (the recent poll and a long read included): with
    /// one, no request is on its way when a `Retry-After` arrives, as Graph asks.
    async fn ready_to_send(
        &self,
        endpoint: Endpoint,
        priority: Priority,
    ) -> Result<(AccessToken, InFlight<'_>), GraphError> {
        loop {
            self.gate.wait().await;
            let token = self.tokens.token().await?;
            let waited = match endpoint {
                Endpoint::CallRecords => self.call_record_budget.take_one(priority).await,
                Endpoint::Function(function) => self.budget.take(function, priority).await,
                Endpoint::Token => Duration::ZERO,
            };
            self.metrics.record_budget_wait(endpoint, priority, waited);
            let Ok(tenant) = self.in_flight.acquire().await else {
                unreachable!("the semaphore is never closed");
            };
            let process = match &self.process_reads {
                Some(reads) => Some(
                    reads
                        .clone()
                        .acquire_owned()
                        .await
                        .expect("the semaphore is never closed"),
                ),
                None => None,
            };
            if self.gate.is_open() {
                return Ok((
                    token,
                    InFlight {
                        _tenant: tenant,
                        _process: process,
                    },
                ));
            }
        }
    }

    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .retry
            .initial_backoff
            .saturating_mul(1u32 << retry.clamp(1, 16).saturating_sub(1))
            .min(self.retry.max_backoff);
        // "Full jitter", but never under half the ceiling so retries stay spaced out.
        let half = ceiling / 2;
        half + half.mul_f64(rand::thread_rng().gen::<f64>())
    }

    async fn attempt(
        &self,
        endpoint: Endpoint,
        url: &Url,
        token: &AccessToken,
    ) -> Result<Attempt, GraphError> {
        let started = Instant::now();
        let mut authorization =
            reqwest::header::HeaderValue::from_str(&token.bearer()).map_err(|_| {
                GraphError::Auth(AuthError::InvalidResponse {
                    status: 200,
                    flag: "--azure.authority-host",
                })
            })?;
        authorization.set_sensitive(true);
        let sent = self
            .http
            .get(url.clone())
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                self.metrics.record_request(endpoint, "error", started);
                return Ok(Attempt::Transient {
                    reason: RetryReason::Connection,
                    description: describe_transport(error),
                    wait: None,
                });
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
            .filter(|wait| !wait.is_zero());
        let header_request_id = response
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Streamed and capped (issue #18): never more than the cap in memory.
        let body = body::read_capped(response, self.limits.max_bytes).await;
        self.metrics
            .record_request(endpoint, status.as_str(), started);
        let body = match body {
            Ok(body) => body,
            Err(body::BodyError::TooLarge { size }) => {
                return Err(GraphError::ResponseTooLarge {
                    host: host_of(url),
                    size,
                    limit: body::describe_size(self.limits.max_bytes),
                })
            }
            Err(body::BodyError::Transport(error)) => {
                return Ok(Attempt::Transient {
                    reason: RetryReason::Connection,
                    description: describe_transport(error),
                    wait: None,
                })
            }
        };
        if status.is_success() {
            return Ok(Attempt::Page(body));
        }
        self.failure(endpoint, status, &body, header_request_id, retry_after)
    }

    /// What a response other than success means: a transient failure (throttling and
    /// server errors, which also hold the tenant back when Graph asks), a 401 worth one
    /// fresh token, or a refusal that no retry fixes.
    fn failure(
        &self,
        endpoint: Endpoint,
        status: StatusCode,
        body: &[u8],
        header_request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Result<Attempt, GraphError> {
        let detail = serde_json::from_slice::<ErrorBody>(body)
            .unwrap_or_default()
            .error;
        let request_id = detail
            .inner_error
            .and_then(|i| i.request_id)
            .or(header_request_id)
            .unwrap_or_else(|| "-".into());
        let code = detail.code.unwrap_or_else(|| "no error code".into());
        let message = detail.message.unwrap_or_else(|| "no message".into());
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Throttled despite the budget: another app of the tenant shares the tenant-wide
            // limit, or the budget is set above Graph's limits. Which limit Graph names, if
            // it names one, tells them apart.
            tracing::warn!(
                endpoint = endpoint.as_str(),
                limit = throttling_scope(&message).unwrap_or("not named"),
                retry_after = ?retry_after,
                request_id = %request_id,
                "Graph throttled a request despite the request budget; every request to the tenant waits for its Retry-After. If the limit is the tenant's, another app of the tenant uses most of it; otherwise lower --graph.rate-limit or --graph.tenant-rate-limit"
            );
        }
        let reason = match status.as_u16() {
            429 => RetryReason::Throttled,
            408 | 500 | 502 | 503 | 504 => RetryReason::ServerError,
            other => {
                let refusal = GraphError::Refused {
                    status: other,
                    code,
                    message,
                    request_id,
                    hint: refusal_hint(other),
                };
                if other == 401 {
                    return Ok(Attempt::Unauthorized(refusal));
                }
                return Err(refusal);
            }
        };
        if status == StatusCode::TOO_MANY_REQUESTS || retry_after.is_some() {
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                self.metrics
                    .graph_throttled
                    .with_label_values(&[endpoint.as_str()])
                    .inc();
            }
            // A Retry-After is about the tenant, not this request: every request waits.
            // A 429 without one still holds the tenant back for one backoff.
            self.gate.hold_for(match retry_after {
                // Graph's seconds are its clock's; the gate waits in real time.
                Some(wait) => self.budget.clock().real_duration(wait),
                None => self.backoff(1),
            });
        }
        Ok(Attempt::Transient {
            reason,
            description: format!(
                "HTTP {} {code}: {message} (request-id {request_id})",
                status.as_u16()
            ),
            wait: retry_after,
        })
    }
}

/// A request's places in flight: one of the tenant's, and one of the process's when it
/// reads several tenants. Held only while the request is on its way, never while a
/// Retry-After or the budget is waited for, so a throttled tenant holds up no other.
pub struct InFlight<'a> {
    _tenant: tokio::sync::SemaphorePermit<'a>,
    _process: Option<tokio::sync::OwnedSemaphorePermit>,
}

enum Attempt {
    Page(bytes::Bytes),
    /// Worth another try; `wait` is the Retry-After the server gave, if any.
    Transient {
        /// Why it is worth another try, for `graph_retries_total`.
        reason: RetryReason,
        description: String,
        wait: Option<Duration>,
    },
    /// A 401: maybe the token was revoked or expired early; one fresh token may help.
    Unauthorized(GraphError),
}

/// The limit a 429's message names: Graph writes "... under category:X.", X being the
/// function, `CallRecords` (the app's limit) or the tenant.
fn throttling_scope(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("category:")?;
    let scope = rest
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .next()?
        .trim_end_matches('.');
    (!scope.is_empty()).then_some(scope)
}

fn describe_transport(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "the request timed out (--graph.timeout)".to_owned()
    } else {
        // Strip the URL: it is long and says nothing the log line does not.
        error_chain(&error.without_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_names_the_limit_when_graph_does() {
        let message = "Too many requests from Identifier:t+c under category:getDirectRoutingCalls. Please try again later.";
        assert_eq!(throttling_scope(message), Some("getDirectRoutingCalls"));
        assert_eq!(throttling_scope("under category:Tenant."), Some("Tenant"));
        assert_eq!(throttling_scope("Too many requests"), None);
        assert_eq!(throttling_scope("category:"), None);
    }
}
