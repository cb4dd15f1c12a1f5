use super::*;

#[test]
fn status_fields_are_every_key_of_the_status_schema() {
    let schema = schemars::schema_for!(MseIngressConfigStatus);
    let mut keys: Vec<&str> = schema.as_object().unwrap()["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut fields = STATUS_FIELDS.to_vec();
    keys.sort_unstable();
    fields.sort_unstable();
    assert_eq!(keys, fields);
}

#[test]
fn status_patch_clears_what_the_new_status_lacks() {
    let next = MseIngressConfigStatus {
        phase: Some(mse_model::Phase::Running),
        ..Default::default()
    };
    let patch = status_patch(&next).unwrap();
    assert_eq!(patch["status"]["phase"], "Running");
    assert_eq!(patch["status"]["message"], serde_json::Value::Null);
    assert_eq!(patch["status"]["conditions"], serde_json::Value::Null);
    assert_eq!(
        patch["status"].as_object().unwrap().len(),
        STATUS_FIELDS.len()
    );
}

#[test]
fn describe_quotes_the_api_server_once() {
    let status =
        kube::core::Status::failure("namespaces \"edge\" not found", "NotFound").with_code(404);
    let e = ReconcileError::Api {
        action: "applying",
        kind: "Deployment",
        name: "edge/gw".to_owned(),
        source: kube::Error::Api(Box::new(status)),
    };
    assert_eq!(
        describe(&e),
        "applying Deployment edge/gw: namespaces \"edge\" not found (NotFound, HTTP 404)"
    );
    let taken = ReconcileError::ClassTaken {
        class: "mse".into(),
        by: "controller k8s.io/ingress-nginx".into(),
    };
    assert_eq!(
        describe(&taken),
        "IngressClass mse is taken by controller k8s.io/ingress-nginx"
    );
}

/// One request the operator sent, as the API server would see it.
#[derive(Debug)]
struct Seen {
    method: String,
    uri: String,
    content_type: Option<String>,
    body: serde_json::Value,
}

/// Answers like an API server with no gateway objects yet: a GET of one object is 404
/// (or `existing`), a list is empty, a patch returns its body as the stored object.
/// Records every request.
async fn serve(
    existing: Option<serde_json::Value>,
    handle: tower_test::mock::Handle<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >,
) -> Vec<Seen> {
    let mut handle = std::pin::pin!(handle);
    let mut seen = Vec::new();
    while let Some((request, send)) = handle.next_request().await {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap();
        let body: serde_json::Value = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        let uri = parts.uri.to_string();
        let (code, answer) = match parts.method.as_str() {
            "GET" if uri.contains('?') => (
                200,
                serde_json::json!({
                    "apiVersion": "networking.k8s.io/v1", "kind": "IngressClassList",
                    "metadata": { "resourceVersion": "1" }, "items": [],
                }),
            ),
            "GET" if existing.is_some() => (200, existing.clone().unwrap()),
            "GET" | "DELETE" => (
                404,
                serde_json::json!({
                    "apiVersion": "v1", "kind": "Status", "status": "Failure",
                    "reason": "NotFound", "code": 404, "message": "not found",
                }),
            ),
            _ => (200, body.clone()),
        };
        seen.push(Seen {
            method: parts.method.to_string(),
            uri,
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned()),
            body,
        });
        let response = http::Response::builder()
            .status(code)
            .body(kube::client::Body::from(
                serde_json::to_vec(&answer).unwrap(),
            ))
            .unwrap();
        send.send_response(response);
    }
    seen
}

