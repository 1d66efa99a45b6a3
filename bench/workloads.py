"""Deployments at scale, masters only: 0 -> 300 replicas on 1,000 simulated nodes.

    python -m bench.workloads                       # 300 replicas, 1,000 nodes
    python -m bench.workloads --replicas 100 --nodes 200

Three masters on loopback run the scheduler and the workload controllers (no runtime: nothing
starts containers, so "done" is every pod created and bound). 1,000 Ready nodes are registered
through the API. Then, side by side in one run:

  deployment  a Deployment at 0 replicas is scaled to N through its /scale subresource: the
              deployment controller sizes its ReplicaSet, the ReplicaSet controller creates N
              pods in one round's propose_all (group commit), the scheduler binds them
  direct      the reference path: N pods POSTed by 8 client threads (what a script would do),
              bound by the same scheduler

Printed for each: seconds from the write to every pod created, and to every pod bound; the
Raft entries committed meanwhile (the leader's commit index, so controllers' status writes and
events count too) and pods per entry; then the deployment path's time as a ratio of the direct
one. Target: N = 300 created and bound in <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench._common import Http, interrupt_on_sigterm, machine_header, mark, running_masters
from master.liveness import READY, with_ready

TARGET_SECONDS = 3.0
GI = 2**30
NS = "/api/v1/namespaces/bench"
CONTROLLERS = ["node-lifecycle", "scheduler", "deployment", "replicaset", "garbage-collector"]


def template(app: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{
        "name": "main", "image": "localhost/busybox:lab", "command": ["sleep", "3600"],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}


def register_nodes(url: str, count: int) -> None:
    """Nodes in batches of 100 through apply, then each one's Ready status from 8 threads."""
    http = Http(url)
    http.headers["Content-Type"] = "application/yaml"  # several documents
    for start in range(0, count, 100):
        docs = [{"apiVersion": "berth/v1", "kind": "Node", "metadata": {"name": f"node-{i:04d}"},
                 "spec": {"address": f"10.1.{i // 250}.{i % 250 + 1}"}}
                for i in range(start, min(count, start + 100))]
        manifest = "\n---\n".join(json.dumps(d) for d in docs).encode()
        status, body = http.request("POST", "/api/v1/apply", manifest)
        assert status == 200, body[:300]
    http.close()
    size = {"cpu": 32_000, "memory": 128 * GI}
    ready = {**with_ready({}, READY, "2026-01-01T00:00:00Z"), "allocatable": size, "capacity": size}
    local = threading.local()

    def mark_ready(i: int) -> None:
        if not hasattr(local, "http"):
            local.http = Http(url)
        status, body = local.http.json("PUT", f"/api/v1/nodes/node-{i:04d}/status", {"status": ready})
        assert status == 200, body

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(mark_ready, range(count)))


class Watcher:
    """Polls the pods of one app until `wanted` exist and are all bound; notes when each came."""

    def __init__(self, url: str, app: str, wanted: int) -> None:
        self.http, self.app, self.wanted = Http(url), app, wanted

    def until_done(self, start: float, timeout: float = 120.0) -> tuple[float, float]:
        created = bound = float("nan")
        deadline = start + timeout
        while time.monotonic() < deadline:
            status, listed = self.http.json("GET", f"{NS}/pods?labelSelector=app={self.app}")
            assert status == 200
            items = listed["items"]
            now = time.monotonic() - start
            if len(items) >= self.wanted and created != created:  # nan: not yet
                created = now
            if len(items) >= self.wanted and all(p["spec"].get("nodeName") for p in items):
                bound = now
                break
            time.sleep(0.02)
        self.http.close()
        return created, bound


def commit_index(url: str) -> int:
    status, body = Http(url).json("GET", "/api/v1/cluster")
    assert status == 200
    return int(body["leaderCommitIndex"] or body["commitIndex"])


def via_deployment(url: str, replicas: int) -> tuple[float, float, int]:
    http = Http(url)
    body = {"apiVersion": "berth/v1", "kind": "Deployment",
            "metadata": {"name": "scaled", "namespace": "bench"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "scaled"}},
                     "template": template("scaled")}}
    status, answer = http.json("POST", f"{NS}/deployments", body)
    assert status == 201, answer
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the ReplicaSet at 0, before the clock starts
        status, listed = http.json("GET", f"{NS}/replicasets?labelSelector=app=scaled")
        if status == 200 and listed["items"]:
            break
        time.sleep(0.05)
    time.sleep(1.5)  # quiet: the controllers' status writes after the creation are done
    before = commit_index(url)
    start = time.monotonic()
    http.headers["Content-Type"] = "application/merge-patch+json"
    status, answer = http.json("PATCH", f"{NS}/deployments/scaled/scale",
                               {"spec": {"replicas": replicas}})
    assert status == 200, answer
    created, bound = Watcher(url, "scaled", replicas).until_done(start)
    return created, bound, commit_index(url) - before


def direct(url: str, replicas: int) -> tuple[float, float, int]:
    before = commit_index(url)
    body = {"apiVersion": "berth/v1", "kind": "Pod",
            "metadata": {"namespace": "bench", "labels": {"app": "direct"}}, **template("direct")}
    local = threading.local()

    def post(i: int) -> None:
        if not hasattr(local, "http"):
            local.http = Http(url)
        named = {**body, "metadata": {**body["metadata"], "name": f"direct-{i:05d}"}}
        status, answer = local.http.json("POST", f"{NS}/pods", named)
        assert status == 201, answer

    start = time.monotonic()
    watcher = Watcher(url, "direct", replicas)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(replicas)))
    created, bound = watcher.until_done(start)
    return created, bound, commit_index(url) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=300)
    parser.add_argument("--nodes", type=int, default=1000)
    args = parser.parse_args()
    interrupt_on_sigterm()
    print(machine_header())
    settings = {"controllers": CONTROLLERS, "node_grace_seconds": 3600}
    with running_masters(Path(tempfile.mkdtemp(prefix="bench-workloads-")), settings=settings) as masters:
        url = masters.url(masters.leader_index())
        started = time.monotonic()
        register_nodes(url, args.nodes)
        print(f"{args.nodes} Ready nodes registered in {time.monotonic() - started:.1f} s")
        rows = [("deployment", *via_deployment(url, args.replicas)), ("direct", *direct(url, args.replicas))]
    print(f"\n{args.replicas} pods on {args.nodes} nodes, 3 masters on loopback")
    print(f"{'path':<11} {'created s':>10} {'bound s':>9} {'raft entries':>13} {'pods/entry':>11}")
    for name, created, bound, entries in rows:
        per_entry = args.replicas / max(entries, 1)
        print(f"{name:<11} {created:>10.2f} {bound:>9.2f} {entries:>13} {per_entry:>11.1f}")
    deployment, reference = rows[0][2], rows[1][2]
    print(f"\ndeployment / direct (bound): {deployment / reference:.2f}x")
    print(f"target: {args.replicas} created and bound in <= {TARGET_SECONDS:.0f} s: {deployment:.2f} s "
          f"{mark(deployment <= TARGET_SECONDS)}")


if __name__ == "__main__":
    main()
