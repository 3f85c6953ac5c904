#!/usr/bin/env bash
# bench/fuzz.sh: livefire fuzz vs Schemathesis on APIs this project did not write
# (a benchmark, not a test).
#
# Targets, each started fresh for every run, pinned to CPU $TARGET_CPU:
#   httpbin  PyPI `httpbin` under gunicorn (2 gthread workers x 16 threads), fuzzed from
#            the Swagger 2.0 document it serves at /spec.json; requests counted from
#            gunicorn's access log.
#   prefect  PyPI `prefect` (pinned below): the Prefect orchestration server's REST API
#            (FastAPI, SQLite), fuzzed from the OpenAPI 3.1 document it serves at
#            /api/openapi.json; API only (no UI, no background services), a fresh copy of
#            a migrated database per run; requests counted from uvicorn's access log.
#   ours     livefire's own planted-defect target (crates/livefire-fuzz/tests/it/target.rs,
#            the example `planted_target`): written by us, with the rules that find its
#            defects, so it is reported apart and labelled as ours; requests counted by
#            the target (/__stats). Its auth dependency is down from 10 s to 20 s.
# Tools, pinned to CPU $TOOL_CPU, with the same document, base URL, time budget ($DUR s),
# concurrency ($CONC: livefire's --concurrency, Schemathesis' --workers), seed and auth
# (none on httpbin and prefect; "Authorization: Bearer alice-token" on ours, where
# livefire also gets a second identity, which Schemathesis' CLI has no flag for):
#   livefire fuzz (release build);
#   Schemathesis (PyPI, pinned below) with the options its docs give for finding the most
#   and for benchmarking: --checks all, all four phases, --continue-on-failure, --max-time
#   equal to the budget, --no-shrink, --suppress-health-check all, plus a 1 s
#   --max-response-time (livefire's `slow` rule needs no threshold) and an NDJSON report
#   (its only record of when each failure happened).
# Each round runs every (target, tool) pair once; the order of targets and of tools
# rotates from round to round. Each run records the load average before and after (the
# machine is shared), the tool's and the target's CPU time (GNU time), the tool's wall
# time and the target's request count. bench/fuzz-analyze.py then deduplicates both
# tools' findings the same way, by (operation, rule), classifies each pair with
# bench/fuzz-classification.tsv (real defect or false alarm, decided by hand once) and
# prints the tables of docs/PERFORMANCE.md with min-median-max over the rounds.
#
# Needs: python3 with venv, GNU time, util-linux (taskset, setsid), curl, cargo; PyPI
# for the venvs it makes under target/ (httpbin-venv, as .ci/run makes it; prefect-venv;
# schemathesis-venv).
# Usage: bench/fuzz.sh                      (ROUNDS=3 DUR=60 CONC=16 SEED=1 OUT=DIR
#                                            TARGETS="httpbin prefect ours")
#        bench/fuzz.sh --analyze DIR        (tables again from a finished run folder)
# Exit: 0 all runs done and every finding classified; 1 a run failed (its row says
# FAILED) or a finding is not classified yet (listed, ready to paste into the table);
# 3 a prerequisite is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--analyze" ]; then
  exec python3 bench/fuzz-analyze.py "${2:?usage: bench/fuzz.sh --analyze DIR}"
fi

ROUNDS=${ROUNDS:-3}
DUR=${DUR:-60}
CONC=${CONC:-16}
SEED=${SEED:-1}
TARGETS=${TARGETS:-"httpbin prefect ours"}
TARGET_CPU=${TARGET_CPU:-0}
TOOL_CPU=${TOOL_CPU:-1}
PORT=${PORT:-18390}
ST_VERSION=4.32.5
PREFECT_VERSION=3.9.1
OUT=${OUT:-target/fuzz-bench/$(date -u +%Y%m%dT%H%M%SZ)}
BASE_HOST="http://127.0.0.1:${PORT}"

missing() { echo "bench/fuzz.sh: missing $1: $2" >&2; exit 3; }
command -v python3 >/dev/null || missing python3 "apt-get install python3 python3-venv"
python3 -c 'import venv, ensurepip' 2>/dev/null || missing "python3's venv" "apt-get install python3-venv"
[ -x /usr/bin/time ] || missing "GNU time (/usr/bin/time)" "apt-get install time"
command -v taskset >/dev/null || missing taskset "apt-get install util-linux"
command -v setsid >/dev/null || missing setsid "apt-get install util-linux"
command -v curl >/dev/null || missing curl "apt-get install curl"
command -v cargo >/dev/null || missing cargo "install a Rust toolchain with rustup"
for t in $TARGETS; do
  case $t in httpbin | prefect | ours) ;; *) echo "bench/fuzz.sh: unknown target $t: use httpbin, prefect, ours" >&2; exit 3 ;; esac
done

