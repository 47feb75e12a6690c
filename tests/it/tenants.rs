//! Many tenants behind one exporter (issue 14): a simulated provider whose customers are
//! read with one multi-tenant credential and one tenant's own app registration, each
//! tenant's series equal to its own ground truth (computed with the tests' own code), the
//! broken tenants (not consented, no permission) reported with the fix and costing the
//! others nothing; reloads that add, remove and change tenants while the others go on
//! counting; and shards that split the tenants file so that every tenant is read by exactly
//! one process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::truth::{assert_call_metrics, counting_since_of, expected, tail};
use crate::common::{
    simulated_provider, wait_for, Exporter, ExporterCommand, Metrics, CLIENT, SECRET, TENANT,
};
use teams_voice_exporter::tenants::shard::Sharding;
use tve_simulator::{
    provider_tenants, Consent, Faults, Scenario, SimHandle, SimTenantInfo, Traffic,
};

const ENDPOINT: &str = "getDirectRoutingCalls";

/// Every row the scenario has, once released.
const ROWS: usize = 500 + 700;

fn scenario() -> Scenario {
    Scenario {
        preexisting_rows: 500,
        late_rows: 700,
        span: Duration::from_secs(24 * 3600),
        arrival_spread: Duration::from_secs(6),
        malformed_rows: 0,
    }
}

/// A provider of `n` tenants: the home tenant and `provider_tenants(n)`.
fn provider(n: usize, scenario: Scenario, faults: Faults) -> (tokio::runtime::Runtime, SimHandle) {
    simulated_provider(
        Traffic::Scenario(scenario),
        faults,
        Default::default(),
        provider_tenants(n, 10_000.0, 7),
    )
}

/// One entry of a tenants file; a tenant with its own app gets its secret in a file in `dir`.
fn entry(dir: &Path, tenant: &SimTenantInfo, name: &str) -> String {
    let mut text = format!("  - id: {}\n    name: {name}\n", tenant.id);
    if let Some(app) = &tenant.own_app {
        let secret = dir.join(format!("{name}.secret"));
        std::fs::write(&secret, &app.client_secret).unwrap();
        text.push_str(&format!(
            "    client_id: {}\n    client_secret_file: {}\n",
            app.client_id,
            secret.display()
        ));
    }
    text
}

