#!/usr/bin/env bash
# Benchmark: a direct connection vs haproxy (TCP mode, with its default 16 KiB buffers
# and with `tune.bufsize` equal to livefire's 64 KiB) vs `livefire proxy` with no toxic
# (its io_uring data plane, and its epoll path as `livefire-epoll`), on loopback, each
# proxy pinned alone on one core. Not a test: prints every sample, medians and spreads.
#
#   bench/proxy.sh                    # builds target/release/livefire if needed
#   SECS=10 ROUNDS=9 bench/proxy.sh   # longer runs, more rounds
#
# Needs (Debian): haproxy iperf3 wrk nginx python3 util-linux; root (nginx, ulimit).
# Each round measures every path in turn, the order rotated from round to round so load
# from elsewhere on a shared machine hits every path alike: bulk throughput (iperf3, both
# directions), added latency (wrk, one connection: p50 and p99 minus the direct path's
# in the same round), the proxy's CPU per small HTTP request (user+system of the proxy
# process over a wrk -c50 run to nginx) and wrk's p99 in that run. Idle memory per
# connection (RSS delta over IDLE idle connections) is measured once per proxy. A proxy
# that does not start, or a run through it that fails, is a FAILED sample, not a zero.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-5}
ROUNDS=${ROUNDS:-5}
IDLE=${IDLE:-1000}
BUFSIZE=${BUFSIZE:-65536}   # livefire-proxy's buffer (uring.rs BUF_SIZE, link.rs FAST_BUF)
missing=()
for tool in haproxy iperf3 wrk nginx python3 taskset; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing ${missing[*]}: apt-get install haproxy iperf3 wrk nginx-light python3 util-linux" >&2
  exit 3
fi
LIVEFIRE=${LIVEFIRE_BIN:-target/release/livefire}
if [ -z "${LIVEFIRE_BIN:-}" ]; then cargo build --release -q -p livefire; fi
[ -x "$LIVEFIRE" ] || { echo "no livefire binary at $LIVEFIRE: cargo build --release -p livefire" >&2; exit 3; }
ulimit -n 20000

NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then PROXY_CPU=$((NCPU - 1)); LOAD_CPUS="0-$((NCPU - 2))"; else PROXY_CPU=0; LOAD_CPUS=0; fi
# Arrays, not functions: a backgrounded function runs in a subshell and $! would be the
# subshell's pid, not the server's.
PIN_PROXY=(taskset -c "$PROXY_CPU")
PIN_LOAD=(taskset -c "$LOAD_CPUS")

# Ports: upstreams 27080 (nginx), 27201 (iperf3), 27300 (idle holder); each path adds
# its offset: haproxy +100, livefire +110 (API 27474), livefire-epoll +120 (API
# 27475), haproxy-64k +130.
WHO=(direct haproxy haproxy-64k livefire livefire-epoll)
declare -A OFF=([direct]=0 [haproxy]=100 [livefire]=110 [livefire-epoll]=120 [haproxy-64k]=130)
for p in 27474 27475; do
  if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "port $p is busy; free it first" >&2; exit 3; fi
done
for who in "${WHO[@]}"; do
  for base in 27080 27201 27300; do
    p=$((base + OFF[$who]))
    if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "port $p is busy; free it first" >&2; exit 3; fi
  done
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
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(4096)
held = []
while True:
    c, _ = srv.accept(); held.append(c)
PY
"${PIN_LOAD[@]}" python3 "$TMP/hold.py" 27300 & PIDS+=($!)

