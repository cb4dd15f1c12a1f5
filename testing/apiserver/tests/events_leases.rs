//! Events and Leases through kube-rs: the event recorder's create and series patch, core
//! Events, and Lease writes with the optimistic concurrency leader election relies on.
#![cfg(test)]

mod support;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference};
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use mse_test_apiserver::ApiServer;
use serde_json::{Value, json};

use support::{api_code, client};

#[tokio::test]
async fn the_event_recorder_creates_then_patches_a_series() {
    let server = ApiServer::start().await.unwrap();
    let reporter = Reporter {
        controller: "mse-gateway".into(),
        instance: Some("gateway-0".into()),
    };
    let recorder = Recorder::new(client(&server).await, reporter);
    let regarding = ObjectReference {
        api_version: Some("networking.k8s.io/v1".into()),
        kind: Some("Ingress".into()),
        name: Some("web".into()),
        namespace: Some("shop".into()),
        uid: Some("uid-web".into()),
        ..Default::default()
    };
    let event = Event {
        type_: EventType::Warning,
        reason: "InvalidAnnotation".into(),
        note: Some("proxy-read-timeout: expected seconds".into()),
        action: "Compile".into(),
        secondary: None,
    };
    recorder.publish(&event, &regarding).await.unwrap();
    recorder.publish(&event, &regarding).await.unwrap();

    let events = server.list("events.k8s.io/v1", "Event");
    assert_eq!(events.len(), 1, "{events:?}");
    let stored = &events[0];
    assert_eq!(stored["metadata"]["namespace"], "shop");
    assert_eq!(stored["regarding"]["name"], "web");
    assert_eq!(stored["reason"], "InvalidAnnotation");
    assert_eq!(stored["reportingController"], "mse-gateway");
    assert_eq!(stored["series"]["count"], 2);
    let requests = server.requests();
    let methods: Vec<(&str, Option<&str>)> = requests
        .iter()
        .filter(|r| {
            r.path
                .starts_with("/apis/events.k8s.io/v1/namespaces/shop/events")
        })
        .map(|r| (r.method.as_str(), r.content_type.as_deref()))
        .collect();
    assert_eq!(
        methods,
        [
            ("POST", Some("application/json")),
            ("PATCH", Some("application/merge-patch+json"))
        ]
    );
}

#[tokio::test]
async fn events_missing_required_fields_are_invalid() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client(&server).await, "shop");
    let incomplete = serde_json::from_value(json!({
        "metadata": {"name": "e1"}, "reason": "Sync", "type": "Normal",
    }))
    .unwrap();
    let result = api.create(&PostParams::default(), &incomplete).await;
    assert_eq!(api_code(result), (422, "Invalid".to_owned()));
}

#[tokio::test]
async fn core_events_are_created() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<CoreEvent> = Api::namespaced(client(&server).await, "shop");
    let event: CoreEvent = serde_json::from_value(json!({
        "metadata": {"generateName": "web."},
        "involvedObject": {"kind": "Ingress", "name": "web", "namespace": "shop"},
        "reason": "Sync", "message": "synced", "type": "Normal", "count": 1,
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &event).await.unwrap();
    assert!(created.metadata.name.unwrap().starts_with("web."));
    assert_eq!(server.list("v1", "Event").len(), 1);
    assert!(server.list("events.k8s.io/v1", "Event").is_empty());
}

fn lease(holder: &str) -> Value {
    json!({
        "metadata": {"name": "mse-gateway", "namespace": "default"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "leaseTransitions": 0,
                 "acquireTime": "2026-01-01T00:00:00.000000Z",
                 "renewTime": "2026-01-01T00:00:00.000000Z"},
    })
}

#[tokio::test]
async fn only_one_candidate_takes_over_a_lease() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Lease> = Api::default_namespaced(client(&server).await);
    let missing = api.get("mse-gateway").await;
    assert_eq!(api_code(missing), (404, "NotFound".to_owned()));
    assert!(api.get_opt("mse-gateway").await.unwrap().is_none());

    let first: Lease = serde_json::from_value(lease("a")).unwrap();
    api.create(&PostParams::default(), &first).await.unwrap();
    let second: Lease = serde_json::from_value(lease("b")).unwrap();
    let lost = api.create(&PostParams::default(), &second).await;
    assert_eq!(api_code(lost), (409, "AlreadyExists".to_owned()));

    // two candidates read the same version and both try to take over
    let seen_by_b = api.get("mse-gateway").await.unwrap();
    let seen_by_c = seen_by_b.clone();
    let take = |mut l: Lease, who: &str| {
        let spec = l.spec.as_mut().unwrap();
        spec.holder_identity = Some(who.into());
        spec.lease_transitions = Some(1);
        l
    };
    let b = api
        .replace("mse-gateway", &PostParams::default(), &take(seen_by_b, "b"))
        .await
        .unwrap();
    let c = api
        .replace("mse-gateway", &PostParams::default(), &take(seen_by_c, "c"))
        .await;
    assert_eq!(api_code(c), (409, "Conflict".to_owned()));
    let now = api.get("mse-gateway").await.unwrap();
    assert_eq!(now.spec.unwrap().holder_identity.as_deref(), Some("b"));
    assert_eq!(now.metadata.resource_version, b.metadata.resource_version);

    // a Lease replace must carry a resourceVersion
    let mut blind = take(b, "d");
    blind.metadata.resource_version = None;
    let result = api
        .replace("mse-gateway", &PostParams::default(), &blind)
        .await;
    assert_eq!(api_code(result), (422, "Invalid".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_many_concurrent_takeovers_of_one_version_exactly_one_wins() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<Lease> = Api::default_namespaced(client(&server).await);
    let first: Lease = serde_json::from_value(lease("a")).unwrap();
    api.create(&PostParams::default(), &first).await.unwrap();
    let seen = api.get("mse-gateway").await.unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (api, mut lease) = (api.clone(), seen.clone());
        lease.spec.as_mut().unwrap().holder_identity = Some(format!("candidate-{i}"));
        tasks.spawn(async move {
            api.replace("mse-gateway", &PostParams::default(), &lease)
                .await
        });
    }
    let mut won = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(lease) => won.push(lease.spec.unwrap().holder_identity.unwrap()),
            Err(err) => assert_eq!(api_code::<()>(Err(err)), (409, "Conflict".to_owned())),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    let now = api.get("mse-gateway").await.unwrap();
    assert_eq!(now.spec.unwrap().holder_identity.as_ref(), Some(&won[0]));
}