fn write_tenants(dir: &Path, tenants: &[(&SimTenantInfo, &str)]) -> PathBuf {
    let path = dir.join("tenants.yml");
    let mut text = String::from("tenants:\n");
    for (tenant, name) in tenants {
        text.push_str(&entry(dir, tenant, name));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// The exporter reading the tenants of `file` with the multi-tenant app's secret (no
/// AZURE_TENANT_ID: the file names the tenants).
fn exporter(sim: &SimHandle, file: &Path, extra: &[&str]) -> Exporter {
    ExporterCommand::polling(&sim.base_url())
        .arg(format!("--config.file={}", file.display()))
        .envs(&[("AZURE_CLIENT_ID", CLIENT), ("AZURE_CLIENT_SECRET", SECRET)])
        .args(extra)
        .spawn()
}

fn info(tenants: &[SimTenantInfo], pick: impl Fn(&SimTenantInfo) -> bool) -> &SimTenantInfo {
    tenants
        .iter()
        .find(|t| pick(t))
        .expect("the provider has such a tenant")
}

/// Waits until `tenant` (by label) has counted every row of its scenario.
fn wait_counted(exporter: &Exporter, name: &str, rows: usize) {
    wait_for(Duration::from_secs(120), &format!("{name} counted"), || {
        exporter
            .all_metrics()
            .of_tenant(name)
            .sum("teams_voice_exporter_rows_ingested_total", &[])
            >= rows as f64
    })
    .unwrap_or_else(|e| panic!("{e}; log tail:\n{}", tail(&exporter.log())));
}

/// Every Direct Routing series of `name` equals the ground truth of the simulated tenant
/// `id` from where that tenant's counting began.
fn assert_equals_truth(metrics: &Metrics, sim: &SimHandle, id: &str, name: &str) {
    let mine = metrics.of_tenant(name);
    let since = counting_since_of(&mine, ENDPOINT);
    let truth = sim
        .tenant(id)
        .expect("a simulated tenant")
        .ground_truth_started_from(since);
    assert_eq!(
        truth.rows.len(),
        ROWS,
        "{name}: the scenario released every row"
    );
    let e = expected(&truth);
    assert_call_metrics(&mine, &e, name);
    assert_eq!(
        mine.sum("teams_voice_exporter_rows_ingested_total", &[]),
        ROWS as f64,
        "{name}: each row once"
    );
}

fn trunks(metrics: &Metrics, name: &str) -> BTreeSet<String> {
    metrics
        .of_tenant(name)
        .of("teams_direct_routing_calls_total")
        .keys()
        .filter_map(|labels| labels.get("trunk_fqdn").cloned())
        .collect()
}

#[test]
fn six_tenants_each_equal_their_ground_truth_and_the_broken_ones_cost_nothing() {
    let faults = Faults {
        throttle_every: 9,
        retry_after_secs: 1,
        unavailable_every: 13,
        ..Faults::default()
    };
    let (_runtime, sim) = provider(6, scenario(), faults);
    let tenants = sim.tenants();
    assert_eq!(tenants.len(), 6);
    let dir = tempfile::tempdir().unwrap();
    let listed: Vec<(&SimTenantInfo, &str)> =
        tenants.iter().map(|t| (t, t.name.as_str())).collect();
    let file = write_tenants(dir.path(), &listed);
    let exporter = exporter(&sim, &file, &[]);
    exporter.wait_ready(Duration::from_secs(90));
    sim.release();

    let readable: Vec<&SimTenantInfo> = tenants
        .iter()
        .filter(|t| t.consent == Consent::Granted)
        .collect();
    assert_eq!(readable.len(), 4);
    assert!(
        readable.iter().any(|t| t.own_app.is_some()),
        "one tenant is read with its own app registration"
    );
    for tenant in &readable {
        wait_counted(&exporter, &tenant.name, ROWS);
    }
    // Let sweeps that were running finish: nothing may be counted twice.
    std::thread::sleep(Duration::from_secs(3));
    let metrics = exporter.all_metrics();
    for tenant in &readable {
        assert_equals_truth(&metrics, &sim, &tenant.id, &tenant.name);
    }

    // Two tenants share an SBC's name, and each counts only its own calls on it.
    let home = info(&tenants, |t| t.id == TENANT);
    let shared: Vec<String> = readable
        .iter()
        .filter(|t| t.id != TENANT)
        .flat_map(|t| {
            trunks(&metrics, &t.name)
                .intersection(&trunks(&metrics, &home.name))
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !shared.is_empty(),
        "two tenants have trunks of the same FQDN"
    );

    // The broken tenants are down, with the fix on the landing page; the others are up.
    let up = metrics.of("teams_voice_exporter_tenant_up");
    let up_of = |name: &str| up[&crate::common::labels(&[("tenant", name)])];
    for tenant in &tenants {
        let want = if tenant.consent == Consent::Granted {
            1.0
        } else {
            0.0
        };
        assert_eq!(up_of(&tenant.name), want, "tenant_up of {}", tenant.name);
    }
    let (_, page) = exporter.get("/");
    let not_consented = info(&tenants, |t| t.consent == Consent::NotConsented);
    let no_permission = info(&tenants, |t| t.consent == Consent::NoPermission);
    let row_of = |name: &str| {
        page.split("<tr>")
            .find(|row| row.starts_with(&format!("<td>{name}</td>")))
            .unwrap_or_else(|| panic!("{name} is on the landing page:\n{page}"))
            .to_owned()
    };
    assert!(
        row_of(&not_consented.name).contains("AADSTS700016")
            && row_of(&not_consented.name).contains("consent"),
        "{}",
        row_of(&not_consented.name)
    );
    assert!(
        row_of(&no_permission.name).contains("CallRecords.Read.All"),
        "{}",
        row_of(&no_permission.name)
    );
    assert_eq!(
        exporter.get("/-/ready").0,
        200,
        "broken tenants do not hold readiness back"
    );
    // Graph was never asked for the tenant that gave no token, and the one without the
    // permission was not retried into the ground.
    assert_eq!(
        sim.tenant(&not_consented.id).unwrap().stats().rows_served,
        0
    );
    let log = exporter.log();
    assert!(!log.contains(SECRET), "the shared secret reached the log");
    for tenant in &tenants {
        if let Some(app) = &tenant.own_app {
            assert!(
                !log.contains(&app.client_secret),
                "a tenant's secret reached the log"
            );
        }
    }
}

/// POSTs `/-/reload`.
fn reload(exporter: &Exporter) -> (u16, String) {
    let response = reqwest::blocking::Client::new()
        .post(exporter.url("/-/reload"))
        .send()
        .expect("exporter answers");
    (response.status().as_u16(), response.text().unwrap())
}

fn gauge(metrics: &Metrics, name: &str) -> f64 {
    metrics.sum(name, &[])
}

#[test]
fn reloads_add_remove_and_change_tenants_and_an_invalid_file_changes_nothing() {
    let (_runtime, sim) = provider(6, scenario(), Faults::default());
    let tenants = sim.tenants();
    let home = info(&tenants, |t| t.id == TENANT);
    let sharing = info(&tenants, |t| {
        t.id != TENANT && t.consent == Consent::Granted && t.own_app.is_none()
    });
    let own_app = info(&tenants, |t| t.own_app.is_some());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.redb");
    let file = write_tenants(dir.path(), &[(home, "contoso"), (sharing, "northwind")]);
    let exporter = exporter(
        &sim,
        &file,
        &[
            "--web.enable-lifecycle",
            &format!("--state.path={}", state.display()),
        ],
    );
    exporter.wait_ready(Duration::from_secs(90));
    sim.release();
    wait_counted(&exporter, "contoso", ROWS);
    wait_counted(&exporter, "northwind", ROWS);
    let before = exporter.all_metrics();
    let received_before = before
        .of_tenant("contoso")
        .sum("teams_voice_exporter_rows_received_total", &[]);

    // Rename one tenant (a change: it restarts from its state), add one with its own app,
    // keep the first unchanged.
    write_tenants(
        dir.path(),
        &[
            (home, "contoso"),
            (sharing, "northwind-eu"),
            (own_app, "adatum"),
        ],
    );
    let (status, body) = reload(&exporter);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("1 added (adatum)")
            && body.contains("1 changed (northwind-eu)")
            && body.contains("1 unchanged"),
        "{body}"
    );
    wait_counted(&exporter, "adatum", ROWS);
    wait_counted(&exporter, "northwind-eu", ROWS);
    std::thread::sleep(Duration::from_secs(2));
    let after = exporter.all_metrics();
    assert_eq!(
        after.tenants(),
        ["adatum", "contoso", "northwind-eu"]
            .map(String::from)
            .into(),
        "the old name's series went with it"
    );
    assert_equals_truth(&after, &sim, &home.id, "contoso");
    assert_equals_truth(&after, &sim, &sharing.id, "northwind-eu");
    assert_equals_truth(&after, &sim, &own_app.id, "adatum");
    assert!(
        after
            .of_tenant("contoso")
            .sum("teams_voice_exporter_rows_received_total", &[])
            >= received_before,
        "the unchanged tenant kept running: its self-metrics did not start again"
    );
    assert_eq!(
        gauge(&after, "teams_voice_exporter_config_last_reload_successful"),
        1.0
    );

    // An invalid file changes nothing and says where it is wrong.
    std::fs::write(
        &file,
        format!("tenants:\n  - id: {}\n    nmae: contoso\n", home.id),
    )
    .unwrap();
    let (status, body) = reload(&exporter);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("tenants.yml:3") && body.contains("nmae"),
        "{body}"
    );
    let metrics = exporter.all_metrics();
    assert_eq!(
        gauge(
            &metrics,
            "teams_voice_exporter_config_last_reload_successful"
        ),
        0.0
    );
    assert_eq!(metrics.tenants(), after.tenants(), "nothing changed");

    // Removing a tenant stops it and its series go; SIGHUP reloads as POST does.
    write_tenants(dir.path(), &[(home, "contoso"), (own_app, "adatum")]);
    exporter.hang_up();
    wait_for(Duration::from_secs(30), "the SIGHUP reload", || {
        let metrics = exporter.all_metrics();
        gauge(
            &metrics,
            "teams_voice_exporter_config_last_reload_successful",
        ) == 1.0
            && !metrics.tenants().contains("northwind-eu")
    })
    .unwrap_or_else(|e| panic!("{e}; log tail:\n{}", tail(&exporter.log())));
    let metrics = exporter.all_metrics();
    assert_equals_truth(&metrics, &sim, &home.id, "contoso");
    assert_equals_truth(&metrics, &sim, &own_app.id, "adatum");
    assert!(
        state
            .with_file_name(format!(
                "state.tenant-{}.redb",
                sharing.id.to_ascii_lowercase()
            ))
            .exists(),
        "a removed tenant's state is kept for --state.removed-tenant-retention"
    );
}

/// Which tenants an exporter reads, by its `tenant` labels.
fn tenants_read(exporter: &Exporter) -> BTreeSet<String> {
    exporter
        .all_metrics()
        .of("teams_voice_exporter_tenant_up")
        .keys()
        .filter_map(|labels| labels.get("tenant").cloned())
        .collect()
}

/// `total` shards over `file`: each tenant in exactly one, each with its rows once.
fn run_shards(sim: &SimHandle, file: &Path, total: u32) -> BTreeMap<String, u32> {
    let shards: Vec<Exporter> = (0..total)
        .map(|shard| {
            exporter(
                sim,
                file,
                &[
                    &format!("--shard={shard}"),
                    &format!("--total-shards={total}"),
                    "--poll.interval=1s",
                    "--poll.sweep-interval=30s",
                ],
            )
        })
        .collect();
    let mut owner = BTreeMap::new();
    for (ordinal, shard) in shards.iter().enumerate() {
        shard.wait_ready(Duration::from_secs(120));
        let metrics = shard.all_metrics();
        assert_eq!(
            gauge(&metrics, "teams_voice_exporter_total_shards"),
            f64::from(total)
        );
        let ordinal_label = ordinal.to_string();
        assert_eq!(
            metrics.sum(
                "teams_voice_exporter_shard_ordinal",
                &[("shard_ordinal", &ordinal_label)]
            ),
            ordinal as f64
        );
        for tenant in tenants_read(shard) {
            assert!(
                owner.insert(tenant.clone(), ordinal as u32).is_none(),
                "{tenant} is read by two shards"
            );
        }
    }
    for tenant in sim.tenants() {
        let ordinal = owner
            .get(&tenant.name)
            .unwrap_or_else(|| panic!("{} is read by no shard", tenant.name));
        assert_eq!(
            *ordinal,
            Sharding::shard_of(&tenant.id, total),
            "{} is read by the shard its hash gives",
            tenant.name
        );
        if tenant.consent == Consent::Granted {
            let shard = &shards[*ordinal as usize];
            wait_counted(shard, &tenant.name, ROWS_SHARDED);
            let counted = shard
                .all_metrics()
                .of_tenant(&tenant.name)
                .sum("teams_voice_exporter_rows_ingested_total", &[]);
            assert_eq!(
                counted, ROWS_SHARDED as f64,
                "{}: each row once",
                tenant.name
            );
        }
    }
    owner
}

const ROWS_SHARDED: usize = 200;

#[test]
fn shards_split_the_tenants_file_and_growing_moves_about_a_third() {
    let scenario = Scenario {
        preexisting_rows: ROWS_SHARDED,
        late_rows: 0,
        span: Duration::from_secs(24 * 3600),
        arrival_spread: Duration::from_secs(1),
        malformed_rows: 0,
    };
    let (_runtime, sim) = simulated_provider(
        Traffic::Scenario(scenario),
        Faults::default(),
        Default::default(),
        provider_tenants(24, 10_000.0, 11),
    );
    let tenants = sim.tenants();
    let dir = tempfile::tempdir().unwrap();
    let listed: Vec<(&SimTenantInfo, &str)> =
        tenants.iter().map(|t| (t, t.name.as_str())).collect();
    let file = write_tenants(dir.path(), &listed);

    let two = run_shards(&sim, &file, 2);
    let three = run_shards(&sim, &file, 3);
    let moved: Vec<&String> = two
        .keys()
        .filter(|tenant| two[*tenant] != three[*tenant])
        .collect();
    assert!(
        moved.iter().all(|tenant| three[*tenant] == 2),
        "growing moves tenants only to the new shard: {moved:?}"
    );
    // About a third of 24: jump hash moves 1/3 in expectation; the bounds allow for the
    // spread of 24 draws.
    assert!(
        (3..=14).contains(&moved.len()),
        "{} of {} tenants moved",
        moved.len(),
        tenants.len()
    );
}
