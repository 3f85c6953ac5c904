#!/usr/bin/env bash
# The failover drill, five times on the sandbox: examples/db-failover.yaml against a
# fresh `livefire sandbox up` each time (PostgreSQL primary, synchronous replica,
# failover helper promoting after 3 s). Prints, over the runs, how long writes failed
# around the kill (min / median / max), the time from the kill to the first
# acknowledged write, how finely both are known (from each write's outcome), and the
# writes lost; then the wall time of `livefire demo` with PostgreSQL and on SQLite.
#   bench/drill.sh [RUNS]           LIVEFIRE=path/to/livefire to use another binary
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
if [ -z "${LIVEFIRE:-}" ]; then
  cargo build -q --release -p livefire
  LIVEFIRE=./target/release/livefire
fi
lf="$(realpath "$LIVEFIRE")"
# PostgreSQL runs as `postgres` when this runs as root: the folders must be reachable.
work="$(mktemp -d /tmp/livefire-drill-XXXXXX)"
chmod 755 "$work"
sb=""
cleanup() {
  if [ -n "$sb" ]; then "$lf" sandbox down --dir "$sb" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
results="$work/results"
: >"$results"
for i in $(seq 1 "$runs"); do
  sb="$work/sandbox-$i"
  "$lf" sandbox up --dir "$sb" --store postgres >/dev/null
  api="http://$(jq -r '.services[] | select(.name=="orders") | .listen' "$sb/sandbox.json")"
  token="$(jq -r '.tokens[] | select(.[0]=="alice") | .[1]' "$sb/sandbox.json")"
  set +e
  LIVEFIRE_DEMO_TOKEN="$token" "$lf" run examples/db-failover.yaml --quiet \
    --out "$work/runs-$i" --var "api=$api" --var "sandbox=$sb" >"$work/run-$i.log" 2>&1
  code=$?
  set -e
  "$lf" sandbox down --dir "$sb" >/dev/null
  sb=""
  summary="$(ls -d "$work/runs-$i"/*/)summary.json"
  jq -c --arg code "$code" '.failovers[0] + {exit: ($code | tonumber)}' "$summary" | tee -a "$results"
done
echo
jq -s -r '
  def stats(f): [.[] | f | select(. != null)] | sort
    | if length == 0 then "n/a"
      else "min \(.[0]) / median \(.[(length / 2 | floor)]) / max \(.[-1])" end;
  "runs: \(length), exits: \([.[].exit] | map(tostring) | join(" "))",
  "writes failed for (ms):                  \(stats(.unavailable_ms))",
  "kill -> first acknowledged write (ms):   \(stats(.first_write_after_ms))",
  "resolution (ms, ±):                      \(stats(.resolution_ms))",
  "writes failed (count):                   \(stats(.failed_writes))",
  "acknowledged writes lost:                \(stats(.writes_lost))"
' "$results"
echo
for store in postgres sqlite; do
  start=$(date +%s.%N)
  set +e
  TMPDIR="$work" "$lf" demo --store "$store" --quiet --out "$work/demo-$store" >"$work/demo-$store.log" 2>&1
  code=$?
  set -e
  end=$(date +%s.%N)
  printf 'livefire demo --store %s: %s s wall, exit %s\n' "$store" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" "$code"
done
