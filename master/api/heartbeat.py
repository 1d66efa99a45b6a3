"""Heartbeats in, node usage out: soft state on the leader, never a Raft write."""

from __future__ import annotations

import logging
import threading
import time
from typing import Literal, TypeVar

import requests
from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, Field, ValidationError

from master.api.auth import authorize
from master.api.body import one_document
from master.api.context import context, principal
from master.api.peer_auth import verify
from master.errors import ApiError, not_found
from master.heartbeat_relay import MAX_BATCH, RELAY_PATH
from master.objects.fields import Bytes, DnsLabel
from master.objects.kinds import Strict
from master.objects.validate import error_from_validation
from master.probes import Verdict

log = logging.getLogger(__name__)
bp = Blueprint("heartbeat", __name__)
PEER_PATHS = frozenset({RELAY_PATH})  # signed by a master (peer_auth), not a bearer token
FORWARD_TIMEOUT = 2.0
_sessions = threading.local()  # one keep-alive connection to the leader per API thread
M = TypeVar("M", bound=BaseModel)


def _leader_session() -> requests.Session:
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session


class HeartbeatBody(Strict):
    cpuPercent: float = Field(ge=0, le=100)
    memoryUsed: Bytes


class RelayedHeartbeat(HeartbeatBody):
    node: DnsLabel
    ageSeconds: float = Field(ge=0, le=60)


class RelayedBatch(Strict):
    heartbeats: list[RelayedHeartbeat] = Field(max_length=MAX_BATCH)


def _validated(model: type[M]) -> M:
    try:
        return model.model_validate(one_document())
    except ValidationError as err:
        raise error_from_validation(err) from None


@bp.post("/api/v1/nodes/<name>/heartbeat")
def heartbeat(name: str) -> Response | tuple[Response, int]:
    authorize(principal(), "update", "Node", name, subresource="heartbeat")
    usage = _validated(HeartbeatBody).model_dump()
    ctx = context()
    leading = ctx.store.is_leader()
    if not leading and ctx.relay is None:  # no peer key (no Raft password): one request each
        return _forward("POST", f"/api/v1/nodes/{name}/heartbeat")
    node = ctx.store.get("Node", "", name)
    if node is None:
        raise not_found("Node", "", name)
    if leading:
        ctx.heartbeats.record(name, usage)
    elif ctx.relay is not None and ctx.relay.accepting():
        ctx.relay.add(name, usage)
    else:
        raise ApiError(503, "Unavailable", "this master cannot pass heartbeats to the leader; "
                       "use another master")
    # the agent lists its node's pods again only when this moved (master/pod_revisions.py)
    return jsonify({"ok": True, "podsRevision": ctx.pod_revisions.of(name)})


@bp.post(RELAY_PATH)
def relayed_heartbeats() -> Response:
    """A follower's batch of its agents' latest heartbeats (heartbeat_relay.py)."""
    ctx = context()
    now, header = time.time(), request.headers.get("Authorization")
    nonce = None if ctx.peer_key is None else verify(ctx.peer_key, header, request.get_data(cache=True),
                                                     ctx.store.self_address, now)
    if nonce is None:
        raise ApiError(401, "Unauthorized", "a master's signature is required", "Authorization")
    if not ctx.peer_nonces.first_time(nonce, now):
        raise ApiError(401, "Unauthorized", "this signed batch was received before: a replay",
                       "Authorization")
    if not ctx.store.is_leader():
        raise ApiError(503, "NotLeader", "this master is not the leader; send to the leader")
    batch = _validated(RelayedBatch).heartbeats
    known, _ = ctx.store.read(lambda state: {b.node for b in batch if state.get("Node", "", b.node)})
    now = time.monotonic()
    for beat in batch:
        if beat.node in known:
            ctx.heartbeats.record(beat.node, {"cpuPercent": beat.cpuPercent, "memoryUsed": beat.memoryUsed},
                                  now - beat.ageSeconds)
    return jsonify({"recorded": len(known), "unknown": sorted({b.node for b in batch} - known)})


