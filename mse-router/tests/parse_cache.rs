//! Compiles that share parsed annotations between Ingresses and keep them for the next
//! compile ([`compile_cached`]) give the table a compile that parses every Ingress gives
//! (a cache with limit 0), diagnostics included, after any sequence of edits: Ingresses
//! created, changed (annotations, namespace, rules, age, file line) and deleted, Services,
//! EndpointSlices, Secrets and ConfigMaps coming and going.

use mse_model::{Snapshot, Sourced, load_manifests};
use mse_router::normalize_path;
use mse_router::{CompileCache, CompileOptions, RequestHead, RouteTable, compile_cached};
use proptest::prelude::*;

/// Ingress slots; names repeat across slots so that two objects can share a key.
const SLOTS: usize = 8;
const NAMES: usize = 6;
/// Namespaces: a Secret reference's result depends on the Ingress's.
const NAMESPACES: [&str; 2] = ["default", "other"];
const HOSTS: [&str; 4] = ["a.test", "b.test", "*.test", "www.c.test"];
const PATHS: [&str; 5] = ["/", "/api", "/api/(.*)", "/b", "/img"];
/// Annotation sets: none, regex and rewrite, canaries, policies, references to other
/// objects (ConfigMap, Secret, Service), bad values, unknown and refused keys.
const ANNOTATIONS: [&[(&str, &str)]; 21] = [
    &[],
    &[
        ("nginx.ingress.kubernetes.io/use-regex", "\"true\""),
        ("nginx.ingress.kubernetes.io/rewrite-target", "/$1"),
    ],
    &[
        ("nginx.ingress.kubernetes.io/canary", "\"true\""),
        ("nginx.ingress.kubernetes.io/canary-weight", "\"30\""),
    ],
    &[
        ("nginx.ingress.kubernetes.io/canary", "\"true\""),
        ("nginx.ingress.kubernetes.io/canary-by-header", "x-canary"),
    ],
    &[
        ("nginx.ingress.kubernetes.io/proxy-body-size", "8m"),
        ("nginx.ingress.kubernetes.io/ssl-redirect", "\"false\""),
    ],
    &[("nginx.ingress.kubernetes.io/proxy-send-timeout", "ten")],
    &[("nginx.ingress.kubernetes.io/ssl-redirects", "\"true\"")],
    &[(
        "nginx.ingress.kubernetes.io/whitelist-source-range",
        "\"10.0.0.0/8, 192.168.0.0/16\"",
    )],
    &[("nginx.ingress.kubernetes.io/whitelist-source-range", "nope")],
    &[(
        "nginx.ingress.kubernetes.io/custom-headers",
        "default/extra",
    )],
    &[
        ("nginx.ingress.kubernetes.io/auth-type", "basic"),
        ("nginx.ingress.kubernetes.io/auth-secret", "users"),
    ],
    &[
        ("nginx.ingress.kubernetes.io/enable-cors", "\"true\""),
        (
            "nginx.ingress.kubernetes.io/from-to-www-redirect",
            "\"true\"",
        ),
    ],
    &[
        ("higress.io/exact-match-header-x-env", "staging"),
        ("nginx.ingress.kubernetes.io/server-alias", "alias.test"),
    ],
    &[("nginx.ingress.kubernetes.io/default-backend", "s2")],
    &[(
        "nginx.ingress.kubernetes.io/configuration-snippet",
        "more_set_headers \"X: y\";",
    )],
    &[
        ("nginx.ingress.kubernetes.io/app-root", "/app"),
        ("nginx.ingress.kubernetes.io/proxy-buffer-size", "16k"),
    ],
    &[
        ("nginx.ingress.kubernetes.io/auth-type", "basic"),
        ("nginx.ingress.kubernetes.io/auth-secret", "other/users"),
    ],
    &[
        ("nginx.ingress.kubernetes.io/auth-tls-secret", "default/ca"),
        ("nginx.ingress.kubernetes.io/rewrite-taget", "/"),
    ],
    &[("nginx.ingress.kubernetes.io/proxy-ssl-secret", "other/ca")],
    &[
        ("nginx.ingress.kubernetes.io/mirror-target-service", "s1"),
        ("nginx.ingress.kubernetes.io/proxy-body-size", "8m"),
    ],
    &[
        ("nginx.ingress.kubernetes.io/custom-http-errors", "503"),
        ("nginx.ingress.kubernetes.io/proxy-body-size", "8m"),
    ],
];

