#!/usr/bin/env python3
"""One round of bench/serve.sh: N Server-Sent-Events clients on one live run of
`livefire serve`, and what it cost.

    serve-sse.py URL TOKEN RUN_ID RUN_DIR SERVE_PID RUN_PID CLIENTS

- Each client is an asyncio connection sending `GET /api/runs/ID/events` (HTTP/1.0, so
  the stream is the body as is, no chunking), reading `event: record` messages (each
  carries its journal `seq`) until `event: end`.
- A tail of the run's journal.jsonl, polled every 5 ms, stamps when each line was
  written; a client's delay for a record is its arrival minus that stamp. Records
  written before the client's stream opened (the backlog it gets first) are not
  counted as delays.
- CPU: user+system ticks of the server process and of the run process (with its reaped
  children: the probes' commands) from /proc, sampled every 100 ms from before the
  clients connect until the last client saw `end`.

Prints one JSON line.
"""

import asyncio
import json
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, children=False):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is state (field 3); utime is field 14, stime 15, cutime 16, cstime 17.
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


async def client(host, port, path, token, out):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {path} HTTP/1.0\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass
    out["opened"] = time.monotonic()
    out["status"] = status.decode().strip()
    out["seen"] = {}
    event, data = None, None
    while True:
        line = await reader.readline()
        if not line:
            break
        now = time.monotonic()
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "":
            if event == "end":
                out["ended"] = True
                break
            if event == "record" and data:
                try:
                    seq = json.loads(data)["seq"]
                except (ValueError, KeyError):
                    seq = None
                if seq is not None and seq not in out["seen"]:
                    out["seen"][seq] = now
            event, data = None, None
    writer.close()


async def tail(path, written, stop):
    offset, partial = 0, b""
    while not stop.is_set():
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except OSError:
            chunk = b""
        if chunk:
            now = time.monotonic()
            offset += len(chunk)
            partial += chunk
            *lines, partial = partial.split(b"\n")
            for line in lines:
                try:
                    seq = json.loads(line)["seq"]
                except (ValueError, KeyError):
                    continue
                written.setdefault(seq, now)
        await asyncio.sleep(0.005)


async def sample(pids, peaks, stop):
    while not stop.is_set():
        for name, (pid, children) in pids.items():
            v = cpu_seconds(pid, children)
            if v is not None:
                peaks[name] = v
        await asyncio.sleep(0.1)


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def main():
    url, token, run_id, run_dir, serve_pid, run_pid, n = sys.argv[1:8]
    n = int(n)
    hostport = url.split("//", 1)[1].rstrip("/")
    host, port = hostport.rsplit(":", 1)
    pids = {"serve": (int(serve_pid), False), "run": (int(run_pid), True)}
    start = {k: cpu_seconds(p, c) or 0.0 for k, (p, c) in pids.items()}
    peaks = dict(start)
    written = {}
    stop = asyncio.Event()
    t0 = time.monotonic()
    background = [
        asyncio.create_task(tail(os.path.join(run_dir, "journal.jsonl"), written, stop)),
        asyncio.create_task(sample(pids, peaks, stop)),
    ]
    outs = [{} for _ in range(n)]
    path = f"/api/runs/{run_id}/events"
    if n:
        await asyncio.gather(*(client(host, port, path, token, o) for o in outs))
    else:
        # No clients: wait for the run to end (its process to go away).
        while cpu_seconds(int(run_pid)) is not None:
            await asyncio.sleep(0.1)
    # The journal's last lines (audit) are written after the run's end; let the tail see them.
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*background)
    elapsed = time.monotonic() - t0
    delays, missing, late = [], 0, 0
    per_record_worst = {}
    for o in outs:
        seen = o.get("seen", {})
        opened = o.get("opened", float("inf"))
        for seq, at in written.items():
            if seq not in seen:
                missing += 1
                continue
            if at < opened:
                continue
            d = seen[seq] - at
            delays.append(d)
            per_record_worst[seq] = max(per_record_worst.get(seq, 0.0), d)
            if d > 1.0:
                late += 1
    result = {
        "clients": n,
        "clients_ended": sum(1 for o in outs if o.get("ended")),
        "records": len(written),
        "live_deliveries": len(delays),
        "missing": missing,
        "over_1s": late,
        "delay_p50_ms": round(pct(delays, 0.5) * 1000, 1) if delays else None,
        "delay_p99_ms": round(pct(delays, 0.99) * 1000, 1) if delays else None,
        "delay_max_ms": round(max(delays) * 1000, 1) if delays else None,
        "records_all_within_1s": sum(1 for v in per_record_worst.values() if v <= 1.0),
        "records_live": len(per_record_worst),
        "serve_cpu_s": round(peaks["serve"] - start["serve"], 3),
        "run_cpu_s": round(peaks["run"] - start["run"], 3),
        "elapsed_s": round(elapsed, 2),
        "loadavg_1m": os.getloadavg()[0],
    }
    print(json.dumps(result))


asyncio.run(main())
