#!/usr/bin/env bash
# Report generation for a one-hour run at 10k requests a second: writes a synthetic
# journal (3600 one-second windows per series, two probes, a fault), then times
# `livefire report` on it and prints the sizes. Target: a few seconds, a few MB.
#   bench/report.sh [SECONDS] [RPS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-3600}"
rps="${2:-10000}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cargo build -q --release -p livefire
cargo build -q --release -p livefire-report --example synthetic_run
./target/release/examples/synthetic_run "$dir" "$seconds" "$rps"
echo "journal.jsonl: $(du -h "$dir/journal.jsonl" | cut -f1) ($seconds s at $rps/s)"
start=$(date +%s.%N)
./target/release/livefire report "$dir" >/dev/null
end=$(date +%s.%N)
echo "livefire report: $(echo "$end - $start" | bc) s"
for f in summary.json report.html junit.xml; do
  echo "$f: $(du -h "$dir/$f" | cut -f1)"
done
