//! The customers of a simulated managed-service provider (`--simulate.tenants N`): tenants
//! of different sizes with readable names, drawn from the seed, among them the cases a
//! provider meets in practice — a customer that has not consented, one that consented
//! without the permission, two that call over the same SBC and one with an application of
//! its own.

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::config::{AppCredentials, Consent, SimTenantSpec};
use crate::ids::{random_uuid, uuid};

/// Names of the provider's customers after the home tenant (`DEMO_TENANT_NAME`); further
/// ones are `customer-NN`. Fabrikam is not among them: the home tenant's legacy SBC is
/// `sbc-legacy.fabrikam.com`, and only the tenant meant to share an SBC should.
const CUSTOMER_NAMES: [&str; 11] = [
    "northwind",
    "adatum",
    "litware",
    "tailspin",
    "woodgrove",
    "proseware",
    "wingtip",
    "relecloud",
    "lamna",
    "trey",
    "alpineski",
];

/// The fewest calls a day a generated customer makes (unless the home tenant makes fewer).
const SMALLEST_CUSTOMER_CALLS: f64 = 300.0;

/// The domain of the home tenant's SBCs, which the customer [`provider_tenants`] gives
/// index 1 shares.
const HOME_TRUNK_DOMAIN: &str = "contoso.com";

/// Tenants 1 to `n - 1` of a provider with `n` customers whose home tenant (tenant 0, the
/// `SimConfig`'s own) makes `calls_per_day` Direct Routing calls a day; empty for `n` ≤ 1.
///
/// Customer k makes `calls_per_day / (k + 1)` calls a day, at least 300 (or the home
/// tenant's volume if that is lower). With `n` ≥ 3, the last customer has not consented to
/// the application ([`Consent::NotConsented`]), the one before it consented without
/// `CallRecords.Read.All` ([`Consent::NoPermission`]), and customer 1 calls over the home
/// tenant's SBCs (`sbc01.contoso.com`, ...), so that two tenants share trunk FQDNs. With
/// `n` ≥ 5, customer 2 also has an application of its own (`own_app`). The same `n` and
/// `seed` give the same tenants.
pub fn provider_tenants(n: usize, calls_per_day: f64, seed: u64) -> Vec<SimTenantSpec> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7e4a_47c5_0000_0001);
    let smallest = SMALLEST_CUSTOMER_CALLS.min(calls_per_day);
    (1..n)
        .map(|index| {
            let name = CUSTOMER_NAMES
                .get(index - 1)
                .map_or_else(|| format!("customer-{index:02}"), |name| (*name).to_owned());
            let consent = if n >= 3 && index == n - 1 {
                Consent::NotConsented
            } else if n >= 3 && index == n - 2 {
                Consent::NoPermission
            } else {
                Consent::Granted
            };
            let id = uuid(random_uuid(&mut rng));
            let own_app_id = uuid(random_uuid(&mut rng));
            let own_app = (n >= 5 && index == 2).then(|| AppCredentials {
                client_id: own_app_id,
                client_secret: format!("{name}~own~app~secret~not~for~production"),
            });
            SimTenantSpec {
                id,
                calls_per_day: (calls_per_day / (index + 1) as f64).max(smallest),
                consent,
                own_app,
                trunk_domain: (n >= 3 && index == 1).then(|| HOME_TRUNK_DOMAIN.to_owned()),
                seed_offset: index as u64,
                name,
            }
        })
        .collect()
}
