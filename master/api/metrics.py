"""Usage the agents reported, read from the leader's books (kubectl top's source): nodes' from their
heartbeats, pods' from the agents' usage batches (master/reports/pod_metrics.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, request

from berth.quantity import milli_text
from master.api.auth import authorize
from master.api.context import context, principal
from master.api.forward import to_leader
from master.objects.selectors import parse_selector

bp = Blueprint("metrics", __name__)


@bp.get("/api/v1/metrics/nodes")
def node_metrics() -> Response | tuple[Response, int]:
    """Each node's latest reported usage, and how long ago it was heard."""
    authorize(principal(), "list", "Node")
    ctx = context()
    if not ctx.store.is_leader():
        return to_leader(ctx, "GET", "/api/v1/metrics/nodes")
    names, _ = ctx.store.read(lambda state: [n["metadata"]["name"] for n in state.list("Node")])
    heartbeats, items = ctx.books.heartbeats, {}
    for name in names:
        usage, age = heartbeats.usage(name), heartbeats.seconds_since(name)
        if usage is not None and age is not None:
            items[name] = {**usage, "secondsSinceHeartbeat": round(age, 3)}
    return jsonify({"kind": "NodeMetricsList", "items": items})


@bp.get("/api/v1/metrics/pods")
def pod_metrics() -> Response | tuple[Response, int]:
    """Each pod's latest usage the agents reported, as Kubernetes' PodMetrics: `namespace` (all when
    absent) and `labelSelector` narrow which pods; a pod with no fresh sample is left out."""
    authorize(principal(), "list", "Pod")
    ctx = context()
    if not ctx.store.is_leader():
        return to_leader(ctx, "GET", request.full_path)
    namespace = request.args.get("namespace") or None
    matches = parse_selector(request.args.get("labelSelector"))
    pods, _ = ctx.store.read(lambda state: [p for p in state.select("Pod", namespace)
                                            if matches(p["metadata"].get("labels") or {})])
    samples = ctx.books.metrics.samples([p["metadata"]["uid"] for p in pods])
    items = []
    for pod in pods:
        sample = samples.get(pod["metadata"]["uid"])
        if sample is None:
            continue
        items.append({
            "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]},
            "timestamp": datetime.fromtimestamp(sample.timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "window": f"{sample.window:g}s",
            "containers": [{"name": name, "usage": {"cpu": milli_text(usage.cpu_millis),
                                                    "memory": f"{usage.memory_bytes // 1024}Ki"}}
                           for name, usage in sorted(sample.containers.items())]})
    return jsonify({"kind": "PodMetricsList", "apiVersion": "berth/v1", "items": items})