/// One Ingress: its name, annotation set, age, file line padding, TLS, rules.
#[derive(Clone, Debug)]
struct Ing {
    name: usize,
    namespace: usize,
    annotations: usize,
    created: Option<u8>,
    pad: u8,
    tls: Option<(usize, u8)>,
    default_backend: Option<u8>,
    rules: Vec<(usize, Vec<(usize, bool, u8)>)>,
}

/// One edit of the objects.
#[derive(Clone, Debug)]
enum Edit {
    /// Creates or replaces the Ingress in a slot.
    Put(usize, Ing),
    /// Replaces the Ingress in a slot with an equal copy (a new object, same content).
    Touch(usize),
    /// Deletes the Ingress in a slot.
    Delete(usize),
    /// Service `s{n}`: absent, or with its port named `http` or not, and an EndpointSlice
    /// with this many ready addresses.
    Service(u8, Option<(bool, u8)>),
    /// The TLS and basic-auth Secrets: present or not.
    Secrets(bool),
    /// The `custom-headers` ConfigMap: absent, or with this header value.
    ConfigMap(Option<u8>),
    /// The gateway ConfigMap's `ssl-redirect`.
    Global(bool),
}

fn ing() -> impl Strategy<Value = Ing> {
    (
        (0..NAMES, 0..NAMESPACES.len()),
        0..ANNOTATIONS.len(),
        proptest::option::of(0u8..4),
        0u8..3,
        proptest::option::weighted(0.2, (0..HOSTS.len(), 0u8..2)),
        proptest::option::weighted(0.2, 0u8..3),
        proptest::collection::vec(
            (
                0..HOSTS.len(),
                proptest::collection::vec((0..PATHS.len(), any::<bool>(), 0u8..3), 0..3),
            ),
            0..3,
        ),
    )
        .prop_map(
            |((name, namespace), annotations, created, pad, tls, default_backend, rules)| Ing {
                name,
                namespace,
                annotations,
                created,
                pad,
                tls,
                default_backend,
                rules,
            },
        )
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (0..SLOTS, ing()).prop_map(|(s, i)| Edit::Put(s, i)),
        2 => (0..SLOTS).prop_map(Edit::Touch),
        2 => (0..SLOTS).prop_map(Edit::Delete),
        2 => (0u8..3, proptest::option::of((any::<bool>(), 0u8..3)))
            .prop_map(|(s, v)| Edit::Service(s, v)),
        1 => any::<bool>().prop_map(Edit::Secrets),
        1 => proptest::option::of(0u8..3).prop_map(Edit::ConfigMap),
        1 => any::<bool>().prop_map(Edit::Global),
    ]
}

fn ingress_yaml(i: &Ing) -> String {
    let mut y = "#\n".repeat(usize::from(i.pad));
    y.push_str("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n");
    y.push_str(&format!(
        "  name: ing{}\n  namespace: {}\n",
        i.name, NAMESPACES[i.namespace]
    ));
    if let Some(c) = i.created {
        y.push_str(&format!(
            "  creationTimestamp: \"2026-01-01T00:0{c}:00Z\"\n"
        ));
    }
    let annotations = ANNOTATIONS[i.annotations];
    if !annotations.is_empty() {
        y.push_str("  annotations:\n");
        for (k, v) in annotations {
            y.push_str(&format!("    {k}: {v}\n"));
        }
    }
    y.push_str("spec:\n  ingressClassName: mse\n");
    if let Some(s) = i.default_backend {
        y.push_str(&format!(
            "  defaultBackend: {{ service: {{ name: s{s}, port: {{ number: 80 }} }} }}\n"
        ));
    }
    if let Some((h, secret)) = i.tls {
        y.push_str(&format!(
            "  tls: [{{ hosts: [\"{}\"], secretName: tls{secret} }}]\n",
            HOSTS[h]
        ));
    }
    y.push_str("  rules:\n");
    for (h, paths) in &i.rules {
        y.push_str(&format!(
            "  - host: \"{}\"\n    http:\n      paths:\n",
            HOSTS[*h]
        ));
        for (p, exact, s) in paths {
            let kind = if *exact { "Exact" } else { "Prefix" };
            y.push_str(&format!(
                "      - {{ path: \"{}\", pathType: {kind}, backend: {{ service: {{ name: s{s}, port: {{ name: http }} }} }} }}\n",
                PATHS[*p]
            ));
        }
    }
    y
}

