#!/usr/bin/env bash
# Writes DIR/nginx.conf: nginx as the peer of the gateway in the benchmarks, one worker
# process, no master (so callgrind sees the worker), the rig's proxy settings (upstream
# keep-alive, HTTP/1.1, Host and X-Forwarded-For), plus the features named by TABLE as
# ingress-nginx would configure them for the annotations bench/features-candidate.sh sets:
#
#   plain              nothing more
#   allow-auth-bcrypt  allow 10.0.0.0/8, 192.168.0.0/16, 127.0.0.1, deny all; auth_basic
#                      with MATERIAL/htpasswd.bcrypt
#   allow-auth-sha     the same with MATERIAL/htpasswd.sha
#   mtls               listen ... ssl with MATERIAL/server.pem, ssl_verify_client on with
#                      MATERIAL/ca.pem as ssl_client_certificate, ssl_verify_depth 1
#   least-conn         upstream least_conn over BACKEND and BACKEND2; limit_req at
#                      100000 r/s per client address, burst 5x, nodelay; proxy_next_upstream
#                      error timeout http_502 http_503 http_504, 3 tries
#   hash               the same with `hash $request_uri consistent` instead of least_conn
#
#   bench/nginx-conf.sh TABLE DIR LISTEN_ADDR BACKEND_ADDR [BACKEND2_ADDR]
#
# ACCESS_LOG=true: ingress-nginx's `upstreaminfo` line to DIR/access.log, unbuffered, or with
# NGINX_LOG_BUFFER=64k (and flush=1s) buffered.
set -euo pipefail
table=$1 d=$2 listen=$3 b1=$4 b2=${5:-$4}
mkdir -p "$d"
if [ "${ACCESS_LOG:-false}" = true ]; then
  log="$d/access.log upstreaminfo"
  if [ -n "${NGINX_LOG_BUFFER:-}" ]; then log="$log buffer=$NGINX_LOG_BUFFER flush=1s"; fi
else
  log=off
fi
servers="server $b1;"
http_extra="" location_extra="" upstream_extra="" listen_extra="" server_extra=""
case $table in
  plain) ;;
  allow-auth-bcrypt|allow-auth-sha)
    location_extra="allow 10.0.0.0/8;
      allow 192.168.0.0/16;
      allow 127.0.0.1;
      deny all;
      auth_basic \"bench\";
      auth_basic_user_file $MATERIAL/htpasswd.${table##*-};" ;;
  mtls)
    listen_extra=" ssl"
    server_extra="ssl_certificate $MATERIAL/server.pem;
    ssl_certificate_key $MATERIAL/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_client_certificate $MATERIAL/ca.pem;
    ssl_verify_client on;
    ssl_verify_depth 1;" ;;
  least-conn|hash)
    servers="server $b1; server $b2;"
    if [ "$table" = least-conn ]; then upstream_extra="least_conn;"; else upstream_extra="hash \$request_uri consistent;"; fi
    http_extra="limit_req_zone \$binary_remote_addr zone=bench_rps:5m rate=100000r/s;"
    location_extra="limit_req zone=bench_rps burst=500000 nodelay;
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_next_upstream_tries 3;" ;;
  *) echo "unknown table $table" >&2; exit 2 ;;
esac
cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 16384; }
http {
  log_format upstreaminfo '\$remote_addr - \$remote_user [\$time_local] "\$request" \$status \$body_bytes_sent "\$http_referer" "\$http_user_agent" \$request_length \$request_time [backend] [] \$upstream_addr \$upstream_response_length \$upstream_response_time \$upstream_status \$request_id';
  access_log $log;
  client_body_temp_path $d/tmp_body;
  proxy_temp_path $d/tmp_proxy;
  fastcgi_temp_path $d/tmp_fastcgi;
  uwsgi_temp_path $d/tmp_uwsgi;
  scgi_temp_path $d/tmp_scgi;
  keepalive_requests 1000000;
  $http_extra
  upstream backend { $upstream_extra $servers keepalive 256; keepalive_requests 1000000; }
  server {
    listen $listen$listen_extra backlog=4096;
    $server_extra
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      $location_extra
    }
  }
}
EOF