# --- proxies -----------------------------------------------------------------------
haproxy_cfg() { # offset [tune line]
  cat <<HAP
global
  maxconn 8000
  nbthread 1
  $2
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen nginx
  bind 127.0.0.1:$((27080 + $1))
  server s 127.0.0.1:27080
listen iperf
  bind 127.0.0.1:$((27201 + $1))
  server s 127.0.0.1:27201
listen hold
  bind 127.0.0.1:$((27300 + $1))
  server s 127.0.0.1:27300
HAP
}
declare -A PID
haproxy_cfg 100 "" > "$TMP/haproxy.cfg"
"${PIN_PROXY[@]}" haproxy -f "$TMP/haproxy.cfg" -db >"$TMP/haproxy.log" 2>&1 & PID[haproxy]=$!; PIDS+=($!)
haproxy_cfg 130 "tune.bufsize $BUFSIZE" > "$TMP/haproxy-64k.cfg"
"${PIN_PROXY[@]}" haproxy -f "$TMP/haproxy-64k.cfg" -db >"$TMP/haproxy-64k.log" 2>&1 & PID[haproxy-64k]=$!; PIDS+=($!)
lf_cfg() { # offset
  printf '[{"name": "nginx", "listen": "127.0.0.1:%s", "upstream": "127.0.0.1:27080"},\n' $((27080 + $1))
  printf ' {"name": "iperf", "listen": "127.0.0.1:%s", "upstream": "127.0.0.1:27201"},\n' $((27201 + $1))
  printf ' {"name": "hold", "listen": "127.0.0.1:%s", "upstream": "127.0.0.1:27300"}]\n' $((27300 + $1))
}
lf_cfg 110 > "$TMP/livefire.json"
lf_cfg 120 > "$TMP/livefire-epoll.json"
"${PIN_PROXY[@]}" "$LIVEFIRE" proxy --port 27474 --config "$TMP/livefire.json" >"$TMP/livefire.log" 2>&1 & PID[livefire]=$!; PIDS+=($!)
LIVEFIRE_PROXY_IO=epoll "${PIN_PROXY[@]}" "$LIVEFIRE" proxy --port 27475 --config "$TMP/livefire-epoll.json" >"$TMP/livefire-epoll.log" 2>&1 & PID[livefire-epoll]=$!; PIDS+=($!)
sleep 1.5
declare -A DOWN
for who in haproxy haproxy-64k livefire livefire-epoll; do
  if ! kill -0 "${PID[$who]}" 2>/dev/null || ! (exec 3<>/dev/tcp/127.0.0.1/$((27080 + OFF[$who]))) 2>/dev/null; then
    DOWN[$who]=1
    echo "$who did not start (its rows are FAILED):" >&2; cat "$TMP/$who.log" >&2
  fi
done

# --- measurements ------------------------------------------------------------------
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
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

iperf_mbps() { # port extra-flags -> MB/s, or nothing on failure
  "${PIN_LOAD[@]}" iperf3 -c 127.0.0.1 -p "$1" -t "$SECS" -J $2 2>/dev/null | python3 -c 'import json,sys; bps = json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]; print(round(bps / 8e6))' 2>/dev/null || true
}

wrk_run() { # url conns -> "requests p50_us p99_us", or nothing on failure
  "${PIN_LOAD[@]}" wrk -t1 -c"$2" -d"${SECS}s" --latency "$1" 2>/dev/null | python3 -c '
import re, sys
t = sys.stdin.read()
def us(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v); x = float(m.group(1))
    return x * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
req = int(re.search(r"(\d+) requests in", t).group(1))
if re.search(r"Non-2xx|Socket errors", t) or req == 0: sys.exit(1)
p = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M))
print(req, round(us(p["50"]), 1), round(us(p["99"]), 1))' 2>/dev/null || true
}

echo "# $(date -u +%FT%TZ) machine: $(nproc) cores,$(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# proxies pinned to CPU $PROXY_CPU; load tools and upstreams on CPU $LOAD_CPUS; ${SECS}s per run, $ROUNDS rounds"
echo "# $(haproxy -v 2>&1 | head -1); haproxy-64k: tune.bufsize $BUFSIZE; $("$LIVEFIRE" --version)"
[ -z "${DOWN[livefire]:-}" ] && echo "# livefire: $(head -1 "$TMP/livefire.log")"
[ -z "${DOWN[livefire-epoll]:-}" ] && echo "# livefire-epoll: $(head -1 "$TMP/livefire-epoll.log")"

SAMPLES=$TMP/samples.tsv   # round who metric value (FAILED for a failed run)
: > "$SAMPLES"
put() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-FAILED}" >> "$SAMPLES"; }

for who in haproxy haproxy-64k livefire livefire-epoll; do
  if [ -n "${DOWN[$who]:-}" ]; then put 0 "$who" idle; else put 0 "$who" idle "$(idle_kib_per_conn "${PID[$who]}" $((27300 + OFF[$who])))"; fi
done

