#!/usr/bin/env bash
# bench/load.sh: livefire load against wrk and oha on loopback (a benchmark, not a test).
#
# One nginx worker (Debian's nginx-light, `return 200 "hello\n"`) pinned to SERVER_CPU;
# each generator pinned to GEN_CPU with the same thread and connection counts
# (wrk -t THREADS, oha and livefire with TOKIO_WORKER_THREADS=THREADS), one at a time.
# Every section runs ROUNDS rounds and rotates the order of the generators each round
# (round 1: livefire wrk oha, round 2: wrk oha livefire, ...), so a burst of load from
# elsewhere on a shared machine hits every tool alike. Each sample row carries the
# 1-minute load average when it started and the server's CPU use during it.
#
#   1. closed loop: CONNS keep-alive connections as fast as the server answers, DUR s.
#      On two cores the one-core server is the limit here (its CPU column says so), so
#      throughput compares the server, not the generators; the generator's CPU per
#      request (user + sys of the process and its threads, from getrusage of the child)
#      is the figure that compares generators.
#   2. open loop at a fixed RATE (livefire -r, oha -q; wrk has no rate), below what
#      the server can do, so the server is not the bottleneck: CPU per request again,
#      at the same number of requests for both.
#   3. peak RSS of each generator holding 1,000 connections for 5 s (one round).
#   4. latency accuracy at STALL_RATE req/s while the nginx worker is stopped (SIGSTOP)
#      for 1 s at t = 3 s: livefire (latency from the intended send time) vs oha as it
#      reports by default and with --latency-correction (one round).
#
# Needs: apt-get install nginx-light wrk time util-linux curl python3 (exit 3 when one is
# missing). oha: Debian has no package, so unless OHA=path names one (or `oha` is on
# PATH) the script installs it from crates.io once, `cargo install oha --locked
# --version $OHA_VERSION --no-default-features --features native-tls --root
# bench/.tools` (minutes of compiling; it says so, and later runs reuse
# bench/.tools/bin/oha). native-tls uses the system's OpenSSL (apt-get install
# libssl-dev pkg-config) instead of rustls on aws-lc, whose C build is the longest part
# of the install; oha 1.16 does not build with no TLS at all, and plain HTTP on loopback
# does not use it either way. If that install fails, every oha sample is a FAILED row
# saying why, and the rest runs. OHA=skip leaves oha out and says so.
# Usage: bench/load.sh   (ROUNDS=5 DUR=10 CONNS=50 THREADS=1 RATE=5000 STALL_RATE=2000
#                         PORT=18089 SECTIONS=1234 SERVER_CPU=0 GEN_CPU=1 LIVEFIRE_BIN=...
#                         OHA=path|skip OHA_VERSION=1.16.0)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DUR=${DUR:-10}
CONNS=${CONNS:-50}
THREADS=${THREADS:-1}
RATE=${RATE:-5000}
STALL_RATE=${STALL_RATE:-2000}
PORT=${PORT:-18089}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
SECTIONS=${SECTIONS:-1234}
OHA_VERSION=${OHA_VERSION:-1.16.0}
OHA=${OHA:-$(command -v oha || echo "$PWD/bench/.tools/bin/oha")}
URL="http://127.0.0.1:${PORT}/"

