#!/usr/bin/env bash
# Benchmark: a direct connection vs haproxy (TCP mode) vs `livefire proxy` with no toxic
# (its io_uring data plane, and its epoll path as `livefire-epoll`), on loopback, each
# proxy pinned alone on one core. Not a test: prints numbers and ratios.
#
#   bench/proxy.sh                 # builds target/release/livefire if needed
#   SECS=10 ROUNDS=9 bench/proxy.sh   # longer runs, more rounds (medians are shown)
#
# Needs (Debian): haproxy iperf3 wrk nginx python3; run as root (nginx, ulimit).
# Measures: bulk throughput (iperf3, both directions), the proxy's CPU per small HTTP
# request (user+system of the proxy process over a wrk run to nginx), added latency
# (wrk, one connection, p50/p99), and memory per 1,000 idle connections (RSS delta).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-5}
ROUNDS=${ROUNDS:-5}
IDLE=${IDLE:-1000}
for tool in haproxy iperf3 wrk nginx python3 taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install haproxy iperf3 wrk nginx" >&2; exit 3; }
done
LIVEFIRE=${LIVEFIRE_BIN:-target/release/livefire}
if [ ! -x "$LIVEFIRE" ]; then cargo build --release -p livefire; fi
ulimit -n 20000

NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then PROXY_CPU=$((NCPU - 1)); LOAD_CPUS="0-$((NCPU - 2))"; else PROXY_CPU=0; LOAD_CPUS=0; fi
# Arrays, not functions: a backgrounded function runs in a subshell and $! would be the
# subshell's pid, not the server's.
PIN_PROXY=(taskset -c "$PROXY_CPU")
PIN_LOAD=(taskset -c "$LOAD_CPUS")

# Ports: upstreams 27080 (nginx), 27201 (iperf3), 27300 (idle holder); haproxy +100,
# livefire +110 (API 27474), livefire on epoll +120 (API 27475).
for p in 27080 27201 27300 27180 27301 27400 27190 27311 27410 27474 27200 27321 27420 27475; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "port $p is busy; free it first" >&2; exit 3; fi
done

TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
trap "exit 130" INT TERM

# --- upstreams ---------------------------------------------------------------------
cat > "$TMP/nginx.conf" <<NGX
user root; worker_processes 1; daemon off; pid $TMP/nginx.pid; error_log $TMP/nginx.err;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
       uwsgi_temp_path $TMP; scgi_temp_path $TMP; keepalive_requests 1000000;
       server { listen 127.0.0.1:27080; location / { return 200 "ok\n"; } } }
NGX
"${PIN_LOAD[@]}" nginx -p "$TMP" -c "$TMP/nginx.conf" & PIDS+=($!)
"${PIN_LOAD[@]}" iperf3 -s -p 27201 >/dev/null 2>&1 & PIDS+=($!)
cat > "$TMP/hold.py" <<'PY'
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(4096)
held = []
while True:
    c, _ = srv.accept(); held.append(c)
PY
"${PIN_LOAD[@]}" python3 "$TMP/hold.py" 27300 & PIDS+=($!)

# --- proxies -----------------------------------------------------------------------
cat > "$TMP/haproxy.cfg" <<HAP
global
  maxconn 8000
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen nginx
  bind 127.0.0.1:27180
  server s 127.0.0.1:27080
listen iperf
  bind 127.0.0.1:27301
  server s 127.0.0.1:27201
listen hold
  bind 127.0.0.1:27400
  server s 127.0.0.1:27300
HAP
"${PIN_PROXY[@]}" haproxy -f "$TMP/haproxy.cfg" -db >"$TMP/haproxy.log" 2>&1 & HAPROXY_PID=$!; PIDS+=($HAPROXY_PID)
cat > "$TMP/proxies.json" <<JSON
[{"name": "nginx", "listen": "127.0.0.1:27190", "upstream": "127.0.0.1:27080"},
 {"name": "iperf", "listen": "127.0.0.1:27311", "upstream": "127.0.0.1:27201"},
 {"name": "hold", "listen": "127.0.0.1:27410", "upstream": "127.0.0.1:27300"}]
JSON
"${PIN_PROXY[@]}" "$LIVEFIRE" proxy --port 27474 --config "$TMP/proxies.json" >"$TMP/livefire.log" 2>&1 & LIVEFIRE_PID=$!; PIDS+=($LIVEFIRE_PID)
sed -e 's/27190/27200/' -e 's/27311/27321/' -e 's/27410/27420/' "$TMP/proxies.json" > "$TMP/proxies-epoll.json"
LIVEFIRE_PROXY_IO=epoll "${PIN_PROXY[@]}" "$LIVEFIRE" proxy --port 27475 --config "$TMP/proxies-epoll.json" >"$TMP/livefire-epoll.log" 2>&1 & EPOLL_PID=$!; PIDS+=($EPOLL_PID)
sleep 1.5
for pid in $HAPROXY_PID $LIVEFIRE_PID $EPOLL_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a proxy did not start:" >&2; cat "$TMP"/haproxy.log "$TMP"/livefire*.log >&2; exit 1; }
done

# --- measurements ------------------------------------------------------------------
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
TCK=$(getconf CLK_TCK)

idle_kib_per_conn() { # pid port -> KiB per idle connection
  python3 - "$1" "$2" "$IDLE" <<'PY'
import socket, sys, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"): return int(line.split()[1])
before = rss()
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
time.sleep(2)
after = rss()
print(f"{(after - before) / n:.2f}")
for s in socks: s.close()
PY
}

