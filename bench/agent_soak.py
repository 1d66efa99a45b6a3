"""Days of an agent's heartbeats in minutes: does its memory stay bounded?

    python -m bench.agent_soak                 # 2 days of 1 s heartbeats (172,800 beats)
    python -m bench.agent_soak --days 0.5      # 12 hours (43,200 beats)

One real `python -m agent.main` (Node h1, as bench/agent.py) against three real masters on
loopback, with its heartbeat interval cut to --interval (default 2 ms) so that it sends a
day of 1 s heartbeats (86,400) in a few minutes. Every heartbeat takes the same path as at
1 s: psutil usage, a JSON body, a keep-alive request through agent.masters.Masters,
the answer parsed. The agent logs a summary every 3,600 beats (one "hour"); at each, the
agent's RSS and USS are sampled. Printed: RSS per "hour", the growth per "day" after
the first "hour" (least squares, and end - first hour), the RSS that growth would give
after 30 days, next to the agent target (<= 40 MB RSS), and the beats refused or
unanswered. What it does not cover: time-driven state (there is none in the agent: no
caches or timers keyed by time) and a master failing over mid-run (bench/failover.py).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import psutil

from agent.main import SUMMARY_EVERY
from bench._common import (
    Http,
    Masters,
    interrupt_on_sigterm,
    machine_header,
    mark,
    process_cpu_seconds,
    running_masters,
)
from bench.agent import MB, NODE, READY_TIMEOUT, TARGET_RSS_MB, node_ready, start_agent, stop_process

BEATS_PER_DAY = 86_400  # at the agent's default 1 s interval
TARGET_GROWTH_MB_PER_DAY = 0.5
SUMMARY = re.compile(r"(\d+) heartbeats sent: (\d+) refused, (\d+) unanswered")


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (nan if fewer than 2 distinct x)."""
    n = len(points)
    if n < 2:
        return float("nan")
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return float("nan") if var == 0 else sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def soak(masters: Masters, root: Path, beats: int, interval: float, max_seconds: float) -> dict:
    leader = masters.leader_index()
    admin = Http(masters.url(leader), timeout=5)
    agent, log_file = start_agent(masters, root, interval)
    rows: list[dict] = []
    try:
        info = psutil.Process(agent.pid)
        deadline = time.monotonic() + READY_TIMEOUT
        while not node_ready(admin):
            if agent.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node {NODE} not Ready; agent log: "
                                   f"{log_file.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        admin.close()
        began, cpu0 = time.monotonic(), process_cpu_seconds(agent.pid)
        print(f"  {'hour':>5} {'beats':>8} {'RSS MB':>8} {'USS MB':>8} {'beats/s':>8} {'refused':>8} "
              f"{'unanswered':>10}", flush=True)
        offset = 0
        end = began + max_seconds
        while time.monotonic() < end and (not rows or rows[-1]["beats"] < beats):
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited ({agent.returncode}) during the run")
            with open(log_file, "rb") as log:
                log.seek(offset)
                chunk = log.read()
            complete = chunk.rfind(b"\n") + 1
            offset += complete
            for line in chunk[:complete].decode(errors="replace").splitlines():
                found = SUMMARY.search(line)
                if found is None:
                    continue
                memory = info.memory_full_info()
                row = {"beats": int(found[1]), "refused": int(found[2]), "unanswered": int(found[3]),
                       "rss": memory.rss / MB, "uss": memory.uss / MB, "at": time.monotonic() - began}
                rows.append(row)
                rate = row["beats"] / row["at"] if row["at"] > 0 else float("nan")
                print(f"  {row['beats'] // SUMMARY_EVERY:>5} {row['beats']:>8} {row['rss']:>8.2f} "
                      f"{row['uss']:>8.2f} {rate:>8.0f} {row['refused']:>8} {row['unanswered']:>10}",
                      flush=True)
            time.sleep(0.2)
        cpu = process_cpu_seconds(agent.pid) - cpu0
    finally:
        stop_process(agent)
        admin.close()
    return {"rows": rows, "cpu": cpu, "seconds": time.monotonic() - began}