missing=()
for tool in nginx wrk taskset curl python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -x /usr/bin/time ] || missing+=(/usr/bin/time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing ${missing[*]}: apt-get install nginx-light wrk time util-linux curl python3" >&2
  exit 3
fi
# OHA=skip leaves oha out on purpose (its rows say so). Otherwise oha is in every round;
# if it is missing and cannot be installed, OHA_FAILED says why and its rows are FAILED.
OHA_FAILED=
if [ "$OHA" = skip ]; then GENS=(livefire wrk); OPEN_GENS=(livefire)
else
  if [ ! -x "$OHA" ] && [ "$OHA" = "$PWD/bench/.tools/bin/oha" ]; then
    echo "# oha is not installed (Debian has no package): cargo install oha --locked --version $OHA_VERSION --no-default-features --features native-tls --root bench/.tools"
    echo "# (once; compiling takes minutes, more on a busy machine; the log is bench/.tools/oha-install.log)"
    mkdir -p bench/.tools
    if ! command -v cargo >/dev/null; then
      OHA_FAILED="oha not installed: no cargo on PATH to install it (install Rust, or set OHA=path)"
    elif ! nice -n 10 cargo install oha --locked --version "$OHA_VERSION" --no-default-features --features native-tls --root bench/.tools > bench/.tools/oha-install.log 2>&1; then
      OHA_FAILED="oha not installed: cargo install oha --version $OHA_VERSION failed ($(grep -m1 '^error' bench/.tools/oha-install.log || tail -1 bench/.tools/oha-install.log)); see bench/.tools/oha-install.log"
    fi
  fi
  if [ -z "$OHA_FAILED" ] && [ ! -x "$OHA" ]; then OHA_FAILED="oha not found at $OHA: set OHA=path, or OHA=skip to leave it out"; fi
  [ -n "$OHA_FAILED" ] && echo "# $OHA_FAILED: every oha row below is FAILED" >&2
  GENS=(livefire wrk oha); OPEN_GENS=(livefire oha)
fi

if [ -n "${LIVEFIRE_BIN:-}" ]; then LF=$LIVEFIRE_BIN; else cargo build --release -q -p livefire; LF=target/release/livefire; fi
[ -x "$LF" ] || { echo "no livefire binary at $LF: cargo build --release -p livefire" >&2; exit 3; }
ulimit -n 20000
if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then echo "port $PORT is busy; free it or set PORT" >&2; exit 3; fi

work=$(mktemp -d)
cleanup() { [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
trap "exit 130" INT TERM

mkdir -p "$work/logs"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
  uwsgi_temp_path $work; scgi_temp_path $work;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${PORT} backlog=4096;
    location / { default_type text/plain; return 200 "hello\n"; }
  }
}
CONF
taskset -c "$SERVER_CPU" nginx -p "$work" -c "$work/nginx.conf" 2>"$work/nginx.err" &
NGINX_PID=$!
for _ in $(seq 50); do curl -sf "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
WORKER_PID=$(pgrep -P "$NGINX_PID" | head -1 || true)
if ! curl -sf "$URL" >/dev/null 2>&1 || [ -z "$WORKER_PID" ]; then
  echo "nginx did not start:" >&2; cat "$work/nginx.err" "$work/logs/error.log" >&2 2>/dev/null; exit 1
fi
TCK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run TOOL CMD...: runs CMD pinned to GEN_CPU with GNU time; leaves its output in
# $work/out, its stderr in $work/err and "user sys maxrss_kb wall exit" in $work/time,
# and prints "loadavg server_cpu_percent".
run() {
  local load0 t0 t1 rc=0
  load0=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(ticks "$WORKER_PID")
  TOKIO_WORKER_THREADS=$THREADS /usr/bin/time -f "%U %S %M %e %x" -o "$work/time" \
    taskset -c "$GEN_CPU" "$@" > "$work/out" 2> "$work/err" || rc=$?
  t1=$(ticks "$WORKER_PID")
  read -r _ _ _ wall _ < <(tail -1 "$work/time")
  echo "$load0 $(python3 -c "print(round(($t1 - $t0) / $TCK / max($wall, 1e-9) * 100))")"
  return $rc
}

# requests TOOL: completed requests in $work/out, or nothing if the output does not parse.
requests() {
  python3 - "$1" "$work/out" <<'PY' 2>/dev/null || true
import json, re, sys
tool, path = sys.argv[1], sys.argv[2]
t = open(path).read()
if tool == "wrk":
    print(re.search(r"^\s*(\d+) requests in", t, re.M).group(1))
elif tool == "oha":
    print(sum(int(v) for v in json.loads(t)["statusCodeDistribution"].values()))
else:
    print(json.loads(t)["requests"])
PY
}

# sample SECTION TOOL CMD...: one measured run; appends a row to $work/samples.tsv
# (section tool requests cpu_s cpu_us_per_req rss_kb loadavg server_cpu wall) and prints
# it. A tool that fails or prints nothing readable is a FAILED row, not a zero.
sample() {
  local section=$1 tool=$2; shift 2
  local r load0 srv n user sys rss wall rc
  if [ "$tool" = oha ] && [ -n "$OHA_FAILED" ]; then
    printf '%s\t%s\tFAILED\t-\t-\t-\t%s\t-\t-\n' "$section" "$tool" "$(cut -d' ' -f1 /proc/loadavg)" >> "$work/samples.tsv"
    printf '  %-9s FAILED: %s\n' "$tool" "$OHA_FAILED"
    return 0
  fi
  if r=$(run "$@"); then rc=0; else rc=$?; r=${r:-"- -"}; fi
  read -r load0 srv <<<"$r"
  read -r user sys rss wall _ < <(tail -1 "$work/time" 2>/dev/null || echo "0 0 0 0 1")
  n=$(requests "$tool")
  if [ "$rc" != 0 ] || [ -z "$n" ] || [ "$n" = 0 ]; then
    printf '%s\t%s\tFAILED\t-\t-\t-\t%s\t%s\t-\n' "$section" "$tool" "$load0" "$srv" >> "$work/samples.tsv"
    printf '  %-9s FAILED (exit %s): %s\n' "$tool" "$rc" "$(tail -c 300 "$work/err" | tr '\n' ' ')"
    return 0
  fi
  local cpu per
  cpu=$(python3 -c "print(f'{$user + $sys:.2f}')")
  per=$(python3 -c "print(f'{($user + $sys) * 1e6 / $n:.2f}')")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$section" "$tool" "$n" "$cpu" "$per" "$rss" "$load0" "$srv" "$wall" >> "$work/samples.tsv"
  printf '  %-9s %10s req %9s req/s  cpu %6ss  %7s us/req  server %4s%%  rss %5s MB  loadavg %s\n' \
    "$tool" "$n" "$(python3 -c "print(round($n / max($wall, 1e-9)))")" "$cpu" "$per" "$srv" "$((rss / 1024))" "$load0"
}

# rotated ROUND TOOLS...: the tools in the order of this round.
rotated() { local r=$1; shift; local a=("$@") n=$#; for i in $(seq 0 $((n - 1))); do echo "${a[$(((i + r - 1) % n))]}"; done; }

# summary SECTION: median [min-max] per tool of the section's samples, and the ratio of
# livefire's CPU per request to each peer's, per round (same round, same conditions).
summary() {
  python3 - "$1" "$work/samples.tsv" "$ROUNDS" <<'PY'
import statistics, sys
section, path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.startswith(section + "\t")]
def fmt(xs, nd=2):
    if not xs: return "-"
    return f"{statistics.median(xs):.{nd}f} [{min(xs):.{nd}f}-{max(xs):.{nd}f}]"
tools = list(dict.fromkeys(r[1] for r in rows))
per = {t: [r for r in rows if r[1] == t] for t in tools}
print(f"  {'tool':9} {'ok/runs':>7}  {'req/s median [min-max]':>26}  {'cpu us/req median [min-max]':>28}  {'server cpu %':>18}")
for t in tools:
    ok = [r for r in per[t] if r[2] != "FAILED"]
    rps = [int(r[2]) / float(r[8]) for r in ok]
    cpu = [float(r[4]) for r in ok]
    srv = [float(r[7]) for r in ok if r[7] != "-"]
    print(f"  {t:9} {len(ok)}/{len(per[t]):<5}  {fmt(rps, 0):>26}  {fmt(cpu):>28}  {fmt(srv, 0):>18}")
lf = per.get("livefire", [])
for peer in [t for t in tools if t != "livefire"]:
    ratios = [float(a[4]) / float(b[4]) for a, b in zip(lf, per[peer])
              if a[2] != "FAILED" and b[2] != "FAILED"]
    if ratios:
        print(f"  livefire / {peer} CPU per request, per round: {fmt(ratios)}x"
              f"  ({' '.join(f'{x:.2f}' for x in ratios)})")
loads = [float(r[6]) for r in rows]
print(f"  1-min load average at the start of each run: {fmt(loads, 1)}")
PY
}

echo "# $(date -u +%FT%TZ) machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# nginx $(nginx -v 2>&1 | sed 's/.*\///') on CPU $SERVER_CPU; generators on CPU $GEN_CPU, $THREADS thread(s), $CONNS connections, ${DUR}s, $ROUNDS rounds"
oha_version() {
  if [ "$OHA" = skip ]; then echo "oha left out (OHA=skip)"
  elif [ -n "$OHA_FAILED" ]; then echo "oha FAILED ($OHA_FAILED)"
  else "$OHA" --version; fi
}
echo "# $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2); $(oha_version); $("$LF" --version)"

if [[ $SECTIONS == *1* ]]; then
  echo
  echo "## 1. closed loop, $CONNS keep-alive connections, ${DUR}s (generator CPU per request)"
  for round in $(seq "$ROUNDS"); do
    echo " round $round"
    for tool in $(rotated "$round" "${GENS[@]}"); do
      case $tool in
        wrk) sample 1 wrk wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" "$URL" ;;
        oha) sample 1 oha "$OHA" --no-tui --output-format json -c "$CONNS" -z "${DUR}s" "$URL" ;;
        livefire) sample 1 livefire "$LF" load "$URL" -c "$CONNS" -d "${DUR}s" --json ;;
      esac
    done
  done
  summary 1
