"""What Prometheus metrics cost a master: a scrape at scale, and a request counted. No Raft, no HTTP.

    python -m bench.prometheus                       # 10,000 pods on 1,000 nodes, 20 scrapes
    python -m bench.prometheus --pods 50000 --nodes 5000

Printed side by side, each beside its reference in the same run:
  scrape        `MasterMetrics.exposition()` with the ClusterCollector over the pods and nodes (counted
                by phase and condition at scrape time) and a registry that saw 252 request label sets
  reference     `json.dumps` of the same pods: what a `GET /api/v1/pods` of them encodes
  request       one request through the Flask app (a 404 answered before any store read), with metrics
  reference     the same request through the same app without them: the hooks' price is the difference
Targets: a scrape under a list of the same pods; a request's counting under 50 µs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from master.api.app import create_app
from master.api.auth import TokenBook, digest
from master.api.context import ApiContext
from master.observability import ClusterCollector, MasterMetrics, RequestLabels

TOKEN = "bench-token"


def _median_ms(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def cluster(pods: int, nodes: int) -> tuple[list[dict], list[dict]]:
    phases = ("Running", "Running", "Running", "Pending", "Succeeded")
    made_pods = [{"apiVersion": "berth/v1", "kind": "Pod",
                  "metadata": {"name": f"p{i}", "namespace": f"ns{i % 50}", "uid": f"u{i}"},
                  "spec": {"nodeName": f"n{i % nodes}", "containers": [{"name": "main", "image": "busybox"}]},
                  "status": {"phase": phases[i % len(phases)], "podIP": "10.244.0.2"}} for i in range(pods)]
    made_nodes = [{"kind": "Node", "metadata": {"name": f"n{i}"},
                   "status": {"conditions": [{"type": "Ready", "status": "True" if i % 20 else "Unknown"}]}}
                  for i in range(nodes)]
    return made_nodes, made_pods


def scraping(pods: int, nodes: int, rounds: int) -> tuple[float, float, int]:
    """(scrape ms, reference ms, the exposition's bytes)"""
    made_nodes, made_pods = cluster(pods, nodes)
    metrics = MasterMetrics()
    metrics.register(ClusterCollector(
        lambda: {"commit_idx": 1000, "last_applied": 1000, "raft_term": 3, "state": 2},
        lambda: (made_nodes, made_pods), lambda: [(f"loop-{i}", lambda: 0) for i in range(16)]))
    for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
        for resource in ("pods", "nodes", "services", "endpoints", "deployments", "replicasets", "events",
                         "secrets", "configmaps"):
            for code in ("200", "201", "404", "409"):
                metrics.request(RequestLabels(verb, resource, "", code), 0.01)
    size = len(metrics.exposition())
    return (_median_ms(metrics.exposition, rounds), _median_ms(lambda: json.dumps(made_pods), rounds), size)


def requesting(count: int, passes: int = 7) -> tuple[float, float]:
    """(µs a request with metrics, µs without): medians of `passes` passes of `count` requests each,
    the two apps taking turns, so a busy moment of the machine falls on both."""
    tokens = TokenBook([{"name": "a", "role": "admin", "sha256": digest(TOKEN)}])
    headers = {"Authorization": f"Bearer {TOKEN}"}
    clients = [create_app(ApiContext(store=None, books=None, tokens=tokens,  # type: ignore[arg-type]
                                     metrics=metrics)).test_client() for metrics in (MasterMetrics(), None)]
    timed: list[list[float]] = [[], []]
    for _ in range(passes):
        for client, times in zip(clients, timed, strict=True):
            started = time.perf_counter()
            for _ in range(count):
                client.get("/api/v1/gadgets", headers=headers)
            times.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(timed[0]), statistics.median(timed[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2_000, help="per pass (7 passes)")
    args = parser.parse_args()
    scrape, listing, size = scraping(args.pods, args.nodes, args.rounds)
    with_metrics, without = requesting(args.requests)
    print(f"| what | ms or µs | reference | vs reference |\n|---|---|---|---|\n"
          f"| a scrape, {args.pods:,} pods on {args.nodes:,} nodes ({size:,} bytes) | {scrape:.1f} ms "
          f"| json.dumps of the pods: {listing:.1f} ms | {scrape / listing:.2f}x |\n"
          f"| a request (404 before any store read), with metrics | {with_metrics:.1f} µs | without: "
          f"{without:.1f} µs | +{with_metrics - without:.1f} µs |")
    print(f"targets: a scrape under a list of the same pods: {'ok' if scrape < listing else 'MISSED'}; "
          f"a request's counting under 50 µs: {'ok' if with_metrics - without < 50 else 'MISSED'}")


if __name__ == "__main__":
    main()
