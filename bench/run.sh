#!/usr/bin/env bash
# mesh-proxy throughput/latency benchmark, side by side with nginx and a direct baseline.
#
#   bench/run.sh [--no-build] [--duration SECONDS] [--rounds N] [--perf]
#
# Layout on a 2-core machine: the proxy under test (mesh-proxy with workerThreads 1, or
# nginx with 1 worker) is pinned to core 0; the load generator (wrk / h2load) and the
# upstream (nginx returning a fixed 20-byte body) share core 1. Everything is on
# 127.0.0.1. Raw output goes to bench/out/<timestamp>/, a markdown summary is printed
# and written to bench/out/<timestamp>/summary.md.
#
# Environment overrides: CONNECTIONS (64), H2_CONNECTIONS (64), H2_STREAMS (10),
# WARMUP (2 s), PROXY_CORE (0), LOAD_CORE (1), BASE_PORT (18080).
#
# --perf records the mesh-proxy process during its first wrk round and writes the top
# symbols to perf-top.txt. The release build strips symbols; for readable profiles build
# one with symbols and point the napi loader at it:
#   CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
#     cargo build --release -p mesh-binding --target-dir target/profiling
#   cp target/profiling/release/libmesh_binding.so target/profiling/mesh-core.node
#   NAPI_RS_NATIVE_LIBRARY_PATH=$PWD/target/profiling/mesh-core.node bench/run.sh --no-build --perf
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
BENCH=run.sh
# shellcheck source=bench/lib/common.sh
. bench/lib/common.sh

BUILD=1
DURATION=10
ROUNDS=3
PERF=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --duration) DURATION=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --perf) PERF=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

CONNECTIONS=${CONNECTIONS:-64}
H2_CONNECTIONS=${H2_CONNECTIONS:-64}
H2_STREAMS=${H2_STREAMS:-10}
WARMUP=${WARMUP:-2}
PROXY_CORE=${PROXY_CORE:-0}
LOAD_CORE=${LOAD_CORE:-1}
BASE_PORT=${BASE_PORT:-18080}

UP_H1_PORT=$((BASE_PORT + 1))
UP_H2_PORT=$((BASE_PORT + 2))
NGINX_H1_PORT=$((BASE_PORT + 3))
NGINX_H2_PORT=$((BASE_PORT + 4))
MESH_OUT_PORT=$((BASE_PORT + 5))
MESH_ADMIN_PORT=$((BASE_PORT + 6))

# ---------------------------------------------------------------------------- tools
tools=(wrk=wrk h2load=nghttp2-client nginx=nginx-light taskset=util-linux curl=curl)
[ "$PERF" = 1 ] && tools+=(perf=linux-perf)
ensure_tools "${tools[@]}"
require_two_cores
require_free_ports $UP_H1_PORT $UP_H2_PORT $NGINX_H1_PORT $NGINX_H2_PORT $MESH_OUT_PORT $MESH_ADMIN_PORT

# ---------------------------------------------------------------------------- build
if [ "$BUILD" = 1 ]; then
  echo "building release (npm run build) ..."
  npm run build >/dev/null
fi

LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
OUT="$REPO/bench/out/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"/nginx-upstream-tmp "$OUT"/nginx-proxy-tmp
echo "raw output: $OUT"

render() { # template -> file
  render_template "$1" "$2" OUT="$OUT" UP_H1_PORT="$UP_H1_PORT" UP_H2_PORT="$UP_H2_PORT" NGINX_H1_PORT="$NGINX_H1_PORT" \
    NGINX_H2_PORT="$NGINX_H2_PORT" MESH_OUT_PORT="$MESH_OUT_PORT" MESH_ADMIN_PORT="$MESH_ADMIN_PORT"
}
render bench/nginx-upstream.conf "$OUT/nginx-upstream.conf"
render bench/nginx-proxy.conf "$OUT/nginx-proxy.conf"
render bench/mesh-bench.yaml "$OUT/mesh.yaml"

rss_kb() { ps -o rss= -p "$1" | tr -d ' '; }
tree_rss_kb() { # a process and its children
  local total
  total=$(rss_kb "$1")
  for child in $(pgrep -P "$1" || true); do total=$((total + $(rss_kb "$child"))); done
  echo "$total"
}

