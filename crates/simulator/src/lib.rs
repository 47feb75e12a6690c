//! A simulated tenant, or a provider's many: the project's test double for Microsoft
//! Graph's call logs, its call quality records and the Microsoft Entra ID token endpoint,
//! served over real HTTP on a local listener.
//!
//! It backs `--demo` (live, realistic traffic for trying dashboards), the `simulate`
//! subcommand, and the integration tests that compare the exporter's metrics with the
//! simulator's [`GroundTruth`]. It follows `shared/reference/graph-call-logs.md`: the same
//! paths, parameters, paging, error bodies, throttling and token errors as the real
//! services, with faults that can be switched on at start or while running (through
//! [`SimTenantView::set_faults`] or `PUT /_sim/faults`).
//!
//! # Many tenants
//!
//! One listener can serve a managed-service provider's customers ([`SimConfig::tenants`],
//! [`SimTenantSpec`], `--simulate.tenants N` through [`provider_tenants`]) beside the home
//! tenant, as `graph-call-logs.md` ("Many tenants with one application") describes them.
//! The application of [`SimConfig::client_id`] (secret, certificates, federated
//! credentials) is the multi-tenant application: the token endpoint's tenant segment
//! selects the tenant (an unknown one answers `AADSTS90002`), a tenant that has not
//! consented answers `AADSTS700016`, and one that consented without the permission
//! ([`Consent::NoPermission`]) issues tokens without `CallRecords.Read.All`, which Graph
//! answers 403 `Authorization_RequestDenied`. A tenant may have an application of its own,
//! valid there alone. Tokens remember their tenant, and Graph serves a request from the
//! logs of the tenant its token was issued for; each tenant has its own logs, live traffic,
//! limits (Graph's are per app per tenant), faults, statistics and ground truth
//! ([`SimHandle::tenant`] gives its [`SimTenantView`]; `SimHandle` itself dereferences to
//! the home tenant's). Customers' trunks are the demo's hosts in a domain of their own
//! (`sbc01.northwind.com`), unless two are given the same domain to share an SBC.
//!
//! # Graph's limits
//!
//! The tenant throttles the call-log functions as Graph documents it ([`GraphLimits`],
//! `Faults::limits`; the demo tenant and the `--simulate.*-rate-limit` flags default to
//! [`GraphLimits::DOCUMENTED`]): 50 requests per 60 s per function, 200 per 60 s for the
//! app's requests to all functions together, and 1,000 per 60 s for the whole tenant,
//! which its other apps share ([`GraphLimits::other_apps`], a steady load spread evenly
//! over time, none by default). The windows slide over the tenant's clock time, not real
//! time: on a clock sped up N times (benchmarks run hours in minutes) the limits allow N
//! times as many requests per real second. A request over any limit gets 429 with a
//! Retry-After (whole seconds until there is room again) and a message naming the limit;
//! throttled requests count against the limits, as Graph's do, and requests sent while a
//! Retry-After is pending are counted as violations ([`SimStats`]).
//!
//! Call records (`/communications/callRecords/{id}`, the call quality of an established
//! Direct Routing call, whose row's `correlationId` is the record's id) have a limit of
//! their own, [`GraphLimits::call_records`] (documented: 1,500 per 20 s per app per
//! tenant, `--simulate.call-record-rate-limit`): they count in no call-log window, nor do
//! call-log requests count in theirs, and each has its own Retry-After. The "every Nth"
//! faults count them as they count every data request.
//!
//! # Call records
//!
//! Every established Direct Routing call has one, in live traffic, history and scenarios
//! alike, published at its end plus uniform(delay, 4 × delay) of
//! `Faults::call_record_delay` and never before its row is visible (a late row's after its
//! release), but for the share `Faults::unpublished_call_records`, never published; sessions
//! come `Faults::call_record_session_page` at a time (60 by default), then through
//! `sessions@odata.nextLink`. Until published, never published, unknown or older than 30
//! days a record answers 404. Most audio is good; a trunk's calls drawn while it fails
//! (`Faults::failing_trunk`, or the legacy SBC's quarter hour) have poor audio; some
//! streams report nothing, some segments are service to service or client to client, some
//! media video, and network and device fields carry personal data, as Graph's do.
//! [`SimTenantView::call_records`] and [`SimTenantView::call_record_fetches`] are their
//! ground truth (`GET /_sim/call-records`).
//!
//! # Layout
//!
//! Generic parts, which know no particular call-log function:
//! - `config`, `traffic`, `faults`: how a tenant is set up (the public settings);
//! - `handle`: the running tenants ([`SimHandle`], [`SimTenantView`]) and the routing of
//!   requests to the tenant they are for;
//! - `tenant`: the state the services share, the list of call logs a tenant serves, and
//!   the `Provider` that finds a request's tenant; `provider`: the customers
//!   `--simulate.tenants` makes;
//! - `graph`: the simulated Graph (request parsing, paging, throttling, error bodies);
//! - `gate`: the fault state and the rate limits' windows every data request passes;
//! - `call_log`: what Graph needs of a call-log function; `store`: rows kept by time,
//!   found by a key where they have one (a call's correlation id);
//! - `token`: the simulated Entra ID (secrets, client assertions, managed identity,
//!   consent); `issued`: the tokens it issued and their tenants, which Graph accepts;
//! - `control`: the `/_sim/` endpoints; `stats`, `time`, `ids`, `http`: shared pieces.
//!
//! Call records: `call_records` (when a record is published, the random model of its
//! sessions and streams, its JSON, and the count of fetches), derived on request from a
//! Direct Routing row, the tenant's seed and the correlation id, so nothing is stored per
//! record; Graph serves them from `graph::call_record`.
//!
//! Per call-log function: `direct_routing` (`getDirectRoutingCalls`: trunks, the call
//! model, row JSON, ground truth) and `pstn` (`getPstnCalls`: Calling Plan and Operator
//! Connect offices, call types, licences, charges; [`PstnGroundTruth`]). Shared by both:
//! `numbers` (the countries the tenant calls, E.164 ranges and masking) and `toll_fraud`
//! (the fault that calls [`TOLL_FRAUD_COUNTRY`] over both).
//!
//! # Traffic
//!
//! Live traffic draws Direct Routing calls at `calls_per_day` and PSTN calls on top of
//! them at `Faults::pstn_calls_per_day` (`--simulate.pstn-calls-per-day`), by default
//! [`PSTN_SHARE`] of `calls_per_day`. Each log draws from a random stream of its own, so
//! adding one changes nothing in the other. Every country of the normal traffic appears in
//! the history and within the first minute of live traffic (a roster of short calls), so
//! that only the toll fraud (`Faults::toll_fraud`, `--simulate.toll-fraud`) brings a new
//! one. A scenario gives each log its counts of preexisting, late and malformed rows.
//!
//! # Adding a call-log function
//!
//! A further function is one module like `direct_routing` and `pstn`: a
//! `call_log::Function` naming the function, its row type and its window parameters; a
//! row type implementing `store::StoredRow` (start, id, visibility) and
//! `call_log::LogRow` (its JSON); and the code that draws its rows from a [`Traffic`]. Its
//! log, a `call_log::StoredLog` of those rows, becomes a field of `tenant::Tenant` listed
//! in `Tenant::call_logs`, and `handle` builds it at bind (and steps its live traffic).
//! Graph then parses, pages, throttles and links requests for it with no change, and
//! tokens are untouched. Its ground truth gets `SimHandle` methods of its own, as
//! [`PstnGroundTruth`] has beside Direct Routing's [`GroundTruth`].

