use super::*;
use crate::{Snapshot, load_manifests};

fn one(yaml: &str) -> Object {
    let mut loaded = load_manifests(yaml, Some("t.yaml"));
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.objects.len(), 1);
    let (mut object, _) = loaded.objects.remove(0);
    object.slim();
    object
}

const NOISY_META: &str = r#"
  name: web
  namespace: shop
  uid: u-1
  resourceVersion: "42"
  generation: 3
  creationTimestamp: "2024-01-01T00:00:00Z"
  labels: { app: web, kubernetes.io/service-name: web }
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"a": "copy"}'
    nginx.ingress.kubernetes.io/rewrite-target: /
  managedFields: [{ manager: kubectl, operation: Apply }]
  ownerReferences: [{ apiVersion: v1, kind: Service, name: web, uid: u-2 }]
  finalizers: [x]
"#;

fn assert_identity_kept(m: &ObjectMeta) {
    assert_eq!(m.name.as_deref(), Some("web"));
    assert_eq!(m.namespace.as_deref(), Some("shop"));
    assert_eq!(m.uid.as_deref(), Some("u-1"));
    assert_eq!(m.resource_version.as_deref(), Some("42"));
    assert_eq!(m.generation, Some(3));
    assert!(m.creation_timestamp.is_some());
    assert!(m.managed_fields.is_none() && m.owner_references.is_none());
    assert!(m.finalizers.is_none());
}

#[test]
fn an_ingress_keeps_its_annotations_but_the_last_applied_copy_and_its_spec() {
    let o = one(&format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:{NOISY_META}spec:\n  ingressClassName: mse\n  tls: [{{ hosts: [a.test], secretName: s }}]\n  rules:\n  - host: a.test\n    http:\n      paths:\n      - {{ path: /, pathType: Prefix, backend: {{ service: {{ name: web, port: {{ number: 80 }} }} }} }}\nstatus: {{ loadBalancer: {{ ingress: [{{ ip: 10.0.0.1 }}] }} }}\n"
    ));
    let Object::Ingress(ing) = o else {
        panic!("not an Ingress")
    };
    assert_identity_kept(&ing.metadata);
    assert!(ing.metadata.labels.is_none());
    let annotations = ing.metadata.annotations.as_ref().unwrap();
    assert_eq!(
        annotations.keys().collect::<Vec<_>>(),
        ["nginx.ingress.kubernetes.io/rewrite-target"]
    );
    let spec = ing.spec.as_ref().unwrap();
    assert_eq!(spec.ingress_class_name.as_deref(), Some("mse"));
    let rules = spec.rules.as_ref().unwrap();
    assert_eq!(rules.capacity(), 1);
    let paths = &rules[0].http.as_ref().unwrap().paths;
    assert_eq!((paths.len(), paths.capacity()), (1, 1));
    assert_eq!(
        spec.tls.as_ref().unwrap()[0].secret_name.as_deref(),
        Some("s")
    );
    let status = ing.status.as_ref().unwrap().load_balancer.as_ref().unwrap();
    assert_eq!(
        status.ingress.as_ref().unwrap()[0].ip.as_deref(),
        Some("10.0.0.1")
    );
}

#[test]
fn a_service_keeps_its_type_and_ports() {
    let o = one(&format!(
        "apiVersion: v1\nkind: Service\nmetadata:{NOISY_META}spec:\n  type: ExternalName\n  externalName: db.test\n  clusterIP: 10.1.0.1\n  selector: {{ app: web }}\n  sessionAffinity: ClientIP\n  ipFamilies: [IPv4]\n  ports:\n  - {{ name: http, port: 80, targetPort: web, protocol: TCP, appProtocol: http }}\n  - {{ port: 443, targetPort: 8443, nodePort: 30443 }}\nstatus: {{ loadBalancer: {{ ingress: [{{ ip: 1.2.3.4 }}] }} }}\n"
    ));
    let Object::Service(svc) = o else {
        panic!("not a Service")
    };
    assert_identity_kept(&svc.metadata);
    assert!(svc.metadata.labels.is_none() && svc.metadata.annotations.is_none());
    assert!(svc.status.is_none());
    let spec = svc.spec.as_ref().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ExternalName"));
    assert_eq!(spec.external_name.as_deref(), Some("db.test"));
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.1.0.1"));
    assert_eq!(spec.selector.as_ref().unwrap()["app"], "web");
    assert!(spec.session_affinity.is_none() && spec.ip_families.is_none());
    let ports = spec.ports.as_ref().unwrap();
    assert_eq!(ports.capacity(), 2);
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    assert_eq!(ports[0].port, 80);
    assert!(ports[0].target_port.is_some());
    assert!(ports[0].protocol.is_none());
    // appProtocol chooses the upstream protocol.
    assert_eq!(ports[0].app_protocol.as_deref(), Some("http"));
    assert_eq!(ports[1].node_port, None);
}

