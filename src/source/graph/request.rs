//! The loop every Graph request goes through: a place in the budget, a token, the request,
//! and another try while one can help (transient failures with Retry-After honoured, a
//! token Entra ID could not issue for now, one fresh token after a 401). What a body or a
//! refusal means is the caller's: a call-log page, or a call record whose 404 is an answer.

use reqwest::Url;

use super::{Attempt, GraphClient, GraphError, Priority};
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
}
