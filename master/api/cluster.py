"""Cluster membership and health: `/api/v1/cluster`, `/healthz`, `/readyz`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from master.api.auth import authorize
from master.api.context import context, principal

bp = Blueprint("cluster", __name__)
_STATES = {0: "follower", 1: "candidate", 2: "leader"}


def cluster_status() -> dict[str, Any]:
    store = context().store
    status = store.status()
    leader = store.leader()
    me = str(status["self"])
    members = [{"address": me, "self": True, "leader": leader == me, "reachable": True}]
    for peer in store.peers:
        members.append({
            "address": peer,
            "self": False,
            "leader": leader == peer,
            "reachable": status.get(f"partner_node_status_server_{peer}") == 2,
        })
    _, revision = store.read(lambda state: None)
    return {
        "self": me,
        "leader": leader,
        "state": _STATES.get(status["state"], str(status["state"])),
        "term": status["raft_term"],
        "preVoteRounds": status["pre_vote_rounds"],  # elections this master asked about (prevote.py)
        "commitIndex": status["commit_idx"],
        "lastApplied": status["last_applied"],
        "leaderCommitIndex": status["leader_commit_idx"],
        "revision": revision,
        "ready": store.is_ready(),
        "hasQuorum": status["has_quorum"],
        "members": members,
    }


@bp.get("/api/v1/cluster")
def cluster() -> Response:
    authorize(principal(), "get", None)
    return jsonify(cluster_status())


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"ok": True})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    store = context().store
    ready = store.is_ready()
    body = {"ready": ready, "leader": store.leader()}
    if not ready:
        body.update(error="no leader known or not caught up", reason="NotReady", field=None)
    return jsonify(body), 200 if ready else 503
