#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: deterministic where wall-clock
# figures on a shared 2-core machine are not. Runs one target (the gateway with one worker,
# or nginx with one worker process) under valgrind behind a backend on loopback, warms it
# up, zeroes the counters, sends a fixed number of requests with oha and divides.
#
#   bench/callgrind.sh gateway GATEWAY_BIN [plain|typical|heavy] [ka|close]
#   bench/callgrind.sh nginx [ka|close]
#
# ACCESS_LOG=true logs every request: the gateway with its default (ingress-nginx
# `upstream`) line to its standard output, nginx with the same line (ingress-nginx's
# `upstreaminfo` format) to a file, unbuffered as ingress-nginx configures it, or with
# NGINX_LOG_BUFFER=64k (and `flush=1s`) buffered.
#
# Needs: RIG (the folder of the benchmark rig, set up: its bench-backend, oha and the
# gateway's candidate script are used), valgrind, curl; for nginx, nginx. Optional: N (requests, default 20000; 4000 for close), N_EXTRA (filler Ingresses,
# default 100), PORT (default 24100), OUT (a file to keep the profile in). Prints one line: target, table, mode, requests,
# instructions, instructions per request.
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
  table=-; mode=${1:-ka}
fi
if [ "$mode" = close ]; then n=${N:-4000}; keep=(--disable-keepalive); else n=${N:-20000}; keep=(); fi

run=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$run"' EXIT
backend_port=$((PORT + 1)); listen=127.0.0.1:$PORT
"$BACKEND_BIN" --listen "127.0.0.1:$backend_port" --threads 1 >"$run/backend.log" 2>&1 &
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
    *) echo "unknown table $table" >&2; exit 2 ;;
  esac
  GATEWAY_BIN=$run/gateway LISTEN_ADDR=$listen LISTEN_PORT=$PORT BACKEND_ADDR=127.0.0.1:$backend_port \
    RUN_DIR=$run N_EXTRA=${N_EXTRA:-100} PROXY_THREADS=1 POLICIES=$table ACCESS_LOG=${ACCESS_LOG:-false} \
    bash "$script" >"$run/target.log" 2>&1 &
else
  mkdir -p "$run/nginx"
  if [ "${ACCESS_LOG:-false}" = true ]; then
    nginx_log="$run/nginx/access.log upstreaminfo"
    if [ -n "${NGINX_LOG_BUFFER:-}" ]; then nginx_log="$nginx_log buffer=$NGINX_LOG_BUFFER flush=1s"; fi
  else
    nginx_log=off
  fi
  cat >"$run/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $run/nginx/nginx.pid;
error_log $run/nginx/error.log warn;
events { worker_connections 16384; }
http {
  log_format upstreaminfo '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" \$request_length \$request_time [backend] [] \$upstream_addr \$upstream_response_length \$upstream_response_time \$upstream_status \$request_id';
  access_log $nginx_log;
  client_body_temp_path $run/nginx/tmp_body;
  proxy_temp_path $run/nginx/tmp_proxy;
  fastcgi_temp_path $run/nginx/tmp_fastcgi;
  uwsgi_temp_path $run/nginx/tmp_uwsgi;
  scgi_temp_path $run/nginx/tmp_scgi;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$backend_port; keepalive 256; keepalive_requests 1000000; }
  server {
    listen $listen backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
  "${cg[@]}" "$(command -v nginx)" -p "$run/nginx" -c "$run/nginx/nginx.conf" >"$run/target.log" 2>&1 &
fi

# Ready when a request comes back whole (valgrind makes start-up slow).
for _ in $(seq 600); do
  if curl -fsS -o /dev/null --max-time 5 "http://$listen/"; then break; fi
  sleep 0.5
done
curl -fsS -o /dev/null --max-time 30 "http://$listen/" || { cat "$run/target.log" >&2; exit 1; }
pid=$(pgrep -f -n "callgrind-out-file=$out")
"$OHA" -n 2000 -c 8 "${keep[@]}" --no-tui "http://$listen/" >/dev/null
callgrind_control -z "$pid" >/dev/null
"$OHA" -n "$n" -c 8 "${keep[@]}" --no-tui "http://$listen/" >"$run/oha.txt"
callgrind_control -d "$pid" >/dev/null
ok=$(grep -Eo '\[200\] [0-9]+' "$run/oha.txt" | awk '{print $2}')
total=$(grep -h '^summary:' "$out".* 2>/dev/null | awk '{s+=$2} END {print s}')
[ "${ok:-0}" = "$n" ] || { echo "only ${ok:-0} of $n requests answered 200" >&2; cat "$run/oha.txt" >&2; exit 1; }
echo "$target $table $mode requests=$n instructions=$total per_request=$((total / n))"
# OUT=FILE keeps the profile of the measured requests, for callgrind_annotate.
if [ -n "${OUT:-}" ]; then cp "$(ls -t "$out".* | head -1)" "$OUT"; fi
