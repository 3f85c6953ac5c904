#!/usr/bin/env bash
# bench/fuzz.sh: livefire fuzz vs Schemathesis on the planted-defect target (a
# benchmark, not a test).
#
# The target is the test tree's planted-defect service run as a process
# (`cargo run --release -p livefire-fuzz --example planted_target`), pinned to CPU 0; it
# counts every request it serves and notes when each planted defect first fired. Its
# auth dependency is down from 10 s to 20 s after start (the fail-open window). Each
# tool runs pinned to CPU 1, with the same spec, the same credentials and the same
# wall-clock budget, once against the defective target and once against the correct
# one (every defect off: anything reported there is a false alarm). Measured:
#   - requests/s as counted by the target;
#   - the tool's CPU time (user + sys, GNU time) per request;
#   - which planted defects each tool reported, and how many seconds in (livefire: the
#     finding's time; Schemathesis, which does not time its failures: when the target
#     first saw the defect fire, a lower bound for the report);
#   - false alarms: findings/failures reported against the correct target.
# Needs: python3-venv, time, util-linux (taskset), curl, jq. Schemathesis is installed in
# a venv from PyPI on first use.
# Usage: bench/fuzz.sh            (DUR=60 PORT=18090 ST_VENV=/tmp/st-venv to change)
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-60}
PORT=${PORT:-18090}
SEED=${SEED:-1}
TARGET_CPU=${TARGET_CPU:-0}
TOOL_CPU=${TOOL_CPU:-1}
ST_VENV=${ST_VENV:-/tmp/st-venv}
BASE="http://127.0.0.1:${PORT}"

for tool in taskset /usr/bin/time curl jq python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install time util-linux curl jq python3-venv" >&2; exit 3; }
done
if [ ! -x "$ST_VENV/bin/st" ]; then
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install -q schemathesis
fi
ST_VERSION=$("$ST_VENV/bin/st" --version | awk '{print $NF}')

cargo build --release -q -p livefire
cargo build --release -q -p livefire-fuzz --example planted_target
LF=target/release/livefire
TARGET_BIN=target/release/examples/planted_target
SPEC=crates/livefire-fuzz/tests/it/target_openapi.yaml

work=$(mktemp -d)
TARGET_PID=
cleanup() { [ -n "$TARGET_PID" ] && kill "$TARGET_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start_target() { # mode
  local mode=$1
  taskset -c "$TARGET_CPU" "$TARGET_BIN" "$PORT" "$mode" --outage 10 20 2>"$work/target.err" &
  TARGET_PID=$!
  for _ in $(seq 100); do curl -fsS "$BASE/__stats" >/dev/null 2>&1 && return; sleep 0.05; done
  echo "the target did not start" >&2; exit 3
}

stop_target() { # file for stats
  curl -fsS "$BASE/__stats" > "$1"
  kill "$TARGET_PID"; wait "$TARGET_PID" 2>/dev/null || true; TARGET_PID=
}

run_tool() { # tool mode
  local tool=$1 mode=$2 out="$work/$1-$2"
  mkdir -p "$out"
  start_target "$mode"
  case $tool in
    livefire)
      CMD=("$LF" fuzz "$SPEC" --base-url "$BASE" -d "${DUR}s" --seed "$SEED"
           --header "Authorization: Bearer alice-token" --second-header "Authorization: Bearer bob-token"
           --fail-on none --out "$out/runs")
      ;;
    schemathesis)
      CMD=("$ST_VENV/bin/st" run "$SPEC" --url "$BASE" --checks all --max-time "$DUR" --seed "$SEED"
           -H "Authorization: Bearer alice-token" --no-color --report-dir "$out/st-report"
           --generation-database none)
      ;;
  esac
  echo "$ ${CMD[*]}" > "$out/command"
  /usr/bin/time -f "%U %S" -o "$out/cpu" taskset -c "$TOOL_CPU" "${CMD[@]}" > "$out/stdout" 2> "$out/stderr" || true
  stop_target "$out/stats.json"
}

for mode in defective correct; do
  for tool in livefire schemathesis; do
    echo "running $tool against the $mode target for ${DUR}s..." >&2
    run_tool "$tool" "$mode"
  done
done

echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2
python3 - "$work" "$DUR" "$ST_VERSION" <<'PY'
import json, os, re, sys
work, dur, st_version = sys.argv[1], float(sys.argv[2]), sys.argv[3]

