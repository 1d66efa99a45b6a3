"""Pods end to end in the lab: 60 pods at once until all Running, and what SSH adds per pod.

    python bench/pods.py                 # 60 pods on 3 lab hosts; 20 pods for the SSH comparison
    python bench/pods.py --pods 30 --compare 10

Part 1: a lab of 3 hosts (`bp`, removed afterwards), 3 masters on loopback with the
scheduler and the runtime (restart back-off 1 s), the hosts registered as Ready nodes.
60 pods (busybox `sleep`, 50m / 16Mi each) are created at once (one apply, one Raft entry); printed:
the time until every pod is bound, and until every pod is Running (status written by the
leader), with the spread over the hosts.
Part 2: the commands the runtime runs to start one pod (clear a stale sandbox, create
the pod sandbox, start it, run the container), for --compare pods on one host, once over
the runtime's SSH pool (one kept connection, TCP_NODELAY) and once run locally inside
the host (nsenter), alternating pod by pod; printed: median and p90 per pod both ways
and their ratio (target <= 1.2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Http, interrupt_on_sigterm, machine_header, mark, running_masters
from lab import hosts as lab_hosts
from lab.hosts import IMAGE, Lab
from master.liveness import with_ready
from master.runtime.driver import DRIVERS
from master.runtime.ssh import Host, SshPool

TARGET_RATIO = 1.2
PODMAN = DRIVERS["podman"]


def pod(name: str, uid: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "bench"}
    if uid:
        meta["uid"] = uid
    return {"apiVersion": "berth/v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{
        "name": "main", "image": IMAGE, "command": ["sleep", "3600"],
        "resources": {"requests": {"cpu": "50m", "memory": "16Mi"}}}]}}


def register_nodes(admin: Http, lab: Lab) -> None:
    for host in lab.host_names():
        node = {"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": host},
                "spec": {"address": lab.address(host)}}
        code, body = admin.json("POST", "/api/v1/nodes", node)
        assert code == 201, body
        status = {**with_ready({}, True, "2026-01-01T00:00:00Z"),
                  "allocatable": {"cpu": 8000, "memory": 16 * 2**30}}
        code, body = admin.json("PUT", f"/api/v1/nodes/{host}/status", {"status": status})
        assert code == 200, body


def end_to_end(lab: Lab, root: Path, count: int) -> dict[str, Any]:
    settings = {"controllers": ["node-lifecycle", "scheduler", "runtime"], "node_grace_seconds": 3600,
                "ssh_key_file": str(lab.ssh_key), "ssh_known_hosts_file": str(lab.known_hosts),
                "restart_backoff_seconds": 1}
    with running_masters(root / "masters", 3, settings) as masters:
        admin = Http(masters.url(masters.leader_index()), timeout=30)
        register_nodes(admin, lab)
        manifests = [pod(f"p{i:03d}") for i in range(count)]
        began = time.monotonic()
        code, body = admin.json("POST", "/api/v1/apply", manifests)  # one Raft command: all at once
        assert code == 200, body
        bound_at = running_at = None
        spread: Counter = Counter()
        deadline = began + 300
        while time.monotonic() < deadline:
            code, listing = admin.json("GET", "/api/v1/namespaces/bench/pods")
            items = listing["items"] if code == 200 else []
            bound = [p for p in items if p["spec"].get("nodeName")]
            running = [p for p in items if (p.get("status") or {}).get("phase") == "Running"]
            if bound_at is None and len(bound) == count:
                bound_at = time.monotonic() - began
                spread = Counter(p["spec"]["nodeName"] for p in bound)
            if len(running) == count:
                running_at = time.monotonic() - began
                break
            time.sleep(0.1)
        admin.close()
    return {"bound": bound_at, "running": running_at, "spread": dict(sorted(spread.items()))}


def start_commands(obj: dict[str, Any]) -> list[list[str]]:
    container = obj["spec"]["containers"][0]
    return [PODMAN.remove_sandbox(obj), PODMAN.create_sandbox(obj), PODMAN.start_sandbox(obj),
            PODMAN.run_container(obj, container, {})]


def ssh_versus_local(lab: Lab, count: int) -> dict[str, list[float]]:
    host = "h3"
    pool = SshPool(str(lab.ssh_key), str(lab.known_hosts))
    target = Host(lab.address(host))
    pool.run(target, ["true"])  # the connection is kept: open it before measuring
    times: dict[str, list[float]] = {"ssh": [], "local": []}
    made: list[dict[str, Any]] = []
    try:
        for i in range(count):
            for way in ("ssh", "local") if i % 2 == 0 else ("local", "ssh"):
                obj = pod(f"cmp-{way}-{i}", uid=f"{i:08d}{'s' if way == 'ssh' else 'l'}")
                made.append(obj)
                began = time.perf_counter()
                for argv in start_commands(obj):
                    if way == "ssh":
                        result = pool.run(target, argv)
                        ok, err = result.ok, result.stderr
                    else:
                        local = lab_hosts.in_host(lab, host, argv, check=False)
                        ok, err = local.returncode == 0, local.stderr.encode()
                    if not ok:
                        raise RuntimeError(f"{way}: {argv[:3]} failed: {err[:300]!r}")
                times[way].append(time.perf_counter() - began)
    finally:
        for obj in made:
            pool.run(target, PODMAN.remove_sandbox(obj))
        pool.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=60)
    parser.add_argument("--compare", type=int, default=20, help="pods started each way in part 2")
    args = parser.parse_args()
    if not 1 <= args.pods <= 500 or not 2 <= args.compare <= 200:
        parser.error("need 1 <= --pods <= 500 and 2 <= --compare <= 200")
    interrupt_on_sigterm()
    print(f"berth bench/pods.py: {args.pods} pods at once on 3 lab hosts; {args.compare} pods started "
          f"over SSH and locally")
    print(f"  {machine_header()}")
    lab = Lab(name="bp", hosts=3)
    root = Path(tempfile.mkdtemp(prefix="berth-bench-pods-"))
    lab_hosts.down(lab)
    try:
        lab_hosts.up(lab)
        e2e = end_to_end(lab, root, args.pods)
        times = ssh_versus_local(lab, args.compare)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything this run started", file=sys.stderr)
        return 130
    finally:
        lab_hosts.down(lab)
        shutil.rmtree(root, ignore_errors=True)
    bound = "not all" if e2e["bound"] is None else f"{e2e['bound']:.1f} s"
    running = "not all in 300 s" if e2e["running"] is None else f"{e2e['running']:.1f} s"
    print(f"\n  {args.pods} pods created at once: all bound after {bound}, all Running after {running}")
    print(f"  spread over the hosts: {e2e['spread']}")
    if e2e["running"]:
        print(f"  {args.pods / e2e['running']:.1f} pods/s started")

    def q(values: list[float], share: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    ssh_median, local_median = statistics.median(times["ssh"]), statistics.median(times["local"])
    ratio = ssh_median / local_median
    print(f"\n  starting one pod (4 podman commands), {args.compare} pods each way, alternating:")
    print(f"  {'':<28}{'median ms':>12}{'p90 ms':>10}")
    print(f"  {'over SSH (kept connection)':<28}{ssh_median * 1e3:>12.0f}{q(times['ssh'], 0.9) * 1e3:>10.0f}")
    print(f"  {'locally in the host':<28}{local_median * 1e3:>12.0f}{q(times['local'], 0.9) * 1e3:>10.0f}")
    print(f"  ratio SSH / local (median): {ratio:.2f}  target <= {TARGET_RATIO}  "
          f"{mark(ratio <= TARGET_RATIO)}")
    print(f"  load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
