//! Call records over Graph: `GET /v1.0/communications/callRecords/{id}` with
//! `$expand=sessions($expand=segments)`, and the session pages its
//! `sessions@odata.nextLink` leads to (`.../callRecords/{id}/sessions?$expand=segments&$skiptoken=N`).
//!
//! These requests pass the same token checks and injected faults as the call-log
//! functions (`pass_faults`), but Graph limits them apart: they count in the call
//! records' window alone (`Gate::admit_call_record`). A record not published yet, never
//! published, unknown or older than 30 days answers 404 `NotFound`.

use hyper::body::Incoming;
use hyper::Request;
use serde_json::{Map, Value};

use super::reply::{GraphError, Reply};
use super::request::{strip_prefix_ignore_case, CALL_RECORDS_PATH};
use super::{pass_faults, throttled, truncated};
use crate::call_records::{publication, record_json, retained, Publication, RecordContext};
use crate::gate::Admission;
use crate::http::percent_decode;
use crate::ids::{parse_uuid, uuid};
use crate::tenant::Tenant;

/// A request for a call record or for a page of its sessions.
pub(super) struct Target {
    /// The id as the path gives it.
    id: String,
    /// Whether it asks for the `sessions` of the record (a page after the first).
    sessions: bool,
}

/// The call record a path names, if it names one rather than a call-log function.
pub(super) fn target(path: &str) -> Option<Target> {
    let decoded = percent_decode(path)?;
    let rest = strip_prefix_ignore_case(&decoded, CALL_RECORDS_PATH)?;
    if rest.contains('(') {
        return None;
    }
    let (id, sessions) = match rest.split_once('/') {
        None => (rest, false),
        Some((id, tail)) if tail.eq_ignore_ascii_case("sessions") => (id, true),
        Some(_) => return None,
    };
    (!id.is_empty()).then(|| Target {
        id: id.to_owned(),
        sessions,
    })
}

/// Answers a call-record request; returns the answer with the delay to apply first.
pub(super) fn answer(
    tenant: &Tenant,
    request: &Request<Incoming>,
    target: &Target,
    now_ms: i64,
) -> (Reply, u64) {
    let admission = tenant.gate.lock().admit_call_record(now_ms);
    {
        let mut stats = tenant.stats();
        stats.data_requests += 1;
        stats.call_record_requests += 1;
    }
    let delay_ms = admission.faults.slow_page_ms;
    if let Some(error) = throttled(tenant, &admission, now_ms) {
        tenant.stats().call_record_throttled += 1;
        return (Reply::Error(error), delay_ms);
    }
    let reply = match checked_answer(tenant, request, target, &admission, now_ms) {
        Ok(reply) => reply,
        Err(error) => {
            let mut stats = tenant.stats();
            match error.status {
                401 => stats.unauthorized_responses += 1,
                403 => stats.forbidden_responses += 1,
                404 => stats.call_record_not_found += 1,
                429 => {
                    stats.throttled_responses += 1;
                    stats.call_record_throttled += 1;
                }
                503 => stats.unavailable_responses += 1,
                _ => stats.bad_requests += 1,
            }
            Reply::Error(error)
        }
    };
    (reply, delay_ms)
}

fn checked_answer(
    tenant: &Tenant,
    request: &Request<Incoming>,
    target: &Target,
    admission: &Admission,
    now_ms: i64,
) -> Result<Reply, GraphError> {
    let faults = &admission.faults;
    pass_faults(tenant, request, admission.request_number, faults, now_ms)?;
    let query = RecordQuery::parse(request.uri().query(), target.sessions)?;
    let not_found = || {
        GraphError::new(
            404,
            "NotFound",
            format!("The call record '{}' was not found.", target.id),
        )
    };
    let id = parse_uuid(&target.id).ok_or_else(not_found)?;
    let (row, oldest_start) = {
        let store = tenant.direct_routing.read();
        (store.find(id).cloned(), store.first_start())
    };
    let row = row
        .filter(|row| retained(row.start, now_ms))
        .ok_or_else(not_found)?;
    let publication = publication(&row, faults, tenant.seed);
    let published = publication.is_published(now_ms);
    if !target.sessions {
        tenant.call_record_fetches.lock().count(
            id,
            row.start,
            published,
            now_ms,
            oldest_start.unwrap_or(row.start),
        );
    }
    let published_ms = match publication {
        Publication::At(at) if published => at,
        _ => return Err(not_found()),
    };
    let record = record_json(
        &row,
        &RecordContext {
            seed: tenant.seed,
            names: tenant.direct_routing.names(),
            base_url: &tenant.base_url,
            last_modified_ms: published_ms,
        },
    );
    let link_base = faults
        .foreign_next_link
        .as_deref()
        .map(|base| base.trim_end_matches('/'))
        .filter(|base| !base.is_empty());
    let paged = page(
        record,
        &Paging {
            id: &uuid(id),
            query: &query,
            sessions_path: target.sessions,
            page_size: faults.call_record_session_page(),
            base_url: &tenant.base_url,
            link_base: link_base.unwrap_or(&tenant.base_url),
        },
    );
    let body = paged.body.to_string();
    if let Some(truncated) = truncated(tenant, &body, admission.request_number, faults) {
        return Ok(truncated);
    }
    let mut stats = tenant.stats();
    stats.call_record_pages_served += 1;
    if paged.next_link && link_base.is_some() {
        stats.foreign_next_links_served += 1;
    }
    Ok(Reply::Page(body))
}

