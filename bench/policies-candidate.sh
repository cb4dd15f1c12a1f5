#!/usr/bin/env bash
# A bench candidate for the shared rig (`run.sh`, CANDIDATE_CMD) where every route carries
# the routing policies: a regex path with a capture-group rewrite, match conditions, a
# weighted and a header canary, request and response header edits, CORS, a fallback
# Service with custom-http-errors, a 1% mirror and x-forwarded-prefix. Requests carry no
# Origin or canary header, so they take the common path through all of it; 10% go to the
# canary Service and 1% are mirrored, all to the rig's one backend.
#
# Needs (from the rig): GATEWAY_BIN, LISTEN_ADDR, BACKEND_ADDR, RUN_DIR; optional TLS_CERT
# and TLS_KEY, N_EXTRA (filler Ingresses on other hosts, default 10000), PROXY_THREADS.
set -eu
dir=$RUN_DIR/manifests; mkdir -p "$dir"
host=${BACKEND_ADDR%:*}; port=${BACKEND_ADDR##*:}
python3 - "$dir" "$host" "$port" "${N_EXTRA:-10000}" "${TLS_CERT:-}" "${TLS_KEY:-}" <<'PY'
import sys, json, base64
d, host, port, n, cert, key = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
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
def policies():
    return {
        N + "use-regex": "true",
        N + "rewrite-target": "/$1",
        H + "match-method": "GET HEAD",
        H + "regex-match-header-host": "[a-z0-9.:-]+",
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
def canary():
    # A canary repeats the main route's key: host, regex path and match conditions.
    a = {N + "canary": "true", N + "canary-by-header": "x-canary", N + "canary-weight": "10",
         N + "use-regex": "true", H + "match-method": "GET HEAD",
         H + "regex-match-header-host": "[a-z0-9.:-]+"}
    return a
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
docs.append(ingress("bench", policies(), [rule(None, ["/(.*)"], "backend")], tls))
docs.append(ingress("bench-canary", canary(), [rule(None, ["/(.*)"], "backend-canary")]))
for i in range(n):
    h = f"svc-{i}.example.com"
    docs.append(ingress(f"filler-{i}", policies(), [rule(h, [f"/api/v{i % 5}/(.*)", "/healthz"], "backend")]))
    if i % 10 == 0:
        docs.append(ingress(f"filler-{i}-canary", canary(), [rule(h, [f"/api/v{i % 5}/(.*)"], "backend-canary")]))
with open(f"{d}/all.yaml", "w") as f:
    for doc in docs:
        f.write("---\n" + json.dumps(doc) + "\n")
PY
admin=127.0.0.1:$(( ${LISTEN_PORT:-23000} + 900 ))
args=(--manifests "$dir" --ingress-class mse --admin-addr "$admin" --workers "${PROXY_THREADS:-1}")
if [ -n "${TLS_CERT:-}" ]; then args+=(--https-addr "$LISTEN_ADDR" --http-addr 127.0.0.1:0); else args+=(--http-addr "$LISTEN_ADDR" --https-addr 127.0.0.1:0); fi
exec "$GATEWAY_BIN" "${args[@]}"
