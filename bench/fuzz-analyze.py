#!/usr/bin/env python3
"""bench/fuzz-analyze.py RUN_DIR: the tables of bench/fuzz.sh from its run folder.

Both tools' findings are deduplicated the same way: one (operation, rule) pair per run,
at the time it was first seen (livefire: each instance of a grouped finding counts for
its own operation, except a slowdown of "the target", which is one pair; Schemathesis:
each failed check of its NDJSON event stream, timed by the failing request's timestamp
from the start of its engine, as livefire's times count from the start of its campaign).
Each pair is looked up in bench/fuzz-classification.tsv (target, tool, rule, operation
or *, verdict, defect, note): a `real` pair names the defect it shows, so two pairs
showing one defect (the same 500 on GET and POST, or livefire's `server_error` and
Schemathesis' `not_a_server_error`) count once. Pairs not in the table are listed in
the table's format, verdict `?`, and make the exit code 1.
"""

import csv
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = ("livefire", "schemathesis")
TARGET_LABEL = {
    "httpbin": "httpbin (PyPI, not ours)",
    "prefect": "Prefect server API (PyPI, not ours)",
    "ours": "planted-defect target (OURS: written with the rules that find it)",
}


def read(path, default=None):
    try:
        with open(path, errors="replace") as f:
            return f.read().strip()
    except OSError:
        return default


def load_classification():
    table = {}
    with open(os.path.join(HERE, "fuzz-classification.tsv")) as f:
        for row in csv.reader(f, delimiter="\t"):
            if not row or row[0].startswith("#") or row[0] == "target":
                continue
            row += [""] * (7 - len(row))
            target, tool, rule, op, verdict, defect, note = row[:7]
            if verdict not in ("real", "false"):
                sys.exit(f"fuzz-classification.tsv: verdict {verdict!r} for {row[:4]}: write real or false")
            if verdict == "real" and not defect:
                sys.exit(f"fuzz-classification.tsv: {row[:4]} is real: name the defect it shows")
            table[(target, tool, rule, op)] = (verdict, defect, note)
    return table


def classify(table, target, tool, rule, op):
    return table.get((target, tool, rule, op)) or table.get((target, tool, rule, "*"))


def livefire_pairs(d):
    pairs = {}
    root = os.path.join(d, "lf")
    for r in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        path = os.path.join(root, r, "findings.json")
        if not os.path.exists(path):
            continue
        for f in json.load(open(path))["findings"]:
            sightings = [(f["operation"], f["at_ms"], f["response"].get("status"), f["request"]["url"])]
            if f["operation"] != "the target":
                sightings += [(i["operation"], i["at_ms"], i.get("status"), i["url"]) for i in f.get("instances", [])]
            for op, at_ms, status, url in sightings:
                key = (op, f["rule"])
                t = at_ms / 1000
                if key not in pairs or t < pairs[key][0]:
                    pairs[key] = (t, f"{status} {url}")
    return pairs


def schemathesis_pairs(d):
    pairs = {}
    root = os.path.join(d, "st")
    files = [os.path.join(root, n) for n in os.listdir(root) if n.endswith(".ndjson")] if os.path.isdir(root) else []
    for path in files:
        start = None
        for line in open(path):
            e = json.loads(line)
            if "EngineStarted" in e:
                start = e["EngineStarted"]["timestamp"]
            s = e.get("ScenarioFinished")
            if not s:
                continue
            rec = s.get("recorder") or {}
            for case_id, checks in (rec.get("checks") or {}).items():
                for c in checks:
                    if c.get("status") != "failure":
                        continue
                    failure = c["failure_info"]["failure"]
                    op = failure.get("operation") or rec.get("label")
                    inter = (rec.get("interactions") or {}).get(case_id) or {}
                    ts = inter.get("timestamp") or s["timestamp"]
                    t = ts - (start or ts)
                    resp = inter.get("response") or {}
                    example = f"{resp.get('status_code')} {(inter.get('request') or {}).get('uri')}"
                    key = (op, c["name"])
                    if key not in pairs or t < pairs[key][0]:
                        pairs[key] = (t, example)
    return pairs


