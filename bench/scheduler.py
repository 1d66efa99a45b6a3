"""The scheduler alone: 10,000 pods onto 1,000 synthetic nodes, no Raft, no SSH.

    python -m bench.scheduler                  # 10,000 pods, 1,000 nodes
    python -m bench.scheduler --pods 2000 --nodes 200

Three workloads side by side, each on a fresh snapshot:
  uniform   identical pods (100m / 128Mi), as Kubernetes' scheduler_perf "SchedulingBasic"
  mixed     requests of 50m-1 CPU and 64Mi-2Gi, a third with a nodeSelector, a tenth with
            a toleration for the tainted tenth of the nodes, a twentieth with a host port,
            replicas of 100 owners (spread scoring); 5% of the nodes NotReady
  binpack   the uniform pods with MostAllocated scoring
Printed per workload: pods/s over the whole round (snapshot build included, and without
it), the per-pod decision time p50/p99/max, pods bound and unschedulable. Target >= 1,000
pods/s (Kubernetes' scheduler_perf measured 333-909 pods/s at 500 nodes).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from typing import Any

from bench._common import machine_header, mark, percentile
from master.liveness import READY, SILENT, with_ready
from master.scheduler import Scheduler, SchedulerConfig, build_snapshot, pod_info

TARGET_PODS_PER_SECOND = 1000
GI = 2**30


def nodes(count: int, mixed: bool, rng: random.Random) -> list[dict[str, Any]]:
    made = []
    for i in range(count):
        spec: dict[str, Any] = {"address": f"10.1.{i // 250}.{i % 250 + 1}"}
        labels = {"zone": f"z{i % 3}", "disk": "ssd" if i % 2 else "hdd"}
        ready = True
        if mixed:
            if i % 10 == 0:
                spec["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
            ready = rng.random() >= 0.05
        made.append({"kind": "Node", "metadata": {"name": f"node-{i:04d}", "labels": labels}, "spec": spec,
                     "status": {**with_ready({}, READY if ready else SILENT, "t"),
                                "allocatable": {"cpu": 32_000, "memory": 128 * GI}}})
    return made


def pods(count: int, mixed: bool, rng: random.Random) -> list[dict[str, Any]]:
    made = []
    for i in range(count):
        cpu, memory = ("100m", "128Mi")
        spec: dict[str, Any] = {}
        meta: dict[str, Any] = {"name": f"pod-{i:05d}", "namespace": "bench", "uid": f"u{i}",
                                "resourceVersion": i + 1}
        ports: list[dict[str, Any]] = []
        if mixed:
            cpu = f"{rng.choice([50, 100, 250, 500, 1000])}m"
            memory = f"{rng.choice([64, 128, 256, 512, 2048])}Mi"
            if i % 3 == 0:
                spec["nodeSelector"] = {"disk": "ssd"}
            if i % 10 == 0:
                spec["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
            if i % 20 == 0:
                ports = [{"containerPort": 80, "hostPort": 8000 + i % 50}]
            meta["ownerReferences"] = [{"kind": "Deployment", "name": f"app-{i % 100}", "controller": True}]
        made.append({"kind": "Pod", "metadata": meta, "spec": {**spec, "containers": [
            {"name": "main", "image": "busybox", "ports": ports,
             "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}})
    return made


def run(name: str, node_count: int, pod_count: int, mixed: bool, config: SchedulerConfig) -> dict[str, Any]:
    rng = random.Random(42)
    node_objects, pod_objects = nodes(node_count, mixed, rng), pods(pod_count, mixed, rng)
    gc.collect()
    began = time.perf_counter()
    snapshot = build_snapshot(node_objects, [])
    infos = [pod_info(p) for p in pod_objects]
    prepared = time.perf_counter()
    scheduler = Scheduler(config)
    decisions: list[float] = []
    bound = failed = 0
    for pod in infos:
        t = time.perf_counter()
        node, _why = scheduler.place(snapshot, pod)
        if node is None:
            failed += 1
        else:
            node.assume(pod)
            bound += 1
        decisions.append(time.perf_counter() - t)
    done = time.perf_counter()
    decisions.sort()
    result = {"name": name, "total": done - began, "scheduling": done - prepared, "bound": bound,
              "failed": failed, "p50": percentile(decisions, 50), "p99": percentile(decisions, 99),
              "max": decisions[-1], "spread": len({n.name for n in snapshot.nodes if n.pods})}
    print(f"  {name}: {pod_count / result['total']:.0f} pods/s", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    args = parser.parse_args()
    if not 1 <= args.pods <= 200_000 or not 1 <= args.nodes <= 20_000:
        parser.error("need 1 <= --pods <= 200000 and 1 <= --nodes <= 20000")
    print(f"berth bench/scheduler.py: {args.pods} pods onto {args.nodes} synthetic nodes, one thread")
    print(f"  {machine_header()}")
    results = [
        run("uniform", args.nodes, args.pods, False, SchedulerConfig()),
        run("mixed", args.nodes, args.pods, True, SchedulerConfig()),
        run("binpack", args.nodes, args.pods, False, SchedulerConfig("MostAllocated")),
    ]
    width = 14
    print(f"\n  {'':<36}" + "".join(f"{r['name']:>{width}}" for r in results) + "   target")
    rows = [
        ("pods/s, snapshot build included", lambda r: f"{args.pods / r['total']:.0f}",
         f">= {TARGET_PODS_PER_SECOND}"),
        ("pods/s, placing only", lambda r: f"{args.pods / r['scheduling']:.0f}", ""),
        ("decision p50 / p99, ms", lambda r: f"{r['p50'] * 1e3:.2f} / {r['p99'] * 1e3:.2f}", ""),
        ("decision max, ms", lambda r: f"{r['max'] * 1e3:.1f}", ""),
        ("bound / unschedulable", lambda r: f"{r['bound']} / {r['failed']}", ""),
        ("nodes that got a pod", lambda r: str(r["spread"]), ""),
    ]
    for label, value, target in rows:
        print(f"  {label:<36}" + "".join(f"{value(r):>{width}}" for r in results) + f"   {target}")
    for r in results:
        rate = args.pods / r["total"]
        print(f"  {r['name']}: {rate:.0f} pods/s {mark(rate >= TARGET_PODS_PER_SECOND)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
