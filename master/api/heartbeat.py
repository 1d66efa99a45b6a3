"""`POST /api/v1/nodes/{name}/heartbeat`: soft state on the leader, never a Raft write."""

from __future__ import annotations

import requests
from flask import Blueprint, Response, jsonify, request
from pydantic import Field, ValidationError

from master.api.auth import authorize
from master.api.body import one_document
from master.api.context import context, principal
from master.errors import ApiError, not_found
from master.objects.kinds import Strict
from master.objects.validate import error_from_validation

bp = Blueprint("heartbeat", __name__)
FORWARD_TIMEOUT = 2.0


class HeartbeatBody(Strict):
    cpuPercent: float = Field(ge=0, le=100)
    memoryUsed: int = Field(ge=0)


@bp.post("/api/v1/nodes/<name>/heartbeat")
def heartbeat(name: str) -> Response | tuple[Response, int]:
    authorize(principal(), "update", "Node", name)
    try:
        usage = HeartbeatBody.model_validate(one_document()).model_dump()
    except ValidationError as err:
        raise error_from_validation(err) from None
    ctx = context()
    if not ctx.store.is_leader():
        return _forward(name)
    node, _ = ctx.store.read(lambda state: state.get("Node", "", name))
    if node is None:
        raise not_found("Node", "", name)
    ctx.heartbeats.record(name, usage)
    return jsonify({"ok": True})


def _forward(name: str) -> tuple[Response, int]:
    """Followers pass heartbeats to the leader, whose memory is the only one that counts."""
    ctx = context()
    leader = ctx.store.leader()
    url = ctx.peer_apis.get(leader or "")
    if url is None:
        raise ApiError(503, "Unavailable", "no reachable leader to take the heartbeat; retry")
    try:
        answer = requests.post(f"{url}/api/v1/nodes/{name}/heartbeat", data=request.get_data(),
                               headers={"Authorization": request.headers.get("Authorization", ""),
                                        "Content-Type": "application/json"},
                               timeout=FORWARD_TIMEOUT)
        body = answer.json()
    except (requests.RequestException, ValueError):
        raise ApiError(503, "Unavailable", "the leader did not take the heartbeat; retry") from None
    return jsonify(body), answer.status_code