fi

if [[ $SECTIONS == *2* ]]; then
  echo
  echo "## 2. open loop at ${RATE} req/s, up to $CONNS connections, ${DUR}s (the server is not the limit)"
  for round in $(seq "$ROUNDS"); do
    echo " round $round"
    for tool in $(rotated "$round" "${OPEN_GENS[@]}"); do
      case $tool in
        oha) sample 2 oha "$OHA" --no-tui --output-format json -c "$CONNS" -q "$RATE" -z "${DUR}s" "$URL" ;;
        livefire) sample 2 livefire "$LF" load "$URL" -r "$RATE" --max-in-flight "$CONNS" -d "${DUR}s" --json ;;
      esac
    done
  done
  summary 2
fi

if [[ $SECTIONS == *3* ]]; then
  echo
  echo "## 3. peak RSS holding 1000 connections (5 s, one round)"
  for tool in "${GENS[@]}"; do
    case $tool in
      wrk) sample 3 wrk wrk -t"$THREADS" -c1000 -d5s "$URL" ;;
      oha) sample 3 oha "$OHA" --no-tui --output-format json -c 1000 -z 5s "$URL" ;;
      livefire) sample 3 livefire "$LF" load "$URL" -c 1000 -d 5s --json ;;
    esac
  done
fi

