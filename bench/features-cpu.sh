#!/usr/bin/env bash
# Wall-clock companion of `bench/callgrind.sh` for the feature tables: the gateway
# (bench/features-candidate.sh, one worker) and nginx (bench/nginx-conf.sh, one worker
# process, the same TABLE) pinned to CPU 0, the load (oha, closed loop, keep-alive) and the
# backends pinned to CPU 1; ROUNDS interleaved rounds of SECS seconds each, the order reversed
# on even rounds. Prints requests per second and the proxy process's user+system CPU time per
# request (from /proc), medians over the rounds. On a machine shared with other work these
# move by tens of percent between runs: the instruction counts are the measure, this is
# the check that they show up in CPU time.
#
#   RIG=/path/to/rig bench/features-cpu.sh GATEWAY_BIN TABLE...
#
# TABLE: plain (the rig's candidate script and nginx's plain configuration) or a table of
# bench/features-candidate.sh. Optional: ROUNDS (3), SECS (3), CONNS (64), N_EXTRA (100),
# PORT (24400; PORT..PORT+3 are used), MATERIAL (a folder from bench/material.sh).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${RIG:?set RIG to the folder of the benchmark rig}"
BACKEND_BIN=${BACKEND_BIN:-$RIG/target/release/bench-backend}
OHA=${OHA:-$RIG/.tools/bin/oha}
bin=$(realpath "$1"); shift
PORT=${PORT:-24400}; ROUNDS=${ROUNDS:-3}; SECS=${SECS:-3}; CONNS=${CONNS:-64}
b1=127.0.0.1:$PORT b2=127.0.0.1:$((PORT + 1)) gw_port=$((PORT + 2)) ngx_port=$((PORT + 3))
run=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$run"' EXIT
MATERIAL=${MATERIAL:-$run/material}; export MATERIAL
bash "$here/material.sh" "$MATERIAL"
taskset -c 1 "$BACKEND_BIN" --listen "$b1" --threads 1 >/dev/null 2>&1 &
taskset -c 1 "$BACKEND_BIN" --listen "$b2" --threads 1 >/dev/null 2>&1 &
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "| table | target | req/s | proxy CPU % | proxy CPU µs/req | req/s vs nginx-1w | CPU/req vs nginx-1w | non-200 |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for table in "$@"; do
  load=(); check=(); scheme=http; host=127.0.0.1
  case $table in
    allow-auth-*) load=(-a bench:bench-password); check=(-u bench:bench-password) ;;
    mtls) scheme=https; host=localhost
      load=(--insecure --ipv4 --cert "$MATERIAL/client.pem" --key "$MATERIAL/client.key")
      check=(-k --cert "$MATERIAL/client.pem" --key "$MATERIAL/client.key") ;;
  esac
  script=$here/features-candidate.sh; [ "$table" = plain ] && script=$RIG/mse-gateway-candidate.sh
  mkdir -p "$run/$table"
  GATEWAY_BIN=$bin LISTEN_ADDR=127.0.0.1:$gw_port LISTEN_PORT=$gw_port BACKEND_ADDR=$b1 BACKEND2_ADDR=$b2 \
    RUN_DIR=$run/$table N_EXTRA=${N_EXTRA:-100} PROXY_THREADS=1 FEATURES=$table ACCESS_LOG=false \
    taskset -c 0 bash "$script" >"$run/$table/gw.log" 2>&1 &
  gw_pid=$!
  bash "$here/nginx-conf.sh" "$table" "$run/$table/nginx" "127.0.0.1:$ngx_port" "$b1" "$b2"
  taskset -c 0 nginx -p "$run/$table/nginx" -c "$run/$table/nginx/nginx.conf" >"$run/$table/nginx.log" 2>&1 &
  ngx_pid=$!
  targets=("mse-gateway $gw_port $gw_pid" "nginx-1w $ngx_port $ngx_pid")
  for t in "${targets[@]}"; do
    read -r name port _ <<<"$t"
    for _ in $(seq 200); do curl -fsS "${check[@]}" -o /dev/null "$scheme://$host:$port/" 2>/dev/null && break; sleep 0.1; done
    curl -fsS "${check[@]}" -o /dev/null "$scheme://$host:$port/" || { echo "$name did not answer for $table" >&2; cat "$run/$table"/*.log >&2; exit 1; }
    taskset -c 1 "$OHA" -z 1s -c "$CONNS" "${load[@]}" --no-tui "$scheme://$host:$port/" >/dev/null
  done
  : >"$run/$table/rounds"
  for r in $(seq "$ROUNDS"); do
    order=("${targets[@]}"); [ $((r % 2)) = 0 ] && order=("${targets[1]}" "${targets[0]}")
    for t in "${order[@]}"; do
      read -r name port pid <<<"$t"
      before=$(ticks "$pid")
      taskset -c 1 "$OHA" -z "${SECS}s" -w -c "$CONNS" "${load[@]}" --no-tui --output-format json \
        "$scheme://$host:$port/" >"$run/$table/oha.json"
      after=$(ticks "$pid")
      python3 - "$name" "$before" "$after" "$run/$table/oha.json" >>"$run/$table/rounds" <<'PY'
import json, os, sys
name, before, after, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
d = json.load(open(path))
codes = {str(k): v for k, v in (d.get("statusCodeDistribution") or {}).items()}
n, bad = sum(codes.values()), sum(v for k, v in codes.items() if k != "200")
secs = d["summary"]["total"]
cpu = (after - before) / os.sysconf("SC_CLK_TCK")
print(name, f"{n / secs:.0f}", f"{100 * cpu / secs:.0f}", f"{1e6 * cpu / max(n, 1):.1f}", bad + sum((d.get("errorDistribution") or {}).values()))
PY
    done
  done
  python3 - "$table" "$run/$table/rounds" <<'PY'
import statistics, sys
table, rows = sys.argv[1], {}
for line in open(sys.argv[2]):
    name, rps, pct, us, bad = line.split()
    rows.setdefault(name, []).append((float(rps), float(pct), float(us), int(bad)))
med = lambda rs, i: statistics.median(r[i] for r in rs)
n = rows["nginx-1w"]
for name, rs in rows.items():
    print(f"| {table} | {name} | {med(rs, 0):.0f} | {med(rs, 1):.0f} | {med(rs, 2):.1f} | "
          f"{med(rs, 0) / med(n, 0):.2f}x | {med(rs, 2) / med(n, 2):.2f}x | {sum(r[3] for r in rs)} |")
PY
  kill "$gw_pid" "$ngx_pid" 2>/dev/null || true; wait "$gw_pid" "$ngx_pid" 2>/dev/null || true
done