venv() { # DIR CHECK PACKAGE...: a venv under target/ whose python passes CHECK
  local dir=$1 check=$2
  shift 2
  if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$check" 2>/dev/null; then return; fi
  echo "installing $* into $dir from PyPI..." >&2
  { python3 -m venv "$dir" && "$dir/bin/pip" install -q "$@"; } >&2 ||
    missing "$* in $dir" "check that PyPI answers, then: python3 -m venv $dir && $dir/bin/pip install $*"
  "$dir/bin/python" -c "$check" || missing "$* in $dir" "the install did not give what was asked: rm -rf $dir and run again"
}
venv target/schemathesis-venv "import importlib.metadata as m; assert m.version('schemathesis') == '$ST_VERSION'" "schemathesis==$ST_VERSION"
case " $TARGETS " in *" httpbin "*) venv target/httpbin-venv 'import httpbin, flasgger, gunicorn' httpbin gunicorn flasgger ;; esac
case " $TARGETS " in *" prefect "*) venv target/prefect-venv "import importlib.metadata as m; assert m.version('prefect') == '$PREFECT_VERSION'" "prefect==$PREFECT_VERSION" ;; esac

# LIVEFIRE=PATH / PLANTED=PATH use binaries built elsewhere (nothing is built for them).
[ -n "${LIVEFIRE:-}" ] || nice cargo build --release -q -p livefire
case " $TARGETS " in *" ours "*) [ -n "${PLANTED:-}" ] || nice cargo build --release -q -p livefire-fuzz --example planted_target ;; esac
LF=$(realpath "${LIVEFIRE:-target/release/livefire}")
PLANTED=$(realpath "${PLANTED:-target/release/examples/planted_target}")
ST=$PWD/target/schemathesis-venv/bin/st
mkdir -p "$OUT/runs"
OUT=$(cd "$OUT" && pwd)

# The target of the current run: the process group that setsid gave GNU time.
TARGET_GROUP=
stop_target() {
  [ -n "$TARGET_GROUP" ] || return 0
  # INT to the server under GNU time (gunicorn's quick shutdown; uvicorn's and the
  # planted target's only one), so time reports its CPU; then the whole group.
  local server
  server=$(pgrep -P "$TARGET_GROUP" | head -1 || true)
  [ -n "$server" ] && kill -INT "$server" 2>/dev/null || true
  for _ in $(seq 200); do kill -0 "$TARGET_GROUP" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$TARGET_GROUP" 2>/dev/null || true
  wait "$TARGET_GROUP" 2>/dev/null || true
  TARGET_GROUP=
}
trap stop_target EXIT

wait_for() { # URL FILE SECONDS: GET URL into FILE until it answers 2xx
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt $deadline ]; do
    kill -0 "$TARGET_GROUP" 2>/dev/null || return 1
    curl -fsS -o "$2" --max-time 60 "$1" 2>/dev/null && return 0
    sleep 0.5
  done
  return 1
}

# A migrated Prefect database, made once; each run starts from a copy of it, so every
# run meets the same empty server without paying for the migrations.
PREFECT_TEMPLATE=$OUT/prefect-template
prefect_cmd() { # HOME: the server's command line, into PREFECT_CMD
  PREFECT_CMD=(env PREFECT_HOME="$1" PREFECT_SERVER_LOGGING_LEVEL=INFO PREFECT_SERVER_ANALYTICS_ENABLED=false
    PREFECT_SERVER_UI_ENABLED=false PREFECT__SERVER_FINAL=1 PREFECT__SERVER_WEBSERVER_ONLY=1
    target/prefect-venv/bin/python -m uvicorn --factory prefect.server.api.server:create_app
    --host 127.0.0.1 --port "$PORT" --access-log --log-level info)
}

start_target() { # TARGET RUNDIR: starts it, sets SPEC, BASE and AUTH_*; fails if it does not answer
  local target=$1 dir=$2
  AUTH_LF=() AUTH_ST=()
  case $target in
    httpbin)
      setsid /usr/bin/time -f "%e %U %S" -o "$dir/target-cpu" taskset -c "$TARGET_CPU" \
        target/httpbin-venv/bin/gunicorn -w 2 -k gthread --threads 16 -b "127.0.0.1:$PORT" \
        --access-logfile "$dir/target-access.log" httpbin:app >"$dir/target.log" 2>&1 &
      TARGET_GROUP=$!
      SPEC="$BASE_HOST/spec.json" BASE=$BASE_HOST
      wait_for "$SPEC" "$dir/spec.json" 60
      ;;
    prefect)
      if [ ! -f "$PREFECT_TEMPLATE/prefect.db" ]; then
        echo "  migrating a fresh Prefect database (once)..." >&2
        mkdir -p "$PREFECT_TEMPLATE"
        prefect_cmd "$PREFECT_TEMPLATE"
        setsid /usr/bin/time -o /dev/null "${PREFECT_CMD[@]}" >"$OUT/prefect-template.log" 2>&1 &
        TARGET_GROUP=$!
        wait_for "$BASE_HOST/api/health" /dev/null 300 || { stop_target; return 1; }
        stop_target
      fi
      mkdir -p "$dir/prefect-home"
      cp "$PREFECT_TEMPLATE"/prefect.db* "$dir/prefect-home/"
      prefect_cmd "$dir/prefect-home"
      setsid /usr/bin/time -f "%e %U %S" -o "$dir/target-cpu" taskset -c "$TARGET_CPU" \
        "${PREFECT_CMD[@]}" >"$dir/target.log" 2>&1 &
      TARGET_GROUP=$!
      SPEC="$BASE_HOST/api/openapi.json" BASE="$BASE_HOST/api"
      # The first request for the document builds it (seconds): done here, not on a tool's clock.
      wait_for "$SPEC" "$dir/spec.json" 180
      ;;
    ours)
      setsid /usr/bin/time -f "%e %U %S" -o "$dir/target-cpu" taskset -c "$TARGET_CPU" \
        "$PLANTED" "$PORT" --outage 10 20 >"$dir/target.log" 2>&1 &
      TARGET_GROUP=$!
      SPEC=$PWD/crates/livefire-fuzz/tests/it/target_openapi.yaml BASE=$BASE_HOST
      AUTH_LF=(--header "Authorization: Bearer alice-token" --second-header "Authorization: Bearer bob-token")
      AUTH_ST=(-H "Authorization: Bearer alice-token")
      wait_for "$BASE_HOST/__stats" /dev/null 30
      ;;
  esac
}

