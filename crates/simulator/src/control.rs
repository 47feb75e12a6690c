//! The simulator's own endpoints under `/_sim/`, so that a separately running `simulate`
//! process can be observed and driven like an in-process `SimHandle`, and the page at `/`
//! that says what this server is. Each endpoint acts on one tenant of the provider, named
//! by the `tenant` query parameter (its id or name; default: the home tenant).

use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::{Method, Request};
use serde::Serialize;

use crate::faults::Faults;
use crate::http::read_body;
use crate::tenant::{Provider, Tenant};
use crate::traffic::Mode;
use exporter_web::serve::{response, HttpResponse};

const MAX_FAULTS_BYTES: usize = 64 * 1024;

const INDEX: &str = "\
teams-voice-exporter simulated tenant

A stand-in for Microsoft Graph's Direct Routing and PSTN call logs and the Microsoft Entra
ID token endpoint, for demonstrations and tests. Point the exporter's Graph endpoint and authority
host at this server's base URL.

Simulated services:
  POST /{tenant}/oauth2/v2.0/token      client-credentials grant, for any tenant served here
  GET  /v1.0/communications/callRecords/getDirectRoutingCalls(fromDateTime=..,toDateTime=..)
  GET  /v1.0/communications/callRecords/getPstnCalls(fromDateTime=..,toDateTime=..)
  GET  /v1.0/communications/callRecords/{correlationId}?$expand=sessions($expand=segments)
                                        call quality of an established Direct Routing call

Control (each takes ?tenant=ID|NAME, default: the home tenant):
  GET  /_sim/tenants                    the tenants served here: id, name, consent
  GET  /_sim/stats                      requests, pages, faults served (JSON)
  GET  /_sim/ground-truth[?since=RFC3339]
                                        rows the exporter must have counted (JSON);
                                        `since` applies to live traffic (default: start)
  GET  /_sim/ground-truth?started_from=RFC3339
                                        every well-formed visible row whose call
                                        started then or later (JSON)
  GET  /_sim/pstn-ground-truth[?since=RFC3339|?started_from=RFC3339]
                                        the same for the PSTN call log (JSON)
  GET  /_sim/call-records[?started_from=RFC3339]
                                        every call record the tenant keeps: id,
                                        trunk_fqdn, published_at (null: never), the
                                        whole record (JSON; large for a busy tenant)
  POST /_sim/release                    start the late arrivals of a scenario
  GET  /_sim/faults                     current faults and limits (JSON)
  PUT  /_sim/faults                     replace them (JSON body, missing fields = off)

Graph's limits, over the tenant's clock (`limits` in /_sim/faults; `null` = off):
  per_function  requests to one call-log function        (Graph: 50 per 60 s)
  per_app       this app's requests to all of them        (Graph: 200 per 60 s)
  per_tenant    all apps of the tenant                    (Graph: 1,000 per 60 s)
  other_apps    steady load of the tenant's other apps on per_tenant (none by default)
  call_records  call records, apart from the above        (Graph: 1,500 per 20 s)
