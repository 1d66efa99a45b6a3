"""Usage the agents reported, read from the leader's books (kubectl top's source)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from master.api.auth import authorize
from master.api.context import context, principal
from master.api.forward import to_leader

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
