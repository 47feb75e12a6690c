//! Graph's call records (`/communications/callRecords/{id}`), read for the call-quality
//! collector under the same rules as the call logs (token, gate, retries, `Retry-After`,
//! response limits), but within a request budget of their own: Graph limits call records
//! apart from the call-log functions, at 1,500 requests per 20 seconds per app per tenant.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tve_clock::Rate;

use super::request::Answer;
use super::{GraphClient, GraphError, Priority, RequestBudget};
use crate::source::metrics::Endpoint;

/// Graph's documented limit on call-record requests per app per tenant.
pub const GRAPH_CALL_RECORD_LIMIT: Rate = Rate::new(1500, Duration::from_secs(20));
/// The default budget for call records: 10 % under Graph's limit, as for the call logs.
pub const DEFAULT_CALL_RECORD_BUDGET: Rate = Rate::new(1350, Duration::from_secs(20));

/// One response about a call record.
#[derive(Debug)]
pub enum CallRecordResponse {
    /// The record (or one page of its sessions), as sent.
    Found(bytes::Bytes),
    /// 404: not published yet, never published, unknown, or older than 30 days.
    NotFound,
}

impl GraphClient {
    /// Takes every call-record request's place from `budget` instead of the default one.
    pub fn with_call_record_budget(mut self, budget: Arc<RequestBudget>) -> Self {
        self.call_record_budget = budget;
        self
    }

    /// The URL of call record `id` with its sessions and their segments.
    pub fn call_record_url(&self, id: &str) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .expect("the Graph endpoint is an http(s) URL");
            segments
                .pop_if_empty()
                .extend(["v1.0", "communications", "callRecords", id]);
        }
        url.set_query(Some("$expand=sessions($expand=segments)"));
        url
    }

    /// A `sessions@odata.nextLink` of record `id`, checked to lead back to the configured
    /// Graph host (the bearer token goes nowhere else) and to that record's sessions
    /// (`…/communications/callRecords/{id}/sessions`), nothing else of the tenant's.
    pub fn call_record_link(&self, link: &str, id: &str) -> Result<Url, GraphError> {
        let next = self.check_next_link(link)?;
        let sessions = format!("{}/sessions", self.call_record_url(id).path());
        let tail = sessions
            .rfind("/communications/")
            .map_or(sessions.as_str(), |at| &sessions[at..]);
        let path = next.path();
        let ours = path.len() >= tail.len()
            && path.is_char_boundary(path.len() - tail.len())
            && path[path.len() - tail.len()..].eq_ignore_ascii_case(tail);
        if !ours {
            return Err(GraphError::BadNextLink(format!(
                "{link} (not the sessions of call record {id})"
            )));
        }
        Ok(next)
    }

    /// Gets `url` (a call record or one page of its sessions), retried while retrying can
    /// help. A 404 is an answer, not an error: the record is not there (yet).
    pub async fn get_call_record(&self, url: &Url) -> Result<CallRecordResponse, GraphError> {
        self.request(
            Endpoint::CallRecords,
            Priority::Background,
            url,
            |answer| match answer {
                Ok(body) => Ok(Answer::Done(CallRecordResponse::Found(body))),
                Err(GraphError::Refused { status: 404, .. }) => {
                    Ok(Answer::Done(CallRecordResponse::NotFound))
                }
                Err(error) => Err(error),
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::client;

    #[test]
    fn call_record_urls_expand_sessions_and_segments() {
        let graph = client("https://graph.microsoft.com/");
        let url = graph.call_record_url("e523d2ed-2966-4b6b-925b-754a88034cc5");
        assert_eq!(
            url.as_str(),
            "https://graph.microsoft.com/v1.0/communications/callRecords/e523d2ed-2966-4b6b-925b-754a88034cc5?$expand=sessions($expand=segments)"
        );
        // An id is one path segment, whatever it holds.
        let odd = graph.call_record_url("a/b?c");
        assert!(odd.path().ends_with("/callRecords/a%2Fb%3Fc"), "{odd}");
    }

    #[test]
    fn session_links_must_stay_on_the_graph_host_and_the_record() {
        let graph = client("https://graph.microsoft.com");
        assert!(graph
            .call_record_link("https://graph.microsoft.com/v1.0/communications/callRecords/x/sessions?$skiptoken=1", "x")
            .is_ok());
        assert!(graph
            .call_record_link(
                "https://graph.microsoft.com/v1.0/communications/callRecords/AB-c/sessions",
                "ab-C"
            )
            .is_ok());
        for wrong in [
            "https://evil.example/v1.0/communications/callRecords/x/sessions",
            "https://graph.microsoft.com/v1.0/communications/callRecords/y/sessions",
            "https://graph.microsoft.com/v1.0/communications/callRecords/x",
            "https://graph.microsoft.com/v1.0/users?$top=999",
            "https://graph.microsoft.com/v1.0/communications/callRecords/x/sessions/extra",
            "https://graph.microsoft.com/v1.0/communications/callRecords/ax/sessions",
        ] {
            assert!(graph.call_record_link(wrong, "x").is_err(), "{wrong}");
        }
    }
}
