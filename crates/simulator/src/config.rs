//! How a simulated tenant is set up: its identities and credentials, its traffic and
//! faults, and the demo tenant's values that `--demo`, `simulate`, the tests and the
//! benchmarks share.

use std::time::Duration;

use tve_clock::Clock;

use crate::direct_routing::DEMO_TRUNKS;
use crate::faults::{Faults, GraphLimits};
use crate::traffic::Traffic;

/// Tenant id of the demo tenant.
pub const DEMO_TENANT_ID: &str = "00000000-0000-0000-0000-00000000d3e0";
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
            .finish()
    }
}
