# Shared by the bench scripts (run.sh, resilience.sh, mtls.sh): tools, ports, templates,
# process cleanup and the parsing of wrk output. Source it after setting BENCH (the
# script's name, for messages).

export PATH="$PATH:/usr/sbin:/sbin"

bench_fail() { echo "$BENCH: $*" >&2; exit 1; }

ensure_tools() { # tool=package ...: installs missing Debian packages when root, else says how
  local -a missing=() packages=()
  local pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || { missing+=("${pair%%=*}"); packages+=("${pair#*=}"); }
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || bench_fail "missing ${missing[*]}; install with: sudo apt-get install ${packages[*]}"
  echo "installing ${packages[*]} ..."
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
}

require_two_cores() { # the proxy under test on PROXY_CORE, the load on LOAD_CORE
  [ "$(nproc)" -ge 2 ] || bench_fail "needs at least 2 cores (proxy on core $PROXY_CORE, load on core $LOAD_CORE); nproc is $(nproc)"
}

require_free_ports() { # port ...
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      bench_fail "port $port is in use; set BASE_PORT to another range"
    fi
  done
}

render_template() { # template target NAME=VALUE ...: writes the template with each @NAME@ replaced
  local template=$1 target=$2 pair
  shift 2
  local -a expressions=()
  for pair in "$@"; do expressions+=(-e "s|@${pair%%=*}@|${pair#*=}|g"); done
  sed "${expressions[@]}" "$template" >"$target"
}

# Every process a script starts goes into PIDS; they are stopped when it exits.
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_http() { # url what: waits up to 10 s for a 2xx
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  bench_fail "$2 did not come up ($1)"
}

# CPU time (user + system, all threads) processes have used, in clock ticks. Other work
# on a shared machine lowers a proxy's rps but hardly its CPU cost per request, so CPU
# µs/request is the steadier comparison.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { # pid ...: summed
  local total=0 pid
  for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$total"
}

to_ms() { # wrk latency value (e.g. 512.00us, 1.20ms, 1.01s) -> ms
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
    printf "%.3f", n }'
}

wrk_field() { # file field(rps|p50|p99|errors|requests)
  case "$2" in
    rps) awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$1" ;;
    p50) to_ms "$(awk '$1 == "50%" {print $2}' "$1")" ;;
    p99) to_ms "$(awk '$1 == "99%" {print $2}' "$1")" ;;
    errors) awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' "$1" ;;
    requests) awk '/requests in/ {print $1}' "$1" ;;
  esac
}

median() { # of the numbers on stdin, "-" for none
  sort -n | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