class ProbeReport(Strict):
    podUID: str = Field(min_length=1, max_length=64)
    container: DnsLabel
    probe: Literal["liveness", "readiness"]
    healthy: bool
    startedAt: str = Field(max_length=64)
    message: str = Field(default="", max_length=512)


class ProbeReports(Strict):
    results: list[ProbeReport] = Field(max_length=10_000)


@bp.post("/api/v1/nodes/<name>/probes")
def probe_results(name: str) -> Response | tuple[Response, int]:
    """An agent's current probe verdicts for the containers on its node (master/probes.py). Only
    verdicts on pods bound to that node count: an agent cannot restart another node's pods."""
    authorize(principal(), "update", "Node", name, subresource="probes")
    reports = _validated(ProbeReports).results
    ctx = context()
    if not ctx.store.is_leader():
        return _forward("POST", f"/api/v1/nodes/{name}/probes")
    pods, _ = ctx.store.read(lambda state: state.select("Pod", node=name)) if reports else ([], 0)
    bound = {p["metadata"]["uid"] for p in pods}
    mine = [r for r in reports if r.podUID in bound]
    if ctx.probes.record(name, {(r.podUID, r.container, r.probe): Verdict(r.healthy, r.startedAt, r.message)
                                for r in mine}):
        ctx.attention.mark([name])
    return jsonify({"recorded": len(mine), "ignored": len(reports) - len(mine)})


class RuntimeEventReport(Strict):
    container: str = Field(max_length=253)  # "" for the agent's own "listening" (stream (re)started)
    action: str = Field(min_length=1, max_length=32)
    exitCode: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


class RuntimeEventReports(Strict):
    events: list[RuntimeEventReport] = Field(min_length=1, max_length=1000)


@bp.post("/api/v1/nodes/<name>/runtime-events")
def runtime_events(name: str) -> Response | tuple[Response, int]:
    """Changes the agent saw among Berth's containers on its node (agent/runtime_events.py):
    the runtime lists that host in its next round (master/runtime/attention.py)."""
    authorize(principal(), "update", "Node", name, subresource="runtime-events")
    events = _validated(RuntimeEventReports).events
    ctx = context()
    if not ctx.store.is_leader():
        return _forward("POST", f"/api/v1/nodes/{name}/runtime-events")
    if ctx.store.get("Node", "", name) is None:
        raise not_found("Node", "", name)
    log.debug("node %s: runtime events %s", name, [(e.container, e.action) for e in events])
    ctx.attention.mark([name])
    return jsonify({"recorded": len(events)})


@bp.get("/api/v1/metrics/nodes")
def node_metrics() -> Response | tuple[Response, int]:
    """Each node's latest reported usage, from the leader's memory (kubectl top's source)."""
    authorize(principal(), "list", "Node")
    ctx = context()
    if not ctx.store.is_leader():
        return _forward("GET", "/api/v1/metrics/nodes")
    names, _ = ctx.store.read(lambda state: [n["metadata"]["name"] for n in state.list("Node")])
    items = {}
    for name in names:
        usage = ctx.heartbeats.usage(name)
        age = ctx.heartbeats.seconds_since(name)
        if usage is not None and age is not None:
            items[name] = {**usage, "secondsSinceHeartbeat": round(age, 3)}
    return jsonify({"kind": "NodeMetricsList", "items": items})


def _forward(method: str, path: str) -> tuple[Response, int]:
    """Followers pass these to the leader, whose memory is the only one that counts."""
    ctx = context()
    leader = ctx.store.leader()
    url = ctx.peer_apis.get(leader or "")
    if url is None:
        raise ApiError(503, "Unavailable", "no reachable leader to answer; retry")
    try:
        answer = _leader_session().request(
            method, url + path, data=request.get_data() or None, timeout=FORWARD_TIMEOUT,
            headers={"Authorization": request.headers.get("Authorization", ""),
                     "Content-Type": "application/json"})
        body = answer.json()
    except (requests.RequestException, ValueError):
        raise ApiError(503, "Unavailable", "the leader did not answer; retry") from None
    return jsonify(body), answer.status_code
