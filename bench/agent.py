"""Agent footprint at 1 s heartbeats: RSS and CPU of one real `python -m agent.main`.

    python -m bench.agent               # 180 s measured
    python -m bench.agent --quick       # 30 s measured
    python -m bench.agent --seconds 600 --interval 10

Three real masters on loopback (berth.lab.masters); one real agent process (Node h1, the agent
token of berth.lab.masters.LAB_TOKENS, --heartbeat-interval 1) registers with them. Once the node
is Ready the run is measured: every --interval seconds the agent's RSS (and USS, its
private memory) and CPU seconds are sampled with psutil. Printed: RSS at start, end and
max, RSS growth per minute (least-squares slope over the samples, and end - start), the
agent's CPU as % of one core over the run, next to the targets, and apart from them the RSS
and CPU of its children (the engine's short listings; runtime events are read from the engine's
events file or API socket, agent/runtime_events.py, with no child). (USS is lower when other
processes map the same libraries, so it varies with what else runs; RSS does not.) For scale, the RSS of
processes that only start the same interpreter and import some of what the agent imports
are printed beside it, and the masters' revision delta shows that no heartbeat became a
Raft write.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench._common import (
    ROOT,
    Http,
    Masters,
    interrupt_on_sigterm,
    machine_header,
    mark,
    process_cpu_seconds,
    running_masters,
)
from berth.lab.masters import LAB_TOKENS as TOKENS
from master.objects.conditions import ready_condition

TARGET_RSS_MB = 40.0
TARGET_CPU_PERCENT = 1.0
HEARTBEAT_INTERVAL = 1.0
NODE = TOKENS["agent"][0]
READY_TIMEOUT = 60.0
MB = 1024 * 1024

# What the interpreter costs before the agent does anything: each program prints "ready"
# once its imports are done, then sleeps (it is killed as soon as it has been measured).
BASELINES = [
    ("bare python (import time)", "import time"),
    ("python + requests, psutil", "import time, requests, psutil"),
    ("python + requests, psutil, click, yaml", "import time, requests, psutil, click, yaml"),
    ("python + import agent.main (all it imports)", "import time, agent.main"),
]


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def baseline_memory(code: str, timeout: float = 30.0) -> tuple[float, float]:
    """(RSS, USS) in MB of `python -c code` once its imports are done."""
    program = f"{code}; print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", program], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], timeout)
        if not readable or proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"baseline {code!r} did not start in {timeout:.0f}s")
        memory = psutil.Process(proc.pid).memory_full_info()
        return memory.rss / MB, memory.uss / MB
    finally:
        stop_process(proc)


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute (nan if < 2 samples)."""
    if len(samples) < 2:
        return float("nan")
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return float("nan")
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / var * 60


def node_ready(admin: Http) -> bool:
    try:
        code, node = admin.json("GET", f"/api/v1/nodes/{NODE}")
    except (OSError, ValueError):
        return False
    return code == 200 and ready_condition(node) is True


def revision(masters: Masters, index: int) -> int | None:
    status = masters.status(index)
    return None if status is None else status["revision"]


def start_agent(masters: Masters, root: Path, interval: float = HEARTBEAT_INTERVAL
                ) -> tuple[subprocess.Popen, Path]:
    token_file = root / "agent-token"
    token_file.write_text(TOKENS["agent"][1])
    token_file.chmod(0o600)
    log_file = root / "agent.log"
    urls = [arg for i in range(len(masters)) for arg in ("--master", masters.url(i))]
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.main", "--name", NODE, "--address", "10.250.0.11",
             "--no-pod-network", "--token-file", str(token_file), "--heartbeat-interval", str(interval),
             "--ca-file", str(masters.ca_file), *urls],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    return proc, log_file


def measure(masters: Masters, root: Path, seconds: float, interval: float, report_every: float) -> dict:
    leader = masters.leader_index()
    admin = Http(masters.url(leader), timeout=5)
    launched = time.monotonic()
    agent: subprocess.Popen | None = None
    log_file = root / "agent.log"
    try:
        agent, log_file = start_agent(masters, root)
        info = psutil.Process(agent.pid)
        deadline = launched + READY_TIMEOUT
        while not node_ready(admin):
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited ({agent.returncode}); log: "
                                   f"{log_file.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {NODE} not Ready {READY_TIMEOUT:.0f}s after the agent started")
            time.sleep(0.1)
        ready_after = time.monotonic() - launched
        startup_cpu = process_cpu_seconds(agent.pid)
        rev_start = revision(masters, leader)
        t0 = time.monotonic()
        cpu0 = startup_cpu
        children_cpu0 = children_cpu(info)
        rss: list[tuple[float, float]] = []
        uss: list[tuple[float, float]] = []
        print(f"  node {NODE} Ready {ready_after:.2f} s after the agent was launched (its CPU so far "
              f"{startup_cpu:.2f} s: imports + registration); measuring {seconds:.0f} s, "
              f"a sample every {interval:g} s")
        print(f"  {'t s':>6} {'RSS MB':>8} {'USS MB':>8} {'CPU % (since last row)':>23}")
        last_row = (0.0, cpu0)
        for k in range(int(seconds / interval) + 2):
            target = t0 + k * interval
            if target > t0 + seconds + 1e-6:
                break
            time.sleep(max(0.0, target - time.monotonic()))
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited ({agent.returncode}) during the run")
            memory = info.memory_full_info()
            now, cpu = time.monotonic() - t0, process_cpu_seconds(agent.pid)
            rss.append((now, memory.rss / MB))
            uss.append((now, memory.uss / MB))
            if k == 0 or now - last_row[0] >= report_every - interval / 2 or target + interval > t0 + seconds:
                span = now - last_row[0]
                share = f"{(cpu - last_row[1]) / span * 100:.2f}" if k > 0 and span > 0 else "-"
                print(f"  {now:>6.0f} {memory.rss / MB:>8.1f} {memory.uss / MB:>8.1f} {share:>23}",
                      flush=True)
                last_row = (now, cpu)
        elapsed = time.monotonic() - t0
        cpu_total = process_cpu_seconds(agent.pid) - cpu0
        children = {"cpu": children_cpu(info) - children_cpu0,
                    "rss": sum(c.memory_info().rss for c in info.children(recursive=True)) / MB,
                    "names": sorted({" ".join(c.cmdline()[:2]) for c in info.children(recursive=True)})}
        rev_end = revision(masters, leader)
        admin.close()  # idle for the whole run: the master may have closed it (channel_timeout)
        try:
            code, metrics = admin.json("GET", "/api/v1/metrics/nodes")
            age = metrics["items"][NODE]["secondsSinceHeartbeat"] if code == 200 else None
        except (OSError, ValueError, KeyError):
            age = None
    finally:
        if agent is not None:
            stop_process(agent)
        admin.close()
    lines = log_file.read_text(errors="replace").splitlines() if log_file.exists() else []
    warnings = [line for line in lines if " WARNING" in line or " ERROR" in line]
    return {"rss": rss, "uss": uss, "elapsed": elapsed, "cpu": cpu_total, "age": age,
            "writes": None if None in (rev_start, rev_end) else rev_end - rev_start,
            "warnings": warnings, "children": children}