# ---------------------------------------------------------------------------- start
taskset -c "$LOAD_CORE" nginx -p "$OUT" -e "$OUT/nginx-upstream.error.log" -c "$OUT/nginx-upstream.conf" &
PIDS+=($!)
taskset -c "$PROXY_CORE" nginx -p "$OUT" -e "$OUT/nginx-proxy.error.log" -c "$OUT/nginx-proxy.conf" &
NGINX_PROXY_PID=$!
PIDS+=("$NGINX_PROXY_PID")
taskset -c "$PROXY_CORE" node bin/mesh-proxy.js --config "$OUT/mesh.yaml" >"$OUT/mesh-proxy.stdout" 2>"$OUT/mesh-proxy.stderr" &
MESH_PID=$!
PIDS+=("$MESH_PID")

wait_http "http://127.0.0.1:$UP_H1_PORT/" "upstream nginx"
wait_http "http://127.0.0.1:$NGINX_H1_PORT/" "nginx proxy"
wait_http "http://127.0.0.1:$MESH_ADMIN_PORT/ready" "mesh-proxy"
curl -fsS -o /dev/null -H 'Host: bench' "http://127.0.0.1:$MESH_OUT_PORT/" || { echo "run.sh: mesh-proxy does not serve the bench Service" >&2; exit 1; }
sleep 2
NGINX_WORKER_PID=$(pgrep -P $NGINX_PROXY_PID | head -1)
MESH_IDLE_RSS=$(rss_kb $MESH_PID)
NGINX_IDLE_RSS=$(tree_rss_kb $NGINX_PROXY_PID)
# The floor a Node-hosted proxy cannot go below: an idle `node` doing nothing.
node -e 'setInterval(() => {}, 1000)' &
BARE_NODE_PID=$!
sleep 1
BARE_NODE_RSS=$(rss_kb $BARE_NODE_PID)
kill $BARE_NODE_PID; wait $BARE_NODE_PID 2>/dev/null || true
echo "idle RSS: mesh-proxy ${MESH_IDLE_RSS} KiB, nginx proxy (master+worker) ${NGINX_IDLE_RSS} KiB, bare node ${BARE_NODE_RSS} KiB"

# ---------------------------------------------------------------------------- load
proxy_pid() { case "$1" in mesh*) echo "$MESH_PID" ;; nginx*) echo "$NGINX_WORKER_PID" ;; *) echo "" ;; esac; }

run_wrk() { # name port host round
  local name=$1 port=$2 host=$3 round=$4 file pid before
  file="$OUT/wrk-$name-$round.txt"
  pid=$(proxy_pid "$name")
  taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" -H "Host: $host" "http://127.0.0.1:$port/" >/dev/null
  if [ "$PERF" = 1 ] && [ "$name" = mesh ] && [ "$round" = 1 ]; then
    perf record -F 999 -g -p "$MESH_PID" -o "$OUT/perf.data" -- sleep "$DURATION" 2>"$OUT/perf-record.log" &
    PERF_PID=$!
  fi
  [ -n "$pid" ] && before=$(cpu_ticks "$pid")
  taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Host: $host" "http://127.0.0.1:$port/" >"$file"
  [ -n "$pid" ] && echo $(($(cpu_ticks "$pid") - before)) >"$OUT/cpu-wrk-$name-$round.txt"
  if [ -n "${PERF_PID:-}" ]; then wait "$PERF_PID" || true; unset PERF_PID; fi
  echo "  $name round $round: $(awk '/^Requests\/sec/ {print $2}' "$file") rps"
}

us_per_request() { # ticks-file requests
  [ -f "$1" ] || { echo "-"; return; }
  awk -v t="$(cat "$1")" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print "-" }'
}

echo "wrk: HTTP/1.1 keep-alive, $CONNECTIONS connections, ${DURATION}s (+${WARMUP}s warmup), $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
  run_wrk direct "$UP_H1_PORT" bench "$round"
  run_wrk mesh "$MESH_OUT_PORT" bench "$round"
  run_wrk nginx "$NGINX_H1_PORT" bench "$round"
done
MESH_LOADED_RSS=$(rss_kb $MESH_PID)

run_h2load() { # name port authority
  local name=$1 port=$2 authority=$3 file="$OUT/h2load-$1.txt" pid before
  pid=$(proxy_pid "$name")
  taskset -c "$LOAD_CORE" h2load -t1 -c"$H2_CONNECTIONS" -m"$H2_STREAMS" -D"$WARMUP" \
    --connect-to="127.0.0.1:$port" "http://$authority/" >/dev/null 2>&1 || true
  [ -n "$pid" ] && before=$(cpu_ticks "$pid")
  taskset -c "$LOAD_CORE" h2load -t1 -c"$H2_CONNECTIONS" -m"$H2_STREAMS" -D"$DURATION" \
    --connect-to="127.0.0.1:$port" "http://$authority/" >"$file" 2>&1 || true
  [ -n "$pid" ] && echo $(($(cpu_ticks "$pid") - before)) >"$OUT/cpu-$name.txt"
  echo "  $name: $(awk '/^finished in/ {print $4, $5}' "$file")"
}
echo "h2load: h2c prior knowledge, $H2_CONNECTIONS connections x $H2_STREAMS streams, ${DURATION}s"
run_h2load direct-h2 "$UP_H2_PORT" "127.0.0.1:$UP_H2_PORT"
run_h2load mesh-h2-to-h2 "$MESH_OUT_PORT" bench-h2
run_h2load mesh-h2-to-h1 "$MESH_OUT_PORT" bench
run_h2load nginx-h2-to-h1 "$NGINX_H2_PORT" "127.0.0.1:$NGINX_H2_PORT"

