#!/usr/bin/env bash
# One live run of `livefire serve` watched by many Server-Sent-Events clients: what the
# console's CPU adds against the run's own, and whether every client sees each journal
# record within a second. Rounds alternate 0 and CLIENTS clients (the order rotates), on
# the same drill: a load of 200 req/s on `livefire sandbox http` for DUR seconds with
# the sandbox paused for 2 s, and an HTTP probe every 500 ms. The clients are asyncio
# connections in bench/serve-sse.py (livefire's load engine measures requests that end,
# not streams that stay open, so it cannot say when each event arrived).
#   bench/serve.sh [ROUNDS]      CLIENTS=100 DUR=30; LIVEFIRE=path/to/livefire for another binary
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
clients="${CLIENTS:-100}"
dur="${DUR:-30}"
if [ -z "${LIVEFIRE:-}" ]; then
  cargo build -q --release -p livefire
  LIVEFIRE=./target/release/livefire
fi
lf="$(realpath "$LIVEFIRE")"
work="$(mktemp -d /tmp/livefire-serve-bench-XXXXXX)"
export LIVEFIRE_HOME="$work/home"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

token="$("$lf" serve --data "$work/data" token create --role operator --name bench 2>/dev/null)"
"$lf" serve --listen 127.0.0.1:0 --data "$work/data" >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
pids+=("$serve_pid")
for _ in $(seq 1 100); do
  url="$(grep -o 'http://[0-9.:]*' "$work/serve.out" || true)"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "livefire serve did not start: $(cat "$work/serve.err")" >&2; exit 1; }

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$lf" sandbox http --listen "127.0.0.1:$port" >/dev/null 2>&1 &
web_pid=$!
pids+=("$web_pid")
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done

cat >"$work/drill.yaml" <<EOF
version: 1
title: sse bench
targets:
  web: { process: { pid: $web_pid } }
  api: { http: "http://127.0.0.1:$port" }
hypothesis:
  - name: health answers
    probe: { http: { url: "http://127.0.0.1:$port/health", timeout: 1s } }
    expect: { status: 200 }
    every: 500ms
    tolerate: 5s
timeline:
  - at: 0s
    for: ${dur}s
    load: { name: browse, rate: 200/s, timeout: 4s, requests: [ { name: health, url: "http://127.0.0.1:$port/health" } ] }
  - at: 10s
    for: 2s
    name: web paused
    fault: { process.pause: { target: web } }
EOF
curl -fs -X PUT -H "Authorization: Bearer $token" --data-binary @"$work/drill.yaml" \
  "$url/api/experiments/sse-bench" >/dev/null

results="$work/results"
: >"$results"
echo "livefire: $("$lf" --version 2>/dev/null || echo "$lf"); $(nproc) cores; $clients clients; ${dur}s runs"
for i in $(seq 1 "$rounds"); do
  if [ $((i % 2)) -eq 1 ]; then order="$clients 0"; else order="0 $clients"; fi
  for n in $order; do
    run="$(curl -fs -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      -d '{"experiment":"sse-bench"}' "$url/api/runs")"
    id="$(jq -r .id <<<"$run")"
    dir="$(jq -r .dir <<<"$run")"
    rpid="$(jq -r .pid <<<"$run")"
    python3 bench/serve-sse.py "$url" "$token" "$id" "$dir" "$serve_pid" "$rpid" "$n" \
      | jq -c --arg round "$i" '. + {round: ($round | tonumber)}' | tee -a "$results"
    # Until the server has recorded the end (the next start needs the target free).
    for _ in $(seq 1 300); do
      state="$(curl -fs -H "Authorization: Bearer $token" "$url/api/runs/$id" | jq -r .run.state)"
      [ "$state" = ended ] && break
      sleep 0.1
    done
  done
done
echo
jq -s -r --arg n "$clients" '
  def med(f): [.[] | f | select(. != null)] | sort
    | if length == 0 then "n/a" else "\(.[(length / 2 | floor)]) (\(.[0])-\(.[-1]))" end;
  (map(select(.clients == 0))) as $zero | (map(select(.clients == ($n | tonumber)))) as $many |
  "rounds: \($many | length) with \($n) clients, \($zero | length) with none",
  "console CPU s, no clients:           \($zero | med(.serve_cpu_s))",
  "console CPU s, \($n) clients:         \($many | med(.serve_cpu_s))",
  "run CPU s (its process and probes):  \($many + $zero | med(.run_cpu_s))",
  "records per run:                     \($many | med(.records))",
  "deliveries missing:                  \($many | med(.missing))",
  "delay p50 / p99 / max ms:            \($many | med(.delay_p50_ms)) / \($many | med(.delay_p99_ms)) / \($many | med(.delay_max_ms))",
  "deliveries over 1 s:                 \($many | med(.over_1s)) of \($many | med(.live_deliveries))",
  "load average (1 min) at round end:   \(med(.loadavg_1m))"
' "$results"