if [[ $SECTIONS == *4* ]]; then
  echo
  echo "## 4. latency at ${STALL_RATE}/s for ${DUR}s, $CONNS connections, nginx worker stopped 1 s at t=3 s"
  stall() { sleep 3; kill -STOP "$WORKER_PID"; sleep 1; kill -CONT "$WORKER_PID"; }
  pct() {
    python3 - "$1" "$work/out" <<'PY' 2>/dev/null || echo "FAILED: no readable output"
import json, sys
d = json.load(open(sys.argv[2]))
if sys.argv[1] == "livefire":
    p, mx, n = d["latency_secs"]["percentiles"], d["latency_secs"]["max"], d["outcomes"]["ok"]
else:
    p, mx = d["latencyPercentiles"], d["summary"]["slowest"]
    n = sum(int(v) for v in d["statusCodeDistribution"].values())
print("p50 %.4f  p90 %.4f  p99 %.4f  p99.9 %.4f  max %.4f  (s, %d ok)" % (p["p50"], p["p90"], p["p99"], p["p99.9"], mx, n))
PY
  }
  stall & STALL=$!; run "$LF" load "$URL" -r "$STALL_RATE" --max-in-flight "$CONNS" -d "${DUR}s" --json >/dev/null || true; wait "$STALL"
  echo "  livefire (corrected):         $(pct livefire)"
  if [ -n "$OHA_FAILED" ]; then
    echo "  oha:                          FAILED: $OHA_FAILED"
  elif [ "$OHA" != skip ]; then
    stall & STALL=$!; run "$OHA" --no-tui --output-format json -c "$CONNS" -q "$STALL_RATE" -z "${DUR}s" "$URL" >/dev/null || true; wait "$STALL"
    echo "  oha (uncorrected):            $(pct oha)"
    stall & STALL=$!; run "$OHA" --no-tui --output-format json -c "$CONNS" -q "$STALL_RATE" --latency-correction -z "${DUR}s" "$URL" >/dev/null || true; wait "$STALL"
    echo "  oha --latency-correction:     $(pct oha)"
  fi
fi