fn service_yaml(n: u8, named: bool, ready: u8) -> String {
    let port = if named { "name: http, " } else { "" };
    let mut y = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{ name: s{n}, namespace: default }}\n\
         spec:\n  ports: [{{ {port}port: 80, targetPort: 8080 }}]\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata:\n  name: s{n}-x\n  namespace: default\n  labels: {{ kubernetes.io/service-name: s{n} }}\n\
         addressType: IPv4\nports: [{{ {port}port: 8080 }}]\nendpoints:\n"
    );
    for r in 0..ready {
        y.push_str(&format!(
            "- {{ addresses: [\"10.0.{n}.{r}\"], conditions: {{ ready: true }} }}\n"
        ));
    }
    y
}

const SECRETS: &str = "apiVersion: v1\nkind: Secret\nmetadata: { name: tls0, namespace: default }\n\
type: kubernetes.io/tls\ndata: { tls.crt: bm90IGEgY2VydA==, tls.key: bm90IGEga2V5 }\n---\n\
apiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: default }\n\
data: { auth: Zm9vOiRhcHIxJDEyMyQ0NTY= }\n---\n\
apiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: other }\n\
data: { auth: Zm9vOiRhcHIxJDEyMyQ0NTY= }\n---\n\
apiVersion: v1\nkind: Secret\nmetadata: { name: ca, namespace: default }\n\
data: { ca.crt: bm90IGEgY2VydA== }\n";

/// The objects of each kind as the edits left them; unchanged objects keep their
/// allocation from one snapshot to the next, as a source's do.
#[derive(Default)]
struct World {
    slots: Vec<Option<Snapshot>>,
    services: [Option<Snapshot>; 3],
    secrets: Option<Snapshot>,
    config_map: Option<Snapshot>,
    global: Option<Snapshot>,
    generation: u64,
}

fn load(text: &str, file: &str) -> Snapshot {
    let loaded = load_manifests(text, Some(file));
    let mut s = Snapshot::default();
    s.extend(loaded.objects);
    s
}

