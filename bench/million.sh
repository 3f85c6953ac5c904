#!/usr/bin/env bash
# bench/million.sh: "a million users", measured on one machine: CONNS concurrent
# keep-alive connections (closed model: CONNS virtual users, each sending a GET, then
# thinking THINK) from SEGMENTS local segments (`livefire run --segments N --on local`)
# against a local nginx this script configures and starts. A benchmark, not a test.
#
#   1. checks what it needs (nginx, python3, ss; open files per process; ports per source
#      address; conntrack room) and says what to install or change, exit 3, when one is
#      missing: it changes no machine setting unless SET_SYSCTLS=1, and then restores it;
#   2. starts nginx in a temp dir: NGINX_WORKERS workers with `reuseport` (the kernel
#      spreads connections over them), each allowed just under the open-files limit;
#   3. runs one experiment: ramp to CONNS VUs over RAMP, hold HOLD, connections spread
#      over SOURCES source addresses (127.0.0.2, 127.0.0.3, ...);
#   4. during the hold, every second: established connections to nginx's port (ss), the
#      RSS of the coordinator and every segment (summed), the load average;
#   5. prints: connections held, livefire RSS in all and per connection, the request
#      rate in the hold against the closed model's ideal (CONNS / THINK), and the
#      latency percentiles of the whole load merged from every segment's histograms.
#
# Each process may hold at most `ulimit -Hn` open files (20,000 here, even for root), so
# each segment holds at most that many connections: 100,000 needs at least six
# segments; 8 leaves room (12,500 each). The run stops by itself after RAMP + HOLD;
# Ctrl-C or any error stops the run (SIGINT: the coordinator stops its segments) and
# nginx, and restores any sysctl it changed.
#
# Needs: apt-get install nginx-light python3 iproute2 procps; a release build (built
# here unless LIVEFIRE_BIN names one).
# Usage: bench/million.sh   (CONNS=100000 SEGMENTS=8 SOURCES=8 THINK=10s RAMP=60 HOLD=60
#                            PORT=18190 NGINX_WORKERS=8 SET_SYSCTLS=0 LIVEFIRE_BIN=...
#                            KEEP=1 keeps the temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-100000}
SEGMENTS=${SEGMENTS:-8}
SOURCES=${SOURCES:-8}
THINK=${THINK:-10s}
RAMP=${RAMP:-60}
HOLD=${HOLD:-60}
PORT=${PORT:-18190}
NGINX_WORKERS=${NGINX_WORKERS:-8}
SET_SYSCTLS=${SET_SYSCTLS:-0}

die() { echo "million.sh: $*" >&2; exit 3; }

# --- what the machine must have ---------------------------------------------------------
missing=()
for tool in nginx python3 ss; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: apt-get install nginx-light python3 iproute2 procps"