# Planted defect -> (operation, what counts as reporting it).
DEFECTS = [
    ("server_error",       "GET /items",             {"server_error"},       ["Server error"]),
    ("status_conformance", "DELETE /items/{itemId}", {"status_conformance"}, ["Undocumented status code", "Undocumented HTTP status code"]),
    ("content_type",       "GET /version",           {"content_type"},       ["Undocumented Content-Type"]),
    ("response_schema",    "GET /items/{itemId}",    {"response_schema"},    ["Response violates schema"]),
    ("negative_accepted",  "POST /items",            {"negative_accepted"},  ["API accepted schema-violating request"]),
    ("auth_enforced",      "GET /admin/users",       {"auth_enforced"},      ["API accepts requests without authentication", "API accepts invalid authentication", "Authentication declared but not enforced"]),
    ("injection",          "GET /search",            {"injection"},          ["Server error"]),
    ("leak",               "GET /reports/{name}",    {"leak"},               []),
    ("time_injection",     "GET /reports/{name}",    {"injection"},          []),
    ("crash",              "POST /parse",            {"crash"},              ["Network Error", "Connection", "Server error"]),
    ("slow",               "GET /export",            {"slow"},               ["Response time limit exceeded"]),
    ("object_access",      "GET /notes/{noteId}",    {"object_access"},      ["Authorization bypass", "object-level"]),
    ("auth_fail_open",     "GET /account",           {"auth_enforced"},      ["API accepts requests without authentication", "API accepts invalid authentication", "Authentication declared but not enforced"]),
]

def load(tool, mode):
    d = os.path.join(work, f"{tool}-{mode}")
    stats = json.load(open(os.path.join(d, "stats.json")))
    user, sys_ = map(float, open(os.path.join(d, "cpu")).read().split()[-2:])
    out = open(os.path.join(d, "stdout"), errors="replace").read()
    cmd = open(os.path.join(d, "command")).read().strip()
    return d, stats, user + sys_, out, cmd

def livefire_findings(d):
    runs = os.path.join(d, "runs")
    found = []
    for r in os.listdir(runs):
        found += json.load(open(os.path.join(runs, r, "findings.json")))["findings"]
    return found

def st_failures(out):
    """(operation, check title) pairs from Schemathesis' FAILURES section."""
    pairs, op, inside = [], None, False
    for line in out.splitlines():
        s = line.strip()
        if re.match(r"^=+ FAILURES =+$", s):
            inside = True
            continue
        if re.match(r"^=+ [A-Z]+ =+$", s):
            inside = False
        if not inside:
            continue
        m = re.match(r"^_+ (GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|TRACE) (\S+) _+$", s)
        if m:
            op = f"{m.group(1)} {m.group(2)}"
            continue
        m = re.match(r"^- (?:ST\d+ )?(.+)$", s)
        if op and m:
            pairs.append((op, m.group(1).strip()))
    return pairs

rows = []
for tool in ("livefire", "schemathesis"):
    d, stats, cpu, out, cmd = load(tool, "defective")
    req = stats["requests"]
    fired = stats["fired_s"]
    found = {}
    if tool == "livefire":
        for f in livefire_findings(d):
            for name, op, rules, _ in DEFECTS:
                if f["operation"] == op and f["rule"] in rules:
                    t = f["at_ms"] / 1000
                    found[name] = min(found.get(name, t), t)
    else:
        for op, title in st_failures(out):
            for name, dop, _, titles in DEFECTS:
                if op == dop and any(t.lower() in title.lower() for t in titles):
                    key = "auth_fail_open" if name == "auth_fail_open" else name
                    found[key] = fired.get(key, float("nan"))
    dc, stats_c, cpu_c, out_c, _ = load(tool, "correct")
    if tool == "livefire":
        false = [f"{f['rule']} {f['operation']} ({f['signature']})" for f in livefire_findings(dc)]
    else:
        false = sorted(set(f"{t} {o}" for o, t in st_failures(out_c)))
    rows.append((tool, req, cpu, found, false, cmd, stats_c["requests"], cpu_c))

print(f"\nlivefire fuzz vs Schemathesis {st_version}, {dur:.0f} s each, planted-defect target on one core\n")
print("| tool | requests/s (target-counted) | tool CPU per request | defects found (of %d) | false alarms (correct target) |" % len(DEFECTS))
print("| --- | ---: | ---: | ---: | ---: |")
for tool, req, cpu, found, false, cmd, req_c, cpu_c in rows:
    print(f"| {tool} | {req / dur:,.0f} | {cpu / max(req, 1) * 1000:.3f} ms | {len(found)} | {len(false)} |")
print("\n| planted defect | operation | " + " | ".join(r[0] + " (s in)" for r in rows) + " |")
print("| --- | --- | " + " | ".join("---:" for _ in rows) + " |")
for name, op, _, _ in DEFECTS:
    cells = []
    for r in rows:
        t = r[3].get(name)
        cells.append("-" if t is None else f"{t:.2f}")
    print(f"| {name} | `{op}` | " + " | ".join(cells) + " |")
for tool, req, cpu, found, false, cmd, req_c, cpu_c in rows:
    print(f"\n{tool} false alarms against the correct target ({len(false)}):")
    for f in false[:20]:
        print(f"  - {f}")
    print(f"{tool} command: {cmd}")
PY