#[test]
fn an_endpoint_slice_keeps_its_service_label_ports_and_addresses() {
    let o = one(&format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:{NOISY_META}addressType: IPv4\nports: [{{ name: http, port: 8080, protocol: TCP }}]\nendpoints:\n- addresses: [10.0.0.1]\n  conditions: {{ ready: false, serving: true }}\n  nodeName: n1\n  zone: z1\n  hostname: h\n  targetRef: {{ kind: Pod, namespace: shop, name: web-1, uid: u-3, resourceVersion: \"7\" }}\n"
    ));
    let Object::EndpointSlice(slice) = o else {
        panic!("not an EndpointSlice")
    };
    assert_identity_kept(&slice.metadata);
    assert!(slice.metadata.annotations.is_none());
    let labels = slice.metadata.labels.as_ref().unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[SERVICE_NAME_LABEL], "web");
    assert_eq!(slice.address_type, "IPv4");
    let port = &slice.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port),
        (Some("http"), Some(8080))
    );
    assert!(port.protocol.is_none());
    assert_eq!(slice.endpoints.capacity(), 1);
    let ep = &slice.endpoints[0];
    assert_eq!(ep.addresses, ["10.0.0.1"]);
    assert_eq!(ep.conditions.as_ref().unwrap().ready, Some(false));
    assert_eq!(ep.conditions.as_ref().unwrap().serving, Some(true));
    assert!(ep.node_name.is_none() && ep.zone.is_none() && ep.hostname.is_none());
    let r = ep.target_ref.as_ref().unwrap();
    assert_eq!(
        (r.kind.as_deref(), r.namespace.as_deref(), r.name.as_deref()),
        (Some("Pod"), Some("shop"), Some("web-1"))
    );
    assert!(r.uid.is_none() && r.resource_version.is_none());
}

#[test]
fn legacy_endpoints_keep_their_ready_addresses_and_ports() {
    let o = one(&format!(
        "apiVersion: v1\nkind: Endpoints\nmetadata:{NOISY_META}subsets:\n- addresses: [{{ ip: 10.0.0.1, nodeName: n1, hostname: h }}]\n  notReadyAddresses: [{{ ip: 10.0.0.2 }}]\n  ports: [{{ name: http, port: 8080, protocol: TCP }}]\n"
    ));
    let Object::Endpoints(eps) = o else {
        panic!("not Endpoints")
    };
    assert_identity_kept(&eps.metadata);
    let subset = &eps.subsets.as_ref().unwrap()[0];
    let address = &subset.addresses.as_ref().unwrap()[0];
    assert_eq!(address.ip, "10.0.0.1");
    assert!(address.node_name.is_none() && address.hostname.is_none());
    assert!(subset.not_ready_addresses.is_none());
    let port = &subset.ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("http"), 8080));
    assert!(port.protocol.is_none());
}

#[test]
fn secrets_config_maps_and_classes_keep_what_is_read() {
    let o = one(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:{NOISY_META}type: kubernetes.io/tls\nstringData: {{ tls.crt: c, tls.key: k }}\n"
    ));
    let Object::Secret(secret) = o else {
        panic!("not a Secret")
    };
    assert_identity_kept(&secret.metadata);
    assert!(secret.metadata.annotations.is_none());
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(secret.data.as_ref().unwrap().len(), 2);

    let o = one(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:{NOISY_META}data: {{ use-forwarded-headers: \"true\" }}\n"
    ));
    let Object::ConfigMap(cm) = o else {
        panic!("not a ConfigMap")
    };
    assert_eq!(cm.data.as_ref().unwrap()["use-forwarded-headers"], "true");

    let o = one(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: mse\n  annotations: { ingressclass.kubernetes.io/is-default-class: \"true\" }\n  managedFields: [{ manager: x }]\nspec: { controller: mse.alibabacloud.com/ingress }\n",
    );
    let Object::IngressClass(class) = o else {
        panic!("not an IngressClass")
    };
    assert_eq!(
        class.metadata.annotations.as_ref().unwrap()["ingressclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert!(class.metadata.managed_fields.is_none());
    assert!(class.spec.is_some());
}

#[test]
fn a_snapshot_slims_what_it_is_given() {
    let loaded = load_manifests(
        "apiVersion: v1\nkind: Service\nmetadata: { name: web, managedFields: [{ manager: x }] }\nspec: { sessionAffinity: None }\n",
        None,
    );
    let mut snapshot = Snapshot::default();
    snapshot.extend(loaded.objects);
    let svc = &snapshot.services[0].object;
    assert!(svc.metadata.managed_fields.is_none());
    assert!(svc.spec.as_ref().unwrap().session_affinity.is_none());
}

#[test]
fn a_pod_keeps_its_labels_and_addresses() {
    let o = one(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:{NOISY_META}spec:\n  nodeName: n1\n  containers: [{{ name: app, image: example/app }}]\nstatus:\n  phase: Running\n  hostIP: 10.9.0.1\n  podIP: 10.0.0.7\n  podIPs: [{{ ip: 10.0.0.7 }}, {{ ip: \"fd00::7\" }}]\n"
    ));
    let Object::Pod(pod) = o else {
        panic!("not a Pod")
    };
    assert_identity_kept(&pod.metadata);
    assert!(pod.metadata.labels.is_some());
    assert!(pod.metadata.annotations.is_none() && pod.spec.is_none());
    let status = pod.status.as_ref().unwrap();
    assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(status.pod_ips.as_ref().unwrap()[1].ip, "fd00::7");
    assert!(status.phase.is_none() && status.host_ip.is_none());
}