# --- cleanup: the run, nginx, sysctls -----------------------------------------------------
tmp=$(mktemp -d /tmp/livefire-million.XXXXXX)
declare -A restore_sysctl=()
run_pid=
nginx_pid=
cleanup() {
  set +e
  if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
    # SIGINT: the coordinator stops its segments itself (and they stop when it dies).
    kill -INT "$run_pid"
    for _ in $(seq 50); do kill -0 "$run_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$run_pid" 2>/dev/null
  fi
  if [ -z "$nginx_pid" ] && [ -s "$tmp/nginx.pid" ]; then nginx_pid=$(cat "$tmp/nginx.pid"); fi
  if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
    kill -TERM "$nginx_pid"
    for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$nginx_pid" 2>/dev/null
  fi
  for k in "${!restore_sysctl[@]}"; do sysctl -q -w "$k=${restore_sysctl[$k]}"; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

per_segment=$(( (CONNS + SEGMENTS - 1) / SEGMENTS ))
hard_files=$(ulimit -Hn)
[ "$hard_files" = unlimited ] && hard_files=1048576
# A segment needs a file per connection, plus its own (binary, pipes, epoll, logs).
if [ $(( per_segment + 200 )) -gt "$hard_files" ]; then
  die "$per_segment connections per segment need $(( per_segment + 200 )) open files, but a process may hold $hard_files (ulimit -Hn): give SEGMENTS=$(( (CONNS + hard_files - 201) / (hard_files - 200) )) or more"
fi
ulimit -n "$hard_files"
# nginx: each worker holds its share of the connections (reuseport spreads them, not
# exactly evenly: 30 % headroom), with worker_connections just under the file limit.
worker_conns=$(( hard_files - 100 ))
if [ $(( CONNS * 13 / 10 / NGINX_WORKERS )) -gt "$worker_conns" ]; then
  die "$NGINX_WORKERS nginx workers of at most $worker_conns connections cannot hold $CONNS with headroom: give NGINX_WORKERS=$(( CONNS * 13 / 10 / worker_conns + 1 ))"
fi

# Sysctls: read, compared with what this run needs, changed only with SET_SYSCTLS=1.
read -r port_lo port_hi < /proc/sys/net/ipv4/ip_local_port_range
ports=$(( port_hi - port_lo + 1 ))
per_source=$(( (CONNS + SOURCES - 1) / SOURCES ))
file_max=$(cat /proc/sys/fs/file-max)
somaxconn=$(cat /proc/sys/net/core/somaxconn)
declare -A want_sysctl=()
# One source address reaches nginx's one ip:port through at most `ports` source ports.
if [ $(( per_source * 11 / 10 )) -gt "$ports" ]; then
  die "$per_source connections per source address, but net.ipv4.ip_local_port_range ($port_lo-$port_hi) has $ports ports: give SOURCES=$(( CONNS * 11 / 10 / ports + 1 )) or more"
fi
# Both ends of every connection are on this machine: two files per connection.
[ "$file_max" -ge $(( CONNS * 2 + 100000 )) ] || want_sysctl[fs.file-max]=$(( CONNS * 2 + 100000 ))
[ "$somaxconn" -ge 4096 ] || want_sysctl[net.core.somaxconn]=4096
# With conntrack loaded, every loopback connection is an entry; a full table drops SYNs.
if [ -r /proc/sys/net/netfilter/nf_conntrack_max ]; then
  ct_max=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
  ct_count=$(cat /proc/sys/net/netfilter/nf_conntrack_count)
  [ "$ct_max" -ge $(( ct_count + CONNS * 12 / 10 )) ] || want_sysctl[net.netfilter.nf_conntrack_max]=$(( ct_count + CONNS * 12 / 10 ))
fi
if [ ${#want_sysctl[@]} -gt 0 ]; then
  if [ "$SET_SYSCTLS" != 1 ]; then
    for k in "${!want_sysctl[@]}"; do echo "million.sh: needs sysctl -w $k=${want_sysctl[$k]} (now $(sysctl -n "$k"))" >&2; done
    die "set them, or run with SET_SYSCTLS=1 to set them for this run and restore them after"
  fi
  for k in "${!want_sysctl[@]}"; do
    restore_sysctl[$k]=$(sysctl -n "$k")
    echo "million.sh: sysctl -w $k=${want_sysctl[$k]} for this run (was ${restore_sysctl[$k]}; restored at exit)"
    sysctl -q -w "$k=${want_sysctl[$k]}"
  done
fi

if [ -n "${LIVEFIRE_BIN:-}" ]; then LF=$LIVEFIRE_BIN; else cargo build --release -q -p livefire; LF=target/release/livefire; fi
[ -x "$LF" ] || die "no livefire binary at $LF: cargo build --release -p livefire"
LF=$(realpath "$LF")

# --- nginx ---------------------------------------------------------------------------------
mkdir -p "$tmp/nginx/logs" "$tmp/nginx/tmp"
cat > "$tmp/nginx/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile $hard_files;
pid $tmp/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections $worker_conns; multi_accept on; }
http {
  access_log off;
  keepalive_timeout 600s;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/nginx/tmp;
  proxy_temp_path $tmp/nginx/tmp;
  fastcgi_temp_path $tmp/nginx/tmp;
  uwsgi_temp_path $tmp/nginx/tmp;
  scgi_temp_path $tmp/nginx/tmp;
  server {
    listen 127.0.0.1:$PORT reuseport backlog=4096;
    location / { return 200 "hello\n"; }
  }
}
EOF
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" \
  || die "nginx did not start (is port $PORT taken? PORT=... picks another): $(tail -3 "$tmp/nginx/logs/error.log" 2>/dev/null)"
for _ in $(seq 50); do [ -s "$tmp/nginx.pid" ] && break; sleep 0.1; done
nginx_pid=$(cat "$tmp/nginx.pid")
python3 - "$PORT" <<'EOF' || die "nginx does not answer on 127.0.0.1:$PORT"
import sys, urllib.request
assert urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=5).status == 200
EOF

# --- the experiment --------------------------------------------------------------------------
sources=$(python3 -c "import sys; print(', '.join(f'127.0.0.{i + 2}' for i in range(int(sys.argv[1]))))" "$SOURCES")
cat > "$tmp/million.yaml" <<EOF
version: 1
title: $CONNS users held on keep-alive connections
targets:
  web: { http: "http://127.0.0.1:$PORT" }
timeline:
  - at: 0s
    for: $(( RAMP + HOLD ))s
    load:
      name: users
      vus: 1
      stages: [ { to: $CONNS, over: ${RAMP}s } ]
      think: $THINK
      timeout: 3s
      source_addresses: [ $sources ]
      requests: [ { url: "\${web}/" } ]
EOF

echo "== $CONNS connections: $SEGMENTS segments x $per_segment, $SOURCES source addresses x $per_source, nginx $NGINX_WORKERS workers on 127.0.0.1:$PORT"
echo "   ramp ${RAMP}s, hold ${HOLD}s, think $THINK; livefire $($LF --version 2>/dev/null | head -1); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg) before"
"$LF" run "$tmp/million.yaml" --segments "$SEGMENTS" --on local --out "$tmp/runs" --quiet \
  > "$tmp/run.out" 2> "$tmp/run.err" &
run_pid=$!

# --- sampling: every second until the run ends -----------------------------------------------
# RSS of the coordinator and all its descendants (the segments), from /proc.
rss_tree() {
  python3 - "$1" <<'EOF'
import os, sys
root = int(sys.argv[1])
kids = {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        with open(f"/proc/{p}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        continue
    kids.setdefault(ppid, []).append(int(p))
todo, total, n = [root], 0, 0
while todo:
    p = todo.pop()
    todo += kids.get(p, [])
    try:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    n += 1
    except OSError:
        pass
print(total, n)
EOF
}
echo "second,established,livefire_rss_bytes,processes,load1" > "$tmp/samples.csv"
t0=$(date +%s)
next_print=0
while kill -0 "$run_pid" 2>/dev/null; do
  s=$(( $(date +%s) - t0 ))
  est=$(ss -Htn state established "( sport = :$PORT )" | wc -l)
  read -r rss procs < <(rss_tree "$run_pid")
  echo "$s,$est,$rss,$procs,$(cut -d' ' -f1 /proc/loadavg)" >> "$tmp/samples.csv"
  if [ "$s" -ge "$next_print" ]; then
    next_print=$(( s - s % 10 + 10 ))
    printf '   t=%3ss  established %6s  livefire RSS %5s MiB in %s processes  load %s\n' \
      "$s" "$est" $(( rss / 1048576 )) "$procs" "$(cut -d' ' -f1 /proc/loadavg)"
  fi
  # A bound of its own: the run stops by itself at RAMP + HOLD; 120 s more is a hang.
  if [ "$s" -gt $(( RAMP + HOLD + 120 )) ]; then
    echo "million.sh: the run did not end; stopping it" >&2
    kill -INT "$run_pid"; sleep 10; kill -KILL "$run_pid" 2>/dev/null || true
    break
  fi
  sleep 1
done
rc=0
wait "$run_pid" || rc=$?
run_pid=
run_dir=$(ls -d "$tmp"/runs/*/ 2>/dev/null | head -1)
[ -n "$run_dir" ] || { cat "$tmp/run.err" >&2; die "the run left no run folder (exit $rc)"; }
"$LF" merge "$run_dir" --json > "$tmp/merged.json" || true

python3 - "$tmp" "$run_dir" "$CONNS" "$THINK" "$RAMP" "$HOLD" "$rc" <<'EOF'
import csv, json, sys
tmp, run_dir, conns, think, ramp, hold, rc = sys.argv[1:]
conns, ramp, hold = int(conns), int(ramp), int(hold)
think_s = float(think[:-2]) / 1000 if think.endswith("ms") else float(think.rstrip("s"))
rows = list(csv.DictReader(open(f"{tmp}/samples.csv")))
# The hold: from RAMP + 5 s (the ramp's last connections made) to the end of the load.
held = [r for r in rows if ramp + 5 <= int(r["second"]) <= ramp + hold]
if not held:
    sys.exit(f"million.sh: no samples in the hold (the run ended early, exit {rc}): see {tmp}/run.err")
est = [int(r["established"]) for r in held]
rss = [int(r["livefire_rss_bytes"]) for r in held]
loads = [float(r["load1"]) for r in held]
peak_rss = max(int(r["livefire_rss_bytes"]) for r in rows)
# What the processes hold before their connections: the first sample with every segment
# up, so the marginal cost of a connection is (RSS in the hold - this) / connections.
segments = max(int(r["processes"]) for r in rows)
base = next(r for r in rows if int(r["processes"]) == segments)
base_rss, base_est = int(base["livefire_rss_bytes"]), int(base["established"])
# Requests per second in the hold, from the coordinator's merged windows in the journal.
done = {}
for line in open(f"{run_dir}/journal.jsonl"):
    ev = json.loads(line)
    if ev.get("type") != "window" or ev.get("series") != "users":
        continue
    c = ev["window"]["counts"]
    done[ev["second"]] = sum(c.values()) if isinstance(c, dict) else sum(c)
hold_secs = [s for s in done if ramp + 5 <= s < ramp + hold]
rps = sum(done[s] for s in hold_secs) / max(len(hold_secs), 1)
ideal = conns / think_s
ms = lambda v: "n/a" if v is None else f"{v * 1000:.2f} ms"
try:
    merged = json.load(open(f"{tmp}/merged.json"))
    load = merged[0] if isinstance(merged, list) else merged
    pct = load["latency_secs"]["percentiles"]
except (ValueError, IndexError, KeyError):
    # No load_ended (segments stopped before their last report): the run's summary,
    # from the coordinator's merged windows, has the same histograms to that point.
    s = [l for l in json.load(open(f"{run_dir}/summary.json"))["loads"] if l["name"] == "users"][0]
    load = {"requests": s["completed"], "rps": s["rps"], "error_rate": s["error_rate"], "outcomes": s["outcomes"]}
    pct = {p: (s["latency_ms"].get(k) or 0) / 1000 for p, k in [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p999"), ("p100", "max")]}
    print("(no load_ended from the segments: figures from summary.json's merged windows)")
outcomes = {k: v for k, v in load.get("outcomes", {}).items() if v}
print(f"== results (run exit {rc})")
print(f"connections held (ss, established, hold):  min {min(est)}  max {max(est)}  of {conns}")
print(f"livefire RSS, all processes (hold):         mean {sum(rss) / len(rss) / 2**20:.0f} MiB, max {max(rss) / 2**20:.0f} MiB; peak of the run {peak_rss / 2**20:.0f} MiB")
print(f"bytes per connection (max RSS / min held):  {max(rss) / max(min(est), 1):.0f} in all; {(max(rss) - base_rss) / max(min(est) - base_est, 1):.0f} marginal (over {base_rss / 2**20:.0f} MiB with {base_est} connections when all {segments} processes were up)")
print(f"rate in the hold:                           {rps:.0f} req/s of {ideal:.0f} ideal (CONNS / THINK): {100 * rps / ideal:.1f} %")
print(f"whole load (merged from all segments):      {load['requests']} requests, {load['rps']:.0f} req/s, error rate {load['error_rate'] * 100:.3f} %, outcomes {outcomes}")
print("latency (merged histograms):                " + "  ".join(f"{p} {ms(pct.get(p))}" for p in ["p50", "p90", "p99", "p99.9", "p100"]))
print(f"load average (1 min) in the hold:           mean {sum(loads) / len(loads):.2f}, max {max(loads):.2f}")
EOF
exit "$rc"
