#!/usr/bin/env bash
# bench/report.sh: how long `livefire report` takes, and how big its page is, for a
# one-hour run at 10k requests a second, from a journal a real run recorded.
#
# 1. Records a real run (`livefire run`, DUR seconds): nginx (started by the run, one
#    process) under a load at RATE req/s, a second load of EDGE_RATE req/s through a
#    proxy the run owns, the sandbox's orders API (SQLite store, its planted defects
#    on) fuzzed from its OpenAPI document all along, and faults: latency, bandwidth and
#    outages on the proxy, nginx paused twice, the orders API's link to its token
#    service cut. It prints the verdict, the load's rate achieved and the report build
#    time of that journal.
# 2. Scales that journal up (crates/livefire-report/examples/scale_journal.rs): the
#    events of its `during` phase repeated end to end to OUT_SECONDS, every window's counts
#    and histogram multiplied so the loads add up to RPS req/s.
# 3. Times `livefire report` (wall clock and peak RSS, GNU time) on the scaled journal,
#    and prints the sizes of what it wrote.
#
# Needs: apt-get install nginx-light time python3 curl; root (or a user who may start
# nginx on loopback). JOURNAL=RUN_DIR skips step 1 and scales that run's journal;
# OUT_SECONDS=0 stops after step 1 (record now, scale and time the report later).
# Usage: bench/report.sh   (DUR=600 RATE=3000 EDGE_RATE=100 FUZZ_RATE=20 OUT_SECONDS=3600
#                           RPS=10000 KEEP=DIR to keep the run folders, LIVEFIRE_BIN=...,
#                           SCALE_BIN=... a prebuilt scale_journal example, REPORT_BIN=...
#                           the `report` example of livefire-report instead of
#                           `livefire report`: the same library call, built alone)
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-600}
RATE=${RATE:-3000}
EDGE_RATE=${EDGE_RATE:-100}
FUZZ_RATE=${FUZZ_RATE:-20}
SECONDS_OUT=${OUT_SECONDS:-3600}
RPS=${RPS:-10000}
PORT=${PORT:-18280}        # nginx; the proxy in front of it PORT+1
API_PORT=${API_PORT:-18290} # the sandbox's orders API; its token service +1, the link to it +2

missing=()
for tool in nginx python3 curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -x /usr/bin/time ] || missing+=(/usr/bin/time)
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing ${missing[*]}: apt-get install nginx-light time python3 curl" >&2
  exit 3
fi
if [ -n "${LIVEFIRE_BIN:-}" ]; then LF=$(realpath "$LIVEFIRE_BIN"); else cargo build --release -q -p livefire; LF=$PWD/target/release/livefire; fi
[ -x "$LF" ] || { echo "no livefire binary at $LF: cargo build --release -p livefire" >&2; exit 3; }
if [ -n "${REPORT_BIN:-}" ]; then REPORT=("$(realpath "$REPORT_BIN")"); else REPORT=("$LF" report); fi
[ -x "${REPORT[0]}" ] || { echo "no report binary at ${REPORT[0]}: cargo build --release -p livefire-report --example report" >&2; exit 3; }

