//! Lists through kube-rs: pagination with limit/continue, label and field selectors.
#![cfg(test)]

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use mse_test_apiserver::ApiServer;
use serde_json::json;

use support::{api_code, client};

fn seed(server: &ApiServer) {
    for (ns, name, app, tier) in [
        ("default", "web", "web", "front"),
        ("default", "api", "api", "back"),
        ("default", "db", "db", ""),
        ("shop", "web", "web", "front"),
        ("shop", "cache", "cache", "back"),
    ] {
        let mut labels = json!({"app": app});
        if !tier.is_empty() {
            labels["tier"] = json!(tier);
        }
        server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns, "labels": labels}}));
    }
}

fn names(list: &kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    list.items
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c.metadata.namespace.as_deref().unwrap_or_default(),
                c.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect()
}

#[tokio::test]
async fn pages_cover_everything_once_in_a_consistent_state() {
    let server = ApiServer::start().await.unwrap();
    for i in 0..7 {
        server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}"), "namespace": "default"}}));
    }
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    let mut params = ListParams::default().limit(3);
    let mut seen = Vec::new();
    let mut versions = Vec::new();
    loop {
        let page = api.list(&params).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(names(&page));
        versions.push(page.metadata.resource_version.clone().unwrap());
        // a write between pages does not show up in the remaining pages
        server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("late-{}", seen.len()), "namespace": "default"}}));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("default/cm-{i}")).collect();
    assert_eq!(seen, expected);
    assert_eq!(versions.len(), 3);
    assert!(versions.iter().all(|v| v == &versions[0]));

    // without a limit, everything current
    let all = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 10);
}

#[tokio::test]
async fn a_continue_token_from_before_a_compaction_is_gone() {
    let server = ApiServer::start().await.unwrap();
    seed(&server);
    let api: Api<ConfigMap> = Api::all(client(&server).await);
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.unwrap();
    server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "new", "namespace": "default"}}));
    server.compact();
    let result = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await;
    assert_eq!(api_code(result), (410, "Expired".to_owned()));
}

#[tokio::test]
async fn label_selectors_filter() {
    let server = ApiServer::start().await.unwrap();
    seed(&server);
    let api: Api<ConfigMap> = Api::all(client(&server).await);
    let by = |selector: &'static str| {
        let api = api.clone();
        async move {
            names(
                &api.list(&ListParams::default().labels(selector))
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(by("app=web").await, ["default/web", "shop/web"]);
    assert_eq!(
        by("tier!=front").await,
        ["default/api", "default/db", "shop/cache"]
    );
    assert_eq!(
        by("app in (api, cache)").await,
        ["default/api", "shop/cache"]
    );
    assert_eq!(
        by("app notin (web),tier").await,
        ["default/api", "shop/cache"]
    );
    assert_eq!(by("!tier").await, ["default/db"]);
    assert_eq!(by("tier,app=web").await, ["default/web", "shop/web"]);

    let bad = api.list(&ListParams::default().labels("app in web")).await;
    assert_eq!(api_code(bad), (400, "BadRequest".to_owned()));
}

#[tokio::test]
async fn field_selectors_filter_by_name_and_namespace() {
    let server = ApiServer::start().await.unwrap();
    seed(&server);
    let client = client(&server).await;
    let all: Api<ConfigMap> = Api::all(client.clone());
    let by = |selector: &str| ListParams::default().fields(selector);
    assert_eq!(
        names(&all.list(&by("metadata.name=web")).await.unwrap()),
        ["default/web", "shop/web"]
    );
    assert_eq!(
        names(
            &all.list(&by("metadata.namespace=shop,metadata.name!=web"))
                .await
                .unwrap()
        ),
        ["shop/cache"]
    );
    let shop: Api<ConfigMap> = Api::namespaced(client, "shop");
    assert_eq!(
        names(&shop.list(&ListParams::default()).await.unwrap()),
        ["shop/cache", "shop/web"]
    );
    let bad = all.list(&by("data.key=x")).await;
    assert_eq!(api_code(bad), (400, "BadRequest".to_owned()));
}
