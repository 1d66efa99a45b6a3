"""Reads never block apply: write latency at a steady write rate, alone and beside heavy lists.

3 masters on loopback hold 10,000 pods (100 labels `app=aN`, 100 nodes `hN`, so each
selective list returns 100 pods). Writers create ConfigMaps at a steady rate on one master
and time each write; the same run then adds readers listing pods by label and by node
(the store's indexes find them under its lock, the filtering runs after), then readers
listing all 10,000 pods. The reference is the first phase: writes alone.

    python -m bench.reads [--seconds 10] [--rate 500] [--pods 10000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import Http, interrupt_on_sigterm, machine_header, percentile, running_masters

NAMESPACE = "reads"
GROUPS = 100  # labels app=a0..a99 and nodes h0..h99
WRITERS = 16


@dataclass
class Phase:
    name: str
    writes: list[float] = field(default_factory=list)  # seconds each
    write_errors: int = 0
    lists: list[float] = field(default_factory=list)
    listed: int = 0  # objects returned, all lists together
    seconds: float = 0.0


def populate(url: str, count: int) -> None:
    http = Http(url, timeout=120)
    chunk = 400
    for start in range(0, count, chunk):
        pods = [{"kind": "Pod", "metadata": {"name": f"p{n}", "namespace": NAMESPACE,
                                             "labels": {"app": f"a{n % GROUPS}", "tier": "bench"}},
                 "spec": {"nodeName": f"h{n % GROUPS}", "containers": [
                     {"name": "main", "image": "localhost/busybox:lab", "command": ["sleep", "600"],
                      "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}]}}
                for n in range(start, min(count, start + chunk))]
        status, body = http.json("POST", f"/api/v1/apply?namespace={NAMESPACE}", pods)
        if status != 200:
            raise RuntimeError(f"populating: {status} {body}")
    http.close()


def writer(url: str, phase: Phase, rate: float, stop: threading.Event, tag: str) -> None:
    http = Http(url, timeout=30)
    interval, due, n = 1.0 / rate, time.monotonic(), 0
    while not stop.is_set():
        n += 1
        body = json.dumps({"kind": "ConfigMap", "metadata": {"name": f"{tag}-{n}"}}).encode()
        began = time.perf_counter()
        try:
            status, _ = http.request("POST", f"/api/v1/namespaces/{NAMESPACE}-writes/configmaps", body)
        except OSError:
            status = 0
        if status == 201:
            phase.writes.append(time.perf_counter() - began)
        else:
            phase.write_errors += 1
        due += interval
        stop.wait(max(0.0, due - time.monotonic()))
    http.close()


def reader(url: str, phase: Phase, queries: list[str], rate: float, stop: threading.Event) -> None:
    http = Http(url, timeout=60)
    n, interval, due = 0, 1.0 / rate, time.monotonic()
    while not stop.is_set():
        query = queries[n % len(queries)]
        n += 1
        began = time.perf_counter()
        status, body = http.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods{query}")
        if status == 200:
            phase.lists.append(time.perf_counter() - began)
            phase.listed += body.count(b'"kind":"Pod"')
        due += interval
        stop.wait(max(0.0, due - time.monotonic()))
    http.close()


def run_phase(url: str, name: str, seconds: float, rate: float, readers: int, queries: list[str],
              list_rate: float = 1.0) -> Phase:
    phase, stop = Phase(name), threading.Event()
    tag = f"w{time.monotonic_ns() % 10**9}"  # configmap names unique to this phase
    threads = [threading.Thread(target=writer, args=(url, phase, rate / WRITERS, stop, f"{tag}-{i}"))
               for i in range(WRITERS)]
    threads += [threading.Thread(target=reader, args=(url, phase, queries, list_rate / readers, stop))
                for _ in range(readers)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    phase.seconds = time.monotonic() - began
    return phase


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per phase (default 10)")
    parser.add_argument("--rate", type=float, default=500.0, help="writes per second offered (default 500)")
    parser.add_argument("--pods", type=int, default=10_000, help="pods stored (default 10000)")
    parser.add_argument("--readers", type=int, default=4, help="reader threads (default 4)")
    parser.add_argument("--list-rate", type=float, default=20.0,
                        help="selective lists a second, all readers (default 20; of all pods: a tenth)")
    args = parser.parse_args()
    interrupt_on_sigterm()
    print(machine_header())
    print(f"bench/reads.py: 3 masters, {args.pods} pods stored, {args.rate:g} writes/s offered by "
          f"{WRITERS} writers, {args.readers} readers offering {args.list_rate:g} lists/s, "
          f"{args.seconds:g} s a phase\n")
    root = Path(tempfile.mkdtemp(prefix="berth-bench-reads-"))
    with running_masters(root, 3) as masters:
        leader = masters.leader_index()
        url = masters.url(leader)
        began = time.monotonic()
        populate(url, args.pods)
        print(f"  {args.pods} pods stored in {time.monotonic() - began:.1f} s", flush=True)
        selective = [f"?labelSelector=app%3Da{g}" for g in (7, 42)] + \
                    [f"?fieldSelector=spec.nodeName%3Dh{g}" for g in (7, 42)]
        plan = (("writes alone (reference)", 0, [], 1.0),
                ("+ lists by label and by node", args.readers, selective, args.list_rate),
                ("+ lists of all pods", args.readers, [""], args.list_rate / 10))
        phases = [run_phase(url, name, args.seconds, args.rate, readers, queries, list_rate)
                  for name, readers, queries, list_rate in plan]
    reference = percentile(sorted(phases[0].writes), 99)
    print("\n| phase | writes/s | write p50 ms | write p99 ms | p99 vs ref | lists/s | list p50 ms "
          "| pods listed/s |")
    print("|---|---|---|---|---|---|---|---|")
    for phase in phases:
        writes = sorted(phase.writes)
        p99 = percentile(writes, 99)
        lists = sorted(phase.lists)
        print(f"| {phase.name} | {len(writes) / phase.seconds:.0f} | {percentile(writes, 50) * 1000:.1f} | "
              f"{p99 * 1000:.1f} | {p99 / reference:.2f}x | {len(lists) / phase.seconds:.0f} | "
              f"{percentile(lists, 50) * 1000 if lists else float('nan'):.1f} | "
              f"{phase.listed / phase.seconds:.0f} |")
    ratio = percentile(sorted(phases[1].writes), 99) / reference
    print(f"\n  selective lists: write p99 {ratio:.2f}x the reference (target <= 1.20: "
          f"{'ok' if ratio <= 1.2 else 'MISSED'}); write errors "
          f"{[p.write_errors for p in phases]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