dir=${KEEP:-$(mktemp -d)}
mkdir -p "$dir"
cleanup() {
  [ -f "$dir/sb/sandbox.json" ] && "$LF" sandbox down --dir "$dir/sb" >/dev/null 2>&1 || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT
trap "exit 130" INT TERM

size() { python3 -c 'import os,sys; n=os.path.getsize(sys.argv[1]); print(f"{n/1e6:.1f} MB" if n >= 1e6 else f"{n/1e3:.0f} kB")' "$1"; }
echo "# $(date -u +%FT%TZ) machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); $("$LF" --version)"

if [ -z "${JOURNAL:-}" ]; then
  for p in $PORT $((PORT + 1)) $API_PORT $((API_PORT + 1)) $((API_PORT + 2)); do
    if (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "port $p is busy; free it or set PORT / API_PORT" >&2; exit 3; fi
  done
  mkdir -p "$dir/nginx/logs"
  cat > "$dir/nginx/nginx.conf" <<CONF
master_process off;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/logs/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/nginx; proxy_temp_path $dir/nginx; fastcgi_temp_path $dir/nginx;
  uwsgi_temp_path $dir/nginx; scgi_temp_path $dir/nginx;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$PORT backlog=4096;
    location / { default_type text/plain; return 200 "hello\n"; }
  }
}
CONF
  "$LF" sandbox up --store sqlite --defects --dir "$dir/sb" --api-listen "127.0.0.1:$API_PORT" \
    --token-listen "127.0.0.1:$((API_PORT + 1))" --token-via "127.0.0.1:$((API_PORT + 2))" > "$dir/sandbox.log" 2>&1 \
    || { echo "the sandbox did not start:" >&2; cat "$dir/sandbox.log" >&2; exit 1; }
  read -r LF_ALICE LF_BOB < <(python3 -c 'import json,sys; t=dict(json.load(open(sys.argv[1]))["tokens"]); print(t["alice"], t["bob"])' "$dir/sb/sandbox.json")
  export LF_ALICE LF_BOB
  at() { python3 -c "print(f'{max(1, round($DUR * $1))}s')"; }
  cat > "$dir/long-run.yaml" <<YAML
version: 1
title: nginx at ${RATE}/s and an orders API under fuzzing, through latency, outages and pauses
settings: { seed: 1, settle: 15s, fail_on: none }
setup:
  - name: web
    command: "nginx -p $dir/nginx -c $dir/nginx/nginx.conf"
    ready: { http: { url: "http://127.0.0.1:$PORT/" } }
targets:
  edge: { proxy: { listen: "127.0.0.1:$((PORT + 1))", upstream: "127.0.0.1:$PORT" } }
  auth-link: { proxy: { listen: "127.0.0.1:$((API_PORT + 2))", upstream: "127.0.0.1:$((API_PORT + 1))" } }
hypothesis:
  - name: nginx answers
    probe: { http: { url: "http://127.0.0.1:$PORT/", timeout: 1s } }
    expect: { status: 200 }
    tolerate: 10s
  - name: orders API answers
    probe: { http: { url: "http://127.0.0.1:$API_PORT/health", timeout: 1s } }
    expect: { status: 200 }
    tolerate: 10s
  - name: web p99 under 500 ms
    metric: web.latency.p99
    below: 500ms
guardrails:
  - metric: web.error_rate
    below: 90%
    for: 30s
timeline:
  - at: 0s
    for: ${DUR}s
    load:
      name: web
      rate: ${RATE}/s
      timeout: 2s
      requests: [ { name: hello, url: "http://127.0.0.1:$PORT/", checks: [ { status: 200 } ] } ]
  - at: 0s
    for: ${DUR}s
    load:
      name: edge-clients
      rate: ${EDGE_RATE}/s
      timeout: 2s
      requests: [ { name: via-edge, url: "http://\${edge}/", checks: [ { status: 200 } ] } ]
  - at: $(at 0.05)
    for: $(at 0.9)
    fuzz:
      name: orders-fuzz
      openapi: "http://127.0.0.1:$API_PORT/openapi.json"
      rate: ${FUZZ_RATE}/s
      auth: { header: Authorization, value: "Bearer \${env:LF_ALICE}" }
      second_identity: { header: Authorization, value: "Bearer \${env:LF_BOB}" }
  - at: $(at 0.1)
    for: $(at 0.05)
    name: edge slow
    fault: { proxy.latency: { target: edge, latency: 50ms, jitter: 10ms } }
  - at: $(at 0.25)
    for: 3s
    name: nginx paused
    fault: { process.pause: { target: web } }
  - at: $(at 0.4)
    for: $(at 0.03)
    name: edge down
    fault: { proxy.down: { target: edge } }
  - at: $(at 0.55)
    for: $(at 0.05)
    name: auth link down
    fault: { proxy.down: { target: auth-link } }
  - at: $(at 0.7)
    for: 5s
    name: nginx paused again
    fault: { process.pause: { target: web } }
  - at: $(at 0.85)
    for: $(at 0.05)
    name: edge narrow
    fault: { proxy.bandwidth: { target: edge, rate: 100 } }
