#!/usr/bin/env bash
# Response compression against nginx: a 16 KiB HTML page, fetched with
# `Accept-Encoding: gzip` through the gateway (`use-gzip`, one worker) and through nginx
# (`gzip on`, one worker process), both at gzip level 1 (ingress-nginx's default), with
# ingress-nginx's gzip settings. The backend is an nginx serving the page as a static
# file. Reports requests per second (wrk, keep-alive) and the proxy's CPU time per request
# (from /proc), and the same with compression off for both.
#
#   bench/compress.sh GATEWAY_BIN
#
# Needs: nginx, wrk, python3. Optional: CONNS (default 64), SECS (default 5), ROUNDS
# (default 3, medians reported), PORT (default 24200; uses PORT to PORT+3).
set -euo pipefail
bin=$(realpath "$1")
CONNS=${CONNS:-64}; SECS=${SECS:-5}; ROUNDS=${ROUNDS:-3}; PORT=${PORT:-24200}
backend=$PORT; gw=$((PORT + 1)); ngx=$((PORT + 2)); admin=$((PORT + 3))
run=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; for p in "$run"/*.pid; do kill "$(cat "$p" 2>/dev/null)" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$run"' EXIT

# The page: 16 KiB of HTML-like text, the same every run.
mkdir -p "$run/www"
python3 - "$run/www/16k.html" <<'PY'
import sys, random
r = random.Random(16)
words = "the gateway routes each request to a service by host and path with policies for retries timeouts and headers".split()
out = "<!doctype html><html><head><title>bench</title></head><body>\n"
while len(out) < 16384 - 20:
    out += "<p class=\"item\">" + " ".join(r.choice(words) for _ in range(12)) + "</p>\n"
out = out[:16384 - 15] + "</body></html>\n"
open(sys.argv[1], "w").write(out)
PY

cat >"$run/backend.conf" <<EOF
user root; daemon off; worker_processes 1; pid $run/b.pid; error_log $run/b.err;
events { worker_connections 4096; }
http { access_log off; types { text/html html; }
  server { listen 127.0.0.1:$backend; root $run/www; } }
EOF
nginx_peer() { # $1: on|off
  cat >"$run/peer.conf" <<EOF
user root; daemon off; worker_processes 1; pid $run/p.pid; error_log $run/p.err;
events { worker_connections 4096; }
http { access_log off;
  gzip $1; gzip_comp_level 1; gzip_min_length 256; gzip_proxied any; gzip_vary on;
  gzip_types application/atom+xml application/javascript application/x-javascript application/json application/rss+xml application/vnd.ms-fontobject application/x-font-ttf application/x-web-app-manifest+json application/xhtml+xml application/xml font/opentype image/svg+xml image/x-icon text/css text/javascript text/plain text/x-component;
  upstream b { server 127.0.0.1:$backend; keepalive 64; }
  server { listen 127.0.0.1:$ngx;
    location / { proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
EOF
  nginx -c "$run/peer.conf" -e "$run/p.err" &
}
gateway() { # $1: true|false
  mkdir -p "$run/m"
  cat >"$run/m/all.yaml" <<EOF
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: { name: mse }
spec: { controller: mse.alibabacloud.com/ingress }
---
apiVersion: v1
kind: Service
metadata: { name: backend, namespace: bench }
spec: { ports: [{ name: http, port: 80, targetPort: $backend }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: backend-1, namespace: bench, labels: { kubernetes.io/service-name: backend } }
addressType: IPv4
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]
ports: [{ name: http, port: $backend, protocol: TCP }]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: bench, namespace: bench }
spec:
  ingressClassName: mse
  rules: [{ http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: backend, port: { number: 80 } } } }] } }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: gateway, namespace: bench }
data: { use-gzip: "$1", gzip-level: "1" }
EOF
  "$bin" --manifests "$run/m" --ingress-class mse --configmap bench/gateway \
    --http-addr "127.0.0.1:$gw" --https-addr 127.0.0.1:0 --admin-addr "127.0.0.1:$admin" \
    --workers 1 --access-log false >"$run/gw.log" 2>&1 &
  echo $! >"$run/gw.pid"
}
wait_up() { for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$1/16k.html" && return; sleep 0.1; done; echo "port $1 not up" >&2; exit 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# One round: prints req/s and CPU us per request of process $2 behind port $1.
round() {
  local before after out reqs
  before=$(cpu_ticks "$2")
  out=$(wrk -t 1 -c "$CONNS" -d "${SECS}s" -H 'Accept-Encoding: gzip' "http://127.0.0.1:$1/16k.html")
  after=$(cpu_ticks "$2")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  python3 -c "import os,sys; t=os.sysconf('SC_CLK_TCK'); r=$reqs; print(f'{r/$SECS:.0f} {($after-$before)/t*1e6/r:.1f}')"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # $1 name, $2 port, $3 pid
  local rs=() cs=() line
  for _ in $(seq "$ROUNDS"); do line=$(round "$2" "$3"); rs+=("${line% *}"); cs+=("${line#* }"); done
  echo "| $1 | $(printf '%s\n' "${rs[@]}" | median) | $(printf '%s\n' "${cs[@]}" | median) | $(curl -s -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download}' "http://127.0.0.1:$2/16k.html") |"
}

nginx -c "$run/backend.conf" -e "$run/b.err" &
wait_up "$backend"
echo "| target | req/s | proxy CPU us/req | bytes sent |"
echo "|---|---:|---:|---:|"
for on in true false; do
  [ "$on" = true ] && g=on || g=off
  gateway "$on"; wait_up "$gw"
  measure "mse-gateway, use-gzip $on" "$gw" "$(cat "$run/gw.pid")"
  kill "$(cat "$run/gw.pid")"; wait "$(cat "$run/gw.pid")" 2>/dev/null || true
  nginx_peer "$g"; wait_up "$ngx"
  measure "nginx-1w, gzip $g" "$ngx" "$(pgrep -P "$(cat "$run/p.pid")" nginx | head -1)"
  kill "$(cat "$run/p.pid")"; sleep 0.5
done