/// What a call-record request's query asks for.
struct RecordQuery {
    sessions: bool,
    segments: bool,
    /// Sessions to pass over (`$skiptoken` of a session page).
    skip: usize,
}

impl RecordQuery {
    /// The query of a record request, or of a session page (`sessions_path`), whose
    /// sessions come whatever `$expand` says.
    fn parse(query: Option<&str>, sessions_path: bool) -> Result<RecordQuery, GraphError> {
        let mut parsed = RecordQuery {
            sessions: sessions_path,
            segments: false,
            skip: 0,
        };
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if key.eq_ignore_ascii_case("$expand") {
                let value = value.to_ascii_lowercase();
                parsed.sessions |= value.contains("sessions");
                parsed.segments |= value.contains("segments");
            } else if key.eq_ignore_ascii_case("$skiptoken") {
                parsed.skip = value.trim().parse().map_err(|_| {
                    GraphError::bad_request(format!(
                        "The skip token '{value}' is not valid; follow sessions@odata.nextLink as given."
                    ))
                })?;
            }
        }
        Ok(parsed)
    }
}

/// How a record's sessions are paged.
struct Paging<'a> {
    id: &'a str,
    query: &'a RecordQuery,
    sessions_path: bool,
    page_size: usize,
    base_url: &'a str,
    /// Where nextLinks point (the tenant, or `Faults::foreign_next_link`).
    link_base: &'a str,
}

struct Paged {
    body: Value,
    next_link: bool,
}

/// The record (or session page) a request gets from the whole `record`.
fn page(record: Value, paging: &Paging<'_>) -> Paged {
    let Value::Object(mut record) = record else {
        return Paged {
            body: record,
            next_link: false,
        };
    };
    let mut sessions = match record.remove("sessions") {
        Some(Value::Array(sessions)) => sessions,
        _ => Vec::new(),
    };
    if !paging.query.sessions {
        return Paged {
            body: Value::Object(record),
            next_link: false,
        };
    }
    if !paging.query.segments {
        for session in &mut sessions {
            if let Value::Object(session) = session {
                session.remove("segments");
            }
        }
    }
    let skip = paging.query.skip.min(sessions.len());
    let end = skip.saturating_add(paging.page_size).min(sessions.len());
    let next_link = (end < sessions.len()).then(|| {
        format!(
            "{}{CALL_RECORDS_PATH}{}/sessions?$expand=segments&$skiptoken={end}",
            paging.link_base, paging.id
        )
    });
    let sessions: Vec<Value> = sessions.drain(skip..end).collect();
    let has_next = next_link.is_some();
    let body = if paging.sessions_path {
        let mut page = Map::new();
        page.insert(
            "@odata.context".to_owned(),
            Value::String(format!(
                "{}/v1.0/$metadata#communications/callRecords('{}')/sessions(segments())",
                paging.base_url, paging.id
            )),
        );
        page.insert("value".to_owned(), Value::Array(sessions));
        if let Some(link) = next_link {
            page.insert("@odata.nextLink".to_owned(), Value::String(link));
        }
        Value::Object(page)
    } else {
        record.insert("sessions".to_owned(), Value::Array(sessions));
        if let Some(link) = next_link {
            record.insert("sessions@odata.nextLink".to_owned(), Value::String(link));
        }
        Value::Object(record)
    };
    Paged {
        body,
        next_link: has_next,
    }
}
