//! The token cache against the simulated Entra ID token endpoint: one shared refresh for
//! concurrent callers, refresh before expiry, and errors that name the AADSTS code.

use std::sync::Arc;
use std::time::Duration;

use teams_voice_exporter::source::auth::{AuthError, Credential, TokenCache};
use teams_voice_exporter::source::metrics::SourceMetrics;
use tve_clock::Clock;
use tve_simulator::{Faults, Scenario, SimConfig, SimHandle, Traffic};

const TENANT: &str = "aaaaaaaa-0000-0000-0000-000000000001";
const CLIENT: &str = "bbbbbbbb-0000-0000-0000-000000000002";
const SECRET: &str = "auth~test~secret";

async fn simulator(token_lifetime_secs: u64) -> SimHandle {
    let config = SimConfig {
        tenants: Vec::new(),
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        client_secret: SECRET.into(),
        seed: 1,
        traffic: Traffic::Scenario(Scenario::default()),
        faults: Faults {
            token_lifetime_secs,
            ..Faults::default()
        },
        page_size: 1000,
        clock: Clock::system(),
        identity: Default::default(),
    };
    SimHandle::bind(config, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap()
}

fn cache(sim: &SimHandle, secret: &str) -> Arc<TokenCache> {
    let base: reqwest::Url = sim.base_url().parse().unwrap();
    let metrics = SourceMetrics::register(&prometheus::Registry::new()).unwrap();
    let credential = Credential::ClientSecret {
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        secret: secret.to_owned().into(),
    };
    Arc::new(TokenCache::new(reqwest::Client::new(), credential, &base, &base, metrics).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_refresh_and_tokens_renew_before_expiry() {
    let sim = simulator(4).await;
    let tokens = cache(&sim, SECRET);
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.token().await.unwrap().bearer() })
        })
        .collect();
    let mut bearers = Vec::new();
    for caller in callers {
        bearers.push(caller.await.unwrap());
    }
    bearers.dedup();
    assert_eq!(bearers.len(), 1, "every caller got the same token");
    assert_eq!(sim.stats().tokens_issued, 1, "one request for 16 callers");

    // Still fresh at one second; renewed after half of its four-second life.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(tokens.token().await.unwrap().bearer(), bearers[0]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_ne!(tokens.token().await.unwrap().bearer(), bearers[0]);
    assert_eq!(sim.stats().tokens_issued, 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_reported_with_its_aadsts_code_and_without_the_secret() {
    let sim = simulator(0).await;
    let wrong = "definitely~wrong~secret";
    let error = cache(&sim, wrong).token().await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(&error, AuthError::Rejected { status: 401, code, .. } if code == "AADSTS7000215"),
        "{error:?}"
    );
    assert!(
        !error.is_transient(),
        "a wrong secret is not retried as an outage"
    );
    assert!(
        text.contains("Value") && text.contains("Secret ID"),
        "{text}"
    );
    assert!(!text.contains(wrong) && !format!("{error:?}").contains(wrong));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_login_host_is_transient_and_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base: reqwest::Url = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    let metrics = SourceMetrics::register(&prometheus::Registry::new()).unwrap();
    let credential = Credential::ClientSecret {
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        secret: SECRET.to_owned().into(),
    };
    let tokens =
        TokenCache::new(reqwest::Client::new(), credential, &base, &base, metrics).unwrap();
    let error = tokens.token().await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        error.to_string().contains("--azure.authority-host"),
        "{error}"
    );
}