#[tokio::test]
async fn one_reconcile_speaks_this_wire_contract() {
    let (service, handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let server = tokio::spawn(serve(None, handle));
    let config: MseIngressConfig = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "gw", "uid": "uid-1", "generation": 2 },
        "spec": { "common": { "instance": { "replicas": 1 } } },
    }))
    .unwrap();
    let options = OperatorOptions {
        gateway_image: "img".to_owned(),
        gateway_namespace: "edge".to_owned(),
    };
    let ctx = Arc::new(Context::new(Client::new(service, "default"), options));
    let action = reconcile(Arc::new(config.clone()), ctx).await.unwrap();
    assert_eq!(action, Action::requeue(RESYNC));
    let seen = server.await.unwrap();

    let apply = |path: &str| {
        (
            "PATCH".to_owned(),
            format!("{path}?&force=true&fieldManager=mse-ingress-operator"),
        )
    };
    let expected = [
        ("GET".to_owned(), "/apis/networking.k8s.io/v1/ingressclasses/gw".to_owned()),
        apply("/api/v1/namespaces/edge/serviceaccounts/gw"),
        apply("/apis/rbac.authorization.k8s.io/v1/clusterroles/mse-ingress-gateway-gw"),
        apply("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/mse-ingress-gateway-gw"),
        apply("/apis/rbac.authorization.k8s.io/v1/namespaces/edge/roles/gw"),
        apply("/apis/rbac.authorization.k8s.io/v1/namespaces/edge/rolebindings/gw"),
        apply("/apis/apps/v1/namespaces/edge/deployments/gw"),
        apply("/api/v1/namespaces/edge/services/gw"),
        // One replica: no budget, and any earlier one is removed.
        ("DELETE".to_owned(), "/apis/policy/v1/namespaces/edge/poddisruptionbudgets/gw?".to_owned()),
        apply("/apis/networking.k8s.io/v1/ingressclasses/gw"),
        (
            "GET".to_owned(),
            "/apis/networking.k8s.io/v1/ingressclasses?&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmse-ingress-operator%2Capp.kubernetes.io%2Finstance%3Dgw".to_owned(),
        ),
        (
            "PATCH".to_owned(),
            "/apis/mse.alibabacloud.com/v1alpha1/mseingressconfigs/gw/status?&fieldManager=mse-ingress-operator".to_owned(),
        ),
    ];
    let got: Vec<(String, String)> = seen
        .iter()
        .map(|s| (s.method.clone(), s.uri.clone()))
        .collect();
    assert_eq!(got, expected);

    // Every apply is server-side apply of the whole object the builders make.
    let plan = Plan::new(&config, &ctx_options()).unwrap();
    let objects = build_all(&plan, &super::super::owner_reference(&config).unwrap());
    let deployment = &seen[6];
    assert_eq!(
        deployment.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(
        deployment.body,
        serde_json::to_value(&objects.deployment).unwrap()
    );
    assert_eq!(deployment.body["apiVersion"], "apps/v1");
    assert_eq!(deployment.body["kind"], "Deployment");
    for s in seen.iter().filter(|s| s.uri.contains("force=true")) {
        assert_eq!(
            s.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "{}",
            s.uri
        );
    }

    // Status goes through the subresource as a merge patch that clears what it lacks.
    let status = &seen[11];
    assert_eq!(
        status.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(status.body["status"]["phase"], "Pending");
    assert_eq!(status.body["status"]["observedGeneration"], 2);
    assert_eq!(status.body["status"]["message"], serde_json::Value::Null);
    assert_eq!(status.body["status"]["conditions"][0]["type"], "Reconciled");
}

fn ctx_options() -> OperatorOptions {
    OperatorOptions {
        gateway_image: "img".to_owned(),
        gateway_namespace: "edge".to_owned(),
    }
}

#[tokio::test]
async fn another_controllers_class_is_refused_with_a_failed_status() {
    let (service, handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let nginx = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": { "name": "nginx-public" },
        "spec": { "controller": "k8s.io/ingress-nginx" },
    });
    let server = tokio::spawn(serve(Some(nginx), handle));
    let config: MseIngressConfig = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "gw", "uid": "uid-1", "generation": 1 },
        "spec": { "ingress": { "local": { "ingressClass": "nginx-public" } } },
    }))
    .unwrap();
    let ctx = Arc::new(Context::new(Client::new(service, "default"), ctx_options()));
    let error = reconcile(Arc::new(config), ctx).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "IngressClass nginx-public is taken by controller k8s.io/ingress-nginx"
    );
    let seen = server.await.unwrap();
    // Nothing was applied: only the class was read and the status written.
    assert_eq!(seen.len(), 2, "{seen:?}");
    let status = &seen[1].body["status"];
    assert_eq!(status["phase"], "Failed");
    assert_eq!(
        status["message"],
        "IngressClass nginx-public is taken by controller k8s.io/ingress-nginx"
    );
    assert_eq!(status["conditions"][0]["reason"], "ApplyFailed");
}