def children_cpu(process: psutil.Process) -> float:
    """CPU seconds of the agent's live children (an engine listing under way, if any)."""
    total = 0.0
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def report(result: dict, baselines: list[tuple[str, float, float]]) -> None:
    rss = result["rss"]
    values = [v for _, v in rss]
    uss_values = [v for _, v in result["uss"]]
    minutes = result["elapsed"] / 60
    growth = slope_per_minute(rss)
    cpu_percent = result["cpu"] / result["elapsed"] * 100
    peak = max(values)
    print(f"\n  agent over {result['elapsed']:.0f} s ({len(rss)} samples)")
    print(f"  {'':<44} {'measured':>12}  {'target':>10}")
    print(f"  {'RSS at start, MB':<44} {values[0]:>12.1f}")
    print(f"  {'RSS at end, MB':<44} {values[-1]:>12.1f}")
    print(f"  {'RSS max, MB':<44} {peak:>12.1f}  {f'<= {TARGET_RSS_MB:g}':>10}  "
          f"{mark(peak <= TARGET_RSS_MB)}")
    print(f"  {'USS (private) start / end, MB':<44} {f'{uss_values[0]:.1f} / {uss_values[-1]:.1f}':>12}")
    print(f"  {'RSS growth, MB/min (least squares)':<44} {growth:>12.3f}")
    print(f"  {'RSS growth, MB/min ((end - start) / time)':<44} {(values[-1] - values[0]) / minutes:>12.3f}")
    print(f"  {'CPU, % of one core (average)':<44} {cpu_percent:>12.2f}  "
          f"{f'<= {TARGET_CPU_PERCENT:g}':>10}  {mark(cpu_percent <= TARGET_CPU_PERCENT)}")
    print(f"  {'CPU per heartbeat (approx.)':<44} "
          f"{result['cpu'] / max(1.0, result['elapsed'] / HEARTBEAT_INTERVAL) * 1e3:>9.2f} ms")
    children = result["children"]
    print(f"  {'its children (' + ', '.join(children['names']) + '): RSS, MB':<44} {children['rss']:>12.1f}")
    print(f"  {'its children: CPU, % of one core (average)':<44} "
          f"{children['cpu'] / result['elapsed'] * 100:>12.2f}")
    print(f"\n  {'for scale: the same interpreter, idle':<44} {'RSS MB':>12}  {'USS MB':>10}")
    for name, base_rss, base_uss in baselines:
        print(f"  {name:<44} {base_rss:>12.1f}  {base_uss:>10.1f}")
    print(f"  {'the agent (max over the run)':<44} {peak:>12.1f}  {max(uss_values):>10.1f}")
    age = "unknown" if result["age"] is None else f"{result['age']:.2f} s"
    writes = "unknown" if result["writes"] is None else str(result["writes"])
    print(f"\n  leader's last heartbeat from {NODE} at the end: {age} before; Raft writes during the run: "
          f"{writes} (heartbeats are not written)")
    print(f"  agent log: {len(result['warnings'])} warning/error line(s)")
    for line in result["warnings"][:5]:
        print(f"    {line[:200]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 s instead of 180 s")
    parser.add_argument("--seconds", type=float, help="measured seconds (default 180, --quick 30)")
    parser.add_argument("--interval", type=float, help="seconds between samples (default 5, --quick 2)")
    args = parser.parse_args()
    seconds = args.seconds or (30.0 if args.quick else 180.0)
    interval = args.interval or (2.0 if args.quick else 5.0)
    if not 0 < interval <= seconds or seconds > 24 * 3600:
        parser.error("need 0 < --interval <= --seconds <= 86400")
    interrupt_on_sigterm()
    began = time.monotonic()
    print(f"berth bench/agent.py: one agent, {HEARTBEAT_INTERVAL:g} s heartbeats, {seconds:.0f} s, "
          f"3 masters on loopback")
    print(f"  {machine_header()}")
    root = Path(tempfile.mkdtemp(prefix="berth-bench-agent-"))
    try:
        baselines = [(name, *baseline_memory(code)) for name, code in BASELINES]
        with running_masters(root) as masters:
            result = measure(masters, root, seconds, interval, report_every=max(interval, seconds / 12))
        report(result, baselines)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
        return 130
    print(f"  total {time.monotonic() - began:.0f} s; load average now "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
