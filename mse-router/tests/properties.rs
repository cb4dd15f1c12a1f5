//! Properties of compiling and matching: the result does not depend on input order, and
//! the indexed lookup agrees with a plain linear reading of the rules.

use mse_model::api::{Ingress, ObjectMeta, Service, Time};
use mse_model::k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
use mse_model::k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, IngressBackend, IngressRule, IngressServiceBackend,
    IngressSpec, ServiceBackendPort,
};
use mse_model::k8s_openapi::jiff::Timestamp;
use mse_model::{Snapshot, Sourced};
use mse_router::{CompileOptions, HostMatch, PathMatch, RequestHead, Route, RouteTable, compile};
use proptest::prelude::*;

const HOSTS: [&str; 5] = ["", "a.test", "b.test", "*.test", "*.x.test"];
const PATHS: [&str; 7] = ["/", "/a", "/a/", "/a/b", "/ab", "/b", "/a/b/c"];
const TYPES: [&str; 3] = ["Exact", "Prefix", "ImplementationSpecific"];
/// Annotation sets an Ingress may carry: none, a method condition, a header condition,
/// regex paths, case-insensitive paths, and two combinations.
const ANNOTATIONS: [&[(&str, &str)]; 7] = [
    &[],
    &[("higress.io/match-method", "POST")],
    &[("higress.io/exact-match-header-x-env", "dev")],
    &[("nginx.ingress.kubernetes.io/use-regex", "true")],
    &[("higress.io/ignore-path-case", "true")],
    &[
        ("higress.io/ignore-path-case", "true"),
        ("higress.io/exact-match-header-x-env", "dev"),
    ],
    &[
        ("nginx.ingress.kubernetes.io/use-regex", "true"),
        ("higress.io/match-method", "POST"),
    ],
];

#[derive(Clone, Debug)]
struct Spec {
    annotations: usize,
    created: Option<u8>,
    default_backend: Option<u8>,
    rules: Vec<(usize, Vec<(usize, usize, u8)>)>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..ANNOTATIONS.len(),
        proptest::option::of(0u8..4),
        proptest::option::weighted(0.2, 0u8..3),
        proptest::collection::vec(
            (
                0..HOSTS.len(),
                proptest::collection::vec((0..PATHS.len(), 0..TYPES.len(), 0u8..3), 0..4),
            ),
            0..3,
        ),
    )
        .prop_map(|(annotations, created, default_backend, rules)| Spec {
            annotations,
            created,
            default_backend,
            rules,
        })
}

fn backend(svc: u8) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: format!("s{svc}"),
            port: Some(ServiceBackendPort {
                number: Some(80),
                name: None,
            }),
        }),
        resource: None,
    }
}

fn build(i: usize, s: &Spec) -> Ingress {
    let rules = s
        .rules
        .iter()
        .map(|(h, paths)| IngressRule {
            host: Some(HOSTS[*h].to_owned()).filter(|h| !h.is_empty()),
            http: Some(HTTPIngressRuleValue {
                paths: paths
                    .iter()
                    .map(|(p, t, svc)| HTTPIngressPath {
                        path: Some(PATHS[*p].to_owned()),
                        path_type: TYPES[*t].to_owned(),
                        backend: backend(*svc),
                    })
                    .collect(),
            }),
        })
        .collect();
    Ingress {
        metadata: ObjectMeta {
            name: Some(format!("ing{i}")),
            namespace: Some("default".to_owned()),
            annotations: Some(
                ANNOTATIONS[s.annotations]
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
            .filter(|a: &std::collections::BTreeMap<String, String>| !a.is_empty()),
            creation_timestamp: s
                .created
                .and_then(|c| Timestamp::from_second(1_700_000_000 + i64::from(c) * 60).ok())
                .map(Time),
            ..Default::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: Some("mse".to_owned()),
            rules: Some(rules),
            default_backend: s.default_backend.map(backend),
            ..Default::default()
        }),
        status: None,
    }
}