def spread(values, fmt="{:,.0f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    lo, med, hi = min(values), statistics.median(values), max(values)
    if len(values) == 1 or lo == hi:
        return fmt.format(med)
    return f"{fmt.format(lo)}–{fmt.format(med)}–{fmt.format(hi)}"


def main():
    out = sys.argv[1]
    table = load_classification()
    runs_dir = os.path.join(out, "runs")
    runs = []
    for name in sorted(os.listdir(runs_dir)):
        rnd, target, tool = name.split("-", 2)
        d = os.path.join(runs_dir, name)
        if not os.path.exists(os.path.join(d, "loadavg-after")) and not os.path.exists(os.path.join(d, "failed")):
            continue  # still running
        run = {"round": int(rnd), "target": target, "tool": tool, "dir": d,
               "failed": read(os.path.join(d, "failed")),
               "load": (read(os.path.join(d, "loadavg-before"), "?").split()[0],
                        read(os.path.join(d, "loadavg-after"), "?").split()[0])}
        if not run["failed"]:
            wall, user, sys_ = map(float, read(os.path.join(d, "tool-cpu")).split()[-3:])
            run["wall"], run["cpu"] = wall, user + sys_
            tcpu = read(os.path.join(d, "target-cpu"), "")
            parts = tcpu.split()[-3:] if tcpu else []
            run["target_cpu"] = float(parts[1]) + float(parts[2]) if len(parts) == 3 else None
            run["requests"] = int(read(os.path.join(d, "requests"), "0") or 0)
            pairs = livefire_pairs(d) if tool == "livefire" else schemathesis_pairs(d)
            run["pairs"] = pairs
            real, false, unknown = {}, [], []
            for (op, rule), (t, example) in pairs.items():
                c = classify(table, target, tool, rule, op)
                if c is None:
                    unknown.append((op, rule, example))
                elif c[0] == "real":
                    real[c[1]] = min(real.get(c[1], t), t)
                else:
                    false.append((op, rule))
            run["real"], run["false"], run["unknown"] = real, false, unknown
        runs.append(run)

    meta = read(os.path.join(out, "meta"), "")
    print(f"\n{meta}\n")
    targets = []
    for r in runs:
        if r["target"] not in targets:
            targets.append(r["target"])
    targets.sort(key=lambda t: t == "ours")
    failed = [r for r in runs if r["failed"]]
    unknown = {}

    print("| target | tool | rounds | requests | requests/s | tool CPU per request | target CPU share | real defects | false alarms | load average |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for target in targets:
        for tool in TOOLS:
            rs = [r for r in runs if r["target"] == target and r["tool"] == tool]
            ok = [r for r in rs if not r["failed"]]
            for r in rs:
                if r["failed"]:
                    print(f"| {TARGET_LABEL.get(target, target)} | {tool} | round {r['round']} | FAILED: {r['failed']} | | | | | | |")
            if not ok:
                continue
            for r in ok:
                for op, rule, example in r["unknown"]:
                    unknown.setdefault((target, tool, rule, op), example)
            loads = [float(x) for r in rs for x in r["load"] if x != "?"]
            print(
                f"| {TARGET_LABEL.get(target, target)} | {tool} | {len(ok)} "
                f"| {spread([r['requests'] for r in ok])} "
                f"| {spread([r['requests'] / r['wall'] for r in ok])} "
                f"| {spread([r['cpu'] / max(r['requests'], 1) * 1000 for r in ok], '{:.3f}')} ms "
                f"| {spread([r['target_cpu'] / r['wall'] if r['target_cpu'] is not None else None for r in ok], '{:.0%}')} "
                f"| {spread([len(r['real']) for r in ok])} "
                f"| {spread([len(r['false']) for r in ok])} "
                f"| {min(loads):.1f}–{max(loads):.1f} |"
            )
    print("\n(min–median–max over the rounds; requests counted by the target; requests/s over the tool's own")
    print("wall time, which for Schemathesis runs past --max-time; target CPU share = target CPU time / tool wall time)")

    for target in targets:
        defects = {}
        for r in runs:
            if r["target"] == target and not r["failed"]:
                for name in r["real"]:
                    defects.setdefault(name, None)
        notes = {}
        for k, v in table.items():
            if k[0] == target and v[0] == "real" and v[2]:
                notes.setdefault(v[1], v[2])
        print(f"\n{TARGET_LABEL.get(target, target)}: real defects, rounds found in and seconds to first sighting (min–median–max)\n")
        print("| defect | " + " | ".join(TOOLS) + " |")
        print("| --- | " + " | ".join("---" for _ in TOOLS) + " |")
        for name in sorted(defects):
            cells = []
            for tool in TOOLS:
                ok = [r for r in runs if r["target"] == target and r["tool"] == tool and not r["failed"]]
                times = [r["real"][name] for r in ok if name in r["real"]]
                cells.append(f"{len(times)}/{len(ok)}, {spread(times, '{:.2f}')} s" if times else f"0/{len(ok)}")
            note = notes.get(name, "")
            print(f"| {name}{': ' + note if note else ''} | " + " | ".join(cells) + " |")
        for tool in TOOLS:
            ok = [r for r in runs if r["target"] == target and r["tool"] == tool and not r["failed"]]
            seen = {}
            for r in ok:
                for op, rule in r["false"]:
                    seen[(rule, op)] = seen.get((rule, op), 0) + 1
            if not seen:
                continue
            print(f"\n{tool}'s false alarms on {target} ((operation, rule) pairs, rounds seen in):")
            for (rule, op), n in sorted(seen.items()):
                c = classify(table, target, tool, rule, op)
                print(f"  - {rule} {op} ({n}/{len(ok)}): {c[2] if c else ''}")

    for r in runs:
        if not r["failed"] and r["round"] == 1:
            print(f"\ncommand ({r['target']}, {r['tool']}): {read(os.path.join(r['dir'], 'command'))}")

    if unknown:
        print("\nNot classified yet: decide each by hand, then add it to bench/fuzz-classification.tsv:")
        for (target, tool, rule, op), example in sorted(unknown.items()):
            print(f"{target}\t{tool}\t{rule}\t{op}\t?\t\t{example}")
    if failed or unknown:
        sys.exit(1)


if __name__ == "__main__":
    main()
