//! How a simulated tenant is set up: its identities and credentials, its traffic and
//! faults, the customer tenants a simulated provider serves beside it ([`SimTenantSpec`]),
//! and the demo tenant's values that `--demo`, `simulate`, the tests and the benchmarks
//! share.

use std::time::Duration;

use serde::Serialize;
use tve_clock::Clock;

use crate::direct_routing::DEMO_TRUNKS;
use crate::faults::{Faults, GraphLimits};
use crate::traffic::Traffic;

/// Tenant id of the demo tenant.
pub const DEMO_TENANT_ID: &str = "00000000-0000-0000-0000-00000000d3e0";
/// Name of the demo tenant (the home tenant of a simulated provider): its trunks are
/// Contoso's.
pub const DEMO_TENANT_NAME: &str = "contoso";
/// Application (client) id registered in the demo tenant.
pub const DEMO_CLIENT_ID: &str = "00000000-0000-0000-0000-0000000c11e7";
/// Client id of the demo VM's system-assigned managed identity.
pub const DEMO_MANAGED_IDENTITY_ID: &str = "00000000-0000-0000-0000-0000000a11d0";
/// Client secret of the demo application. Not a secret: the demo tenant exists only locally.
pub const DEMO_CLIENT_SECRET: &str = "demo~client~secret~not~for~production";

/// Calls a day in the demo tenant: a large enterprise, so that even on a weekend night a
/// few calls a second arrive and a newcomer sees numbers move within seconds.
pub const DEMO_CALLS_PER_DAY: f64 = 300_000.0;
/// How much history the simulated tenant holds at start: a bit over three days, so that
/// every lookback the exporter may use finds rows and rows arrive up to two days late.
pub const DEMO_HISTORY: Duration = Duration::from_secs(74 * 3600);
/// History of the `--demo` tenant: shorter, so that the exporter's first read of the
/// lookback takes a fraction of a second, as if the tenant had started its calls then.
pub const QUICK_DEMO_HISTORY: Duration = Duration::from_secs(12 * 3600);

/// The audience Azure Workload Identity puts in federated tokens.
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// How a simulated tenant is set up.
#[derive(Clone)]
pub struct SimConfig {
    /// Tenant accepted at the token endpoint (path segment).
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Seed of all randomness: the same seed gives the same calls, ids and tokens.
    pub seed: u64,
    pub traffic: Traffic,
    pub faults: Faults,
    /// Rows per page; Graph uses 1,000.
    pub page_size: usize,
    /// Time for visibility, token expiry, the rate limits' windows and live traffic.
    pub clock: Clock,
    /// Credentials accepted besides the client secret, and the managed identities.
    pub identity: SimIdentity,
    /// Customer tenants served beside the home tenant (`tenant_id`) from the same address,
    /// as a managed-service provider's: the application of `client_id` is a multi-tenant
    /// application there. Empty: the home tenant alone.
    pub tenants: Vec<SimTenantSpec>,
}

/// A customer tenant of a simulated provider.
#[derive(Clone, Debug)]
pub struct SimTenantSpec {
    /// Tenant id (a GUID), the token endpoint's path segment.
    pub id: String,
    /// Short customer name, usable as a label value (`contoso`); the tenant also answers to
    /// `NAME.onmicrosoft.com` at the token endpoint.
    pub name: String,
    /// Direct Routing calls a day (live traffic); PSTN volume follows as the home tenant's
    /// does (`Faults::pstn_calls_per_day`, else a fifth of this). A scenario ignores it.
    pub calls_per_day: f64,
    /// Whether the multi-tenant application may get tokens here.
    pub consent: Consent,
    /// An application registered in this tenant alone: valid here, `AADSTS700016`
    /// elsewhere. Its tokens carry `CallRecords.Read.All`.
    pub own_app: Option<AppCredentials>,
    /// The domain of the tenant's SBCs: its trunks are the demo's hosts in it
    /// (`sbc01.DOMAIN`, ...). None: `NAME.com`. Two tenants given the same domain share
    /// their trunk FQDNs, as customers of one hosted SBC do.
    pub trunk_domain: Option<String>,
    /// Mixed into the seed, so that tenants draw different calls.
    pub seed_offset: u64,
}

