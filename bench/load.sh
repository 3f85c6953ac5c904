#!/usr/bin/env bash
# bench/load.sh: load generators compared on loopback (a benchmark, not a test).
#
# One nginx worker (Debian's nginx-light) pinned to CPU 0 answers `200 hello`; each
# generator runs pinned to CPU 1, one after another, against it:
#   1. max throughput with keep-alive (wrk, oha, livefire -c CONNS) and the generator's
#      own CPU time (user + sys from GNU time), so requests per generator CPU-second can
#      be compared even when the single-core server is the limit;
#   2. peak RSS of each generator holding 1,000 connections;
#   3. latency accuracy at a fixed rate while the nginx worker is stopped (SIGSTOP) for
#      1 s: livefire (corrected, from the intended send time) vs oha (uncorrected, and
#      with --latency-correction).
# Needs: nginx-light wrk time (apt), oha (`cargo install oha --root /opt/oha` or on PATH).
# Usage: bench/load.sh            (DUR=10 CONNS=50 RATE=2000 PORT=18089 SECTIONS=123)
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-10}
CONNS=${CONNS:-50}
RATE=${RATE:-2000}
PORT=${PORT:-18089}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
SECTIONS=${SECTIONS:-123}
OHA=${OHA:-$(command -v oha || echo /opt/oha/bin/oha)}
URL="http://127.0.0.1:${PORT}/"

for tool in nginx wrk taskset /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install nginx-light wrk time util-linux" >&2; exit 3; }
done
[ -x "$OHA" ] || { echo "missing oha: cargo install oha --root /opt/oha" >&2; exit 3; }

cargo build --release -q -p livefire
LF=target/release/livefire
ulimit -n 20000

work=$(mktemp -d)
cleanup() { [ -n "${NGINX_PID:-}" ] && kill "$NGINX_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/logs"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${PORT} backlog=4096;
    location / { default_type text/plain; return 200 "hello\n"; }
  }
}
CONF
taskset -c "$SERVER_CPU" nginx -p "$work" -c "$work/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 50); do curl -sf "$URL" >/dev/null 2>&1 && break; sleep 0.1; done
WORKER_PID=$(pgrep -P "$NGINX_PID" | head -1)

# gen NAME CMD...: runs CMD pinned to GEN_CPU; prints "NAME requests cpu_s rss_mb".
gen() {
  local name=$1; shift
  /usr/bin/time -f "%U %S %M" -o "$work/time" taskset -c "$GEN_CPU" "$@" > "$work/out" 2> "$work/err" || true
  read -r user sys rss_kb < <(tail -1 "$work/time")
  echo "$user $sys $rss_kb"
}

requests_of() {
  case $1 in
    wrk) grep -Eo '^ *[0-9]+ requests in' "$work/out" | grep -Eo '[0-9]+' ;;
    oha) python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(int(v) for v in d["statusCodeDistribution"].values()))' "$work/out" ;;
    livefire) python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["outcomes"]["ok"])' "$work/out" ;;
  esac
}

echo "# machine: $(nproc) cores, $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# nginx on CPU $SERVER_CPU, generators on CPU $GEN_CPU, ${DUR}s each, $CONNS connections"
if [[ $SECTIONS == *1* ]]; then
echo
echo "## 1. max throughput, keep-alive, $CONNS connections"
printf '%-10s %12s %10s %10s %14s %8s\n' tool requests req/s cpu_s req/cpu_s rss_MB
declare -A PER_CPU
for tool in wrk oha livefire; do
  case $tool in
    wrk) r=$(gen wrk wrk -t1 -c"$CONNS" -d"${DUR}s" "$URL") ;;
    oha) r=$(gen oha "$OHA" --no-tui --output-format json -c "$CONNS" -z "${DUR}s" "$URL") ;;
    livefire) r=$(gen livefire "$LF" load "$URL" -c "$CONNS" -d "${DUR}s" --json) ;;
  esac
  read -r user sys rss_kb <<<"$r"
  n=$(requests_of "$tool")
  cpu=$(python3 -c "print(f'{$user+$sys:.2f}')")
  PER_CPU[$tool]=$(python3 -c "print(round($n/max($user+$sys,1e-9)))")
  printf '%-10s %12s %10s %10s %14s %8s\n' "$tool" "$n" "$(python3 -c "print(round($n/$DUR))")" "$cpu" "${PER_CPU[$tool]}" "$((rss_kb/1024))"
done
echo "livefire / wrk requests per CPU-second: $(python3 -c "print(f'{${PER_CPU[livefire]}/${PER_CPU[wrk]}:.2f}x')")"
echo "oha / wrk requests per CPU-second:      $(python3 -c "print(f'{${PER_CPU[oha]}/${PER_CPU[wrk]}:.2f}x')")"
fi

if [[ $SECTIONS == *2* ]]; then
echo
echo "## 2. peak RSS holding 1000 connections (5 s)"
for tool in wrk oha livefire; do
  case $tool in
    wrk) r=$(gen wrk wrk -t1 -c1000 -d5s "$URL") ;;
    oha) r=$(gen oha "$OHA" --no-tui --output-format json -c 1000 -z 5s "$URL") ;;
    livefire) r=$(gen livefire "$LF" load "$URL" -c 1000 -d 5s --json) ;;
  esac
  read -r _ _ rss_kb <<<"$r"
  printf '%-10s %6s MB  (%s requests)\n' "$tool" "$((rss_kb/1024))" "$(requests_of "$tool")"
done

fi

if [[ $SECTIONS == *3* ]]; then
echo
echo "## 3. latency at ${RATE}/s for ${DUR}s, $CONNS connections, nginx worker stopped 1 s at t=3 s"
stall() { sleep 3; kill -STOP "$WORKER_PID"; sleep 1; kill -CONT "$WORKER_PID"; }
p_lf() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=d["latency_secs"]["percentiles"]; print("p50 %.4f  p90 %.4f  p99 %.4f  p99.9 %.4f  max %.4f  (s, %d ok)" % (p["p50"],p["p90"],p["p99"],p["p99.9"],d["latency_secs"]["max"],d["outcomes"]["ok"]))' "$1"; }
p_oha() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=d["latencyPercentiles"]; print("p50 %.4f  p90 %.4f  p99 %.4f  p99.9 %.4f  max %.4f  (s, %d ok)" % (p["p50"],p["p90"],p["p99"],p["p99.9"],d["summary"]["slowest"],sum(int(v) for v in d["statusCodeDistribution"].values())))' "$1"; }
stall & STALL=$!; gen livefire "$LF" load "$URL" -r "$RATE" --max-in-flight "$CONNS" -d "${DUR}s" --json >/dev/null; wait "$STALL"
echo "livefire (corrected):         $(p_lf "$work/out")"
stall & STALL=$!; gen oha "$OHA" --no-tui --output-format json -c "$CONNS" -q "$RATE" -z "${DUR}s" "$URL" >/dev/null; wait "$STALL"
echo "oha (uncorrected):            $(p_oha "$work/out")"
stall & STALL=$!; gen oha "$OHA" --no-tui --output-format json -c "$CONNS" -q "$RATE" --latency-correction -z "${DUR}s" "$URL" >/dev/null; wait "$STALL"
echo "oha --latency-correction:     $(p_oha "$work/out")"
fi