Each is {\"requests\": N, \"window_secs\": S}. Requests over a limit get 429 with
Retry-After, and count against the limits all the same.

Traffic knobs in /_sim/faults: toll_fraud (true/false), toll_fraud_after_secs (after
start; null = 120), pstn_calls_per_day (null = a fifth of the Direct Routing volume).
Call records in /_sim/faults: call_record_delay ({\"secs\": S, \"nanos\": 0}; records appear
1-4 times that after the call), unpublished_call_records (share never published),
call_record_session_page (sessions a page; 0 = 60).
";

pub(crate) async fn handle(provider: &Provider, request: Request<Incoming>) -> HttpResponse {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let tenant = match query_param(request.uri().query(), "tenant") {
        None => provider.home(),
        Some(key) => match provider.by_id_or_name(&key) {
            Some(tenant) => tenant,
            None => {
                return text(
                    404,
                    format!("no simulated tenant '{key}'; see /_sim/tenants"),
                )
            }
        },
    };
    match (path.as_str(), &method) {
        ("/", &Method::GET) => response(200, "text/plain; charset=utf-8", INDEX),
        ("/_sim/tenants", &Method::GET) => {
            let tenants: Vec<_> = provider
                .all()
                .iter()
                .map(|tenant| {
                    serde_json::json!({
                        "id": tenant.tenant_id,
                        "name": tenant.name,
                        "consent": tenant.consent,
                        "own_app_client_id": tenant.own_app.as_ref().map(|own| &own.client_id),
                    })
                })
                .collect();
            json(200, &tenants)
        }
        ("/_sim/stats", &Method::GET) => json(200, &tenant.stats().clone()),
        ("/_sim/ground-truth", &Method::GET) => ground_truth(tenant, request.uri().query(), false),
        ("/_sim/pstn-ground-truth", &Method::GET) => {
            ground_truth(tenant, request.uri().query(), true)
        }
        ("/_sim/call-records", &Method::GET) => {
            match time_param(request.uri().query(), "started_from") {
                Ok(from) => {
                    let from = from.map(|from| crate::time::ceil_ticks(from).unwrap_or(i64::MAX));
                    json(200, &tenant.call_records(from))
                }
                Err(message) => text(400, message),
            }
        }
        ("/_sim/release", &Method::POST) => {
            let released = tenant.release();
            let mode = match tenant.mode {
                Mode::Live => "live",
                Mode::Scenario => "scenario",
            };
            json(
                200,
                &serde_json::json!({ "released": released, "mode": mode }),
            )
        }
        ("/_sim/faults", &Method::GET) => json(200, &tenant.gate.lock().faults.clone()),
        ("/_sim/faults", &Method::PUT) => {
            let Some(body) = read_body(request.into_body(), MAX_FAULTS_BYTES).await else {
                return text(413, "the faults document is too large".to_owned());
            };
            match serde_json::from_slice::<Faults>(&body) {
                Ok(faults) => {
                    tenant.set_faults(faults.clone());
                    json(200, &faults)
                }
                Err(error) => text(400, format!("invalid faults document: {error}")),
            }
        }
        (
            "/"
            | "/_sim/tenants"
            | "/_sim/stats"
            | "/_sim/ground-truth"
            | "/_sim/pstn-ground-truth"
            | "/_sim/call-records"
            | "/_sim/release"
            | "/_sim/faults",
            _,
        ) => text(405, format!("{method} is not allowed on {path}")),
        _ => text(404, format!("no simulator endpoint at {path}; see /")),
    }
}

/// A log's ground truth (`pstn`: the PSTN log's, else Direct Routing's) as the query's
/// `since` or `started_from` asks for it.
fn ground_truth(tenant: &Tenant, query: Option<&str>, pstn: bool) -> HttpResponse {
    match (
        time_param(query, "since"),
        time_param(query, "started_from"),
    ) {
        (Ok(Some(_)), Ok(Some(_))) => text(400, "give since or started_from, not both".to_owned()),
        (Ok(_), Ok(Some(from))) if pstn => json(200, &tenant.pstn_ground_truth_started_from(from)),
        (Ok(_), Ok(Some(from))) => json(200, &tenant.ground_truth_started_from(from)),
        (Ok(since), Ok(None)) if pstn => json(200, &tenant.pstn_ground_truth(since)),
        (Ok(since), Ok(None)) => json(200, &tenant.ground_truth(since)),
        (Err(message), _) | (_, Err(message)) => text(400, message),
    }
}

/// The query parameter `name`, decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The optional time parameter `name` (`since`, `started_from`) of a ground-truth request.
fn time_param(query: Option<&str>, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    let Some(value) = query_param(query, name) else {
        return Ok(None);
    };
    // An unescaped `+00:00` arrives as ` 00:00` after form decoding.
    DateTime::parse_from_rfc3339(&value)
        .or_else(|_| DateTime::parse_from_rfc3339(&value.replace(' ', "+")))
        .map(|time| Some(time.with_timezone(&Utc)))
        .map_err(|error| format!("{name} must be an RFC 3339 timestamp: {error}"))
}

fn json(status: u16, value: &impl Serialize) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(body) => response(status, "application/json", body),
        Err(error) => text(500, format!("cannot serialize: {error}")),
    }
}

fn text(status: u16, message: String) -> HttpResponse {
    response(status, "text/plain; charset=utf-8", message + "\n")
}