h2_field() { # file field(rps|mean|max|failed)
  case "$2" in
    rps) awk '/^finished in/ {gsub(/,/, "", $4); printf "%.0f", $4}' "$1" ;;
    failed) awk '/^requests:/ {print $10 + $12}' "$1" ;;
    succeeded) awk '/^requests:/ {print $8}' "$1" ;;
    mean|max) awk -v f="$2" '/^time for request:/ {v = (f == "max") ? $5 : $6
        n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n}' "$1" ;;
  esac
}

# ---------------------------------------------------------------------------- report
if [ "$PERF" = 1 ] && [ -f "$OUT/perf.data" ]; then
  perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60 >"$OUT/perf-top.txt" || true
  echo "perf top symbols: $OUT/perf-top.txt"
fi

{
  echo "## mesh-proxy benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "- CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), nproc $(nproc); proxy on core $PROXY_CORE, load generator + upstream on core $LOAD_CORE"
  echo "- $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(h2load --version 2>&1 | head -1), $(nginx -v 2>&1), node $(node --version), mesh-core $(node -p "require('./package.json').version")"
  echo "- load average before the run: $LOADAVG_BEFORE (other work on the machine skews figures)"
  echo "- wrk: HTTP/1.1 keep-alive, $CONNECTIONS connections, 1 thread, ${DURATION}s after ${WARMUP}s warmup; median of $ROUNDS rounds"
  echo
  echo "| HTTP/1.1 (wrk) | rps | p50 ms | p99 ms | proxy CPU µs/req | errors |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for name in direct mesh nginx; do
    rps=$(for f in "$OUT/wrk-$name-"*.txt; do wrk_field "$f" rps; echo; done | median)
    p50=$(for f in "$OUT/wrk-$name-"*.txt; do wrk_field "$f" p50; echo; done | median)
    p99=$(for f in "$OUT/wrk-$name-"*.txt; do wrk_field "$f" p99; echo; done | median)
    errors=$(for f in "$OUT/wrk-$name-"*.txt; do wrk_field "$f" errors; done | awk '{s += $1} END {print s + 0}')
    cpu="-"
    if [ "$name" != direct ]; then
      cpu=$(for round in $(seq 1 "$ROUNDS"); do
        us_per_request "$OUT/cpu-wrk-$name-$round.txt" "$(wrk_field "$OUT/wrk-$name-$round.txt" requests)"; echo
      done | median)
    fi
    case $name in direct) label="direct to upstream" ;; mesh) label="mesh-proxy outbound (1 worker thread)" ;; nginx) label="nginx 1 worker, upstream keepalive" ;; esac
    echo "| $label | $rps | $p50 | $p99 | $cpu | $errors |"
  done
  echo
  echo "| HTTP/2 h2c (h2load, $H2_CONNECTIONS conns x $H2_STREAMS streams) | rps | mean ms | max ms | proxy CPU µs/req | failed |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for name in direct-h2 mesh-h2-to-h2 mesh-h2-to-h1 nginx-h2-to-h1; do
    f="$OUT/h2load-$name.txt"
    echo "| $name | $(h2_field "$f" rps) | $(h2_field "$f" mean) | $(h2_field "$f" max) | $(us_per_request "$OUT/cpu-$name.txt" "$(h2_field "$f" succeeded)") | $(h2_field "$f" failed) |"
  done
  echo
  echo "| memory | KiB |"
  echo "| --- | ---: |"
  echo "| mesh-proxy idle RSS (after ready, before load) | $MESH_IDLE_RSS |"
  echo "| mesh-proxy RSS after the wrk runs | $MESH_LOADED_RSS |"
  echo "| nginx proxy idle RSS (master + worker) | $NGINX_IDLE_RSS |"
  echo "| bare \`node -e 'setInterval(() => {}, 1000)'\` (the Node floor) | $BARE_NODE_RSS |"
} | tee "$OUT/summary.md"
