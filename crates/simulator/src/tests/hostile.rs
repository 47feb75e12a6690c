//! The hostile modes, set through `PUT /_sim/faults` as a test or a user would: random label
//! values, rows that are not objects, and an oversized page streamed.

use super::*;

async fn put_faults(sim: &SimHandle, faults: &Value) {
    let response = reqwest::Client::new()
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(faults)
        .send()
        .await
        .expect("PUT faults");
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test]
async fn hostile_modes_are_set_over_http_and_served() {
    let sim = start(config(Traffic::Scenario(scenario(50, 0, 0)), fast_clock())).await;
    let token = token(&sim).await;
    let url = whole_window(&sim);
    let plain = all_pages(&url, &token).await;
    let rows = |pages: &[Value]| -> Vec<Value> {
        pages
            .iter()
            .flat_map(|page| page["value"].as_array().cloned().unwrap_or_default())
            .collect()
    };
    assert_eq!(rows(&plain).len(), 50);

    put_faults(&sim, &serde_json::json!({"random_labels": true})).await;
    let random = rows(&all_pages(&url, &token).await);
    let trunks: HashSet<&str> = random
        .iter()
        .filter_map(|row| row["trunkFullyQualifiedDomainName"].as_str())
        .collect();
    assert!(trunks.len() > 40, "{} distinct trunks", trunks.len());
    assert_eq!(
        random,
        rows(&all_pages(&url, &token).await),
        "a row looks the same on every page"
    );

    put_faults(&sim, &serde_json::json!({"non_object_rows": true})).await;
    let body = get(&url, &token).await.text().await.expect("body");
    #[derive(serde::Deserialize)]
    struct Page<'a> {
        #[serde(borrow)]
        value: Vec<&'a RawValue>,
    }
    let page: Page = serde_json::from_str(&body).expect("still valid JSON");
    let objects = page
        .value
        .iter()
        .filter(|row| row.get().starts_with('{'))
        .count();
    assert_eq!((page.value.len(), objects), (56, 50));

    put_faults(&sim, &serde_json::json!({"oversized_page_mib": 3})).await;
    let mut response = get(&url, &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), None, "streamed, not announced");
    let mut bytes = 0usize;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        bytes += chunk.len();
    }
    assert!(bytes > 3 * 1024 * 1024, "{bytes}");
    sim.shutdown().await;
}
