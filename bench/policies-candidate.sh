#!/usr/bin/env bash
# A bench candidate for the shared rig (`run.sh`, CANDIDATE_CMD) where every route carries
# the routing policies: a rewrite, a method condition, a weighted and a header canary,
# request and response header edits, CORS, a fallback Service with custom-http-errors, a
# 1% mirror and x-forwarded-prefix. POLICIES=heavy (default: typical) makes the paths
# regexes rewritten with capture groups and adds a regex condition on the Host header.
# Requests carry no Origin or canary header, so they take the common path through all of
# it; 10% go to the canary Service and 1% are mirrored, all to the rig's one backend.
#
# Needs (from the rig): GATEWAY_BIN, LISTEN_ADDR, BACKEND_ADDR, RUN_DIR; optional TLS_CERT
# and TLS_KEY, N_EXTRA (filler Ingresses on other hosts, default 10000), PROXY_THREADS,
# POLICIES, ACCESS_LOG (true/false, default false like the rig's nginx; the rig sets it with
# ACCESS_LOG=1).
set -eu
dir=$RUN_DIR/manifests; mkdir -p "$dir"
host=${BACKEND_ADDR%:*}; port=${BACKEND_ADDR##*:}
python3 - "$dir" "$host" "$port" "${N_EXTRA:-10000}" "${TLS_CERT:-}" "${TLS_KEY:-}" "${POLICIES:-typical}" <<'PY'
import sys, json, base64
d, host, port, n, cert, key, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
heavy = kind == "heavy"
ns = "bench"
docs = [{"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "mse"},
         "spec": {"controller": "mse.alibabacloud.com/ingress"}}]
# Four Services on the one backend address: main, canary, fallback and mirror.
for svc in ["backend", "backend-canary", "backend-fallback", "backend-mirror"]:
    docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc, "namespace": ns},
                 "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}})
    docs.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": f"{svc}-1", "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
                 "addressType": "IPv4", "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
                 "ports": [{"name": "http", "port": port, "protocol": "TCP"}]})

N = "nginx.ingress.kubernetes.io/"
H = "higress.io/"
def matching():
    m = {H + "match-method": "GET HEAD"}
    if heavy:
        m[N + "use-regex"] = "true"
        m[H + "regex-match-header-host"] = "[a-z0-9.:-]+"
    return m
def policies():
    p = {
        H + "request-header-control-add": "x-gateway mse",
        H + "response-header-control-add": "x-served-by mse",
        N + "enable-cors": "true",
        N + "cors-allow-origin": "https://app.example.com, https://*.example.org",
        N + "default-backend": "backend-fallback",
        N + "custom-http-errors": "502,503,504",
        N + "mirror-target-service": "backend-mirror",
        N + "mirror-percentage": "1",
        N + "x-forwarded-prefix": "/",
    }
    # The heavy set rewrites with a capture group of a regex path; the typical set
    # replaces the matched prefix (`/` by `/`, so the rig's paths are kept).
    p[N + "rewrite-target"] = "/$1" if heavy else "/"
    p.update(matching())
    return p
def canary():
    # A canary repeats the main route's key: host, path (regex or not) and conditions.
    a = {N + "canary": "true", N + "canary-by-header": "x-canary", N + "canary-weight": "10"}
    a.update(matching())
    return a
def path(p):
    # `/(.*)` style regexes for the heavy set, plain prefixes otherwise.
    return p + "(.*)" if heavy and p.endswith("/") else p
def ingress(name, annotations, rules, tls=None):
    spec = {"ingressClassName": "mse", "rules": rules}
    if tls:
        spec["tls"] = tls
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations}, "spec": spec}
def rule(h, paths, svc):
    r = {"http": {"paths": [{"path": p, "pathType": "ImplementationSpecific",
                             "backend": {"service": {"name": svc, "port": {"number": 80}}}} for p in paths]}}
    if h:
        r["host"] = h
    return r

tls = None
if cert and key:
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-tls", "namespace": ns},
                 "type": "kubernetes.io/tls",
                 "data": {"tls.crt": base64.b64encode(open(cert, "rb").read()).decode(),
                          "tls.key": base64.b64encode(open(key, "rb").read()).decode()}})
    tls = [{"secretName": "bench-tls"}]
docs.append(ingress("bench", policies(), [rule(None, [path("/")], "backend")], tls))
docs.append(ingress("bench-canary", canary(), [rule(None, [path("/")], "backend-canary")]))
for i in range(n):
    h = f"svc-{i}.example.com"
    docs.append(ingress(f"filler-{i}", policies(), [rule(h, [path(f"/api/v{i % 5}/"), "/healthz"], "backend")]))
    if i % 10 == 0:
        docs.append(ingress(f"filler-{i}-canary", canary(), [rule(h, [path(f"/api/v{i % 5}/")], "backend-canary")]))
with open(f"{d}/all.yaml", "w") as f:
    for doc in docs:
        f.write("---\n" + json.dumps(doc) + "\n")
PY
admin=127.0.0.1:$(( ${LISTEN_PORT:-23000} + 900 ))
args=(--manifests "$dir" --ingress-class mse --admin-addr "$admin" --workers "${PROXY_THREADS:-1}" --access-log "${ACCESS_LOG:-false}")
if [ -n "${TLS_CERT:-}" ]; then args+=(--https-addr "$LISTEN_ADDR" --http-addr 127.0.0.1:0); else args+=(--http-addr "$LISTEN_ADDR" --https-addr 127.0.0.1:0); fi
exec "$GATEWAY_BIN" "${args[@]}"