for round in $(seq "$ROUNDS"); do
  order=()
  for i in $(seq 0 $((${#WHO[@]} - 1))); do order+=("${WHO[$(((i + round - 1) % ${#WHO[@]}))]}"); done
  echo "round $round: ${order[*]} (load avg $(cut -d' ' -f1 /proc/loadavg))"
  for who in "${order[@]}"; do
    put "$round" "$who" loadavg "$(cut -d' ' -f1 /proc/loadavg)"
    if [ -n "${DOWN[$who]:-}" ]; then
      for m in up down p50 p99 cpu loadp99; do put "$round" "$who" $m; done
      continue
    fi
    off=${OFF[$who]}
    put "$round" "$who" up "$(iperf_mbps $((27201 + off)) "")"
    put "$round" "$who" down "$(iperf_mbps $((27201 + off)) "-R")"
    read -r _ p50 p99 <<<"$(wrk_run "http://127.0.0.1:$((27080 + off))/" 1)" || true
    put "$round" "$who" p50 "$p50"; put "$round" "$who" p99 "$p99"
    pid=${PID[$who]:-}
    [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
    req=""; lp99=""
    read -r req _ lp99 <<<"$(wrk_run "http://127.0.0.1:$((27080 + off))/" 50)" || true
    put "$round" "$who" loadp99 "$lp99"
    if [ -n "$pid" ]; then
      t1=$(cpu_ticks "$pid")
      if [ -n "$req" ]; then put "$round" "$who" cpu "$(python3 -c "print(round(($t1 - $t0) / $TCK * 1e6 / $req, 2))")"; else put "$round" "$who" cpu; fi
    fi
  done
done

python3 - "$SAMPLES" "${WHO[@]}" <<'PY'
import statistics, sys
path, who = sys.argv[1], sys.argv[2:]
S = {}
for line in open(path):
    rnd, w, m, v = line.rstrip("\n").split("\t")
    S.setdefault((w, m), {})[int(rnd)] = None if v == "FAILED" else float(v)
def vals(w, m): return [v for v in S.get((w, m), {}).values() if v is not None]
def runs(w, m): return len(S.get((w, m), {}))
def med(xs, nd=0):
    if not xs: return "FAILED"
    f = f"{{:.{nd}f}}"
    return f"{f.format(statistics.median(xs))} [{f.format(min(xs))}-{f.format(max(xs))}]"
def added(w, m):  # per round: this path minus the direct path of the same round
    d, p = S.get(("direct", m), {}), S.get((w, m), {})
    return [p[r] - d[r] for r in p if p[r] is not None and d.get(r) is not None]
print("\nall samples (per round, in round order):")
for w in who:
    for m in ["up", "down", "p50", "p99", "cpu", "loadp99"]:
        if (w, m) in S:
            print(f"  {w:15} {m:8} " + " ".join("FAILED" if v is None else f"{v:g}" for _, v in sorted(S[(w, m)].items())))
print("\nmedian [min-max] over rounds:")
cols = ["up MB/s", "down MB/s", "added p50 us", "added p99 us", "cpu us/req", "p99 us (c50)", "KiB/idle conn"]
print(f"{'':15}" + "".join(f"{c:>22}" for c in cols))
for w in who:
    row = [med(vals(w, "up")), med(vals(w, "down"))]
    row += ["(p50 " + med(vals(w, "p50")) + ")", "(p99 " + med(vals(w, "p99")) + ")"] if w == "direct" else [med(added(w, "p50")), med(added(w, "p99"))]
    row += ["-" if w == "direct" else med(vals(w, "cpu"), 2), med(vals(w, "loadp99"))]
    row += ["-" if w == "direct" else med(vals(w, "idle"), 2)]
    print(f"{w:15}" + "".join(f"{c:>22}" for c in row))
    fails = sum(1 for (ww, m), d in S.items() if ww == w and m != "loadavg" for v in d.values() if v is None)
    if fails: print(f"{'':15}{fails} FAILED samples")
print(f"\n1-min load average at the start of each path's runs: {med(vals('direct', 'loadavg') + vals('haproxy', 'loadavg') + vals('haproxy-64k', 'loadavg') + vals('livefire', 'loadavg') + vals('livefire-epoll', 'loadavg'), 1)}")
def ratio(a, b, m):  # per round a/b, median [min-max]
    A, B = S.get((a, m), {}), S.get((b, m), {})
    return med([A[r] / B[r] for r in A if A[r] and B.get(r)], 2)
print()
for peer in ["haproxy", "haproxy-64k"]:
    print(f"livefire / {peer:11} per round: bulk up {ratio('livefire', peer, 'up')}x, down {ratio('livefire', peer, 'down')}x (goal >= 1), "
          f"CPU per req {ratio('livefire', peer, 'cpu')}x; epoll path CPU per req {ratio('livefire-epoll', peer, 'cpu')}x")
    lf, hp = added("livefire", "p50"), added(peer, "p50")
    if lf and hp:
        print(f"added p50: {peer} {statistics.median(hp):.1f} us, livefire {statistics.median(lf):.1f} us (goal: livefire <= {peer})")
PY
