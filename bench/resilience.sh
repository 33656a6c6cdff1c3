#!/usr/bin/env bash
# The cost of the resilience layer when nothing fails (issue 6, item 7: goal <= 5 % rps loss).
#
#   bench/resilience.sh [--no-build] [--duration SECONDS] [--rounds N]
#
# One mesh-proxy (workerThreads 1) pinned to core 0 serves two Services in front of the
# same nginx upstream (bench/mesh-resilience.yaml): `plain`, with no policy, and
# `guarded`, with a retry policy and budget, a circuit breaker with outlier detection and
# a rate limit far above the offered load. wrk (HTTP/1.1 keep-alive) and the upstream
# share core 1, as in bench/run.sh. Rounds alternate plain and guarded so drift on a
# shared machine hits both alike; the medians, the proxy's CPU µs per request and the
# difference are printed and written to bench/out/<timestamp>/resilience.md.
#
# Environment overrides: CONNECTIONS (64), WARMUP (2 s), PROXY_CORE (0), LOAD_CORE (1),
# BASE_PORT (18180).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
BENCH=resilience.sh
# shellcheck source=bench/lib/common.sh
. bench/lib/common.sh

BUILD=1
DURATION=10
ROUNDS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --duration) DURATION=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "resilience.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2}
PROXY_CORE=${PROXY_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
BASE_PORT=${BASE_PORT:-18180}
UP_H1_PORT=$((BASE_PORT + 1))
UP_H2_PORT=$((BASE_PORT + 2))
MESH_OUT_PORT=$((BASE_PORT + 5))
MESH_ADMIN_PORT=$((BASE_PORT + 6))

ensure_tools wrk=wrk nginx=nginx-light taskset=util-linux curl=curl
require_two_cores
require_free_ports $UP_H1_PORT $UP_H2_PORT $MESH_OUT_PORT $MESH_ADMIN_PORT

if [ "$BUILD" = 1 ]; then
  echo "building release (npm run build) ..."
  npm run build >/dev/null
fi

LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
OUT="$REPO/bench/out/resilience-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"/nginx-upstream-tmp
echo "raw output: $OUT"
render() { # template -> file
  render_template "$1" "$2" OUT="$OUT" UP_H1_PORT="$UP_H1_PORT" UP_H2_PORT="$UP_H2_PORT" \
    MESH_OUT_PORT="$MESH_OUT_PORT" MESH_ADMIN_PORT="$MESH_ADMIN_PORT"
}
render bench/nginx-upstream.conf "$OUT/nginx-upstream.conf"
render bench/mesh-resilience.yaml "$OUT/mesh.yaml"

taskset -c "$LOAD_CORE" nginx -p "$OUT" -e "$OUT/nginx-upstream.error.log" -c "$OUT/nginx-upstream.conf" &
PIDS+=($!)
taskset -c "$PROXY_CORE" node bin/mesh-proxy.js --config "$OUT/mesh.yaml" >"$OUT/mesh-proxy.stdout" 2>"$OUT/mesh-proxy.stderr" &
MESH_PID=$!
PIDS+=("$MESH_PID")
wait_http "http://127.0.0.1:$UP_H1_PORT/" "upstream nginx"
wait_http "http://127.0.0.1:$MESH_ADMIN_PORT/ready" "mesh-proxy"
for host in plain guarded; do
  curl -fsS -o /dev/null -H "Host: $host" "http://127.0.0.1:$MESH_OUT_PORT/" || { echo "resilience.sh: mesh-proxy does not serve $host" >&2; exit 1; }
done
if grep -q "not enforced" "$OUT/mesh-proxy.stderr"; then
  echo "resilience.sh: this build does not enforce every resilience field:" >&2
  cat "$OUT/mesh-proxy.stderr" >&2
  exit 1
fi
sleep 1

run_wrk() { # host round
  local host=$1 round=$2 file="$OUT/wrk-$1-$2.txt" before
  taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -H "Host: $host" "http://127.0.0.1:$MESH_OUT_PORT/" >/dev/null
  before=$(cpu_ticks "$MESH_PID")
  taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Host: $host" "http://127.0.0.1:$MESH_OUT_PORT/" >"$file"
  echo $(($(cpu_ticks "$MESH_PID") - before)) >"$OUT/cpu-$host-$round.txt"
  echo "  $host round $round: $(wrk_field "$file" rps) rps, p99 $(wrk_field "$file" p99) ms"
}

echo "wrk: HTTP/1.1 keep-alive, $CONNECTIONS connections, ${DURATION}s (+${WARMUP}s warmup), $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  # Alternate which goes first, so neither always runs on a warmer (or busier) machine.
  if [ $((round % 2)) = 1 ]; then order="plain guarded"; else order="guarded plain"; fi
  for host in $order; do run_wrk "$host" "$round"; done
done

declare -A RPS P50 P99 CPU ERRORS
for host in plain guarded; do
  RPS[$host]=$(for f in "$OUT/wrk-$host-"*.txt; do wrk_field "$f" rps; echo; done | median)
  P50[$host]=$(for f in "$OUT/wrk-$host-"*.txt; do wrk_field "$f" p50; echo; done | median)
  P99[$host]=$(for f in "$OUT/wrk-$host-"*.txt; do wrk_field "$f" p99; echo; done | median)
  ERRORS[$host]=$(for f in "$OUT/wrk-$host-"*.txt; do wrk_field "$f" errors; done | awk '{s += $1} END {print s + 0}')
  CPU[$host]=$(for round in $(seq 1 "$ROUNDS"); do
    awk -v t="$(cat "$OUT/cpu-$host-$round.txt")" -v n="$(wrk_field "$OUT/wrk-$host-$round.txt" requests)" -v hz="$CLK_TCK" \
      'BEGIN { if (n > 0) printf "%.2f\n", t * 1e6 / hz / n }'
  done | median)
done
METRICS=$(curl -fsS "http://127.0.0.1:$MESH_ADMIN_PORT/metrics")
RETRIES=$(echo "$METRICS" | awk '/^retry_total\{/ && /dst_service="default\/guarded"/ {s += $NF} END {print s + 0}')
OVERFLOWS=$(echo "$METRICS" | awk '/^circuit_breaker_overflow_total\{/ && /default\/guarded/ {s += $NF} END {print s + 0}')
LIMITED=$(echo "$METRICS" | awk '/^response_total\{/ && /dst_service="default\/guarded"/ && /status_code="429"/ {s += $NF} END {print s + 0}')

{
  echo "## resilience layer cost, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "- $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), nproc $(nproc); mesh-proxy on core $PROXY_CORE, wrk + upstream nginx on core $LOAD_CORE"
  echo "- load average before the run: $LOADAVG_BEFORE"
  echo "- wrk: HTTP/1.1 keep-alive, $CONNECTIONS connections, ${DURATION}s after ${WARMUP}s warmup; median of $ROUNDS rounds"
  echo
  echo "| Service | rps | p50 ms | p99 ms | proxy CPU µs/req | errors |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  echo "| plain (no policy) | ${RPS[plain]} | ${P50[plain]} | ${P99[plain]} | ${CPU[plain]} | ${ERRORS[plain]} |"
  echo "| guarded (retry + budget, circuit breaker + outlier detection, rate limit) | ${RPS[guarded]} | ${P50[guarded]} | ${P99[guarded]} | ${CPU[guarded]} | ${ERRORS[guarded]} |"
  echo
  awk -v a="${RPS[plain]}" -v b="${RPS[guarded]}" -v ca="${CPU[plain]}" -v cb="${CPU[guarded]}" 'BEGIN {
    if (a > 0) printf "- rps loss with the resilience layer: %.1f %% (goal: at most 5 %%)\n", (a - b) * 100 / a
    if (ca > 0) printf "- proxy CPU per request: %+.1f %%\n", (cb - ca) * 100 / ca }'
  echo "- on the guarded Service during the run: retry_total $RETRIES, circuit breaker overflows $OVERFLOWS, 429s $LIMITED (all 0 when nothing fails)"
} | tee "$OUT/resilience.md"
