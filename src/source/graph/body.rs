//! How much one Graph response may hold: a response body is read chunk by chunk and given
//! up as soon as it exceeds `--graph.max-response-size`, and a page is refused when it has
//! more rows than `--graph.max-page-rows`.
//!
//! Graph's pages hold at most 1,000 rows, about 1–2 MB. Whatever answers at
//! `--graph.endpoint` can send more (a broken proxy, a test endpoint, an attacker): read
//! whole, a 200 MiB answer at every poll held 1.2 GiB of memory (issue #18). Read this
//! way, the exporter never holds more than the cap of one response per request in flight,
//! and a refused answer fails the poll with an error that names the host and the size.

use bytes::Bytes;

/// `--graph.max-response-size`'s default: four to eight times a real page of 1,000 rows.
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 8 * 1024 * 1024;
/// `--graph.max-page-rows`'s default: Graph's pages hold at most 1,000 rows.
pub const DEFAULT_MAX_PAGE_ROWS: usize = 1_000;

/// What one response may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Bytes of one response body (`--graph.max-response-size`).
    pub max_bytes: u64,
    /// Rows of one page (`--graph.max-page-rows`).
    pub max_rows: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_bytes: DEFAULT_MAX_RESPONSE_SIZE,
            max_rows: DEFAULT_MAX_PAGE_ROWS,
        }
    }
}

/// Why a body was not read.
#[derive(Debug)]
pub(super) enum BodyError {
    /// Larger than the limit: `size` as far as it is known (the announced length, or the
    /// bytes received before giving up).
    TooLarge { size: String },
    /// The connection failed or timed out while the body arrived.
    Transport(reqwest::Error),
}

/// The size of a body, for messages.
pub(super) fn describe_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{bytes} bytes")
    }
}

/// Reads the body of `response`, at most `max_bytes` of it.
pub(super) async fn read_capped(
    mut response: reqwest::Response,
    max_bytes: u64,
) -> Result<Bytes, BodyError> {
    let announced = response.content_length();
    if let Some(length) = announced.filter(|length| *length > max_bytes) {
        // Refused unread: dropping the response closes the connection.
        return Err(BodyError::TooLarge {
            size: describe_size(length),
        });
    }
    let cap = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    // Exactly the announced length when there is one; else grown as chunks arrive, never
    // past the cap (doubling could reserve twice the cap).
    let initial = announced
        .map_or(64 * 1024, |length| length as usize)
        .min(cap);
    let mut body = Vec::with_capacity(initial);
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(Bytes::from(body)),
            Err(error) => return Err(BodyError::Transport(error)),
        };
        let received = body.len().saturating_add(chunk.len());
        if received > cap {
            return Err(BodyError::TooLarge {
                size: format!("more than {}", describe_size(max_bytes)),
            });
        }
        if received > body.capacity() {
            let grown = body.capacity().saturating_mul(2).max(received).min(cap);
            body.reserve_exact(grown - body.len());
        }
        body.extend_from_slice(&chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_given_up_beyond_the_rows_parsed() {
        use crate::source::row::{Page, MAX_PAGE_ROWS_PARSED, TOO_MANY_ROWS};
        let page = |rows: usize| format!(r#"{{"value":[{}1]}}"#, "1,".repeat(rows - 1));
        let at_most = page(MAX_PAGE_ROWS_PARSED);
        let parsed: Page = serde_json::from_str(&at_most).unwrap();
        assert_eq!(parsed.value.len(), MAX_PAGE_ROWS_PARSED);
        let beyond = page(MAX_PAGE_ROWS_PARSED + 1);
        let error = serde_json::from_str::<Page>(&beyond).unwrap_err();
        assert!(error.to_string().starts_with(TOO_MANY_ROWS), "{error}");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(describe_size(512), "512 bytes");
        assert_eq!(describe_size(200 * 1024 * 1024), "200.0 MiB");
    }
}
