#!/usr/bin/env bash
# Latency percentiles (p50/p90/p99) against offered load for the gateway, nginx-1w and envoy
# (when the rig has it): the rig's `rate` mode (oha, fixed rate, latency-corrected, 32
# keep-alive connections, GET /) once per rate in RATES, all targets interleaved within each
# rate, then bench/latency-plot.py draws OUT (an SVG) and prints the table.
#
#   RIG=/path/to/rig bench/latency.sh GATEWAY_BIN OUT.svg
#
# Optional: RATES (default "2000 5000 10000 15000 20000 25000"), ROUNDS (default 3),
# TARGETS (default "nginx-1w envoy"), N_EXTRA (filler Ingresses, default 10000), and any
# other knob of the rig's run.sh (DUR_RATE, RATE_CONNS, ...).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${RIG:?set RIG to the folder of the benchmark rig}"
bin=$(realpath "$1"); out=$(realpath -m "$2")
pairs=()
for rate in ${RATES:-2000 5000 10000 15000 20000 25000}; do
  log=$(mktemp)
  (cd "$RIG" && RATE=$rate MODES=rate TLS_MODES="" ROUNDS=${ROUNDS:-3} TARGETS=${TARGETS:-"nginx-1w envoy"} \
    CANDIDATE_NAME=mse-gateway GATEWAY_BIN=$bin N_EXTRA=${N_EXTRA:-10000} \
    CANDIDATE_CMD='./mse-gateway-candidate.sh' ./run.sh) 2>&1 | tee "$log" >&2
  res=$(sed -n 's/^results: \([^ ]*\)\/ .*/\1/p' "$log" | tail -1)
  rm -f "$log"
  [ -n "$res" ] && [ -s "$RIG/$res/results.jsonl" ] || { echo "no results for rate $rate" >&2; exit 1; }
  echo "rate $rate: $RIG/$res" >&2
  pairs+=("$rate=$RIG/$res/results.jsonl")
done
python3 "$here/latency-plot.py" "$out" "${pairs[@]}"
