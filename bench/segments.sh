#!/usr/bin/env bash
# bench/segments.sh: split runs on local segments (a benchmark, not a test).
#
#   1. The same open-model load (RATE req/s for DUR s against `livefire sandbox http`)
#      as `livefire run --segments N --on local` for N in NS: completed requests,
#      intended, p50 / p99 from the merged report, and the coordinator's own CPU
#      (user + sys of its process only, read from /proc/PID/stat while it runs: the
#      agents' CPU is theirs), per segment.
#   2. Merge cost: the windows one segment of the N=max run recorded
#      (segments/1/stream.jsonl) replayed as MERGE_SEGMENTS segments x MERGE_SECONDS
#      seconds through the coordinator's own path (read each window line, merge it
#      sparsely, release on watermarks, publish into the referee's store): CPU seconds
#      and peak RSS (examples/merge_cost.rs). Only the merge cost, from a recorded
#      stream: `MERGE_ONLY=STREAM.jsonl bench/segments.sh`.
#
# Needs: python3, a release build (built here unless LIVEFIRE_BIN and MERGE_COST_BIN
# are given). Usage: bench/segments.sh  (NS="1 2 4" RATE=2000 DUR=20 PORT=18091
#                                        MERGE_SEGMENTS=100 MERGE_SECONDS=3600
#                                        REQUESTS=1)
set -euo pipefail
cd "$(dirname "$0")/.."

NS=${NS:-"1 2 4"}
RATE=${RATE:-2000}
DUR=${DUR:-20}
PORT=${PORT:-18091}
MERGE_SEGMENTS=${MERGE_SEGMENTS:-100}
MERGE_SECONDS=${MERGE_SECONDS:-3600}
REQUESTS=${REQUESTS:-1}
command -v python3 >/dev/null || { echo "missing python3: apt-get install python3" >&2; exit 3; }

if [ -n "${LIVEFIRE_BIN:-}" ]; then LF=$LIVEFIRE_BIN; elif [ -z "${MERGE_ONLY:-}" ]; then
  cargo build --release -q -p livefire; LF=target/release/livefire; fi
if [ -n "${MERGE_COST_BIN:-}" ]; then MC=$MERGE_COST_BIN; else
  cargo build --release -q -p livefire-engine --example merge_cost; MC=target/release/examples/merge_cost; fi

if [ -n "${MERGE_ONLY:-}" ]; then
  echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "merge cost: $MERGE_SEGMENTS segments x $MERGE_SECONDS s of windows, replayed from $MERGE_ONLY"
  exec "$MC" "$MERGE_ONLY" "$MERGE_SEGMENTS" "$MERGE_SECONDS"
fi

WORK=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
export LIVEFIRE_HOME=$WORK/home

"$LF" sandbox http --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
SERVER=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

# REQUESTS request names (r1, r2, ...), all the same URL: a load of one request sends
# one series a second, a load of K > 1 sends K + 1 (the load's and each request's).
REQS=
for i in $(seq "$REQUESTS"); do
  REQS="$REQS${REQS:+, }{ name: r$i, url: \"http://127.0.0.1:${PORT}/health\" }"
done
cat > "$WORK/exp.yaml" <<YAML
version: 1
title: segments bench
timeline:
  - at: 0s
    for: ${DUR}s
    load:
      name: browse
      rate: ${RATE}/s
      max_in_flight: 5000
      requests: [ ${REQS} ]
YAML

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "1. the same load, N local segments ($RATE/s for ${DUR}s)"
printf '%-4s %-10s %-10s %-10s %-10s %-14s %-14s\n' N intended completed p50_ms p99_ms coord_cpu_s cpu_s/segment
last_dir=
for n in $NS; do
  out=$WORK/runs-$n
  "$LF" run "$WORK/exp.yaml" --segments "$n" --out "$out" -q >/dev/null 2>"$WORK/err-$n" &
  pid=$!
  cpu=0
  while kill -0 "$pid" 2>/dev/null; do
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$t" ] && cpu=$t
    sleep 0.2
  done
  wait "$pid" || { echo "N=$n: run failed:"; cat "$WORK/err-$n"; exit 1; }
  dir=$(ls -d "$out"/*/)
  last_dir=$dir
  python3 - "$dir/journal.jsonl" "$n" "$cpu" "$(getconf CLK_TCK)" <<'PY'
import json, sys
journal, n, ticks, hz = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
for line in open(journal):
    e = json.loads(line)
    if e["type"] == "load_ended":
        r = e["report"]
        p = r["latency_secs"]["percentiles"]
        cpu = ticks / hz
        print(f"{n:<4} {r['intended']:<10} {r['requests']:<10} {p['p50']*1e3:<10.2f} {p['p99']*1e3:<10.2f} {cpu:<14.2f} {cpu/n:<14.2f}")
PY
done

echo "2. merge cost: $MERGE_SEGMENTS segments x $MERGE_SECONDS s of windows, replayed from $(basename "$last_dir")segments/1"
"$MC" "$last_dir/segments/1/stream.jsonl" "$MERGE_SEGMENTS" "$MERGE_SECONDS"