fn snapshot(ings: &[Ingress]) -> Snapshot {
    let mut s = Snapshot::default();
    for svc in 0..3 {
        s.services.push(Sourced::new(Service {
            metadata: ObjectMeta {
                name: Some(format!("s{svc}")),
                namespace: Some("default".to_owned()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                ports: Some(vec![ServicePort {
                    port: 80,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        }));
    }
    s.ingresses = ings.iter().cloned().map(Sourced::new).collect();
    s
}

fn render(t: &RouteTable) -> String {
    let diags: Vec<String> = t.diagnostics().iter().map(ToString::to_string).collect();
    format!("{}\n{}", t.to_json(), diags.join("\n"))
}

/// The rules read plainly: pick the host group (exact, else wildcard, else any), then
/// among the routes of the group that match the path and the conditions, the first by:
/// Exact paths (case-sensitive before `ignore-path-case`), the longest non-root Prefix,
/// the root Prefix with conditions, regexes (longer pattern first), the root Prefix
/// without conditions, the default backend; within one step a method condition before a
/// header condition before none, then age.
fn naive<'t>(t: &'t RouteTable, host: &str, req: &RequestHead<'_>) -> Option<&'t Route> {
    let host = host.to_ascii_lowercase();
    let path = req.path;
    let groups = [
        HostMatch::Exact(host.clone().into()),
        match host.split_once('.') {
            Some((first, rest)) if !first.is_empty() && !rest.is_empty() => {
                HostMatch::Wildcard(rest.into())
            }
            _ => HostMatch::Exact("\0".into()),
        },
        HostMatch::Any,
    ];
    let group = groups
        .iter()
        .find(|g| t.routes().iter().any(|r| r.host == **g))?;
    let rank = |r: &Route| match r.conditions.as_deref().map(|c| c.key()) {
        Some(k) if k.starts_with("method") => 0,
        Some(_) => 1,
        None => 2,
    };
    let folded = path.to_ascii_lowercase();
    let path_matches = |r: &Route| match (&r.path, r.ignore_case) {
        (PathMatch::Regex(_), _) | (_, false) => r.path.matches(path),
        (PathMatch::Exact(p), true) => p.to_ascii_lowercase() == folded,
        (PathMatch::Prefix(p), true) => {
            PathMatch::Prefix(p.to_ascii_lowercase().into()).matches(&folded)
        }
    };
    t.routes()
        .iter()
        .filter(|r| r.host == *group)
        .filter(|r| r.default_backend || path_matches(r))
        .filter(|r| r.conditions.as_deref().is_none_or(|c| c.matches(req)))
        .min_by_key(|r| {
            let ci = usize::from(r.ignore_case);
            let len = r.path.path().len();
            let step = match (&r.path, r.default_backend) {
                (_, true) => (5, 0, 0),
                (PathMatch::Exact(_), _) => (0, 0, ci),
                (PathMatch::Prefix(p), _) if !p.is_empty() => (1, usize::MAX - len, ci),
                (PathMatch::Prefix(_), _) if r.conditions.is_some() => (2, 0, ci),
                (PathMatch::Regex(_), _) => (3, usize::MAX - len, 0),
                (PathMatch::Prefix(_), _) => (4, 0, ci),
            };
            (step, rank(r), r.id)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn compiling_does_not_depend_on_input_order(specs in proptest::collection::vec(spec(), 0..8), seed in any::<u64>()) {
        let ings: Vec<Ingress> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        let mut shuffled = ings.clone();
        // A deterministic shuffle from the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let opts = CompileOptions::default();
        let a = compile(&snapshot(&ings), &opts);
        let b = compile(&snapshot(&shuffled), &opts);
        prop_assert_eq!(render(&a), render(&b));
    }

    #[test]
    fn lookup_agrees_with_a_linear_matcher(
        specs in proptest::collection::vec(spec(), 0..8),
        host in prop::sample::select(vec!["a.test", "b.test", "c.test", "q.x.test", "A.TEST:80", "other", ""]),
        path in prop::sample::select(vec!["/", "/a", "/a/", "/a/b", "/a/bc", "/ab", "/b/", "/a/b/c/d", "/c", "/A/B", "/AB"]),
        post in any::<bool>(),
        dev in any::<bool>(),
    ) {
        let ings: Vec<Ingress> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        let t = compile(&snapshot(&ings), &CompileOptions::default());
        let host_only = host.split(':').next().unwrap_or("");
        let mut headers = http::HeaderMap::new();
        if dev {
            headers.insert("x-env", http::HeaderValue::from_static("dev"));
        }
        let req = RequestHead::new(host, path)
            .method(if post { "POST" } else { "GET" })
            .headers(&headers);
        let got = t.lookup(&req).map(|m| m.route.id);
        let want = naive(&t, host_only, &req).map(|r| r.id);
        prop_assert_eq!(got, want, "host {:?} path {:?} post {} dev {}\n{}", host, path, post, dev, render(&t));
    }

    #[test]
    fn lookup_never_panics(host in "\\PC{0,40}", path in "\\PC{0,80}") {
        let ings: Vec<Ingress> = (0..3).map(|i| build(i, &Spec { annotations: 0, created: None, default_backend: Some(0), rules: vec![(1, vec![(1, 1, 0)])] })).collect();
        let t = compile(&snapshot(&ings), &CompileOptions::default());
        let p = mse_router::normalize_path(&path);
        let _ = t.lookup(&RequestHead::new(&host, &p));
    }
}
