//! `teams-voice-exporter check` against the simulated tenant: one healthy setup (exit 0)
//! and each failure a new deployment meets, with the diagnosis the report must give.

use std::time::Duration;

use crate::common::pki::shared_certificates;
use crate::common::{simulated_tenant, ExporterCommand, CLIENT, SECRET, TENANT};
use tve_simulator::{Faults, Scenario, SimHandle, SimIdentity};

const ROWS: usize = 25;

fn tenant(faults: Faults, identity: SimIdentity) -> (tokio::runtime::Runtime, SimHandle) {
    let scenario = Scenario {
        preexisting_rows: ROWS,
        // Every row started within the last hour, which `check` reads.
        span: Duration::from_secs(40 * 60),
        ..Scenario::default()
    };
    simulated_tenant(scenario, faults, identity)
}

/// Runs `check` with only `env` as Azure variables; returns exit code and stdout, and
/// asserts that no secret or token reached either output.
fn check(base_url: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let ran = ExporterCommand::new(&["check", "--graph.retry-backoff=50ms"])
        .against(base_url)
        .args(extra)
        .envs(env)
        .run();
    for text in [&ran.stdout, &ran.stderr] {
        assert!(!text.contains(SECRET), "the secret was printed:\n{text}");
        assert!(
            !text.contains("eyJ"),
            "a token or assertion was printed:\n{text}"
        );
    }
    (ran.code, ran.stdout)
}

fn secret_env(tenant: &'static str, secret: &'static str) -> [(&'static str, &'static str); 3] {
    [
        ("AZURE_TENANT_ID", tenant),
        ("AZURE_CLIENT_ID", CLIENT),
        ("AZURE_CLIENT_SECRET", secret),
    ]
}

fn has_line(report: &str, status: &str, step: &str) -> bool {
    report
        .lines()
        .any(|line| line.starts_with(status) && line[4..].trim_start().starts_with(step))
}

#[test]
fn a_healthy_setup_passes_every_check_and_exits_zero() {
    let (_runtime, sim) = tenant(Faults::default(), SimIdentity::default());
    let (code, report) = check(&sim.base_url(), &[], &secret_env(TENANT, SECRET));
    assert_eq!(code, 0, "{report}");
    for step in [
        "config",
        "credential",
        "token",
        "permission",
        "graph",
        "call logs",
        "clock",
    ] {
        assert!(has_line(&report, "OK", step), "{step}:\n{report}");
    }
    assert!(
        report.contains(&format!(
            "getDirectRoutingCalls: {ROWS} rows in the last hour"
        )),
        "{report}"
    );
    // Every enabled collector is checked (PSTN is on by default): its own line, with a count.
    assert!(
        report.lines().any(|line| line
            .split_once("getPstnCalls: ")
            .and_then(|(_, rest)| rest.split_once(" rows in the last hour ("))
            .is_some_and(|(rows, _)| rows.parse::<u64>().is_ok())),
        "{report}"
    );
    assert!(report.contains("client secret for app"), "{report}");
    assert!(report.contains("Result: all checks passed."), "{report}");
}

#[test]
fn a_healthy_certificate_setup_shows_the_certificate() {
    let cert = &shared_certificates().0;
    let identity = SimIdentity {
        certificates: vec![cert.der.clone()],
        ..SimIdentity::default()
    };
    let (_runtime, sim) = tenant(Faults::default(), identity);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, cert.pem()).unwrap();
    let path = path.display().to_string();
    let (code, report) = check(
        &sim.base_url(),
        &[],
        &[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_CERTIFICATE_PATH", &path),
        ],
    );
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("certificate for app") && report.contains("thumbprint"),
        "{report}"
    );
    assert!(!report.contains(cert.key_pem.lines().nth(1).unwrap()));
}

#[test]
fn no_credentials_say_what_to_set_and_exit_two() {
    let (_runtime, sim) = tenant(Faults::default(), SimIdentity::default());
    let (code, report) = check(&sim.base_url(), &[], &[("AZURE_TENANT_ID", TENANT)]);
    assert_eq!(code, 2, "{report}");
    assert!(has_line(&report, "FAIL", "credential"), "{report}");
    for option in [
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_FEDERATED_TOKEN_FILE",
        "managed-identity",
    ] {
        assert!(report.contains(option), "{option}:\n{report}");
    }
    assert!(has_line(&report, "SKIP", "token"), "{report}");
    assert_eq!(sim.stats().token_requests, 0);
}

#[test]
fn a_bad_secret_names_aadsts7000215_and_the_fix() {
    let (_runtime, sim) = tenant(Faults::default(), SimIdentity::default());
    let (code, report) = check(
        &sim.base_url(),
        &[],
        &secret_env(TENANT, "not~the~secret~value"),
    );
    assert_eq!(code, 1, "{report}");
    assert!(has_line(&report, "FAIL", "token"), "{report}");
    assert!(
        report.contains("AADSTS7000215") && report.contains("Secret ID"),
        "{report}"
    );
    assert!(!report.contains("not~the~secret~value"), "{report}");
    assert!(has_line(&report, "SKIP", "graph"), "{report}");
}