def report(result: dict, beats: int) -> None:
    rows = result["rows"]
    if len(rows) < 3:
        print(f"\n  only {len(rows)} summaries in the time allowed: no figures (raise --max-minutes)")
        return
    after_warmup = rows[1:]  # the first "hour" holds imports, first connections, allocator warm-up
    per_day = slope([(r["beats"] / BEATS_PER_DAY, r["rss"]) for r in after_warmup])
    days = rows[-1]["beats"] / BEATS_PER_DAY
    first, last = rows[0], rows[-1]
    plain = (last["rss"] - first["rss"]) / max(1e-9, (last["beats"] - first["beats"]) / BEATS_PER_DAY)
    peak = max(r["rss"] for r in rows)
    month = rows[-1]["rss"] + max(0.0, per_day) * (30 - days)
    print(f"\n  {rows[-1]['beats']} heartbeats = {days:.2f} days at 1 s, sent in {result['seconds']:.0f} s")
    print(f"  {'':<48} {'measured':>10}  {'target':>10}")
    print(f"  {'RSS after the first hour, MB':<48} {rows[0]['rss']:>10.2f}")
    print(f"  {'RSS at the end, MB':<48} {rows[-1]['rss']:>10.2f}")
    print(f"  {'RSS max, MB':<48} {peak:>10.2f}  {f'<= {TARGET_RSS_MB:g}':>10}  "
          f"{mark(peak <= TARGET_RSS_MB)}")
    print(f"  {'RSS growth per day, MB (least squares)':<48} {per_day:>10.3f}  "
          f"{f'<= {TARGET_GROWTH_MB_PER_DAY:g}':>10}  {mark(per_day <= TARGET_GROWTH_MB_PER_DAY)}")
    print(f"  {'RSS growth per day, MB ((end - hour 1) / days)':<48} {plain:>10.3f}")
    print(f"  {'RSS after 30 days at that growth, MB':<48} {month:>10.1f}  {f'<= {TARGET_RSS_MB:g}':>10}  "
          f"{mark(month <= TARGET_RSS_MB)}")
    print(f"  {'USS after the first hour / at the end, MB':<48} "
          f"{first['uss']:>4.2f} / {last['uss']:.2f}")
    print(f"  {'agent CPU per heartbeat, ms':<48} {result['cpu'] / rows[-1]['beats'] * 1e3:>10.3f}")
    print(f"  {'refused / unanswered heartbeats':<48} {last['refused']:>4} / {last['unanswered']}")
    if rows[-1]["beats"] < beats:
        print(f"  NOTE: stopped at {rows[-1]['beats']} of {beats} beats (--max-minutes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=2.0, help="days of 1 s heartbeats (default 2)")
    parser.add_argument("--interval", type=float, default=0.002,
                        help="the agent's heartbeat interval during the soak (default 0.002 s)")
    parser.add_argument("--max-minutes", type=float, default=40.0, help="stop after this long (default 40)")
    args = parser.parse_args()
    if not 0.05 <= args.days <= 30 or not 0.0005 <= args.interval <= 1 or not 0 < args.max_minutes <= 600:
        parser.error("need 0.05 <= --days <= 30, 0.0005 <= --interval <= 1, 0 < --max-minutes <= 600")
    beats = round(args.days * BEATS_PER_DAY)
    interrupt_on_sigterm()
    print(f"berth bench/agent_soak.py: one agent, {beats} heartbeats ({args.days:g} days at 1 s) sent "
          f"every {args.interval:g} s, 3 masters on loopback")
    print(f"  {machine_header()}")
    root = Path(tempfile.mkdtemp(prefix="berth-bench-soak-"))
    try:
        with running_masters(root) as masters:
            report(soak(masters, root, beats, args.interval, args.max_minutes * 60), beats)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
        return 130
    print(f"  load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
