#!/usr/bin/env bash
# Report generation for a one-hour run at 10k requests a second: writes a synthetic
# journal (3600 one-second windows per series, two probes, a fault), then times what
# `livefire report` does on it (livefire_report::write_outputs, release build) and prints
# the sizes. Target: a few seconds, a few MB.
#   bench/report.sh [SECONDS] [RPS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-3600}"
rps="${2:-10000}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cargo build -q --release -p livefire-report --example synthetic_run
bin=./target/release/examples/synthetic_run
echo "synthetic run: $seconds s at $rps/s"
/usr/bin/time -f "peak memory: %M KB" "$bin" "$dir" "$seconds" "$rps" --report
for f in journal.jsonl summary.json report.html junit.xml; do
  echo "$f: $(du -h "$dir/$f" | cut -f1)"
done