#[test]
fn an_unknown_tenant_names_aadsts90002_and_the_fix() {
    let (_runtime, sim) = tenant(Faults::default(), SimIdentity::default());
    let (code, report) = check(
        &sim.base_url(),
        &[],
        &secret_env("deadbeef-0000-0000-0000-000000000000", SECRET),
    );
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("AADSTS90002") && report.contains("AZURE_TENANT_ID"),
        "{report}"
    );
    assert!(report.contains("--azure.cloud"), "{report}");
}

#[test]
fn a_missing_permission_says_what_to_grant() {
    let faults = Faults {
        missing_call_records_role: true,
        ..Faults::default()
    };
    let (_runtime, sim) = tenant(faults, SimIdentity::default());
    let (code, report) = check(&sim.base_url(), &[], &secret_env(TENANT, SECRET));
    assert_eq!(code, 1, "{report}");
    assert!(has_line(&report, "OK", "token"), "{report}");
    assert!(has_line(&report, "FAIL", "permission"), "{report}");
    assert!(
        report.contains("lacks CallRecords.Read.All") && report.contains("Grant admin consent"),
        "{report}"
    );
    assert!(report.contains("Application permissions"), "{report}");
    // Graph agrees: 403, with the same advice and its request-id.
    assert!(has_line(&report, "FAIL", "call logs"), "{report}");
    assert!(
        report.contains("HTTP 403") && report.contains("request-id"),
        "{report}"
    );
}

#[test]
fn an_unreachable_graph_is_named_with_what_to_check() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    // Entra ID issues tokens for the Graph resource; the network to it is what fails.
    let identity = SimIdentity {
        graph_resource: Some(unreachable.clone()),
        ..SimIdentity::default()
    };
    let (_runtime, sim) = tenant(Faults::default(), identity);
    let endpoint = format!("--graph.endpoint={unreachable}");
    let (code, report) = check(&sim.base_url(), &[&endpoint], &secret_env(TENANT, SECRET));
    assert_eq!(code, 1, "{report}");
    assert!(has_line(&report, "OK", "token"), "{report}");
    assert!(has_line(&report, "FAIL", "graph"), "{report}");
    assert!(
        report.contains("cannot be reached") && report.contains("proxy"),
        "{report}"
    );
    assert!(has_line(&report, "SKIP", "call logs"), "{report}");
}

#[test]
fn a_tenants_file_is_checked_tenant_by_tenant_with_each_problem_named() {
    let scenario = Scenario {
        preexisting_rows: ROWS,
        span: Duration::from_secs(40 * 60),
        ..Scenario::default()
    };
    let (_runtime, sim) = crate::common::simulated_provider(
        tve_simulator::Traffic::Scenario(scenario),
        Faults::default(),
        SimIdentity::default(),
        tve_simulator::provider_tenants(5, 1000.0, 3),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut file = String::from("tenants:\n");
    for tenant in sim.tenants() {
        file.push_str(&format!(
            "  - id: {}\n    name: {}\n",
            tenant.id, tenant.name
        ));
        if let Some(app) = &tenant.own_app {
            let secret = dir.path().join(format!("{}.secret", tenant.name));
            std::fs::write(&secret, &app.client_secret).unwrap();
            file.push_str(&format!(
                "    client_id: {}\n    client_secret_file: {}\n",
                app.client_id,
                secret.display()
            ));
        }
    }
    let path = dir.path().join("tenants.yml");
    std::fs::write(&path, file).unwrap();
    let (code, report) = check(
        &sim.base_url(),
        &[&format!("--config.file={}", path.display())],
        &[("AZURE_CLIENT_ID", CLIENT), ("AZURE_CLIENT_SECRET", SECRET)],
    );
    assert_eq!(code, 1, "two tenants cannot be read:\n{report}");
    assert!(report.contains("5 tenants in"), "{report}");
    // Each tenant's block: its heading, then its steps up to the next heading.
    let block = |name: &str| {
        let start = report
            .find(&format!("tenant {name} ("))
            .unwrap_or_else(|| panic!("{name} is checked:\n{report}"));
        let rest = &report[start + 1..];
        rest[..rest.find("\ntenant ").unwrap_or(rest.len())].to_owned()
    };
    for tenant in sim.tenants() {
        let block = block(&tenant.name);
        match tenant.consent {
            tve_simulator::Consent::Granted => {
                assert!(
                    block.contains(&format!(
                        "getDirectRoutingCalls: {ROWS} rows in the last hour"
                    )),
                    "{block}"
                );
                assert!(!block.contains("FAIL"), "{block}");
            }
            tve_simulator::Consent::NotConsented => {
                assert!(
                    block.contains("AADSTS700016") && block.contains("adminconsent"),
                    "{block}"
                );
            }
            tve_simulator::Consent::NoPermission => {
                assert!(block.contains("CallRecords.Read.All"), "{block}");
                assert!(block.lines().any(|l| l.starts_with("FAIL")), "{block}");
            }
        }
        if let Some(app) = &tenant.own_app {
            assert!(
                !report.contains(&app.client_secret),
                "a tenant's secret was printed"
            );
        }
    }
}