target_requests() { # TARGET RUNDIR: requests the target saw, into RUNDIR/requests
  case $1 in
    httpbin) wc -l <"$2/target-access.log" >"$2/requests" ;;
    prefect) grep -c 'uvicorn.access' "$2/target.log" >"$2/requests" || true ;;
    ours) curl -fsS "$BASE_HOST/__stats" >"$2/stats.json" &&
      python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$2/stats.json" >"$2/requests" ;;
  esac
}

run_one() { # ROUND TARGET TOOL
  local round=$1 target=$2 tool=$3 dir="$OUT/runs/$1-$2-$3"
  mkdir -p "$dir"
  echo "round $round: $tool on $target for ${DUR}s (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
  cut -d' ' -f1-3 /proc/loadavg >"$dir/loadavg-before"
  if ! start_target "$target" "$dir"; then
    echo "$target did not start: see $dir/target.log" >"$dir/failed"
    echo "  FAILED: $(cat "$dir/failed")" >&2
    stop_target
    return
  fi
  case $tool in
    livefire)
      CMD=("$LF" fuzz "$SPEC" --base-url "$BASE" -d "${DUR}s" --seed "$SEED" --concurrency "$CONC"
        "${AUTH_LF[@]}" --fail-on none --out "$dir/lf")
      ;;
    schemathesis)
      CMD=("$ST" run "$SPEC" --url "$BASE" --checks all --phases examples,coverage,fuzzing,stateful
        --continue-on-failure --max-time "$DUR" --workers "$CONC" --no-shrink
        --suppress-health-check all --max-response-time 1 --seed "$SEED" "${AUTH_ST[@]}"
        --no-color --generation-database none --report ndjson,json --report-dir "$dir/st")
      ;;
  esac
  printf '%q ' "${CMD[@]}" >"$dir/command"
  local rc=0
  # From the run folder: Schemathesis keeps state in ./.schemathesis.
  (cd "$dir" && /usr/bin/time -f "%e %U %S" -o "$dir/tool-cpu" taskset -c "$TOOL_CPU" "${CMD[@]}" \
    >"$dir/tool.out" 2>"$dir/tool.err") || rc=$?
  echo "$rc" >"$dir/tool-exit"
  target_requests "$target" "$dir" || echo "the target's request count could not be read" >"$dir/failed"
  stop_target
  cut -d' ' -f1-3 /proc/loadavg >"$dir/loadavg-after"
  # livefire: 0 or 1 (findings); Schemathesis: 0 or 1 (failures). Anything else is a failed run.
  if [ "$rc" -gt 1 ]; then
    echo "$tool exited $rc: see $dir/tool.err" >"$dir/failed"
    echo "  FAILED: $(cat "$dir/failed")" >&2
  fi
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' (crates changed)')"
  echo "cpus: $(nproc); target on CPU $TARGET_CPU, tools on CPU $TOOL_CPU"
  echo "rounds: $ROUNDS; budget: ${DUR}s; concurrency: $CONC; seed: $SEED"
  echo "schemathesis: $ST_VERSION; prefect: $PREFECT_VERSION"
  echo "httpbin: $(target/httpbin-venv/bin/python -c 'import importlib.metadata as m; print(m.version("httpbin"), "gunicorn", m.version("gunicorn"))' 2>/dev/null || echo -)"
} >"$OUT/meta"

read -r -a targets <<<"$TARGETS"
tools=(livefire schemathesis)
for ((r = 1; r <= ROUNDS; r++)); do
  n=${#targets[@]}
  for ((i = 0; i < n; i++)); do
    target=${targets[$(((i + r - 1) % n))]}
    if (((r + i) % 2)); then order=("${tools[@]}"); else order=("${tools[1]}" "${tools[0]}"); fi
    for tool in "${order[@]}"; do run_one "$r" "$target" "$tool"; done
  done
done

python3 bench/fuzz-analyze.py "$OUT"
