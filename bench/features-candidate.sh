#!/usr/bin/env bash
# A bench candidate (the shared rig's CANDIDATE_CMD, or bench/callgrind.sh) where every route
# carries one group of features, for the security and traffic-governance benchmarks.
# FEATURES picks the group; bench/nginx-conf.sh writes nginx's configuration for the same name:
#
#   allow-auth-bcrypt  whitelist-source-range (3 entries, the client's among them) plus basic
#                      auth (auth-type basic, auth-secret) with MATERIAL/htpasswd.bcrypt
#   allow-auth-sha     the same with MATERIAL/htpasswd.sha ({SHA} hash)
#   mtls               TLS for host `localhost` (MATERIAL/server.pem unless TLS_CERT/TLS_KEY
#                      are set) with client certificates required (auth-tls-secret with
#                      MATERIAL/ca.pem, auth-tls-verify-client: on); fillers stay plain
#   least-conn         load-balance: least_conn, limit-rps 100000 (never reached here),
#                      proxy-next-upstream error/timeout/502-504 with 3 tries
#   hash               the same with upstream-hash-by: $request_uri instead of least_conn
#
# least-conn and hash spread the Service over two endpoints, BACKEND_ADDR and BACKEND2_ADDR
# (default: BACKEND_ADDR twice).
#
# Needs: GATEWAY_BIN, LISTEN_ADDR, BACKEND_ADDR, RUN_DIR, FEATURES, MATERIAL (a folder made by
# bench/material.sh); optional N_EXTRA (filler Ingresses on other hosts, default 10000),
# PROXY_THREADS, ACCESS_LOG (true/false, default false).
set -eu
dir=$RUN_DIR/manifests; mkdir -p "$dir"
: "${FEATURES:?set FEATURES}" "${MATERIAL:?set MATERIAL to a folder made by bench/material.sh}"
if [ "$FEATURES" = mtls ]; then
  TLS_CERT=${TLS_CERT:-$MATERIAL/server.pem}; TLS_KEY=${TLS_KEY:-$MATERIAL/server.key}
fi
python3 - "$dir" "$BACKEND_ADDR" "${BACKEND2_ADDR:-$BACKEND_ADDR}" "${N_EXTRA:-10000}" "$FEATURES" "$MATERIAL" "${TLS_CERT:-}" "${TLS_KEY:-}" <<'PY'
import sys, json, base64
d, b1, b2, n, kind, mat, cert, key = sys.argv[1:9]
n = int(n)
ns = "bench"
N = "nginx.ingress.kubernetes.io/"
def b64(path):
    return base64.b64encode(open(path, "rb").read()).decode()
docs = [{"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "mse"},
         "spec": {"controller": "mse.alibabacloud.com/ingress"}}]
docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "backend", "namespace": ns},
             "spec": {"ports": [{"name": "http", "port": 80}]}})
endpoints = [b1, b2] if kind in ("least-conn", "hash") else [b1]
for i, addr in enumerate(endpoints):
    host, port = addr.rsplit(":", 1)
    # One slice per endpoint, so the two endpoints may listen on different ports.
    docs.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                 "metadata": {"name": f"backend-{i}", "namespace": ns,
                              "labels": {"kubernetes.io/service-name": "backend"}},
                 "addressType": "IPv4", "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
                 "ports": [{"name": "http", "port": int(port), "protocol": "TCP"}]})

annotations = {}
bench_host = None
tls = None
if kind in ("allow-auth-bcrypt", "allow-auth-sha"):
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-users", "namespace": ns},
                 "type": "Opaque", "data": {"auth": b64(f"{mat}/htpasswd.{kind.rsplit('-', 1)[1]}")}})
    annotations = {
        N + "whitelist-source-range": "10.0.0.0/8, 192.168.0.0/16, 127.0.0.1/32",
        N + "auth-type": "basic",
        N + "auth-secret": "bench-users",
        N + "auth-realm": "bench",
    }
elif kind == "mtls":
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-tls", "namespace": ns},
                 "type": "kubernetes.io/tls", "data": {"tls.crt": b64(cert), "tls.key": b64(key)}})
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-ca", "namespace": ns},
                 "type": "Opaque", "data": {"ca.crt": b64(f"{mat}/ca.pem")}})
    bench_host = "localhost"
    tls = [{"hosts": ["localhost"], "secretName": "bench-tls"}]
elif kind in ("least-conn", "hash"):
    annotations = {
        N + "limit-rps": "100000",
        N + "proxy-next-upstream": "error timeout http_502 http_503 http_504",
        N + "proxy-next-upstream-tries": "3",
    }
    if kind == "least-conn":
        annotations[N + "load-balance"] = "least_conn"
    else:
        annotations[N + "upstream-hash-by"] = "$request_uri"
else:
    sys.exit(f"unknown FEATURES {kind!r}")
if cert and key and kind != "mtls":
    # The rig's TLS modes: the benchmark route gets the rig's certificate.
    docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-tls", "namespace": ns},
                 "type": "kubernetes.io/tls", "data": {"tls.crt": b64(cert), "tls.key": b64(key)}})
    tls = [{"secretName": "bench-tls"}]

def ingress(name, ann, rules, tls=None):
    spec = {"ingressClassName": "mse", "rules": rules}
    if tls:
        spec["tls"] = tls
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns, "annotations": ann}, "spec": spec}
def rule(h, paths):
    r = {"http": {"paths": [{"path": p, "pathType": t,
                             "backend": {"service": {"name": "backend", "port": {"number": 80}}}} for p, t in paths]}}
    if h:
        r["host"] = h
    return r

bench_ann = dict(annotations)
if kind == "mtls":
    bench_ann = {N + "auth-tls-secret": "bench/bench-ca", N + "auth-tls-verify-client": "on"}
docs.append(ingress("bench", bench_ann, [rule(bench_host, [("/", "Prefix")])], tls))
for i in range(n):
    docs.append(ingress(f"filler-{i}", annotations,
                        [rule(f"svc-{i}.example.com", [(f"/api/v{i % 5}", "Prefix"), ("/healthz", "Exact")])]))
with open(f"{d}/all.yaml", "w") as f:
    for doc in docs:
        f.write("---\n" + json.dumps(doc) + "\n")
PY
admin=127.0.0.1:$(( ${LISTEN_PORT:-23000} + 900 ))
args=(--manifests "$dir" --ingress-class mse --admin-addr "$admin" --workers "${PROXY_THREADS:-1}" --access-log "${ACCESS_LOG:-false}")
if [ -n "${TLS_CERT:-}" ]; then args+=(--https-addr "$LISTEN_ADDR" --http-addr 127.0.0.1:0); else args+=(--http-addr "$LISTEN_ADDR" --https-addr 127.0.0.1:0); fi
exec "$GATEWAY_BIN" "${args[@]}"