YAML
  echo "## 1. recording: livefire run $dir/long-run.yaml  (${DUR}s, web ${RATE}/s, edge ${EDGE_RATE}/s, fuzz ${FUZZ_RATE}/s)"
  rc=0
  /usr/bin/time -f "%e s wall, %U s user, %S s sys, peak RSS %M KB" -o "$dir/run.time" \
    "$LF" run "$dir/long-run.yaml" --out "$dir/runs" -q > "$dir/run.log" 2>&1 || rc=$?
  "$LF" sandbox down --dir "$dir/sb" >/dev/null 2>&1 || true
  tail -n 5 "$dir/run.log"
  echo "livefire run: exit $rc, $(cat "$dir/run.time")"
  JOURNAL=$(ls -d "$dir"/runs/*/ | head -1)
  [ -f "$JOURNAL/journal.jsonl" ] || { echo "the run wrote no journal (exit $rc):" >&2; cat "$dir/run.log" >&2; exit 1; }
fi

python3 - "$JOURNAL/journal.jsonl" <<'PY'
import json, sys
loads, findings, faults, windows = {}, set(), [], 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["type"] == "load_ended":
        r = e["report"]
        loads[e["load"]] = f"{r['requests']} requests, {r['rps']:.0f} req/s, rate achieved {100 * r['rate_achieved']:.1f} %, outcomes {r['outcomes']}"
    elif e["type"] == "finding":
        f = e["finding"]; findings.add((f.get("rule"), f.get("operation")))
    elif e["type"] == "fault_applied": faults.append(e["activity"])
    elif e["type"] == "window": windows += 1
    elif e["type"] == "run_ended": print(f"verdict {e['verdict']} (exit {e['exit_code']})")
for k, v in loads.items(): print(f"load {k}: {v}")
print(f"faults applied: {', '.join(faults)}")
print(f"findings: {len(findings)} distinct (rule, operation); windows: {windows}")
PY
echo "recorded journal: $(size "$JOURNAL/journal.jsonl")"
/usr/bin/time -f "%e s wall, peak RSS %M KB" -o "$dir/rec-report.time" "${REPORT[@]}" "$JOURNAL" > /dev/null
echo "livefire report on the recorded journal: $(cat "$dir/rec-report.time"); report.html $(size "$JOURNAL/report.html")"

if [ "$SECONDS_OUT" = 0 ]; then
  echo "OUT_SECONDS=0: recorded only; scale it later with JOURNAL=$JOURNAL"
  exit 0
fi

echo
echo "## 2. scaling to ${SECONDS_OUT}s at ${RPS} req/s"
if [ -n "${SCALE_BIN:-}" ]; then SCALE=$(realpath "$SCALE_BIN"); else
  cargo build --release -q -p livefire-report --example scale_journal
  SCALE=$PWD/target/release/examples/scale_journal
fi
[ -x "$SCALE" ] || { echo "no scale_journal at $SCALE: cargo build --release -p livefire-report --example scale_journal" >&2; exit 3; }
rm -rf "$dir/scaled"
"$SCALE" "$JOURNAL" "$dir/scaled" "$SECONDS_OUT" "$RPS"

echo
echo "## 3. livefire report on the scaled journal"
/usr/bin/time -f "%e s wall, %U s user, %S s sys, peak RSS %M KB" -o "$dir/report.time" "${REPORT[@]}" "$dir/scaled" > "$dir/report.out"
echo "${REPORT[*]} $dir/scaled: $(cat "$dir/report.time")"
for f in journal.jsonl report.html summary.json junit.xml; do
  [ -f "$dir/scaled/$f" ] && echo "  $f: $(size "$dir/scaled/$f")"
done