impl World {
    fn apply(&mut self, e: &Edit) {
        if self.slots.is_empty() {
            self.slots = vec![None; SLOTS];
        }
        match e {
            Edit::Put(slot, i) => {
                let file = format!("f{}.yaml", slot % 3);
                self.slots[*slot] = Some(load(&ingress_yaml(i), &file));
            }
            Edit::Touch(slot) => {
                if let Some(s) = self.slots[*slot].as_mut() {
                    for o in &mut s.ingresses {
                        *o = Sourced {
                            object: std::sync::Arc::new((*o.object).clone()),
                            source: o.source.clone(),
                        };
                    }
                }
            }
            Edit::Delete(slot) => self.slots[*slot] = None,
            Edit::Service(n, v) => {
                self.services[usize::from(*n)] =
                    v.map(|(named, ready)| load(&service_yaml(*n, named, ready), "svc.yaml"));
            }
            Edit::Secrets(on) => self.secrets = on.then(|| load(SECRETS, "secrets.yaml")),
            Edit::ConfigMap(v) => {
                self.config_map = v.map(|v| {
                    let y = format!(
                        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: extra, namespace: default }}\n\
                         data: {{ X-Extra: \"v{v}\" }}\n"
                    );
                    load(&y, "cm.yaml")
                });
            }
            Edit::Global(on) => {
                let y = format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {{ name: gw, namespace: infra }}\n\
                     data: {{ ssl-redirect: \"{on}\" }}\n"
                );
                self.global = Some(load(&y, "gw.yaml"));
            }
        }
    }

    fn snapshot(&mut self) -> Snapshot {
        self.generation += 1;
        let mut out = Snapshot {
            generation: self.generation,
            ..Snapshot::default()
        };
        let parts = self.slots.iter().chain(&self.services).chain([
            &self.secrets,
            &self.config_map,
            &self.global,
        ]);
        for s in parts.flatten() {
            out.ingresses.extend(s.ingresses.iter().cloned());
            out.services.extend(s.services.iter().cloned());
            out.endpoint_slices
                .extend(s.endpoint_slices.iter().cloned());
            out.secrets.extend(s.secrets.iter().cloned());
            out.config_maps.extend(s.config_maps.iter().cloned());
        }
        out
    }
}

/// Everything a table says, in a form two tables can be compared by: the JSON dump, the
/// routes and clusters in full, the TLS parts, the diagnostics, and what each request in
/// a grid of hosts and paths matches.
fn render(t: &RouteTable) -> String {
    let mut out = format!(
        "{}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n{:#?}\n",
        t.to_json(),
        t.routes(),
        t.clusters(),
        t.certificates(),
        t.tls_policies(),
        t.diagnostics(),
    );
    let hosts = [
        "a.test",
        "b.test",
        "x.test",
        "www.c.test",
        "c.test",
        "alias.test",
        "other",
    ];
    let paths = ["/", "/api", "/api/v1", "/b", "/img/x", "/app", "/nope"];
    for h in hosts {
        for p in paths {
            let path = normalize_path(p);
            let m = t.lookup(&RequestHead::new(h, &path)).map(|m| m.route.id);
            out.push_str(&format!("{h}{p} -> {m:?}\n"));
        }
    }
    out
}

fn opts() -> CompileOptions {
    CompileOptions {
        configmap: Some(mse_annotations::ObjectRef {
            namespace: Some("infra".into()),
            name: "gw".into(),
        }),
        ..CompileOptions::default()
    }
}

/// Compiles `world` after each edit with every cache of `caches` (the last compile's
/// table giving the global configuration in force) and checks each against a compile that
/// shares nothing.
fn check(
    world: &mut World,
    edits: &[Edit],
    caches: &mut [CompileCache],
) -> Result<(), TestCaseError> {
    let opts = opts();
    let mut previous: Option<RouteTable> = None;
    for (n, e) in std::iter::once(None)
        .chain(edits.iter().map(Some))
        .enumerate()
    {
        if let Some(e) = e {
            world.apply(e);
        }
        let snapshot = world.snapshot();
        let global = previous.as_ref().map(RouteTable::global);
        let whole = compile_cached(&snapshot, &opts, global, &mut CompileCache::with_limit(0));
        let expected = render(&whole);
        for cache in caches.iter_mut() {
            let cached = compile_cached(&snapshot, &opts, global, cache);
            prop_assert_eq!(&render(&cached), &expected, "after edit {} {:?}", n, e);
        }
        previous = Some(whole);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cached_compile_equals_whole_compile(
        start in proptest::collection::vec(edit(), 0..12),
        edits in proptest::collection::vec(edit(), 1..16),
    ) {
        let mut world = World::default();
        for e in &start {
            world.apply(e);
        }
        // The default limit, and a limit of 2 that the sets keep running into.
        let mut caches = [CompileCache::new(), CompileCache::with_limit(2)];
        check(&mut world, &edits, &mut caches)?;
    }
}

fn one(name: usize, namespace: usize, annotations: usize) -> Ing {
    Ing {
        name,
        namespace,
        annotations,
        created: None,
        pad: 0,
        tls: None,
        default_backend: Some(0),
        rules: vec![],
    }
}

/// One entry per distinct set of annotations, the namespace counting only where a Secret
/// reference makes it matter; what the last compile did not use is forgotten.
#[test]
fn cache_keeps_one_entry_per_distinct_set() {
    let opts = opts();
    let mut world = World::default();
    world.apply(&Edit::Put(0, one(0, 0, 4)));
    world.apply(&Edit::Put(1, one(1, 0, 4)));
    world.apply(&Edit::Put(2, one(2, 1, 4)));
    let mut cache = CompileCache::new();
    compile_cached(&world.snapshot(), &opts, None, &mut cache);
    assert_eq!(cache.len(), 1);
    // A Secret reference: one entry per namespace.
    world.apply(&Edit::Put(3, one(3, 0, 16)));
    world.apply(&Edit::Put(4, one(4, 1, 16)));
    world.apply(&Edit::Put(5, one(5, 1, 16)));
    compile_cached(&world.snapshot(), &opts, None, &mut cache);
    assert_eq!(cache.len(), 3);
    for slot in [0, 1, 2] {
        world.apply(&Edit::Delete(slot));
    }
    compile_cached(&world.snapshot(), &opts, None, &mut cache);
    assert_eq!(cache.len(), 2);
    let mut none = CompileCache::with_limit(0);
    compile_cached(&world.snapshot(), &opts, None, &mut none);
    assert!(none.is_empty());
}