#![forbid(unsafe_code)]

mod args;
mod call_log;
mod call_records;
mod config;
mod control;
mod direct_routing;
mod faults;
mod gate;
mod graph;
mod handle;
mod http;
mod ids;
mod issued;
mod numbers;
mod provider;
mod pstn;
mod stats;
mod store;
mod tenant;
mod time;
mod token;
mod toll_fraud;
mod traffic;

#[cfg(test)]
mod tests;

pub use args::{SimulationArgs, DEMO_CALL_RECORD_DELAY};
pub use call_records::{CallRecordFetches, SimCallRecord};
pub use config::{
    AppCredentials, Consent, FederatedCredential, ManagedIdentities, SimConfig, SimIdentity,
    SimTenantSpec, DEMO_CALLS_PER_DAY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_HISTORY,
    DEMO_MANAGED_IDENTITY_ID, DEMO_TENANT_ID, DEMO_TENANT_NAME, FEDERATED_AUDIENCE,
    QUICK_DEMO_HISTORY,
};
pub use direct_routing::{trunk_fqdns, GroundTruth, TruthRow, DEMO_TRUNKS, MAX_TRUNKS};
pub use faults::{Faults, GraphLimits, RateLimit};
pub use handle::{SimHandle, SimTenantInfo, SimTenantView};
pub use numbers::{TOLL_FRAUD_CALLING_CODE, TOLL_FRAUD_COUNTRY, TOLL_FRAUD_COUNTRY_NAME};
pub use provider::provider_tenants;
pub use pstn::{PstnGroundTruth, PstnTruthRow, PSTN_SHARE};
pub use stats::{ServedRow, SimStats};
pub use token::{IMDS_TOKEN_PATH, JWT_BEARER};
pub use traffic::{Scenario, Traffic};