/// What a customer tenant's administrator granted the multi-tenant application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// Admin consent with `CallRecords.Read.All`.
    Granted,
    /// No consent: token requests answer `AADSTS700016` (application not found).
    NotConsented,
    /// Consent without `CallRecords.Read.All`: tokens are issued, Graph answers 403
    /// `Authorization_RequestDenied`.
    NoPermission,
}

/// What the simulated Entra ID knows beyond the client secret.
#[derive(Clone, Debug, Default)]
pub struct SimIdentity {
    /// Certificates (DER) uploaded to the application: client assertions must be signed
    /// with one of their keys and name it by thumbprint.
    pub certificates: Vec<Vec<u8>>,
    /// Federated identity credentials of the application (workload identity).
    pub federated: Vec<FederatedCredential>,
    /// Identities the simulated VM's metadata service
    /// (`GET /metadata/identity/oauth2/token`) hands tokens to; none by default.
    pub managed_identity: Option<ManagedIdentities>,
    /// The Graph resource tokens are issued for (the scope's origin). Default: the
    /// tenant's own base URL. Another value issues tokens for a Graph elsewhere, e.g. one
    /// that cannot be reached.
    pub graph_resource: Option<String>,
}

/// A federated identity credential of the application: which external tokens it trusts.
#[derive(Clone, Debug)]
pub struct FederatedCredential {
    /// The cluster's OIDC issuer URL.
    pub issuer: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub subject: String,
    /// Usually [`FEDERATED_AUDIENCE`].
    pub audience: String,
    /// The issuer's signing key (PKCS#1 `RSAPublicKey` DER), which Entra ID would fetch
    /// from the issuer's JWKS.
    pub issuer_key: Vec<u8>,
}

/// The identities the simulated VM has, as its metadata service hands them out.
#[derive(Clone, Debug, Default)]
pub struct ManagedIdentities {
    /// Client id of the system-assigned identity, when it is switched on.
    pub system_assigned: Option<String>,
    /// Client ids of the user-assigned identities.
    pub user_assigned: Vec<String>,
}

impl SimConfig {
    /// Live realistic traffic for the demo: [`DEMO_CALLS_PER_DAY`] with [`DEMO_HISTORY`]
    /// pre-generated, served to the [`DEMO_CLIENT_ID`] of [`DEMO_TENANT_ID`] within Graph's
    /// documented limits ([`GraphLimits::DOCUMENTED`]).
    pub fn demo(clock: Clock) -> Self {
        SimConfig {
            tenant_id: DEMO_TENANT_ID.to_owned(),
            client_id: DEMO_CLIENT_ID.to_owned(),
            client_secret: DEMO_CLIENT_SECRET.to_owned(),
            seed: 0x7ea5_d3e0,
            traffic: Traffic::Live {
                calls_per_day: DEMO_CALLS_PER_DAY,
                history: DEMO_HISTORY,
                trunks: DEMO_TRUNKS,
            },
            faults: Faults {
                limits: GraphLimits::DOCUMENTED,
                ..Faults::default()
            },
            page_size: 1000,
            clock,
            // So that managed identity can be tried against `simulate` too.
            identity: SimIdentity {
                managed_identity: Some(ManagedIdentities {
                    system_assigned: Some(DEMO_MANAGED_IDENTITY_ID.to_owned()),
                    user_assigned: Vec::new(),
                }),
                ..SimIdentity::default()
            },
            tenants: Vec::new(),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    // Written by hand so the client secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("seed", &self.seed)
            .field("traffic", &self.traffic)
            .field("faults", &self.faults)
            .field("page_size", &self.page_size)
            .field("clock", &self.clock)
            .field("identity", &self.identity)
            .field("tenants", &self.tenants)
            .finish()
    }
}

/// An application's client id and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for AppCredentials {
    // Written by hand so the secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}
