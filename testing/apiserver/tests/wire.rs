//! The wire protocol at its edges: discovery, bad input answered with `Status` objects, the
//! kubeconfig, generateName, and the record of requests.
#![cfg(test)]

mod support;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{self, Discovery, Scope};
use mse_test_apiserver::ApiServer;
use serde_json::{Value, json};

use futures_util::StreamExt;
use support::{api_code, client, within};

async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: &str,
) -> Result<String, kube::Error> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap();
    client.request_text(request).await
}

fn message(result: Result<String, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_finds_every_group_and_the_crd() {
    let server = ApiServer::start().await.unwrap();
    let client = client(&server).await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_owned()).collect();
    for group in [
        "",
        "networking.k8s.io",
        "coordination.k8s.io",
        "mse.alibabacloud.com",
    ] {
        assert!(groups.iter().any(|g| g == group), "{group} in {groups:?}");
    }
    let gvk =
        kube::api::GroupVersionKind::gvk("mse.alibabacloud.com", "v1alpha1", "MseIngressConfig");
    let (resource, caps) = discovery::pinned_kind(&client, &gvk).await.unwrap();
    assert_eq!(resource.plural, "mseingressconfigs");
    assert_eq!(caps.scope, Scope::Cluster);

    // a cluster-scoped custom resource through the dynamic API
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "mse.alibabacloud.com/v1alpha1", "kind": "MseIngressConfig",
        "metadata": {"name": "default"}, "spec": {"replicas": 2},
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    let stored = server
        .get(
            "mse.alibabacloud.com/v1alpha1",
            "MseIngressConfig",
            None,
            "default",
        )
        .unwrap();
    assert_eq!(stored["spec"]["replicas"], 2);
    assert!(stored["metadata"].get("namespace").is_none());
}

#[tokio::test]
async fn bad_input_gets_a_status_naming_the_problem() {
    let server = ApiServer::start().await.unwrap();
    let client = client(&server).await;
    let path = "/api/v1/namespaces/default/configmaps";

    let result = raw(&client, "POST", path, "{not json").await;
    assert!(message(result).contains("not valid JSON"));
    assert_eq!(api_code(raw(&client, "POST", path, "[1, 2]").await).0, 400);

    let service = r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}"#;
    let text = message(raw(&client, "POST", path, service).await);
    assert!(
        text.contains("\"Service\"") && text.contains("\"ConfigMap\""),
        "{text}"
    );

    let other_ns = r#"{"metadata": {"name": "x", "namespace": "elsewhere"}}"#;
    assert_eq!(
        api_code(raw(&client, "POST", path, other_ns).await),
        (400, "BadRequest".to_owned())
    );

    let bad_name = r#"{"metadata": {"name": "Not_A_Name"}}"#;
    let result = raw(&client, "POST", path, bad_name).await;
    let Err(kube::Error::Api(status)) = result else {
        panic!()
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("metadata.name"),
        "{}",
        status.message
    );

    let result = raw(&client, "GET", "/apis/nope.example/v1/widgets", "").await;
    assert_eq!(api_code(result), (404, "NotFound".to_owned()));
    let result = raw(
        &client,
        "GET",
        "/api/v1/namespaces/default/configmaps/missing",
        "",
    )
    .await;
    assert_eq!(api_code(result), (404, "NotFound".to_owned()));
    let result = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/configmaps/x",
        "{}",
    )
    .await;
    assert_eq!(api_code(result), (405, "MethodNotAllowed".to_owned()));
    let result = raw(&client, "POST", "/api/v1/configmaps", "{}").await;
    assert_eq!(api_code(result), (405, "MethodNotAllowed".to_owned()));
    let result = raw(&client, "GET", &format!("{path}?limit=many"), "").await;
    assert_eq!(api_code(result), (400, "BadRequest".to_owned()));

    // none of that stored anything, and the server still serves
    assert!(server.list("v1", "ConfigMap").is_empty());
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn create_conflicts_and_generate_name() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    let named: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap();
    let created = api.create(&PostParams::default(), &named).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let again = api.create(&PostParams::default(), &named).await;
    assert_eq!(api_code(again), (409, "AlreadyExists".to_owned()));

    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let first = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let second = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let (a, b) = (first.metadata.name.unwrap(), second.metadata.name.unwrap());
    assert!(
        a.starts_with("gen-") && b.starts_with("gen-") && a != b,
        "{a} {b}"
    );

    let err = server.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a"}}));
    assert_eq!(err.unwrap_err().code(), 409);
    let err =
        server.create(json!({"apiVersion": "v9", "kind": "Widget", "metadata": {"name": "a"}}));
    assert!(matches!(
        err,
        Err(mse_test_apiserver::ApiError::UnknownKind { .. })
    ));
}

#[tokio::test]
async fn the_written_kubeconfig_reaches_the_server_and_requests_are_recorded() {
    let server = ApiServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    let url = &config.cluster_url;
    let authority = url.authority().map(ToString::to_string);
    assert_eq!(url.scheme_str(), Some("http"));
    assert_eq!(
        authority,
        Some(server.url().trim_start_matches("http://").to_owned())
    );
    let client = kube::Client::try_from(config).unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");

    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    let requests = server.requests();
    let post = requests.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.path, "/api/v1/namespaces/default/configmaps");
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["metadata"]["name"], "c");
    assert!(requests.iter().any(|r| r.path == "/version"));
}

#[tokio::test]
async fn dropping_the_last_handle_stops_serving() {
    let server = ApiServer::start().await.unwrap();
    let clone = server.clone();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    let mut events = api
        .watch(&kube::api::WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    drop(server);
    // a clone keeps it serving
    assert!(api.list(&Default::default()).await.is_ok());
    let addr = clone.url().trim_start_matches("http://").to_owned();
    drop(clone);
    // the open watch ends, and new connections are refused
    within("the watch to end", async {
        while let Some(Ok(_)) = events.next().await {}
    })
    .await;
    eventually_async("connections to be refused", || {
        let addr = addr.clone();
        async move { tokio::net::TcpStream::connect(addr).await.is_err() }
    })
    .await;
}

/// Polls an async condition until it holds, within the support deadline.
async fn eventually_async<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    within(what, async {
        while !condition().await {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}
