#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: deterministic where wall-clock
# figures on a shared 2-core machine are not. Runs one target (the gateway with one worker,
# or nginx with one worker process) under valgrind behind a backend on loopback, warms it
# up, zeroes the counters, sends a fixed number of requests with oha and divides.
#
#   bench/callgrind.sh gateway GATEWAY_BIN [TABLE] [ka|close]
#   bench/callgrind.sh nginx [ka|close] [TABLE]
#
# TABLE (default plain): `plain` (the rig's candidate script), `typical` and `heavy`
# (bench/policies-candidate.sh; nginx has no counterpart and runs `plain`), or one of the
# feature tables of bench/features-candidate.sh, which nginx runs with the matching
# configuration from bench/nginx-conf.sh: `allow-auth-bcrypt`, `allow-auth-sha` (the load
# sends valid basic credentials), `mtls` (TLS with a client certificate, `close` means a
# full handshake per request), `least-conn`, `hash` (two backends).
#
# ACCESS_LOG=true logs every request: the gateway with its default (ingress-nginx
# `upstream`) line to its standard output, nginx with the same line (ingress-nginx's
# `upstreaminfo` format) to a file, unbuffered as ingress-nginx configures it, or with
# NGINX_LOG_BUFFER=64k (and `flush=1s`) buffered.
#
# Needs: RIG (the folder of the benchmark rig, set up: its bench-backend, oha and the
# gateway's candidate script are used), valgrind, curl; for nginx, nginx; for the feature
# tables, htpasswd and openssl (bench/material.sh). Optional: N (requests, default 20000;
# 4000 for close), WARMUP_N (requests before the counters are zeroed, default 2000), N_EXTRA
# (filler Ingresses, default 100), PORT (default 24100; PORT+1 and PORT+2 are the backends),
# MATERIAL (a folder from bench/material.sh, so that both targets use the same credentials;
# default: made afresh), OUT (a file to keep the profile in). Prints one line: target, table,
# mode, requests, instructions, instructions per request.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${RIG:?set RIG to the folder of the benchmark rig}"
BACKEND_BIN=${BACKEND_BIN:-$RIG/target/release/bench-backend}
OHA=${OHA:-$RIG/.tools/bin/oha}
PORT=${PORT:-24100}
target=$1; shift
if [ "$target" = gateway ]; then
  bin=$(realpath "$1"); shift
  table=${1:-plain}; mode=${2:-ka}
else
  mode=${1:-ka}; table=${2:-plain}
fi
if [ "$mode" = close ]; then n=${N:-4000}; keep=(--disable-keepalive); else n=${N:-20000}; keep=(); fi

run=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$run"' EXIT
backend_port=$((PORT + 1)); backend2_port=$((PORT + 2)); listen=127.0.0.1:$PORT
"$BACKEND_BIN" --listen "127.0.0.1:$backend_port" --threads 1 >"$run/backend.log" 2>&1 &
# What the load sends, per table: credentials, or TLS with a client certificate.
url=http://$listen/; load=(); check=()
case $table in
  plain|typical|heavy) ;;
  allow-auth-bcrypt|allow-auth-sha|mtls|least-conn|hash)
    MATERIAL=${MATERIAL:-$run/material}; export MATERIAL
    bash "$here/material.sh" "$MATERIAL" ;;&
  allow-auth-*) load=(-a bench:bench-password); check=(-u bench:bench-password) ;;
  mtls)
    url=https://localhost:$PORT/
    load=(--insecure --ipv4 --cert "$MATERIAL/client.pem" --key "$MATERIAL/client.key")
    check=(-k --cert "$MATERIAL/client.pem" --key "$MATERIAL/client.key") ;;
  least-conn|hash)
    "$BACKEND_BIN" --listen "127.0.0.1:$backend2_port" --threads 1 >"$run/backend2.log" 2>&1 & ;;
  *) echo "unknown table $table" >&2; exit 2 ;;
esac
out=$run/callgrind.out
cg=(valgrind --tool=callgrind --callgrind-out-file="$out")

if [ "$target" = gateway ]; then
  # The rig's candidate scripts write the manifests and exec GATEWAY_BIN: point it at a
  # wrapper that runs the real binary under callgrind.
  cat >"$run/gateway" <<EOF
#!/usr/bin/env bash
exec ${cg[*]} "$bin" "\$@"
EOF
  chmod +x "$run/gateway"
  case $table in
    plain) script=$RIG/mse-gateway-candidate.sh ;;
    typical|heavy) script=$here/policies-candidate.sh ;;
    *) script=$here/features-candidate.sh ;;
  esac
  GATEWAY_BIN=$run/gateway LISTEN_ADDR=$listen LISTEN_PORT=$PORT BACKEND_ADDR=127.0.0.1:$backend_port \
    BACKEND2_ADDR=127.0.0.1:$backend2_port RUN_DIR=$run N_EXTRA=${N_EXTRA:-100} PROXY_THREADS=1 \
    POLICIES=$table FEATURES=$table ACCESS_LOG=${ACCESS_LOG:-false} \
    bash "$script" >"$run/target.log" 2>&1 &
else
  case $table in typical|heavy) table=plain ;; esac
  bash "$here/nginx-conf.sh" "$table" "$run/nginx" "$listen" "127.0.0.1:$backend_port" "127.0.0.1:$backend2_port"
  "${cg[@]}" "$(command -v nginx)" -p "$run/nginx" -c "$run/nginx/nginx.conf" >"$run/target.log" 2>&1 &
fi

# Ready when a request comes back whole (valgrind makes start-up slow).
for _ in $(seq 600); do
  if curl -fsS "${check[@]}" -o /dev/null --max-time 5 "$url"; then break; fi
  sleep 0.5
done
curl -fsS "${check[@]}" -o /dev/null --max-time 30 "$url" || { cat "$run/target.log" >&2; exit 1; }
pid=$(pgrep -f -n "callgrind-out-file=$out")
"$OHA" -n "${WARMUP_N:-2000}" -c 8 "${keep[@]}" "${load[@]}" --no-tui "$url" >/dev/null
callgrind_control -z "$pid" >/dev/null
"$OHA" -n "$n" -c 8 "${keep[@]}" "${load[@]}" --no-tui "$url" >"$run/oha.txt"
callgrind_control -d "$pid" >/dev/null
ok=$(grep -Eo '\[200\] [0-9]+' "$run/oha.txt" | awk '{print $2}')
total=$(grep -h '^summary:' "$out".* 2>/dev/null | awk '{s+=$2} END {printf "%.0f", s}')
[ "${ok:-0}" = "$n" ] || { echo "only ${ok:-0} of $n requests answered 200" >&2; cat "$run/oha.txt" >&2; exit 1; }
echo "$target $table $mode requests=$n instructions=$total per_request=$((total / n))"
# OUT=FILE keeps the profile of the measured requests, for callgrind_annotate.
if [ -n "${OUT:-}" ]; then cp "$(ls -t "$out".* | head -1)" "$OUT"; fi