iperf_mbps() { # port extra-flags -> MB/s
  "${PIN_LOAD[@]}" iperf3 -c 127.0.0.1 -p "$1" -t "$SECS" -J $2 | python3 -c 'import json,sys; bps = json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]; print(round(bps / 8e6))'
}

wrk_run() { # url conns -> "requests p50_us p99_us"
  "${PIN_LOAD[@]}" wrk -t1 -c"$2" -d"${SECS}s" --latency "$1" | python3 -c '
import re, sys
t = sys.stdin.read()
def us(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v); x = float(m.group(1))
    return x * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
req = int(re.search(r"(\d+) requests in", t).group(1))
p = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M))
print(req, round(us(p["50"]), 1), round(us(p["99"]), 1))'
}

declare -A R
echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "proxies pinned to CPU $PROXY_CPU; load tools on CPU $LOAD_CPUS; ${SECS}s per run, $ROUNDS rounds"

echo "livefire: $(head -1 "$TMP/livefire.log")"
echo "livefire-epoll: $(head -1 "$TMP/livefire-epoll.log")"
for who in haproxy livefire livefire-epoll; do
  case $who in haproxy) pid=$HAPROXY_PID; base=100;; livefire) pid=$LIVEFIRE_PID; base=110;; *) pid=$EPOLL_PID; base=120;; esac
  R[$who.idle]=$(idle_kib_per_conn "$pid" $((27300 + base)))
done
R[direct.idle]="-"


# Bulk, latency and CPU: ROUNDS interleaved rounds (direct, haproxy, livefire, again
# ...), the median is reported, so a burst of noise from elsewhere hits one sample, not
# a column.
median() { python3 -c 'import statistics,sys; print(statistics.median(map(float, sys.argv[1:])))' "$@"; }
declare -A S
for round in $(seq "$ROUNDS"); do
  for who in direct haproxy livefire livefire-epoll; do
    case $who in direct) off=0;; haproxy) off=100;; livefire) off=110;; livefire-epoll) off=120;; esac
    S[$who.up]+=" $(iperf_mbps $((27201 + off)) "")"
    S[$who.down]+=" $(iperf_mbps $((27201 + off)) "-R")"
    read -r _ p50 p99 <<<"$(wrk_run "http://127.0.0.1:$((27080 + off))/" 1)"
    S[$who.p50]+=" $p50"; S[$who.p99]+=" $p99"
    pid=0
    [ $who = haproxy ] && pid=$HAPROXY_PID
    [ $who = livefire ] && pid=$LIVEFIRE_PID
    [ $who = livefire-epoll ] && pid=$EPOLL_PID
    [ $pid != 0 ] && t0=$(cpu_ticks "$pid")
    read -r req _ lp99 <<<"$(wrk_run "http://127.0.0.1:$((27080 + off))/" 50)"
    S[$who.loadp99]+=" $lp99"
    if [ $pid != 0 ]; then
      t1=$(cpu_ticks "$pid")
      S[$who.cpu]+=" $(python3 -c "print(($t1 - $t0) / $TCK * 1e6 / $req)")"
    fi
  done
done
for who in direct haproxy livefire livefire-epoll; do
  R[$who.up]=$(python3 -c "print(round($(median ${S[$who.up]})))")
  R[$who.down]=$(python3 -c "print(round($(median ${S[$who.down]})))")
  echo "$who bulk MB/s samples: up${S[$who.up]} / down${S[$who.down]}"
  R[$who.p50]=$(median ${S[$who.p50]}); R[$who.p99]=$(median ${S[$who.p99]})
  R[$who.loadp99]=$(median ${S[$who.loadp99]})
  if [ $who = direct ]; then R[$who.cpu]="-"; else R[$who.cpu]=$(python3 -c "print(round($(median ${S[$who.cpu]}), 2))"); fi
  echo "$who samples: p50${S[$who.p50]} / p99${S[$who.p99]} / cpu${S[$who.cpu]:- -}"
done

printf '\n%-14s %12s %12s %10s %10s %12s %14s %14s\n' "" "up MB/s" "down MB/s" "p50 us" "p99 us" "cpu us/req" "p99 us (c50)" "KiB/idle conn"
for who in direct haproxy livefire livefire-epoll; do
  printf '%-14s %12s %12s %10s %10s %12s %14s %14s\n' "$who" "${R[$who.up]}" "${R[$who.down]}" "${R[$who.p50]}" "${R[$who.p99]}" "${R[$who.cpu]}" "${R[$who.loadp99]}" "${R[$who.idle]}"
done
python3 - "${R[haproxy.up]}" "${R[livefire.up]}" "${R[haproxy.down]}" "${R[livefire.down]}" \
  "${R[haproxy.cpu]}" "${R[livefire.cpu]}" "${R[direct.p50]}" "${R[haproxy.p50]}" "${R[livefire.p50]}" \
  "${R[haproxy.idle]}" "${R[livefire.idle]}" "${R[livefire-epoll.cpu]}" <<'PY'
import sys
hu, lu, hd, ld, hc, lc, d50, h50, l50, hi, li, ec = map(float, sys.argv[1:])
print()
print(f"livefire / haproxy bulk up     {lu / hu:.2f}x   (goal >= 1.0)")
print(f"livefire / haproxy bulk down   {ld / hd:.2f}x   (goal >= 1.0)")
print(f"livefire / haproxy CPU per req {lc / hc:.2f}x   (goal <= 0.9; epoll path {ec / hc:.2f}x)")
print(f"added p50: haproxy {h50 - d50:.1f} us, livefire {l50 - d50:.1f} us   (goal: livefire <= haproxy)")
print(f"idle memory: haproxy {hi:.2f} KiB, livefire {li:.2f} KiB per connection   (goal <= 8)")
PY
